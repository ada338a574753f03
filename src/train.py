"""Train the lesson's MLP on MNIST: `python src/train.py [key=value ...]` (see README.md)."""

import hydra
from omegaconf import DictConfig

from mlplab.cli import job, run
from mlplab.training import resumed_config, train


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    job(lambda: train(resumed_config(cfg) if cfg.ckpt_path else cfg), cfg.paths.output_dir)


if __name__ == "__main__":
    run(main)
