"""Train a network on MNIST (the lesson's MLP by default): `python src/train.py [key=value ...]` (see README.md)."""

import hydra
from omegaconf import DictConfig

from mlplab.cli import job, run


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    job(lambda: training(cfg), cfg.paths.output_dir)


def training(cfg: DictConfig) -> object:
    # Imported here, once there is a run to train: --help and --cfg job answer without torch and Lightning (5 s).
    from mlplab.experiments.continuation import train_task

    return train_task(cfg)


if __name__ == "__main__":
    run(main)
