"""The study's storage: search.storage as an Optuna RDBStorage whose running trials send heartbeats (SQLite beside
the runs by default, or a PostgreSQL/MySQL server that workers on many machines share), the study opened in it, the
trials that count."""

import re
import sys
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from functools import partial, wraps
from typing import Any

import optuna
import sqlalchemy.exc
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from mlplab.cli import reported
from mlplab.config.diff import differences
from mlplab.config.overrides import split
from mlplab.errors import InputError, one_line

# Optuna marks its heartbeat API experimental; it is the documented way to survive dead workers.
warnings.filterwarnings("ignore", category=ExperimentalWarning)


def open_study(
    settings: DictConfig, store: "ReconnectingStorage", distributions: dict[str, BaseDistribution], fixed: list[str]
) -> optuna.Study:
    """The study of search.study_name in `store` (storage(settings)): created by the first call, loaded by the next
    ones (and by the other workers), which must search it with the same fixed overrides."""
    pruner = instantiate(settings.pruner) if settings.pruner else optuna.pruners.NopPruner()
    study = optuna.create_study(
        storage=store,
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


def storage(settings: DictConfig) -> "ReconnectingStorage":
    """search.storage as an Optuna storage whose running trials send heartbeats; InputError if it cannot be used."""
    url = str(settings.storage)
    connect = partial(
        ReconnectingStorage,
        url,
        reconnect_for=settings.reconnect_for,
        engine_kwargs={"pool_pre_ping": True},  # a connection the server dropped (a restart) is replaced, not used
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
            "pip install -e '.[postgres]' and write postgresql+psycopg://user@host/database"
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
            "sqlite:///study.db or postgresql+psycopg://user@host/database"
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


class StorageLost(BaseException):
    """The storage stopped answering for longer than search.reconnect_for, or a running trial's heartbeats could not
    be written for nearly search.grace_period. A BaseException: neither the trial nor Optuna may record anything
    (they could not), and the trial stays running in the storage, for a worker to fail and retry it when it answers."""


# What a database that went away raises (a stopped server, a dropped connection, a full disk under SQLite).
GONE = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


def _gone(error: BaseException) -> str | None:
    """The reason in one line, when the error says that the database went away; None for another error."""
    cause = error.__cause__ if isinstance(error, optuna.exceptions.StorageInternalError) else error
    if isinstance(cause, GONE):
        return one_line(str(cause.orig).split("\n")[0]) if cause.orig else one_line(str(cause))
    return None


class ReconnectingStorage(RDBStorage):
    """Optuna's RDBStorage that outlasts a database going away for a while (a server restarted, a network cut):
    every call is tried again with growing pauses for up to `reconnect_for` seconds, then StorageLost. Heartbeats,
    which Optuna writes from a thread that an error would end, are never raised: a trial whose heartbeats fail for
    nearly the grace period is marked lost, and its training stops (HeartbeatWatch, trials.py) before another worker
    may take it over. A running trial that never wrote a heartbeat (the database went away as it started) is stale
    after the grace period too; Optuna's own check skips it."""

    def __init__(self, url: str, *, reconnect_for: float, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.reconnect_for = reconnect_for
        self.written: dict[int, float] = {}  # trial id -> when its last heartbeat was written (or first tried)
        self.lost: dict[int, str] = {}  # trial id -> why its heartbeats could not be written
        self.numbers: dict[int, int] = {}  # trial id -> its number, for the message

    def check_heartbeats(self) -> None:
        """StorageLost for a trial of this worker whose heartbeats could not be written for nearly the grace period:
        after it, another worker may fail the trial and train it again, and two workers must never train one trial."""
        for trial_id, reason in self.lost.items():
            raise StorageLost(
                f"trial {self.numbers.get(trial_id, '?')}: its heartbeats could not be written {reason}; it stopped "
                "training so that no two workers train it (another worker takes it over from its checkpoints after "
                "search.grace_period); run the same command again once the database answers"
            )

    def record_heartbeat(self, trial_id: int) -> None:
        self.written.setdefault(trial_id, time.monotonic())
        try:
            super().record_heartbeat(trial_id)
        except Exception as error:
            silent = time.monotonic() - self.written[trial_id]
            if silent >= self.grace_period - self.heartbeat_interval:  # one heartbeat before the others see it
                self.lost[trial_id] = f"for {silent:.0f} s ({_gone(error) or one_line(str(error))})"
            return
        self.written[trial_id] = time.monotonic()

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        from optuna.storages._rdb import models  # the heartbeat table: no public call tells whether a trial has one

        stale = super()._get_stale_trial_ids(study_id)
        now = datetime.now()  # the clock Optuna's datetime_start is written on (the worker's, local and naive)
        with self.scoped_session() as session:
            for trial in (
                session.query(models.TrialModel)
                .filter(models.TrialModel.study_id == study_id, models.TrialModel.state == TrialState.RUNNING)
                .all()
            ):
                started = trial.datetime_start
                if not trial.heartbeats and started and (now - started).total_seconds() > self.grace_period:
                    stale.append(trial.trial_id)
        return stale


def _retried(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` tried again while the database is away, for up to the storage's reconnect_for seconds."""

    @wraps(method)
    def call(self: ReconnectingStorage, *args: Any, **kwargs: Any) -> Any:
        pause, waited = 0.5, 0.0
        while True:
            try:
                return method(self, *args, **kwargs)
            except Exception as error:
                if (reason := _gone(error)) is None:
                    raise
                self.check_heartbeats()  # waiting on would let another worker take the trial over meanwhile
                if waited + pause > self.reconnect_for:
                    raise StorageLost(
                        f"the database could not be reached or written ({reason}) for "
                        f"search.reconnect_for={self.reconnect_for} s; the study is as it was: run the same command "
                        "again once it can"
                    ) from None
                if waited == 0:
                    again = f"trying again for up to {self.reconnect_for} s"
                    print(f"the database cannot be reached or written ({reason}); {again}", file=sys.stderr, flush=True)
                time.sleep(pause)
                waited, pause = waited + pause, min(2 * pause, 10.0)

    return call


# Every call that reaches the database: BaseStorage's, and those that Optuna's cache in front of the study's storage
# makes instead (its _CachedStorage: the private ones).
CALLS = {"get_trial_id_from_study_id_trial_number", "_create_new_trial", "_get_best_trial_id", "_get_trials"}
for _name in sorted(BaseStorage.__abstractmethods__ | CALLS | {"_set_trial_param", "_get_stale_trial_ids"}):
    setattr(ReconnectingStorage, _name, _retried(getattr(ReconnectingStorage, _name)))


def masked(url: str) -> str:
    """A storage URL as it may be printed: its password as ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


class NoPasswordOnDisk(Callback):
    """Hydra callback of `python src/search.py`: a storage URL that holds a password is refused before Hydra writes
    the run's config (.hydra/), the trials their run.json and the workers their logs, all of which would keep it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with reported():  # Hydra turns a callback's exception into a warning and goes on: this one ends the process
            check_no_password(OmegaConf.to_container(config.search, resolve=False)["storage"])

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.on_run_start(config)


def check_no_password(url: str) -> None:
    """InputError for a URL as written (before interpolation) with a password in it; ${oc.env:VAR} in its place
    is read from the environment when the storage opens, and never written."""
    credentials = re.match(r"[\w+.-]+://([^/@]*)@", url)
    password = credentials[1].partition(":")[2] if credentials else ""
    if password and not re.fullmatch(r"\$\{[^}]*\}", password):
        raise InputError(
            f"search.storage={masked(url)}: a password in the URL would be written into the study's folder (its "
            ".hydra/, the trials' run.json); leave it out and set the environment variable PGPASSWORD (PostgreSQL "
            "reads it), or write ${oc.env:VARIABLE} in its place"
        )


def counted(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that count towards search.n_trials: finished ones, but for those Ctrl-C or SIGTERM cut short and
    those failed for a dead worker (they carry no status: they are run again, or replaced by a new trial)."""
    ended = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return [t for t in ended if t.user_attrs.get("status") not in (None, "interrupted")]
