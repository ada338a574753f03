"""train(cfg): build everything from the composed config, fit, test the best checkpoint, report."""

import logging
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import lightning.pytorch as pl
import torch
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from mlplab.config.checks import check_config
from mlplab.config.overrides import split
from mlplab.config.rules import without_ranges
from mlplab.config.trust import check_overrides
from mlplab.engine.callbacks import EpochSummary, History, Interruption, NetworkSummary, RandomState, RunSummary
from mlplab.engine.checkpoint_io import AtomicCheckpointIO
from mlplab.engine.checkpoints import load_checkpoint, relocate
from mlplab.engine.distributed import use_job_commands
from mlplab.engine.execution import ProgressBar, trainer_arguments
from mlplab.engine.hparams import log_hparams, tensorboard
from mlplab.engine.runs import claimed, read_metrics, run_folder, run_record, shell_word, write_json, write_text
from mlplab.errors import AlreadyFinished, RunStopped
from mlplab.module import Classifier

T = TypeVar("T")


def build(
    cfg: DictConfig, callbacks: list[pl.Callback] | None = None, checkpoint: dict[str, Any] | None = None
) -> tuple[pl.LightningDataModule, Classifier, pl.Trainer]:
    """The datamodule, module and trainer that the config describes; `callbacks` are added to the trainer's, and
    `checkpoint` is cfg.ckpt_path's, already loaded (the trainer's resume reads it instead of the file)."""
    datamodule = instantiate(cfg.data, _convert_="all")  # plain values: they go into checkpoints
    arguments, plan = trainer_arguments(without_ranges(cfg.trainer), cfg.steps_per_execution)
    module = Classifier(
        model=without_ranges(cfg.model),
        loss=without_ranges(cfg.loss),
        optimizer=without_ranges(cfg.optimizer),
        scheduler=without_ranges(cfg.scheduler),
        penalties=without_ranges(cfg.get("regularization") or {}),  # the penalties that regularization= lists
        execution=asdict(plan),
    )
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    # The caller's callbacks (objects no config can describe, such as the search's live Optuna trial) first.
    # Without a validation set (data.val_size=0) nothing watches a val/ metric: the last epoch's model is tested.
    validating = cfg.data.val_size > 0
    kept = [c for c in cfg.callbacks.values() if c and (validating or not str(c.get("monitor", "")).startswith("val/"))]
    callbacks = [*(callbacks or []), *(instantiate(without_ranges(c)) for c in kept)]
    callbacks += [RunSummary(), History(), RandomState(), Interruption(checkpoints)]
    if cfg.verbose and arguments.get("enable_model_summary", True) is not False:
        callbacks.append(NetworkSummary())  # in place of Lightning's, which would list the engine's bookkeeping
    arguments["enable_model_summary"] = False  # Lightning's own is not added (nor said to be skipped)
    progress_bar = cfg.trainer.enable_progress_bar
    if progress_bar is None:  # a live bar on a terminal, one line per epoch in logs and files
        progress_bar = sys.stdout.isatty()
    callbacks.append(ProgressBar() if progress_bar else EpochSummary())
    if cfg.trainer.get("strategy") == "ddp":
        use_job_commands()
    loggers = [instantiate(c) for c in (cfg.logger or {}).values() if c]
    if not validating:
        arguments.update(limit_val_batches=0, num_sanity_val_steps=0)
    trainer = instantiate(
        arguments,
        callbacks=callbacks,
        logger=loggers or False,
        enable_progress_bar=progress_bar,
        plugins=[AtomicCheckpointIO({cfg.ckpt_path: checkpoint} if checkpoint else None)],
    )
    return datamodule, module, trainer


