"""Hyperparameter search with Optuna: trials train in-process, unpromising ones are pruned after a validation
epoch, the study lives in an Optuna storage (SQLite beside the runs by default, or a PostgreSQL/MySQL server that
workers on many machines share), a second call resumes it, and the best trial becomes an experiment config.

Workers coordinate through the storage alone: each running trial sends heartbeats, a trial whose worker died is
failed by another worker after search.grace_period and run again (Optuna's RetryHeartbeatStaleTrialCallback)."""

import re
import signal
import sys
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch import Callback, LightningModule, Trainer
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, Trial, TrialState
from sqlalchemy.engine import make_url

from mlplab.cli import failure, user_error
from mlplab.config.checks import check_config, differences
from mlplab.config.overrides import command_line, folder_name, overridden, split
from mlplab.engine.runs import REPO, record_failure, write_text
from mlplab.errors import InputError, Interrupted, RunStopped, one_line
from mlplab.experiments.continuation import newest_checkpoint, resume
from mlplab.experiments.sweep import report
from mlplab.training import train

# Optuna marks its heartbeat API experimental; it is the documented way to survive dead workers.
warnings.filterwarnings("ignore", category=ExperimentalWarning)

# Per distribution type: the keys it needs, and those it may have.
SPEC_KEYS = {
    "float": ({"low", "high"}, {"log", "step"}),
    "int": ({"low", "high"}, {"log", "step"}),
    "categorical": ({"choices"}, set()),
}
# conf/train.yaml lists these groups after `experiment`, so an experiment file cannot set them: neither can best.yaml.
NOT_IN_EXPERIMENTS = ("debug", "sweep")
_ABSENT = object()


def search(cfg: DictConfig) -> None:
    """Run trials until the study holds search.n_trials, then (the worker that finished its last trial) print and
    write the results table and the best configuration."""
    settings, study_dir = cfg.search, Path(cfg.paths.output_dir)
    parsed = train_overrides()
    fixed = [o.input_line for o in parsed]
    distributions = searched_space(settings.space, {o.key_or_group for o in parsed})
    check(cfg, distributions, fixed)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the lab says in its own words what happens to a trial
    study = open_study(settings, distributions, fixed)
    print(
        f"study {settings.study_name}: {len(counted(study))} of {settings.n_trials} trials done; "
        f"searching {', '.join(distributions)}; stored in {masked(settings.storage)}",
        flush=True,
    )
    try:
        ran = work(study, partial(run_trial, study, distributions, fixed, cfg), settings)
    except Interrupted as stop:  # run_trial said where, and how to resume
        sys.exit(stop.exit_code)

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        sys.exit(f"error: no trial of the study {settings.study_name} completed: no best configuration to write")
    last = max(counted(study), key=lambda t: t.datetime_complete)
    best = study.best_trial
    values = " ".join(searched_overrides(best.params, best.distributions))
    if ran and last.number not in ran:  # another worker finished the study: it writes the table, once
        print(f"\nbest: trial {best.number}, {settings.metric} {best.value:.4f}: {values}")
        print(f"the worker that ran trial {last.number}, the study's last, writes its table and best configuration")
        return
    report(study_dir)
    experiment = write_best(study, cfg)
    print(f"\nbest: trial {best.number}, {settings.metric} {best.value:.4f}: {values}")
    print(f"best configuration: {study_dir / 'best.yaml'} and {experiment}")
    print(f"train it: python src/train.py experiment={experiment.stem}", flush=True)


def work(study: optuna.Study, objective: Any, settings: DictConfig) -> set[int]:
    """Run trials until the study holds search.n_trials, then wait for the other workers' running trials: one whose
    worker died is failed after search.grace_period and queued again, and then run here. Returns the trials run."""
    ran: set[int] = set()
    full = StopWhenFull(settings.n_trials)
    waiting = False
    while True:
        fail_stale_trials(study)
        if not full.reached(study):
            study.optimize(partial(objective, ran), callbacks=[full], catch=(TrialFailed,))
            continue
        if not (running := study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))):
            return ran
        if not waiting:
            print(f"waiting for {len(running)} trial(s) of other workers to end", flush=True)
        waiting = True
        time.sleep(settings.heartbeat_interval)


class StopWhenFull:
    """Optuna callback: stops this worker's optimize loop once the trials that count and those running fill the
    budget. Workers that end trials at the same instant may each start one more: at most workers - 1 extra."""

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials

    def reached(self, study: optuna.Study) -> bool:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return len(counted(study)) + len(running) >= self.n_trials

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.reached(study):
            study.stop()


