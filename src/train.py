"""Train a network on MNIST (the lesson's MLP by default): `python src/train.py [key=value ...]` (see README.md)."""

import hydra
from omegaconf import DictConfig

from mlplab.cli import job, run
from mlplab.experiments.continuation import train_task


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    job(lambda: train_task(cfg), cfg.paths.output_dir)


if __name__ == "__main__":
    run(main)
