"""Checks of the composed config, before anything heavy starts: each names the key, the value, what is allowed."""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.connector import _PRECISION_INPUT
from lightning.pytorch.strategies import StrategyRegistry
from omegaconf import DictConfig, ListConfig, OmegaConf

from mlplab.augment import RandomDistortion
from mlplab.config.overrides import command_line
from mlplab.config.preflight import preflight
from mlplab.engine.checkpoints import load_checkpoint
from mlplab.errors import InputError
from mlplab.models.network import ACTIVATIONS
from mlplab.models.rnn import CELLS


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def within(interval: str, kind: str = "number") -> tuple[Callable[[Any], bool], str]:
    """(test, allowed text) of a number (or an integer) in an interval written as in mathematics: '[0, 1)'."""
    low, high = (float(end.strip(" [()]")) for end in interval.split(","))
    closed_low, closed_high = interval[0] == "[", interval[-1] == "]"

    def ok(value: Any) -> bool:
        if not (integer(value) if kind == "integer" else number(value)):
            return False
        return (low <= value if closed_low else low < value) and (value <= high if closed_high else value < high)

    article = "an" if kind == "integer" else "a"
    if high == math.inf:
        return ok, f"{article} {kind} {'>=' if closed_low else '>'} {low:g}"
    return ok, f"{article} {kind} in {interval}"


def one_of(*choices: Any) -> tuple[Callable[[Any], bool], str]:
    """(test, allowed text) of a value among choices (None: null)."""
    names = list(dict.fromkeys("null" if choice is None else str(choice) for choice in choices))  # 32 and "32": once
    allowed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return lambda value: any(value == choice and type(value) is type(choice) for choice in choices), allowed


