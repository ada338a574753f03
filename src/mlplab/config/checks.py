"""Checks of the composed config, before anything heavy starts: each names the key, the value, what is allowed."""

import codecs
import sys
from dataclasses import replace
from typing import Any, get_args

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class
from lightning.fabric.connector import _PRECISION_INPUT
from lightning.pytorch.strategies import StrategyRegistry
from omegaconf import DictConfig, ListConfig, OmegaConf

from mlplab.config.diff import differences
from mlplab.config.overrides import command_line
from mlplab.config.preflight import preflight
from mlplab.config.rules import (
    BATCHES,
    FLAG,
    PATH,
    RANGES,
    SEED,
    Rule,
    integer,
    list_of,
    one_of,
    optional,
    ranges,
    within,
    without_ranges,
)
from mlplab.errors import InputError

# Lightning's precisions, e.g. 32-true, 16-mixed, bf16-mixed: its type hint of Trainer(precision=), the one list.
PRECISIONS = [value for options in get_args(_PRECISION_INPUT) for value in get_args(options)]
DEVICE_LIST = list_of(within("[0, inf)", "integer"))
SKIP_START = 10  # lr_find: the running mean's first values lean on too few steps to say where the loss falls fastest
RERUNNABLE = ("failed", "diverged")  # statuses that sweep.rerun may name


# The ranges of the values that are the config's own (not an option's arguments), checked before anything is built:
# what the library documents, or what makes sense for this lab where that is narrower. Each option's arguments have
# their ranges beside the option: its class's RULES (the lab's networks, data module and penalties), or, for a class
# of torch or Lightning, the `_ranges_` of its config. tests/test_ranges.py composes every option of every group and
# fails, naming the key, for a value that no rule covers. Cross-key checks (val_size against the training set, a layer
# count against the image's side, lr_find.max_lr > min_lr) stay with the code that knows both values.
CONFIG_RULES: list[Rule] = [
    # Top-level values of train.yaml.
    # Lightning replaces a seed outside NumPy's range with a random one (a warning, then irreproducible runs).
    Rule("seed", *SEED, refused=-1),
    Rule("threads", *optional(within("[1, inf)", "integer")), refused=0),
    Rule("verbose", *FLAG, refused="yes"),
    Rule("steps_per_execution", *within("[1, inf)", "integer"), refused=0),
    Rule("ckpt_path", *optional(PATH), refused=5),
    # scheduler: null (none.yaml) is a constant learning rate; `interval` is Lightning's, beside the scheduler.
    Rule("scheduler", lambda value: value is None or isinstance(value, dict), "null or a scheduler= option", 0.1),
    Rule("scheduler.interval", *one_of("step", "epoch"), refused="steps"),
    # sweep: the presets' settings (the sweeper's own keys are under hydra.sweeper).
    Rule(
        "sweep.seeds",
        lambda value: value == "auto" or (integer(value) and value >= 1),
        "an integer of at least 1, or auto",
        refused=0,
    ),
    Rule("sweep.min_seeds", *within("[2, inf)", "integer"), refused=1),  # a paired test needs two seeds
    Rule("sweep.max_seeds", *within("[2, 100]", "integer"), refused=101),  # the design draws 1e6 paths of them
    Rule(
        "sweep.rerun",
        lambda value: isinstance(value, list) and set(value) <= set(RERUNNABLE),
        f"a list of statuses among {', '.join(RERUNNABLE)}",
        refused=["ok"],
    ),
    Rule("sweep.add", *FLAG, refused="yes"),
    Rule("sweep.tune.grid", *list_of(within("(0, inf)")), refused=[0.1, -1]),  # learning rates
    Rule("sweep.tune.epochs", *within("[1, inf)", "integer"), refused=0),
    # search (conf/search.yaml): its numbers; the names, the metric, the storage and the space are checked by
    # mlplab.experiments.search, which knows what they name.
    Rule("search.n_trials", *within("[1, inf)", "integer"), refused=0),
    Rule("search.direction", *one_of("maximize", "minimize"), refused="up"),
    Rule("search.heartbeat_interval", *within("[1, inf)", "integer"), refused=0),  # Optuna's: whole seconds
    Rule("search.grace_period", *within("[1, inf)", "integer"), refused=0),
    Rule("search.retries", *within("[0, inf)", "integer"), refused=-1),
    Rule("search.reconnect_for", *within("[0, inf)"), refused=-1),
    Rule("search.confirm.top_k", *within("[0, inf)", "integer"), refused=-1),
    Rule("search.confirm.seeds", *within("[2, inf)", "integer"), refused=1),  # one seed would confirm nothing
    Rule("search.worker", *within("[0, inf)", "integer"), refused=-1),
    # lr_find (conf/lr_find.yaml): max_lr > min_lr is checked by mlplab.experiments.lr_find.
    Rule("lr_find.min_lr", *within("(0, inf)"), refused=0),
    Rule("lr_find.max_lr", *within("(0, inf)"), refused=-1),
    Rule("lr_find.steps", *within(f"[{2 * SKIP_START}, inf)", "integer"), refused=5),  # steps after SKIP_START
    Rule("lr_find.smoothing", *within("[0, 1)"), refused=1),
    Rule("lr_find.divergence", *within("(1, inf)"), refused=1),
]