class TrialFailed(Exception):
    """A trial that failed or diverged (recorded in its folder): the search goes on with the next trial."""


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


def open_study(settings: DictConfig, distributions: dict[str, BaseDistribution], fixed: list[str]) -> optuna.Study:
    """The study of search.study_name in search.storage: created by the first call, loaded by the next ones (and by
    the other workers), which must search it with the same fixed overrides."""
    pruner = instantiate(settings.pruner) if settings.pruner else optuna.pruners.NopPruner()
    study = optuna.create_study(
        storage=storage(settings),
        study_name=settings.study_name,
        direction=settings.direction,
        pruner=pruner,
        load_if_exists=True,
    )
    if study.direction.name.lower() != settings.direction:
        raise InputError(
            f"search.direction={settings.direction}: the study {settings.study_name} was created to "
            f"{study.direction.name.lower()}; keep that, or choose another search.study_name"
        )
    earlier, now = (dict(map(split, overrides)) for overrides in (study.user_attrs.get("fixed", fixed), fixed))
    if differ := differences(earlier, now):
        shown = ", ".join(f"{key}={old} in the study, {new} now" for key, old, new in differ)
        raise InputError(
            f"search.study_name={settings.study_name}: the study was searched with other fixed values ({shown}); "
            "give the same, or choose another search.study_name"
        )
    study.set_user_attr("fixed", fixed)
    for trial in study.get_trials(deepcopy=False):
        for key in distributions.keys() & trial.distributions.keys():
            try:
                optuna.distributions.check_distribution_compatibility(trial.distributions[key], distributions[key])
            except ValueError as error:
                raise InputError(
                    f"search.space.{key}: differs from the study's earlier trials ({error}); "
                    "keep it, or choose another search.study_name"
                ) from None
    if settings.sampler.get("seed") is None:  # else seeded per trial (run_trial)
        study.sampler = instantiate(settings.sampler)
    return study


def storage(settings: DictConfig) -> RDBStorage:
    """search.storage as an Optuna storage whose running trials send heartbeats; InputError if it cannot be used."""
    url = str(settings.storage)
    connect = partial(
        RDBStorage,
        url,
        heartbeat_interval=settings.heartbeat_interval,
        grace_period=settings.grace_period,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
            max_retry=settings.retries, inherit_intermediate_values=True
        ),
    )
    try:
        engine = sqlalchemy.create_engine(url)  # what fails here is the URL, the driver or the server
        try:
            engine.connect().close()
        finally:
            engine.dispose()
    except ImportError as error:  # the driver's ModuleNotFoundError
        driver = getattr(error, "name", None) or one_line(str(error))
        raise InputError(
            f"search.storage={masked(url)}: its database driver ({driver}) is not installed; for PostgreSQL "
            "pip install -e '.[postgres]' and write postgresql+psycopg://user:password@host/database"
        ) from None
    except sqlalchemy.exc.OperationalError as error:
        reason = one_line(str(error.orig).split("\n")[0]) if error.orig else one_line(str(error))
        raise InputError(
            f"search.storage={masked(url)}: cannot connect ({reason}); start the database server, or correct the "
            "host, port, user, password or database in the URL"
        ) from None
    except (sqlalchemy.exc.ArgumentError, ValueError) as error:
        raise InputError(
            f"search.storage={masked(url)}: not a database URL ({one_line(str(error))}); e.g. "
            "sqlite:///study.db or postgresql+psycopg://user:password@host/database"
        ) from None
    # Workers started together each create Optuna's tables if missing: one that loses the race (SQLite: "table
    # already exists", PostgreSQL: a duplicate key) connects again and finds them.
    for attempt in range(3):
        try:
            return connect()
        except sqlalchemy.exc.DBAPIError:
            if attempt == 2:
                raise
            time.sleep(1)


def masked(url: str) -> str:
    """A storage URL as it may be printed: its password as ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def counted(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that count towards search.n_trials: finished ones, but for those Ctrl-C or SIGTERM cut short and
    those failed for a dead worker (they carry no status: they are run again, or replaced by a new trial)."""
    ended = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return [t for t in ended if t.user_attrs.get("status") not in (None, "interrupted")]


def suggest(trial: Trial, key: str, distribution: BaseDistribution) -> Any:
    """The trial's value for a key, drawn by the sampler (or given by an enqueued or retried trial)."""
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(key, distribution.choices)
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            key, distribution.low, distribution.high, log=distribution.log, step=distribution.step
        )
    return trial.suggest_int(key, distribution.low, distribution.high, log=distribution.log, step=distribution.step)


