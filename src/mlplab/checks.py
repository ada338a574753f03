"""Checks of the composed config, before anything heavy starts: each names the key, the value, what is allowed."""

from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from mlplab.checkpoints import load_checkpoint
from mlplab.errors import InputError


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Model values (activation, hidden sizes, dropout) are checked by mlplab.model.MLP itself, and the
# validation size by the datamodule, which knows how many training images there are.
RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("optimizer.lr", lambda v: _number(v) and v > 0, "a number > 0"),
    ("data.batch_size", lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    ("data.eval_batch_size", lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    ("data.val_size", lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    ("data.chunk", lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    ("regularization.l1", lambda v: _number(v) and v >= 0, "a number >= 0"),
    ("regularization.l2", lambda v: _number(v) and v >= 0, "a number >= 0"),
    ("trainer.max_epochs", lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    ("scheduler.interval", lambda v: v in (None, "step", "epoch"), "step or epoch"),  # None: no scheduler
    # The module steps the optimizer itself (once per batch of a chunk), where Lightning cannot clip or accumulate.
    ("trainer.gradient_clip_val", lambda v: v is None, "unset: Lightning cannot clip the module's own steps"),
    ("trainer.accumulate_grad_batches", lambda v: v in (None, 1), "1: for larger steps raise data.batch_size"),
    ("seed", _integer, "an integer"),
    ("threads", lambda v: v is None or (_integer(v) and v >= 1), "null or an integer >= 1"),
]


def check_config(cfg: DictConfig) -> None:
    """Raise InputError for the first bad value of the train config."""
    for key, ok, allowed in RULES:
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            raise InputError(f"{key}={value}: must be {allowed}")
    check_accelerator(cfg.trainer)
    if cfg.get("ckpt_path"):
        check_resume(cfg.data.chunk, load_checkpoint(cfg.ckpt_path), cfg.ckpt_path)


def check_resume(chunk: int, checkpoint: dict[str, Any], ckpt_path: str) -> None:
    """A run resumed mid-epoch finds its place by counting the chunks it trained: the chunk size must then be the
    checkpoint's. From a checkpoint written at an epoch's end (last.ckpt, the best one), the next epoch starts
    afresh. (A checkpoint from the epoch's last chunk or from a validation inside the loop is not one of those.)"""
    epochs = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("total", {})
    epoch_done = epochs.get("started") is not None and epochs.get("processed") == epochs.get("started")
    saved = checkpoint.get("datamodule_hyper_parameters", {}).get("chunk")
    if saved != chunk and not epoch_done:
        raise InputError(
            f"data.chunk={chunk}: {ckpt_path} was trained with data.chunk={saved}; resume with the same chunk size"
        )


def check_accelerator(trainer: DictConfig) -> None:
    """Asking for a GPU where there is none is a config error, not a Lightning traceback."""
    if trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError(
            f"trainer.accelerator={trainer.accelerator}: no CUDA GPU is available here; "
            "use trainer=cpu, or the default trainer.accelerator=auto"
        )
