"""Draw a digit and watch a trained model read it: `python src/draw.py ckpt_path=PATH [port=8000]` (see README.md)."""

import hydra
from omegaconf import DictConfig

from mlplab.cli import reported, run
from mlplab.use.pad import serve


@hydra.main(config_path="../conf", config_name="draw", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with reported():
        serve(cfg)


if __name__ == "__main__":
    run(main)
