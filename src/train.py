"""Train a network on MNIST (the lesson's MLP by default): `python src/train.py [key=value ...]` (see README.md)."""

import hydra
from omegaconf import DictConfig

from mlplab.cli import job, run


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from mlplab.experiments.continuation import train_task  # here: --help and --cfg job start without torch

    job(lambda: train_task(cfg), cfg.paths.output_dir)


if __name__ == "__main__":
    run(main)
