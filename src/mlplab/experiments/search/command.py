"""What `python src/search.py` runs: open the study, run this worker's trials, and (the worker that finished the
study's last trial) write the results table and the best configuration."""

import sys
from datetime import datetime
from functools import partial
from pathlib import Path

import optuna
from omegaconf import DictConfig
from optuna.trial import TrialState

from mlplab.errors import Interrupted
from mlplab.experiments.search.best import write_best
from mlplab.experiments.search.confirm import confirm
from mlplab.experiments.search.space import check, searched_overrides, searched_space, train_overrides
from mlplab.experiments.search.storage import StorageLost, counted, masked, open_study, storage
from mlplab.experiments.search.trials import run_trial
from mlplab.experiments.search.workers import work
from mlplab.experiments.sweep import report


def search(cfg: DictConfig) -> None:
    """Run trials until the study holds search.n_trials, then (the worker that finished its last trial) print and
    write the results table and the best configuration. A database that goes away for longer than
    search.reconnect_for ends the worker in one line."""
    try:
        _search(cfg)
    except StorageLost as lost:
        sys.exit(f"error: search.storage={masked(cfg.search.storage)}: {lost}")


def _search(cfg: DictConfig) -> None:
    settings, study_dir = cfg.search, Path(cfg.paths.output_dir)
    parsed = train_overrides()
    fixed = [o.input_line for o in parsed]
    distributions = searched_space(settings.space, {o.key_or_group for o in parsed})
    check(cfg, distributions, fixed)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the lab says in its own words what happens to a trial
    store = storage(settings)
    study = open_study(settings, store, distributions, fixed)
    print(
        f"study {settings.study_name}: {len(counted(study))} of {settings.n_trials} trials done; "
        f"searching {', '.join(distributions)}; stored in {masked(settings.storage)}",
        flush=True,
    )
    started = datetime.now()  # the clock Optuna's trial times are read on (local, naive)
    try:
        ran = work(study, partial(run_trial, study, store, distributions, fixed, cfg), settings)
    except Interrupted as stop:  # run_trial said where, and how to resume
        sys.exit(stop.exit_code)

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        sys.exit(f"error: no trial of the study {settings.study_name} completed: no best configuration to write")
    last = max(counted(study), key=lambda t: t.datetime_complete)
    best = study.best_trial
    values = " ".join(searched_overrides(best.params, best.distributions))
    # Another worker finished the study, during this call: it writes the table, once. (A call on a study that was
    # finished before it started, with nothing left to run, writes it again.)
    if last.number not in ran and (ran or last.datetime_complete > started):
        print(f"\nbest: trial {best.number}, {settings.metric} {best.value:.4f}: {values}")
        print(f"the worker that ran trial {last.number}, the study's last, writes its table and best configuration")
        return
    report(study_dir)
    print(f"\nbest: trial {best.number}, {settings.metric} {best.value:.4f}: {values}", flush=True)
    confirmed = ""
    if settings.confirm.top_k > 0:
        best, confirmed = confirm(study, cfg)
        print(confirmed, flush=True)
    experiment = write_best(study, cfg, best, confirmed)
    print(f"best configuration: {study_dir / 'best.yaml'} and {experiment}")
    print(f"train it: python src/train.py experiment={experiment.stem}", flush=True)