def train(cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit, test the best checkpoint on the test set, write metrics.json; return (metrics, objects).

    `callbacks` are added to the trainer's (e.g. the search's pruning callback, which holds a live Optuna trial).

    With `ckpt_path`, training resumes into the run folder that wrote the checkpoint. A run that
    diverges or is interrupted writes metrics.json with its status, then raises RunStopped.
    """
    # Read once: checked against the config here, then restored by the trainer (AtomicCheckpointIO hands it over).
    checkpoint = load_checkpoint(cfg.ckpt_path) if cfg.ckpt_path else None
    check_config(cfg, checkpoint)
    if cfg.ckpt_path and (resumed := run_folder(cfg.ckpt_path)):
        with open_dict(cfg):
            cfg.paths.output_dir = str(resumed)
    output_dir = Path(cfg.paths.output_dir)
    if checkpoint is not None:  # its run folder may have been moved since: the paths it records follow it
        relocate(checkpoint, output_dir / "checkpoints")
    if threads := cpu_threads(cfg):
        torch.set_num_threads(threads)
    # The first screen is the lesson's (RunSummary), not Lightning's devices, restores and stops, unless asked for.
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.INFO if cfg.verbose else logging.WARNING)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module, trainer = build(cfg, callbacks, checkpoint)
    recorded = without_ranges(cfg)  # what run.json, hparams.yaml and the loggers keep: the resolved config
    resumed_at = checkpoint["global_step"] if checkpoint else 0  # fit overwrites the checkpoint's
    # Rank 0 holds the run folder: a second process resuming the same checkpoint is refused, not interleaved.
    with claimed(output_dir) if trainer.is_global_zero else nullcontext():
        if trainer.is_global_zero:
            # The config too: a sweep run again into its folder checks that each job's run is the same (continuation).
            write_json(output_dir / "run.json", {**run_record(), "config": recorded})
        for logger in trainer.loggers:
            if hasattr(logger, "continue_from"):  # mlplab.engine.loggers: kept up to the resumed step, or cleared
                logger.continue_from(resumed_at)
            logger.log_hyperparams(recorded)  # TensorBoard's HParams tab: log_hparams below
        board = tensorboard(trainer)
        hparams_file = Path(board.log_dir) / board.NAME_HPARAMS_FILE if board else None
        if hparams_file and trainer.is_global_zero and not hparams_file.exists():
            # The full resolved config, written here whole: Lightning writes it where there is none with a plain
            # open, which a full disk leaves half-written, and kept as it is by every resume.
            write_text(hparams_file, OmegaConf.to_yaml(recorded))

        start = time.perf_counter()
        [interruption] = [c for c in trainer.callbacks if isinstance(c, Interruption)]
        with interruption.catching():
            try:
                _stage(interruption, trainer, "the sanity check", trainer.fit, module, datamodule=datamodule,
                      ckpt_path=cfg.ckpt_path, weights_only=True)  # fmt: skip
            except RunStopped as stop:
                record = _write_metrics(
                    trainer,
                    output_dir,
                    _metrics(trainer.callback_metrics),
                    _history(trainer),
                    start,
                    status=stop.status,
                    error=str(stop),
                )
                log_hparams(trainer, cfg, record)  # a sweep's diverged or pruned runs stay in its HParams table
                raise
            metrics = _metrics(trainer.callback_metrics)
            history = _history(trainer)  # now: testing a checkpoint restores every callback to that epoch's state
            if cfg.ckpt_path and trainer.global_step == resumed_at:
                # Testing now would replace the run's metrics.json with one that lacks its validation results,
                # unless the run stopped in its test stage: its record holds them.
                metrics, history, start = _untested(output_dir, cfg, trainer)
            chosen = trainer.checkpoint_callback and cfg.data.val_size > 0  # else: the final weights
            best = trainer.checkpoint_callback.best_model_path if chosen else ""
            try:
                tested = _stage(interruption, trainer, "the test stage", trainer.test, module, datamodule=datamodule,
                               ckpt_path=best or None, weights_only=True, verbose=False)  # fmt: skip
            except RunStopped as stop:  # what training reached stays, for the resume that tests it
                _write_metrics(trainer, output_dir, metrics, history, start, status=stop.status, error=str(stop),
                               best_checkpoint=best, stage="test")  # fmt: skip
                raise
        metrics = _write_metrics(
            trainer, output_dir, {**metrics, **_metrics(tested[0])}, history, start, best_checkpoint=best
        )
        log_hparams(trainer, cfg, metrics)
        if trainer.is_global_zero:
            print(summary(metrics, output_dir), flush=True)
    return metrics, {"datamodule": datamodule, "module": module, "trainer": trainer}


def _stage(interruption: Interruption, trainer: pl.Trainer, name: str, call: Callable[..., T], *args: Any,
          **kwargs: Any) -> T:  # fmt: skip
    """trainer.fit or trainer.test; Lightning's SIGTERMException (a SystemExit with status 0, raised by its loops
    outside training, where its handler is in place: the sanity check, the test stage) as an interruption."""
    try:
        return call(*args, **kwargs)
    except SIGTERMException:
        raise interruption.interrupted(name, trainer) from None


def _untested(output_dir: Path, cfg: DictConfig, trainer: pl.Trainer) -> tuple[dict[str, float], dict, float]:
    """For a resume that had nothing left to train: (metrics, history, start time) of the run's record when it
    stopped in its test stage; otherwise AlreadyFinished."""
    earlier = read_metrics(output_dir)
    if earlier.get("status") == "interrupted" and earlier.get("stage") == "test":
        facts = ("epochs", "train_time_s", "status", "error", "stage", "history", "best_checkpoint")
        metrics = {name: value for name, value in earlier.items() if name not in facts}
        return metrics, earlier["history"], time.perf_counter() - earlier["train_time_s"]
    raise AlreadyFinished(
        f"ckpt_path={cfg.ckpt_path}: that run had already finished, nothing was left to train "
        f"(trainer.max_epochs={trainer.max_epochs}, trainer.max_steps={trainer.max_steps}, or its early "
        f"stopping); to train on, raise them, e.g. trainer.max_epochs={trainer.max_epochs + 5}"
    )


def cpu_threads(cfg: DictConfig) -> int | None:
    """cfg.threads, or for a job of a parallel (joblib) sweep its share of the cores; None keeps torch's default."""
    if cfg.get("threads"):
        return cfg.threads
    parallel = HydraConfig.get().launcher.get("n_jobs") if HydraConfig.initialized() else None
    if not parallel:
        return None
    cores = os.cpu_count() or 1
    # Jobs that each use every core fight over them: on 2 cores, 2 jobs of 1 thread beat 2 jobs of 2.
    return max(1, cores // (cores if parallel < 0 else min(parallel, cores)))


def resumed_config(cfg: DictConfig) -> DictConfig:
    """For `python src/train.py ckpt_path=...` (inside a Hydra app): the config of the run that wrote the
    checkpoint with this command's overrides on top, so that a bare resume continues the same recipe."""
    folder = run_folder(cfg.ckpt_path)
    saved = folder / ".hydra" / "overrides.yaml" if folder else None
    if not (saved and saved.is_file()):
        return cfg
    hydra_cfg = HydraConfig.get()
    recorded = list(OmegaConf.load(saved))
    check_overrides(recorded, str(saved), {split(o)[0] for o in hydra_cfg.overrides.task})
    overrides = [*recorded, *hydra_cfg.overrides.task]  # later ones win
    print(f"resuming {folder} with: {' '.join(overrides)}", flush=True)
    return compose(config_name=hydra_cfg.job.config_name, overrides=overrides)


def _metrics(values: dict[str, Any]) -> dict[str, float]:
    # Metrics only: a logged `step` is the x-axis of their records in TensorBoard (mlplab.engine.execution).
    return {name: float(v) for name, v in values.items() if name != "step"}


def _history(trainer: pl.Trainer) -> dict[str, list[float]]:
    [history] = [c for c in trainer.callbacks if isinstance(c, History)]
    return {name: list(values) for name, values in history.epochs.items()}


def _write_metrics(
    trainer: pl.Trainer,
    output_dir: Path,
    metrics: dict[str, float],
    history: dict[str, list[float]],
    start: float,
    **facts: Any,
) -> dict[str, Any]:
    record = {
        **dict(sorted(metrics.items())),
        "epochs": trainer.current_epoch,
        "train_time_s": round(time.perf_counter() - start, 2),
        **{"status": "ok", **facts},
        "history": history,
    }
    if trainer.is_global_zero:
        write_json(output_dir / "metrics.json", record)
    return record


def summary(metrics: dict[str, Any], output_dir: Path) -> str:
    """The closing report: test results, where the run lives, how to look at it."""
    shown = os.path.relpath(output_dir) if output_dir.is_relative_to(Path.cwd()) else str(output_dir)
    tested = (
        f"best checkpoint {Path(metrics['best_checkpoint']).name}" if metrics["best_checkpoint"] else "final weights"
    )
    validated = f"val/acc_best {metrics['val/acc_best']:.2%}" if "val/acc_best" in metrics else "no validation set"
    return "\n".join(
        [
            f"test/acc {metrics['test/acc']:.2%}  test/loss {metrics['test/loss']:.4f}  ({tested}; {validated}; "
            f"{metrics['epochs']} epoch{'s' * (metrics['epochs'] != 1)} in {metrics['train_time_s']:.1f} s)",
            f"run folder:  {shown}",
            f"TensorBoard: tensorboard --logdir {shell_word(shown)}",
        ]
    )