def optional(rule: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    """The rule, or null (the library's default, or 'none' where the config says so)."""
    ok, allowed = rule
    return lambda value: value is None or ok(value), f"null or {allowed}"


def list_of(rule: tuple[Callable[[Any], bool], str], length: int | None = None) -> tuple[Callable[[Any], bool], str]:
    """A non-empty list (of `length` items, when given) whose every item passes the rule."""
    ok, allowed = rule

    def ok_list(value: Any) -> bool:
        if not isinstance(value, list):
            return False
        return (len(value) == length if length else len(value) >= 1) and all(map(ok, value))

    kind, condition = allowed.split(" ", 2)[1:]  # "an integer >= 1": a list of integers >= 1
    return ok_list, f"a list of {length or 'one or more'} {kind}s {condition}"


FLAG = (lambda value: isinstance(value, bool), "true or false")
PATH = (lambda value: isinstance(value, str) and value != "", "a path")
SEED = (lambda value: integer(value) and 0 <= value < 2**32, "an integer from 0 to 4294967295")
BATCHES = (  # Lightning's counts of batches: a number of them, or a fraction of the epoch's
    lambda value: (integer(value) and value >= 1) or (isinstance(value, float) and 0 < value <= 1),
    "a number of batches (an integer >= 1) or a fraction of the epoch in (0, 1]",
)
# Lightning's precisions, e.g. 32-true, 16-mixed, bf16-mixed: its type hint of Trainer(precision=), the one list.
PRECISIONS = [value for options in get_args(_PRECISION_INPUT) for value in get_args(options)]
DEVICE_LIST = list_of(within("[0, inf)", "integer"))
SKIP_START = 10  # lr_find: the running mean's first values lean on too few steps to say where the loss falls fastest
RERUNNABLE = ("failed", "diverged")  # statuses that sweep.rerun may name


@dataclass(frozen=True)
class Rule:
    key: str  # a dotted config key, checked where the composed config has it (an option's own keys)
    ok: Callable[[Any], bool]
    allowed: str  # completes "must be ..."
    refused: Any  # a value outside the range: an example for the reader, which the tests check is refused


# The range of every value the train config (and lr_find's) takes, checked before anything is built: what the
# library documents, or what makes sense for this lab where that is narrower. A new option adds its keys' rows
# (tests/test_ranges.py fails, naming the key, until it does); _target_ and _partial_ are not values and have none.
# search.*'s names, metric, storage and space are checked by mlplab.experiments.search. Cross-key checks (val_size
# against the training set, a layer count against the image's side, lr_find.max_lr > min_lr) stay with the code that
# knows both values.
RULES: list[Rule] = [
    # Top-level values of train.yaml.
    # Lightning replaces a seed outside NumPy's range with a random one (a warning, then irreproducible runs).
    Rule("seed", *SEED, refused=-1),
    Rule("threads", *optional(within("[1, inf)", "integer")), refused=0),
    Rule("steps_per_execution", *within("[1, inf)", "integer"), refused=0),
    Rule("ckpt_path", *optional(PATH), refused=5),
    # optimizer: torch.optim checks only signs (momentum >= 0, alpha >= 0). A momentum of 1 or more never forgets a
    # gradient, so the velocity grows without bound; RMSprop's alpha of 1 keeps its mean of squares at 0 (steps of
    # lr * grad / eps), one above 1 drives it negative (alpha=2 trains to NaN).
    Rule("optimizer.lr", *within("(0, inf)"), refused=0),
    Rule("optimizer.momentum", *within("[0, 1)"), refused=1.0),
    Rule("optimizer.dampening", *within("[0, 1]"), refused=1.5),  # SGD's; 1 ignores the new gradient
    Rule("optimizer.nesterov", *FLAG, refused="yes"),
    Rule("optimizer.alpha", *within("[0, 1)"), refused=2),
    Rule("optimizer.betas", *list_of(within("[0, 1)"), length=2), refused=[0.9, 1.0]),
    Rule("optimizer.eps", *within("(0, inf)"), refused=0),  # a denominator's floor
    Rule("optimizer.weight_decay", *within("[0, inf)"), refused=-0.01),
    Rule("optimizer.momentum_decay", *within("[0, inf)"), refused=-0.004),
    Rule("optimizer.amsgrad", *FLAG, refused="yes"),
    # scheduler: null (none.yaml) is a constant learning rate.
    Rule("scheduler", lambda value: value is None or isinstance(value, dict), "null or a scheduler= option", 0.1),
    Rule("scheduler.interval", *one_of("step", "epoch"), refused="steps"),
    # StepLR's gamma is a decay: torch takes any number, and a negative one flips the rate's sign every step_size
    # epochs (gradient ascent), one above 1 grows it until training diverges.
    Rule("scheduler.scheduler.gamma", *within("(0, 1]"), refused=-1),
    Rule("scheduler.scheduler.step_size", *within("[1, inf)", "integer"), refused=0),
    Rule("scheduler.scheduler.T_max", *within("[1, inf)", "integer"), refused=0),  # CosineAnnealingLR's epochs
    Rule("scheduler.scheduler.eta_min", *within("[0, inf)"), refused=-1e-3),
    # OneCycleLR: starts at max_lr / div_factor, peaks at max_lr after pct_start of the run, ends at the start's
    # rate / final_div_factor; total_steps null is the run's own count.
    Rule("scheduler.scheduler.max_lr", *within("(0, inf)"), refused=0),
    Rule("scheduler.scheduler.total_steps", *optional(within("[1, inf)", "integer")), refused=0),
    Rule("scheduler.scheduler.pct_start", *within("(0, 1)"), refused=1.0),
    Rule("scheduler.scheduler.div_factor", *within("(0, inf)"), refused=0),
    Rule("scheduler.scheduler.final_div_factor", *within("(0, inf)"), refused=0),
    Rule("scheduler.scheduler.anneal_strategy", *one_of("cos", "linear"), refused="cosine"),
    Rule("scheduler.scheduler.cycle_momentum", *FLAG, refused="no"),
    # loss
    Rule("loss.label_smoothing", *within("[0, 1]"), refused=1.5),
    # model: the networks check their sizes, dropout, activation and cell too, for code that builds them without a
    # config (mlplab.models).
    Rule(
        "model.input_dim",
        lambda value: integer(value) and value == 28 * 28,
        "784, the 28 x 28 pixels of an image",
        refused=28,
    ),
    Rule("model.num_classes", lambda value: integer(value) and value == 10, "10, the digits 0 to 9", refused=9),
    Rule("model.hidden_dims", *list_of(within("[1, inf)", "integer")), refused=[512, "abc"]),
    Rule("model.channels", *list_of(within("[1, inf)", "integer")), refused=[6, 0]),
    Rule(
        "model.kernel_size",
        lambda value: integer(value) and value >= 1 and value % 2 == 1,
        "an odd integer >= 1 (3, 5, 7): the padding keeps the side only for an odd one",
        refused=4,
    ),
    Rule("model.activation", *one_of(*ACTIVATIONS), refused="swish"),
    Rule("model.cell", *one_of(*CELLS), refused="rnn"),
    Rule("model.dropout", *within("[0, 1)"), refused=1.0),  # 1 drops everything
    Rule("model.batch_norm", *FLAG, refused="yes"),
    # data
    Rule("data.data_dir", *optional(PATH), refused=[1, 2]),
    Rule("data.batch_size", *within("[1, inf)", "integer"), refused=0),
    Rule("data.eval_batch_size", *within("[1, inf)", "integer"), refused=0),
    # Its upper bound, the training set's size, is checked by the datamodule, which knows that size.
    Rule("data.val_size", within("[0, inf)", "integer")[0], "an integer >= 0 (0: no validation set)", refused=-1),
    Rule("data.split_seed", *SEED, refused=-1),
    Rule("data.seed", *SEED, refused=-1),
    Rule(
        "data.md5",
        lambda value: value is None or (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())),
        "null or a mapping of IDX file names to md5 sums",
        refused="abc",
    ),
    Rule(
        "data.augment",
        lambda value: value is None or (isinstance(value, dict) and set(value) <= set(RandomDistortion.KEYS)),
        f"null or a mapping of any of {', '.join(RandomDistortion.KEYS)}",
        refused={"flip": 1},
    ),
    Rule("data.augment.rotate", *within("[0, 180]"), refused=-10),  # degrees either way
    Rule("data.augment.scale", *within("[0, 1)"), refused=1.0),  # a scale within 1 +- scale stays positive
    Rule("data.augment.shift", *within("[0, 28)"), refused=-2),  # pixels
    Rule("data.augment.elastic", *within("[0, inf)"), refused=-1.5),
    # trainer: Lightning's arguments. Counts of batches are applied by mlplab.engine.execution (steps_per_execution).
    Rule("trainer.accelerator", *one_of("auto", "cpu", "gpu", "cuda", "mps"), refused="tpu"),
    Rule(
        "trainer.devices",
        lambda value: value in ("auto", -1) or (integer(value) and value >= 1) or DEVICE_LIST[0](value),
        "auto, -1 (every device), a count >= 1 or a list of device indices",
        refused=0,
    ),
    Rule("trainer.num_nodes", *within("[1, inf)", "integer"), refused=0),
    Rule(
        "trainer.strategy",
        lambda value: value == "auto" or value in StrategyRegistry,
        "auto or a strategy Lightning registers (ddp, ddp_spawn, fsdp, deepspeed, ...)",
        refused="dpp",
    ),
    Rule("trainer.sync_batchnorm", *FLAG, refused="yes"),
    Rule("trainer.precision", *one_of(*PRECISIONS), refused="bad"),
    Rule("trainer.default_root_dir", *PATH, refused=1),
    Rule("trainer.max_epochs", *within("[1, inf)", "integer"), refused=0),
    Rule("trainer.log_every_n_steps", *optional(within("[1, inf)", "integer")), refused=0),
    Rule("trainer.accumulate_grad_batches", *within("[1, inf)", "integer"), refused=0),
    Rule("trainer.gradient_clip_val", *optional(within("[0, inf)")), refused=-1.0),
    Rule("trainer.gradient_clip_algorithm", *one_of(None, "norm", "value"), refused="l2"),
    Rule("trainer.enable_progress_bar", lambda value: value in (None, True, False), "null, true or false", "yes"),
    Rule("trainer.limit_train_batches", *optional(BATCHES), refused=0),
    Rule("trainer.limit_val_batches", *optional(BATCHES), refused=0),
    Rule("trainer.limit_test_batches", *optional(BATCHES), refused=0),
    Rule(
        "trainer.val_check_interval",
        lambda value: value is None or (integer(value) and value >= 1) or value == 1.0,
        "a number of training batches (an integer >= 1), or 1.0 for each epoch's end",
        refused=0.5,
    ),
    Rule("trainer.check_val_every_n_epoch", *optional(within("[1, inf)", "integer")), refused=0),
    Rule("trainer.overfit_batches", within("[0, inf)", "integer")[0], "a number of batches (an integer >= 0)", 0.1),
    Rule(
        "trainer.fast_dev_run",
        lambda value: isinstance(value, bool) or (integer(value) and value >= 1),
        "true, false or a number of batches (an integer >= 1)",
        refused=-1,
    ),
    Rule("trainer.profiler.dirpath", *PATH, refused=1),
    Rule("trainer.profiler.filename", *PATH, refused=1),
    # regularization: l1 and l2 here; dropout and batch_norm are model keys; early_stopping is a callback.
    Rule("regularization.l1", *within("[0, inf)"), refused=-1e-5),
    Rule("regularization.l2", *within("[0, inf)"), refused=-1),
    Rule("callbacks.early_stopping.monitor", *one_of("val/loss", "val/acc", "val/acc_best"), refused="train/loss"),
    Rule("callbacks.early_stopping.mode", *one_of("min", "max"), refused="lowest"),
    Rule("callbacks.early_stopping.patience", *within("[0, inf)", "integer"), refused=-1),  # epochs
    Rule("callbacks.early_stopping.min_delta", *within("[0, inf)"), refused=-0.1),
    # sweep: the presets' settings (the sweeper's own keys are under hydra.sweeper).
    Rule("sweep.seeds", *within("[1, inf)", "integer"), refused=0),
    Rule(
        "sweep.rerun",
        lambda value: isinstance(value, list) and set(value) <= set(RERUNNABLE),
        f"a list of statuses among {', '.join(RERUNNABLE)}",
        refused=["ok"],
    ),
    Rule("sweep.tune.grid", *list_of(within("(0, inf)")), refused=[0.1, -1]),  # learning rates
    Rule("sweep.tune.epochs", *within("[1, inf)", "integer"), refused=0),
    # search (conf/search.yaml): its numbers; the names, the metric, the storage and the space are checked by
    # mlplab.experiments.search, which knows what they name.
    Rule("search.n_trials", *within("[1, inf)", "integer"), refused=0),
    Rule("search.direction", *one_of("maximize", "minimize"), refused="up"),
    Rule("search.heartbeat_interval", *within("[1, inf)", "integer"), refused=0),  # Optuna's: whole seconds
    Rule("search.grace_period", *within("[1, inf)", "integer"), refused=0),
    Rule("search.retries", *within("[0, inf)", "integer"), refused=-1),
    Rule("search.worker", *within("[0, inf)", "integer"), refused=-1),
    # lr_find (conf/lr_find.yaml): max_lr > min_lr is checked by mlplab.experiments.lr_find.
    Rule("lr_find.min_lr", *within("(0, inf)"), refused=0),
    Rule("lr_find.max_lr", *within("(0, inf)"), refused=-1),
    Rule("lr_find.steps", *within(f"[{2 * SKIP_START}, inf)", "integer"), refused=5),  # steps after SKIP_START
    Rule("lr_find.smoothing", *within("[0, 1)"), refused=1),
    Rule("lr_find.divergence", *within("(1, inf)"), refused=1),
]
_ABSENT = object()


def check_rules(cfg: DictConfig) -> None:
    """Raise InputError for the first value present in cfg that breaks its rule in RULES."""
    for rule in RULES:
        value = OmegaConf.select(cfg, rule.key, default=_ABSENT)
        if value is _ABSENT:
            continue
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if not rule.ok(value):
            raise InputError(f"{rule.key}={value}: must be {rule.allowed}")


def check_config(cfg: DictConfig) -> None:
    """Raise InputError for the first bad value of the train config."""
    check_rules(cfg)
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
