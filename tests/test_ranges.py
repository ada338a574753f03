"""The ranges, as each option declares them (its config's `_ranges_` beside its keys, or its class's RULES) and as the
config declares its own (mlplab.config.checks.CONFIG_RULES): every value of every option has one, its default passes,
and a value outside the range is refused before anything is built, in one line naming the key, the value and what is
allowed."""

import copy
import inspect
import re
from functools import cache
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from mlplab.config.checks import check_config, check_rules, rules_for
from mlplab.config.rules import RANGES, Rule
from mlplab.errors import InputError

from conftest import CONF_DIR, SYNTHETIC, compose_train, data_overrides, run_entry

# The parts of the config whose values the table covers. Not covered: callbacks and logger (this lab's wiring of
# Lightning, apart from early stopping, a regularization), paths and task_name (set by each entry point), and
# search.*'s names, metric, storage and space (checked by mlplab.experiments.search).
SCOPE = (
    "seed", "threads", "steps_per_execution", "ckpt_path", "optimizer", "scheduler", "loss",
    "model", "data", "trainer", "regularization", "callbacks.early_stopping", "sweep", "lr_find", "search.n_trials",
    "search.direction", "search.heartbeat_interval", "search.grace_period", "search.retries", "search.worker",
)  # fmt: skip
NOT_VALUES = ("_target_", "_partial_")  # what Hydra instantiates, not a value of it
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")
# Every option of every group (search_*: written by searches; debug/default: the presets' shared part), lr_find and
# search.
OPTIONS = [
    f"{g}={p.stem}"
    for g in GROUPS
    for p in sorted((CONF_DIR / g).glob("*.yaml"))
    if (g, p.stem) != ("debug", "default") and not p.stem.startswith("search_")
] + ["lr_find", "search"]


@cache
def composed(option: str) -> DictConfig:
    """The train config with this option (or the lr_find or search config); the run folder is only named, never
    written."""
    if option in ("lr_find", "search"):
        return compose_train([], Path("outputs/test_ranges"), config_name=option)
    return compose_train([option], Path("outputs/test_ranges"))


def leaves(node: DictConfig, prefix: str = "") -> list[str]:
    """The dotted keys of the values in node: lists and nulls are values, mappings are walked into."""
    keys = []
    for key, value in node.items_ex(resolve=False):
        if isinstance(value, DictConfig) and len(value):
            keys += leaves(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def in_scope(key: str) -> bool:
    parts = key.split(".")
    return (
        any(key == part or key.startswith(f"{part}.") for part in SCOPE)
        and parts[-1] not in NOT_VALUES
        and RANGES not in parts  # an option's ranges themselves
    )


@pytest.mark.parametrize("option", OPTIONS)
def test_every_value_of_every_option_has_a_range_that_its_default_passes(option):
    cfg = composed(option)
    ranged = {rule.key for rule in rules_for(cfg)}
    missing = [key for key in leaves(cfg) if in_scope(key) and key not in ranged]
    assert not missing, f"{option}: give {', '.join(missing)} a range (its config's _ranges_, or its class's RULES)"
    check_rules(cfg)


def has(cfg: DictConfig, key: str) -> bool:
    return OmegaConf.select(cfg, key, default=has) is not has


def option_rules() -> list[tuple[str, Rule]]:
    """(the first option whose config has it, the rule) for every distinct rule of every option: a rule of an optional
    argument (optimizer.nesterov) is checked where its option is chosen, though its config leaves it out."""
    seen: dict[tuple[str, str, str], tuple[str, Rule]] = {}
    for option in OPTIONS:
        for rule in rules_for(composed(option)):
            parent = rule.key.rpartition(".")[0]
            if has(composed(option), rule.key) or not parent or has(composed(option), parent):
                seen.setdefault((rule.key, rule.allowed, repr(rule.refused)), (option, rule))
    return list(seen.values())


@pytest.mark.parametrize(("option", "rule"), option_rules(), ids=lambda x: x if isinstance(x, str) else x.key)
def test_a_value_outside_its_range_is_refused_in_one_line_naming_key_value_and_range(option, rule):
    cfg = copy.deepcopy(composed(option))
    with open_dict(cfg):
        OmegaConf.update(cfg, rule.key, rule.refused, merge=False, force_add=True)
    with pytest.raises(InputError) as refused:
        check_rules(cfg)
    assert str(refused.value) == f"{rule.key}={rule.refused}: must be {rule.allowed}"
    assert "\n" not in str(refused.value)


def ranged_options(cfg: DictConfig, prefix: str = "") -> list[tuple[str, DictConfig]]:
    found = []
    for key, value in cfg.items_ex(resolve=False):
        if isinstance(value, DictConfig) and key not in ("hydra", RANGES):
            if RANGES in value:
                found.append((f"{prefix}{key}", value))
            found += ranged_options(value, f"{prefix}{key}.")
    return found


@pytest.mark.parametrize("option", OPTIONS)
def test_an_options_ranges_name_arguments_of_its_class(option):
    """`_ranges_` beside an option's keys: each names an argument that the class its `_target_` names takes."""
    for key, node in ranged_options(composed(option)):
        parameters = inspect.signature(get_class(node._target_)).parameters
        unknown = [name for name in node[RANGES] if name not in parameters]
        assert not unknown, f"{option}: {key}._ranges_ names {unknown}, not arguments of {node._target_}"


def test_two_options_may_give_one_key_different_ranges():
    """RMSprop's alpha is a smoothing in [0, 1); an optimizer without one takes no rule of that name from it."""
    rmsprop = {rule.key: rule for rule in rules_for(composed("optimizer=rmsprop"))}
    adam = {rule.key: rule for rule in rules_for(composed("optimizer=adam"))}
    assert rmsprop["optimizer.alpha"].allowed == "a number in [0, 1)" and "optimizer.alpha" not in adam
    cfg = copy.deepcopy(composed("optimizer=adam"))
    with open_dict(cfg):
        cfg.optimizer.alpha = 2  # not Adam's argument: refused when it is built, not by RMSprop's range
    check_rules(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [  # a value that is not of its kind is reported by the key it came from, as the command line parsed it
        (
            ["model.hidden_dims=[512,abc]"],
            "model.hidden_dims=[512, 'abc']: must be a list of one or more integers >= 1",
        ),
        (["data.data_dir=[1,2]"], "data.data_dir=[1, 2]: must be null or a path"),
        (
            ["optimizer=adam", "optimizer.betas=[0.9,x]"],
            "optimizer.betas=[0.9, 'x']: must be a list of 2 numbers in [0, 1)",
        ),
    ],
)
def test_a_value_that_cannot_be_converted_is_named_by_its_key(overrides, message):
    with pytest.raises(InputError, match=f"^{re.escape(message)}$"):
        check_config(compose_train(overrides, Path("outputs/test_ranges")))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["scheduler=step", "scheduler.scheduler.gamma=-1"],
            "error: scheduler.scheduler.gamma=-1: must be a number in (0, 1]",
        ),
        (["optimizer=rmsprop", "optimizer.alpha=2"], "error: optimizer.alpha=2: must be a number in [0, 1)"),
    ],
)
def test_the_command_line_refuses_a_value_torch_would_train_with(synthetic_mnist, tmp_path, args, error):
    run_dir = tmp_path / "run"
    arguments = [*SYNTHETIC, *data_overrides(synthetic_mnist), *args, f"hydra.run.dir={run_dir}"]
    status, _, err = run_entry("src/train.py", arguments)
    assert status == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == error
    assert not (run_dir / "checkpoints").exists()  # refused before training