# Ranges that the `_ranges_` of Lightning's options name, where a range in words cannot say it: what Lightning
# registers or counts in its own way.
NAMED: dict[str, Rule] = {
    "devices": Rule(
        "devices",
        lambda value: value in ("auto", -1) or (integer(value) and value >= 1) or DEVICE_LIST[0](value),
        "auto, -1 (every device), a count >= 1 or a list of device indices",
        refused=0,
    ),
    "strategy": Rule(
        "strategy",
        lambda value: value == "auto" or value in StrategyRegistry,
        "auto or a strategy Lightning registers (ddp, ddp_spawn, fsdp, deepspeed, ...)",
        refused="dpp",
    ),
    "precision": Rule("precision", *one_of(*PRECISIONS), refused="bad"),
    "batches": Rule("batches", *BATCHES, refused=0),  # a number of batches, or a fraction of the epoch's
    "val_check_interval": Rule(
        "val_check_interval",
        lambda value: value is None or (integer(value) and value >= 1) or value == 1.0,
        "a number of training batches (an integer >= 1), or 1.0 for each epoch's end",
        refused=0.5,
    ),
    "overfit_batches": Rule(
        "overfit_batches", within("[0, inf)", "integer")[0], "a number of batches (an integer >= 0)", refused=0.1
    ),
    "fast_dev_run": Rule(
        "fast_dev_run",
        lambda value: isinstance(value, bool) or (integer(value) and value >= 1),
        "true, false or a number of batches (an integer >= 1)",
        refused=-1,
    ),
    "validation metric": Rule("monitor", *one_of("val/loss", "val/acc", "val/acc_best"), refused="train/loss"),
}
_ABSENT = object()


def option_rules(node: DictConfig, prefix: str) -> list[Rule]:
    """The ranges of an option's arguments, by their dotted keys under `prefix`: its `_ranges_`, written beside its
    keys (an option of a library's class), or the RULES of the lab's class its `_target_` names."""
    if RANGES in node:
        return ranges(node, prefix, NAMED)
    try:
        declared = getattr(get_class(node._target_), "RULES", ())
    except Exception:  # a target that does not import: instantiating it reports that, naming it
        return []
    return [replace(rule, key=f"{prefix}{rule.key}") for rule in declared]


def rules_for(cfg: DictConfig) -> list[Rule]:
    """Every rule of this config, by dotted key: the config's own, then those of each option it holds (every node
    with a `_target_`), so that two options may give one key name different ranges."""
    rules = list(CONFIG_RULES)
    nodes = [("", cfg)]
    while nodes:
        prefix, node = nodes.pop(0)
        for key, value in node.items_ex(resolve=False):
            if isinstance(value, DictConfig) and key not in ("hydra", RANGES):
                if "_target_" in value:
                    rules += option_rules(value, f"{prefix}{key}.")
                nodes.append((f"{prefix}{key}.", value))
    return rules


def check_rules(cfg: DictConfig) -> None:
    """Raise InputError for the first value present in cfg that breaks its rule."""
    for rule in rules_for(cfg):
        value = OmegaConf.select(cfg, rule.key, default=_ABSENT)
        if value is _ABSENT:
            continue
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        rule.check(value)


def check_config(cfg: DictConfig, checkpoint: dict[str, Any] | None = None) -> None:
    """Raise InputError for the first bad value of the train config; `checkpoint`: the one ckpt_path names, loaded."""
    check_rules(cfg)
    check_group_lists()
    if cfg.data.val_size == 0:
        check_without_validation(cfg)
    check_accelerator(cfg.trainer)
    check_folder_name(cfg)
    preflight(cfg)
    if checkpoint is not None:  # one of another network: an error before training
        check_resumable(cfg, checkpoint)
    across_epochs = cfg.trainer.get("check_val_every_n_epoch", 1) is None
    if across_epochs and integer(cfg.trainer.get("val_check_interval")) and cfg.steps_per_execution != 1:
        # Lightning would count the executions between validations across epochs, and they differ in size there.
        raise InputError(
            "trainer.check_val_every_n_epoch=null: validating every trainer.val_check_interval batches across "
            f"epochs needs steps_per_execution=1 (it is {cfg.steps_per_execution})"
        )


def check_folder_name(cfg: DictConfig) -> None:
    """TensorBoard names its files in UTF-8 whatever the system's locale: on Linux under another one (zh_CN.GB18030)
    it cannot find a run folder whose name is not ASCII, and fails mid-run. Said before anything is written."""
    folder, encoding = str(cfg.paths.output_dir), sys.getfilesystemencoding()
    tensorboard = any("TensorBoardLogger" in str(c.get("_target_")) for c in (cfg.logger or {}).values() if c)
    if tensorboard and not folder.isascii() and codecs.lookup(encoding).name != "utf-8":
        raise InputError(
            f"{folder}: TensorBoard (logger=tensorboard) names its files in UTF-8, and this system names them in "
            f"{encoding} (its locale): run Python in UTF-8 mode (set PYTHONUTF8=1, or python -X utf8), choose a "
            "folder whose name is ASCII, or logger=csv"
        )


def check_resumable(cfg: DictConfig, checkpoint: dict[str, Any]) -> None:
    """A checkpoint whose weights or optimizer state do not fit the composed network, loss and optimizer."""
    saved = checkpoint.get("hyper_parameters")
    if not saved:  # not one of this lab's runs: load_checkpoint's callers say what is missing
        return
    now = without_ranges(cfg)
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
    if "search" in cfg:  # src/search.py's config
        raise InputError(
            f"data.val_size=0: the search picks on {cfg.search.metric}, and there is no validation set; keep one"
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
