"""One trial: its values drawn, trained into its own folder (resumed where a dead worker's trial left off), pruned
after a validation epoch when the pruner says so, its status recorded."""

import signal
import sys
from pathlib import Path

import optuna
from hydra import compose
from hydra.utils import instantiate
from lightning.pytorch import Callback, LightningModule, Trainer
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.distributions import BaseDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import Trial, TrialState

from mlplab.cli import failure
from mlplab.config.overrides import folder_name
from mlplab.engine.runs import record_failure, write_text
from mlplab.errors import InputError, Interrupted, RunStopped
from mlplab.experiments.continuation import newest_checkpoint, resume
from mlplab.experiments.search.space import searched_overrides, suggest
from mlplab.experiments.search.storage import ReconnectingStorage, StorageLost, counted
from mlplab.training import train


class TrialFailed(Exception):
    """A trial that failed or diverged (recorded in its folder): the search goes on with the next trial."""


def run_trial(
    study: optuna.Study,
    store: ReconnectingStorage,
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
        pruning = [PruneOnValidation(trial, cfg.search.metric), HeartbeatWatch(store, trial)]
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
    except StorageLost:  # nothing can be written: the trial stays running, for a worker to take over
        raise
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


class HeartbeatWatch(Callback):
    """Stops the trial's training once its heartbeats could not be written for nearly search.grace_period (the
    database went away; ReconnectingStorage.check_heartbeats). The trial's folder stays as a killed worker's would,
    for the worker that takes it over."""

    def __init__(self, store: ReconnectingStorage, trial: Trial) -> None:
        self.storage = store
        store.numbers[trial._trial_id] = trial.number  # heartbeats are written by the trial's id

    def on_train_batch_end(self, trainer: Trainer, module: LightningModule, *args: object) -> None:
        self.storage.check_heartbeats()
