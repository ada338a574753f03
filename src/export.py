"""Export a trained checkpoint: `python src/export.py ckpt_path=PATH [format=onnx|torchscript|torch_export]`."""

import hydra
from omegaconf import DictConfig

from mlplab.cli import reported, run
from mlplab.use.export import export_model


@hydra.main(config_path="../conf", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with reported():
        export_model(cfg)


if __name__ == "__main__":
    run(main)
