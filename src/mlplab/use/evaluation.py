"""evaluate(cfg): test a trained checkpoint again, on the test set or on its own run's validation split."""

from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mlplab.config.checks import check_accelerator
from mlplab.config.rules import without_ranges
from mlplab.data import MNISTDataModule
from mlplab.engine.runs import write_json
from mlplab.errors import InputError
from mlplab.use.trained import load_trained

SPLITS = {"test": "test", "val": "validation"}  # data.split: the images it names


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Compute `<split>/acc` and `<split>/loss` of cfg.ckpt_path, write metrics.json, print them; return them."""
    settings = OmegaConf.to_container(cfg.data, resolve=True)
    split = settings.pop("split")
    if split not in SPLITS:
        raise InputError(f"data.split={split}: choose test (the official test images) or val (the validation split)")
    module, trained_data = load_trained(cfg.ckpt_path, cfg.trusted_modules)
    # Everything else as in training, so `val` is the very split that run validated on.
    overrides = {key: value for key, value in settings.items() if value is not None}
    unknown = sorted(overrides.keys() - trained_data.keys())
    if unknown:
        raise InputError(f"data.{unknown[0]}: not a data setting; choose from {', '.join(trained_data)} or split")
    datamodule = MNISTDataModule(**{**trained_data, **overrides})

    check_accelerator(cfg.trainer)
    trainer = instantiate(without_ranges(cfg.trainer))
    run = trainer.test if split == "test" else trainer.validate
    [results] = run(module, datamodule=datamodule, verbose=False)
    # validate() also logs val/acc_best, the training run's running best: not this checkpoint's own result.
    metrics: dict[str, Any] = {key: results[key] for key in (f"{split}/acc", f"{split}/loss")}
    images = len(datamodule.splits[split][1])
    metrics.update(split=split, images=images, checkpoint=str(Path(cfg.ckpt_path).resolve()))

    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / "metrics.json", metrics)
    print(
        f"{split}/acc {metrics[f'{split}/acc']:.2%}  {split}/loss {metrics[f'{split}/loss']:.4f}  "
        f"({Path(cfg.ckpt_path).name} on {images:,} {SPLITS[split]} images)\n"
        f"run folder:  {output_dir}",
        flush=True,
    )
    return metrics
