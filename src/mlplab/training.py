"""train(cfg): build everything from the composed config, fit, test the best checkpoint, report."""

import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mlplab.callbacks import EpochSummary
from mlplab.errors import InputError
from mlplab.module import Classifier

# Lightning 2.6 calls a pytree API that torch 2.14 deprecates: nothing a user can act on.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
# Lightning advertises its cloud services in every run's output: noise in an offline lab.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda r: not r.getMessage().startswith("💡"))


def _plain(node: Any) -> Any:
    # OmegaConf containers must not reach checkpoints: torch's weights_only loading refuses them.
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, Classifier, pl.Trainer]:
    """The datamodule, module and trainer that the config describes."""
    if cfg.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError(
            f"trainer.accelerator={cfg.trainer.accelerator}: no CUDA GPU is available here; "
            "use trainer=cpu, or the default trainer.accelerator=auto"
        )
    datamodule = instantiate(cfg.data, _convert_="all")  # plain values: they go into checkpoints
    module = Classifier(
        model=_plain(cfg.model),
        loss=_plain(cfg.loss),
        optimizer=_plain(cfg.optimizer),
        scheduler=_plain(cfg.scheduler),
        l1=cfg.regularization.l1,
        l2=cfg.regularization.l2,
    )
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c]
    progress_bar = cfg.trainer.enable_progress_bar
    if progress_bar is None:  # a live bar on a terminal, one line per epoch in logs and files
        progress_bar = sys.stdout.isatty()
    if not progress_bar:
        callbacks.append(EpochSummary())
    loggers = [instantiate(c) for c in (cfg.logger or {}).values() if c]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, enable_progress_bar=progress_bar)
    return datamodule, module, trainer


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit, test the best checkpoint on the test set, write metrics.json; return (metrics, objects)."""
    output_dir = Path(cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module, trainer = build(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams(_plain(cfg))

    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    train_time = time.perf_counter() - start
    # Per-epoch values only: a "_step" value is just the last batch's.
    metrics = {name: value.item() for name, value in trainer.callback_metrics.items() if not name.endswith("_step")}

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    tested = trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True, verbose=False)
    metrics = dict(sorted({**metrics, **tested[0]}.items()))
    metrics.update(
        epochs=trainer.current_epoch,
        train_time_s=round(train_time, 2),
        best_checkpoint=best,
        status="ok",
    )
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(summary(metrics, output_dir), flush=True)
    return metrics, {"datamodule": datamodule, "module": module, "trainer": trainer}


def summary(metrics: dict[str, Any], output_dir: Path) -> str:
    """The closing report: test results, where the run lives, how to look at it."""
    shown = os.path.relpath(output_dir) if output_dir.is_relative_to(Path.cwd()) else str(output_dir)
    tested = (
        f"best checkpoint {Path(metrics['best_checkpoint']).name}" if metrics["best_checkpoint"] else "final weights"
    )
    return "\n".join(
        [
            f"test/acc {metrics['test/acc']:.2%}  test/loss {metrics['test/loss']:.4f}  ({tested}; "
            f"val/acc_best {metrics.get('val/acc_best', float('nan')):.2%}; "
            f"{metrics['epochs']} epoch{'s' * (metrics['epochs'] != 1)} in {metrics['train_time_s']:.1f} s)",
            f"run folder:  {shown}",
            f"TensorBoard: tensorboard --logdir {shown}",
        ]
    )
