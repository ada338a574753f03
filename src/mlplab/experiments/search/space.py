"""What a search draws from: search.space as Optuna distributions, each trial's values as overrides, and the
checks of the space and the config before the first trial."""

import re
from typing import Any

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import Trial

from mlplab.cli import user_error
from mlplab.config.checks import check_config
from mlplab.config.overrides import command_line, overridden
from mlplab.errors import InputError, one_line

# Per distribution type: the keys it needs, and those it may have.
SPEC_KEYS = {
    "float": ({"low", "high"}, {"log", "step"}),
    "int": ({"low", "high"}, {"log", "step"}),
    "categorical": ({"choices"}, set()),
}


# conf/train.yaml lists these groups after `experiment`, so an experiment file cannot set them: neither can best.yaml.
NOT_IN_EXPERIMENTS = ("debug", "sweep")


_ABSENT = object()


def train_overrides() -> list[Override]:
    """This call's overrides of the train config, parsed; every trial gets them. (search.* configures the search.)"""
    overrides = command_line()
    for override in overrides:
        if override.is_delete():
            raise InputError(f"{override.input_line}: a search cannot delete keys; set them instead")
        if override.key_or_group in NOT_IN_EXPERIMENTS:
            raise InputError(
                f"{override.input_line}: not for a search, whose best trial becomes an experiment (which cannot "
                f"set {override.key_or_group}); for a quick search use e.g. ++trainer.limit_train_batches=0.1"
            )
    return [o for o in overrides if o.key_or_group.split(".")[0] != "search"]


def searched_space(space: Any, fixed: set[str]) -> dict[str, BaseDistribution]:
    """The distributions to draw from: every `search.space` entry but those set to null or on the command line."""
    if not isinstance(space, DictConfig):
        raise InputError(
            f"search.space={override_text(space)}: must map config keys to distributions (see conf/search.yaml)"
        )
    distributions = {}
    for key, spec in space.items():
        if spec is None:
            continue
        if key in fixed:
            print(f"not searched: {key} (set on the command line)", flush=True)
            continue
        distributions[key] = distribution(key, spec)
    if not distributions:
        raise InputError("search.space: nothing left to search (every entry is null or set on the command line)")
    return distributions


def distribution(key: str, spec: Any) -> BaseDistribution:
    """The Optuna distribution that a `search.space` entry describes; InputError names what is wrong."""
    where = f"search.space.{key}"
    kind = spec.get("type") if isinstance(spec, DictConfig) else None
    if kind not in SPEC_KEYS:
        raise InputError(f"{where}.type={kind}: unknown distribution; choose one of {', '.join(sorted(SPEC_KEYS))}")
    required, optional = SPEC_KEYS[kind]
    given = set(spec) - {"type"}
    if not required <= given <= required | optional:
        may = f" and may have {', '.join(sorted(optional))}" if optional else ""
        raise InputError(f"{where}: a {kind} needs {', '.join(sorted(required))}{may}; got {', '.join(sorted(given))}")
    args = OmegaConf.to_container(spec)
    del args["type"]
    try:
        if kind == "categorical":
            if not isinstance(args["choices"], list):
                raise ValueError(f"choices must be a list, not {args['choices']!r}")
            # Optuna keeps numbers and strings: a list (model.hidden_dims) is kept as its override text.
            return CategoricalDistribution([override_text(c) if isinstance(c, list) else c for c in args["choices"]])
        return (FloatDistribution if kind == "float" else IntDistribution)(**args)
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}: {one_line(str(error))}") from None


def override_text(value: Any) -> str:
    """A value as Hydra's command line writes it: true, null, [256,128], 0.001."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ",".join(map(override_text, value)) + "]"
    return str(value)


def searched_overrides(params: dict[str, Any], distributions: dict[str, BaseDistribution]) -> list[str]:
    """A trial's values as overrides, sorted by key: `optimizer.lr=0.00312`."""
    overrides = []
    for key, value in sorted(params.items()):
        distribution = distributions[key]
        if isinstance(distribution, FloatDistribution) and distribution.step is None:
            value = float(f"{value:.3g}")  # 0.0031234567 -> 0.00312: readable names and tables
        overrides.append(f"{key}={override_text(value)}")
    return overrides


def suggest(trial: Trial, key: str, distribution: BaseDistribution) -> Any:
    """The trial's value for a key, drawn by the sampler (or given by an enqueued or retried trial)."""
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(key, distribution.choices)
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            key, distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    return trial.suggest_int(key, distribution.low, distribution.high, log=distribution.log, step=distribution.step)


def check(cfg: DictConfig, distributions: dict[str, BaseDistribution], fixed: list[str]) -> None:
    """Everything a trial could trip over that does not depend on its luck, before the first trial starts."""
    settings = cfg.search
    if not re.fullmatch(r"[\w.-]+", str(settings.study_name)):
        raise InputError(f"search.study_name={settings.study_name}: use letters, digits, _, . and - only")
    if not str(settings.metric).startswith("val/"):
        raise InputError(
            f"search.metric={settings.metric}: must be a validation metric (val/...): "
            "the test set is for reporting, never for picking"
        )
    if cfg.ckpt_path:
        raise InputError(f"ckpt_path={cfg.ckpt_path}: every trial trains from scratch; drop ckpt_path")
    if settings.confirm.top_k and settings.metric != "val/acc_best":
        raise InputError(
            f"search.confirm.top_k={settings.confirm.top_k}: the confirmation over seeds compares val/acc_best, as "
            f"the sweep tables do, and search.metric={settings.metric}; set search.confirm.top_k=0"
        )
    if HydraConfig.get().mode == RunMode.MULTIRUN and "search.worker" not in overridden():
        raise InputError(
            "-m: a search runs its own trials (search.n_trials of them); drop -m, or start several workers on "
            "this study with -m search.worker=range(N) and nothing else swept"
        )
    if HydraConfig.get().runtime.choices.get("experiment") == f"search_{settings.study_name}":
        raise InputError(
            f"experiment=search_{settings.study_name}: this search writes its best configuration to that file; "
            "refine it under another search.study_name"
        )
    check_config(cfg)
    instantiate(cfg.data).prepare_data()  # a missing or damaged data folder: one error now, not one per trial
    groups = set(HydraConfig.get().runtime.choices)
    for key, distribution in distributions.items():
        if key not in groups and OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            raise InputError(
                f"search.space.{key}: not a key or group of the train config (see: python src/train.py --cfg job)"
            )
        # Every choice, or both ends of a range: each composes with the command line and passes the config checks.
        if isinstance(distribution, CategoricalDistribution):
            probes = distribution.choices
        else:
            probes = (distribution.low, distribution.high)
        for value in probes:
            try:
                check_config(compose(config_name="train", overrides=[*fixed, f"{key}={override_text(value)}"]))
            except Exception as error:
                if (message := user_error(error)) is None:
                    raise
                raise InputError(f"search.space.{key}: {message}") from None
