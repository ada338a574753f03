"""Test a trained checkpoint again: `python src/eval.py ckpt_path=PATH [data.split=val] [key=value ...]`."""

import hydra
from omegaconf import DictConfig

from mlplab.cli import reported, run
from mlplab.use.evaluation import evaluate


@hydra.main(config_path="../conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with reported():
        evaluate(cfg)


if __name__ == "__main__":
    run(main)
