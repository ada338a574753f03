"""The study's storage: search.storage as an Optuna RDBStorage whose running trials send heartbeats (SQLite beside
the runs by default, or a PostgreSQL/MySQL server that workers on many machines share), the study opened in it, the
trials that count."""

import re
import time
import warnings
from functools import partial
from typing import Any

import optuna
import sqlalchemy.exc
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from mlplab.cli import reported
from mlplab.config.diff import differences
from mlplab.config.overrides import split
from mlplab.errors import InputError, one_line

# Optuna marks its heartbeat API experimental; it is the documented way to survive dead workers.
warnings.filterwarnings("ignore", category=ExperimentalWarning)


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
