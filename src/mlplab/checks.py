"""Checks of the composed config, before anything heavy starts: each names the key, the value, what is allowed."""

from collections.abc import Callable
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mlplab.checkpoints import load_checkpoint
from mlplab.errors import InputError
from mlplab.preflight import command_line, preflight


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Model values (activation, layer sizes, dropout) are checked by the network itself (mlplab.models), built by the
# preflight, and the validation size by the datamodule, which knows how many training images there are.
RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("optimizer.lr", lambda v: number(v) and v > 0, "a number > 0"),
    ("data.batch_size", lambda v: integer(v) and v >= 1, "an integer >= 1"),
    ("data.eval_batch_size", lambda v: integer(v) and v >= 1, "an integer >= 1"),
    ("data.val_size", lambda v: integer(v) and v >= 0, "an integer >= 0 (0: no validation set)"),
    ("regularization.l1", lambda v: number(v) and v >= 0, "a number >= 0"),
    ("regularization.l2", lambda v: number(v) and v >= 0, "a number >= 0"),
    ("trainer.max_epochs", lambda v: integer(v) and v >= 1, "an integer >= 1"),
    ("scheduler.interval", lambda v: v in (None, "step", "epoch"), "step or epoch"),  # None: no scheduler
    ("steps_per_execution", lambda v: integer(v) and v >= 1, "an integer >= 1"),
    # Applied by mlplab.execution, in batches, rather than by Lightning (None: not set, Lightning's default).
    ("trainer.accumulate_grad_batches", lambda v: v is None or (integer(v) and v >= 1), "an integer >= 1"),
    ("trainer.gradient_clip_val", lambda v: v is None or (number(v) and v >= 0), "a number >= 0"),
    ("trainer.gradient_clip_algorithm", lambda v: v in (None, "norm", "value"), "norm or value"),
    ("trainer.log_every_n_steps", lambda v: v is None or (integer(v) and v >= 1), "an integer >= 1 (batches)"),
    (
        "trainer.limit_train_batches",
        lambda v: v is None or (integer(v) and v >= 1) or (isinstance(v, float) and 0 < v <= 1),
        "a number of batches (an integer >= 1) or a fraction of the epoch in (0, 1]",
    ),
    (
        "trainer.val_check_interval",
        lambda v: v is None or (integer(v) and v >= 1) or v == 1.0,
        "a number of training batches (an integer >= 1), or 1.0 for each epoch's end",
    ),
    ("trainer.overfit_batches", lambda v: v is None or (integer(v) and v >= 0), "a number of batches (an integer)"),
    # Lightning replaces a seed outside NumPy's range with a random one (a warning, then irreproducible runs).
    ("seed", lambda v: integer(v) and 0 <= v < 2**32, "an integer from 0 to 4294967295"),
    ("threads", lambda v: v is None or (integer(v) and v >= 1), "null or an integer >= 1"),
]


def check_rules(cfg: DictConfig, rules: list[tuple[str, Callable[[Any], bool], str]]) -> None:
    """Raise InputError for the first value that breaks its rule: (key, test of the value, what is allowed)."""
    for key, ok, allowed in rules:
        value = OmegaConf.select(cfg, key)
        if not ok(value):
            raise InputError(f"{key}={value}: must be {allowed}")


def check_config(cfg: DictConfig) -> None:
    """Raise InputError for the first bad value of the train config."""
    check_rules(cfg, RULES)
    check_group_lists()
    if cfg.data.val_size == 0:
        check_without_validation(cfg)
    check_accelerator(cfg.trainer)
    preflight(cfg)
    if cfg.get("ckpt_path"):
        # A missing file, or one that is not a checkpoint, or one of another network: an error before training.
        check_resumable(cfg, load_checkpoint(cfg.ckpt_path))
    across_epochs = cfg.trainer.get("check_val_every_n_epoch", 1) is None
    if across_epochs and integer(cfg.trainer.get("val_check_interval")) and cfg.steps_per_execution != 1:
        # Lightning would count the executions between validations across epochs, and they differ in size there.
        raise InputError(
            "trainer.check_val_every_n_epoch=null: validating every trainer.val_check_interval batches across "
            f"epochs needs steps_per_execution=1 (it is {cfg.steps_per_execution})"
        )


def check_resumable(cfg: DictConfig, checkpoint: dict[str, Any]) -> None:
    """A checkpoint whose weights or optimizer state do not fit the composed network, loss and optimizer."""
    saved = checkpoint.get("hyper_parameters")
    if not saved:  # not one of this lab's runs: load_checkpoint's callers say what is missing
        return
    now = OmegaConf.to_container(cfg, resolve=True)
    before, after = (
        {"model": run["model"], "loss": run["loss"], "optimizer._target_": run["optimizer"]["_target_"]}
        for run in (saved, now)
    )
    if differ := differences(before, after):
        shown = ", ".join(f"{key}={old} in the checkpoint, {new} now" for key, old, new in differ)
        raise InputError(
            f"ckpt_path={cfg.ckpt_path}: the checkpoint's run trained another network, loss or optimizer ({shown}); "
            "resume with its values, or start a new run without ckpt_path"
        )


def differences(before: dict[str, Any], after: dict[str, Any], ignored: tuple[str, ...] = ()) -> list[tuple]:
    """(dotted key, value before, value after) of each value that differs between two nested configs, sorted by key;
    a key missing on one side shows as '-'."""
    old, new = flat(before), flat(after)
    keys = sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key) and key not in ignored)
    return [(key, old.get(key, "-"), new.get(key, "-")) for key in keys]


def flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config values by their dotted keys."""
    values: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            values.update(flat(value, f"{prefix}{key}."))
        else:
            values[f"{prefix}{key}"] = value
    return values


LIST_GROUPS = ("regularization",)  # config groups whose option is a list of members


def check_group_lists() -> None:
    """A member listed twice in a list group (regularization=[l1,l1]) would be applied once, silently."""
    for override in command_line():
        members = override.value() if override.key_or_group in LIST_GROUPS else None
        if isinstance(members, list):
            twice = sorted({str(m) for m in members if members.count(m) > 1})
            if twice:
                raise InputError(
                    f"{override.input_line}: {', '.join(twice)} listed more than once; list each member once"
                )


def check_without_validation(cfg: DictConfig) -> None:
    """data.val_size=0 trains on every training image, as the lesson does: nothing may then choose on validation."""
    if cfg.callbacks.get("early_stopping"):
        raise InputError(
            "data.val_size=0: regularization=early_stopping stops on val/loss, and there is no validation set; "
            "keep data.val_size >= 1, or leave early_stopping out"
        )
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise InputError(
            "data.val_size=0: a sweep picks its best configuration on validation, and there is no validation set; "
            "keep one (e.g. data.val_size=5000)"
        )


def check_accelerator(trainer: DictConfig) -> None:
    """Asking for a GPU where there is none is a config error, not a Lightning traceback."""
    if trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError(
            f"trainer.accelerator={trainer.accelerator}: no CUDA GPU is available here; "
            "use trainer=cpu, or the default trainer.accelerator=auto"
        )
