"""Train the lesson's MLP on MNIST: `python src/train.py [key=value ...]` (see README.md)."""

import sys

import hydra
from omegaconf import DictConfig

from mlplab.errors import InputError
from mlplab.training import train


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        train(cfg)
    except InputError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
