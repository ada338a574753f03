"""Learning-rate range test: `python src/lr_find.py [key=value ...]` (see conf/lr_find.yaml and README.md)."""

import hydra
from omegaconf import DictConfig

from mlplab.cli import reported, run
from mlplab.experiments.lr_find import lr_find


@hydra.main(config_path="../conf", config_name="lr_find", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with reported():
        lr_find(cfg)


if __name__ == "__main__":
    run(main)
