"""Search hyperparameters with Optuna: `python src/search.py [key=value ...]` (see conf/search.yaml)."""

import hydra
from omegaconf import DictConfig

from mlplab.cli import reported, run
from mlplab.experiments.search.command import search


@hydra.main(config_path="../conf", config_name="search", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with reported():  # inside the task function: Hydra adds no lines of its own to a one-line error
        search(cfg)


if __name__ == "__main__":
    run(main)