def run_trial(
    study: optuna.Study,
    distributions: dict[str, BaseDistribution],
    fixed: list[str],
    cfg: DictConfig,
    ran: set[int],
    trial: Trial,
) -> float:
    """Optuna's objective: train the trial's values into their own folder and return search.metric. A pruned trial
    raises TrialPruned, a failed or diverged one TrialFailed (the search goes on), Ctrl-C or SIGTERM Interrupted."""
    ran.add(trial.number)
    if (seed := cfg.search.sampler.get("seed")) is not None:
        # Seeded by the trial's number: a resumed search, or another worker, draws values of its own.
        study.sampler = instantiate(cfg.search.sampler, seed=seed + trial.number)
    searched = searched_overrides({k: suggest(trial, k, d) for k, d in distributions.items()}, distributions)
    overrides = [*fixed, *searched]
    trial.set_user_attr("overrides", overrides)
    name = folder_name(f"{trial.number}_{','.join(searched)}")
    folder = Path(cfg.paths.output_dir) / name
    resumed = take_over(study, trial, folder)
    # Like a sweep job's: mlplab.experiments.sweep builds the results table from these files.
    write_text(folder / ".hydra" / "overrides.yaml", OmegaConf.to_yaml(overrides))
    print(f"\ntrial {trial.number} ({len(counted(study)) + 1}/{cfg.search.n_trials}): {' '.join(searched)}", flush=True)
    try:
        trial_cfg = compose(config_name="train", overrides=overrides)
        with open_dict(trial_cfg):
            trial_cfg.paths.output_dir = str(folder)
        pruning = [PruneOnValidation(trial, cfg.search.metric)]
        metrics, _ = resume(trial_cfg, resumed, pruning) if resumed else train(trial_cfg, pruning)
    except Interrupted as stop:  # Ctrl-C or SIGTERM: stop the whole search, which the same command resumes
        trial.set_user_attr("status", "interrupted")
        done = f"{len(counted(study))} of {cfg.search.n_trials} trials done"
        print(
            f"interrupted: {signal.Signals(stop.exit_code - 128).name} in trial {trial.number} ({done}); "
            "run the same command again to resume the search",
            file=sys.stderr,
        )
        raise
    except RunStopped as stop:  # pruned or diverged: train() wrote metrics.json with the status
        trial.set_user_attr("status", stop.status)
        print(f"{stop.status}: trial {trial.number}: {stop}", file=sys.stderr, flush=True)
        raise (optuna.TrialPruned if isinstance(stop, Pruned) else TrialFailed)(str(stop)) from None
    except Exception as error:
        message = failure(error)
        record_failure(folder, message)
        trial.set_user_attr("status", "failed")
        print(f"failed: trial {trial.number}: {message}", file=sys.stderr, flush=True)
        raise TrialFailed(message) from None
    except BaseException:  # e.g. Lightning's exit on a Ctrl-C outside the training loop: not a finished trial
        trial.set_user_attr("status", "interrupted")
        raise
    if (value := metrics.get(cfg.search.metric)) is None:
        trial.set_user_attr("status", "failed")
        logged = ", ".join(sorted(k for k in metrics if k.startswith("val/")))
        raise InputError(f"search.metric={cfg.search.metric}: the runs do not log it; choose one of {logged}")
    trial.set_user_attr("status", "ok")
    completed = [(t.value, t.number) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    best_value, best_number = (max if cfg.search.direction == "maximize" else min)(
        [*completed, (value, trial.number)], key=lambda result: result[0]
    )
    print(f"trial {trial.number}: {cfg.search.metric} {value:.4f} (best so far: trial {best_number}, {best_value:.4f})")
    return value


def take_over(study: optuna.Study, trial: Trial, folder: Path) -> Path | None:
    """A trial run again because its worker died takes over the dead trial's folder, to resume from its newest
    checkpoint; returns that checkpoint (None: a new trial, or nothing saved, or a folder on another machine)."""
    [frozen] = (t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    if not (history := RetryHeartbeatStaleTrialCallback.retry_history(frozen)):
        return None
    dead = history[-1]
    earlier = [path for path in folder.parent.glob(f"{dead}_*") if path.is_dir()]
    if earlier:
        earlier[0].rename(folder)
    checkpoint = newest_checkpoint(folder) if earlier else None
    start = f"resuming from {checkpoint}" if checkpoint else "from the start"
    print(f"\ntrial {trial.number} runs trial {dead} again, whose worker stopped sending heartbeats: {start}")
    return checkpoint


def searched_overrides(params: dict[str, Any], distributions: dict[str, BaseDistribution]) -> list[str]:
    """A trial's values as overrides, sorted by key: `optimizer.lr=0.00312`."""
    overrides = []
    for key, value in sorted(params.items()):
        distribution = distributions[key]
        if isinstance(distribution, FloatDistribution) and distribution.step is None:
            value = float(f"{value:.3g}")  # 0.0031234567 -> 0.00312: readable names and tables
        overrides.append(f"{key}={override_text(value)}")
    return overrides


class Pruned(RunStopped):
    """The pruner ended the trial: train() records this status in metrics.json like any early stop."""

    status = "pruned"


class PruneOnValidation(Callback):
    """Reports `metric` to the Optuna trial after each validation epoch, and ends the trial when the pruner says so.

    The trial ends at the start of the next epoch, not right after validation: the epoch it was judged on is
    complete (its history, its checkpoint, the epoch count in metrics.json), and a trial judged after its last
    epoch is simply complete. train() records the Pruned exception as status `pruned` in metrics.json.
    """

    def __init__(self, trial: Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.verdict: str | None = None

    def on_validation_end(self, trainer: Trainer, module: LightningModule) -> None:
        # Here, not in on_validation_epoch_end: Lightning calls callbacks before the module logs its epoch values.
        value = trainer.callback_metrics.get(self.metric)
        if trainer.sanity_checking or value is None:
            return
        self.trial.report(value.item(), step=trainer.current_epoch)
        if self.trial.should_prune():
            pruner = type(self.trial.study.pruner).__name__
            self.verdict = f"{pruner} stopped it after epoch {trainer.current_epoch} ({self.metric} {value.item():.4f})"

    def on_train_epoch_start(self, trainer: Trainer, module: LightningModule) -> None:
        if self.verdict:
            raise Pruned(self.verdict)


def write_best(study: optuna.Study, cfg: DictConfig) -> Path:
    """The best trial as best.yaml in the study folder and as an experiment config; returns the experiment file.

    An experiment sets no model keys (they belong to one architecture): the trial's model values become a model
    config of their own, search_<study_name> in the model group beside the experiment folder, which the experiment
    selects (best_model.yaml in the study folder)."""
    settings, study_dir = cfg.search, Path(cfg.paths.output_dir)
    best = study.best_trial
    name = f"search_{settings.study_name}"
    header = [
        f"The best trial of the Optuna search {settings.study_name!r} ({study_dir}):",
        f"trial {best.number} of {len(counted(study))}, {settings.metric} {best.value:.4f}.",
        f"Train it: python src/train.py experiment={name}  (command-line values still win, e.g. trainer.max_epochs=20)",
    ]
    choices = HydraConfig.get().runtime.choices
    experiment, model = best_configs(best.user_attrs["overrides"], set(choices), choices["model"], name, header)
    experiment_dir = Path(settings.experiment_dir) if settings.experiment_dir else REPO / "conf" / "experiment"
    for text, saved, group_dir in ((experiment, "best.yaml", experiment_dir), (model, "best_model.yaml", None)):
        if text is None:
            continue
        write_text(study_dir / saved, text)
        write_text((group_dir or experiment_dir.parent / "model") / f"{name}.yaml", text)
    return experiment_dir / f"{name}.yaml"


def best_configs(
    overrides: list[str], groups: set[str], model: str, name: str, header: list[str]
) -> tuple[str, str | None]:
    """(an experiment config like conf/experiment/lesson.yaml, a model config or None) that set what these
    overrides set: the model keys in the model config, on top of the model the trial used."""
    defaults: list[Any] = []
    values, model_values = OmegaConf.create(), OmegaConf.create()
    for override in OverridesParser.create().parse_overrides(overrides):
        key, value = override.key_or_group, override.value()
        if key == "experiment":  # the recipe the trial started from: this file's values come on top of it
            defaults.insert(0, value)
        elif key == "model":
            model = value
        elif key in groups:
            defaults.append({f"override /{key}": value})
        elif key.startswith("model."):
            OmegaConf.update(model_values, key.removeprefix("model."), value, force_add=True)
        else:
            OmegaConf.update(values, key, value, force_add=True)
    comments = "".join(f"# {line}\n" for line in header)
    model_yaml = None
    if model_values:
        model_yaml = comments + OmegaConf.to_yaml(OmegaConf.merge({"defaults": [model, "_self_"]}, model_values))
        model = name
    defaults.append({"override /model": model})
    document = OmegaConf.merge({"defaults": defaults}, values)
    return f"# @package _global_\n{comments}{OmegaConf.to_yaml(document)}", model_yaml
