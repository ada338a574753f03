"""A worker's loop: trials until the study holds search.n_trials, then waiting for the other workers' running trials
(a dead worker's is failed after search.grace_period and run again here)."""

import time
from functools import partial
from typing import Any

import optuna
from omegaconf import DictConfig
from optuna.storages import fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from mlplab.experiments.search.storage import counted
from mlplab.experiments.search.trials import TrialFailed


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
