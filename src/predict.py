"""Classify digit images: `python src/predict.py ckpt_path=PATH input=IMAGE_OR_FOLDER [top_k=3]`."""

import sys

import hydra
from omegaconf import DictConfig

from mlplab.cli import reported, run
from mlplab.use.inference import predict


@hydra.main(config_path="../conf", config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with reported():
        _, failed = predict(cfg)
    # Each file that failed has had its own error line, and every good one its result.
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    run(main)
