"""TensorBoard's HParams tab: each run's session (its choices, how it ended, its final metrics) and a sweep's
experiment (the columns, what varies first), written as event files of their own."""

import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard.summary import hparams

from mlplab.engine.runs import REPORTED_METRICS, atomic_write, read_metrics

HPARAMS_SUFFIX = ".hparams"  # the end of the name of the event file that holds a run's HParams session
EXPERIMENT_SUFFIX = ".sweep"  # the event file that holds a sweep's HParams columns


def tensorboard(trainer: Trainer) -> TensorBoardLogger | None:
    """The run's TensorBoardLogger; None with logger=none or in debug=fast (Lightning's DummyLogger)."""
    return next((logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)), None)


def readable(value: Any) -> Any:
    """A config value as one HParams cell: a list as 512-256, a bool as on/off (TensorBoard shows it as 0 or 1)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if OmegaConf.is_list(value) or isinstance(value, list):
        return "-".join(str(item) for item in value)
    return value


# The groups whose options shape what a run learns: their choices are the HParams columns.
CHOSEN = ("model", "loss", "optimizer", "scheduler", "regularization", "data", "callbacks.early_stopping")
NOT_CHOICES = ("data.data_dir", "data.md5")  # where the files are, not what is learned from them


def class_name(target: str) -> str:
    """The class a config's `_target_` names: torch.optim.SGD -> SGD."""
    return target.rsplit(".", 1)[-1]


def run_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run's choices as flat, readable values, one column each in TensorBoard's HParams tab, derived from the
    composed config: per option of the CHOSEN groups (each node with a `_target_`), its class under its key and its
    arguments under their dotted keys, so that a new option brings its own columns; then the seed and the epochs.

    A sweep's columns are those of all its runs (sweep_hparams): a sweep over models has every model's arguments."""
    columns: dict[str, Any] = {}
    for group in CHOSEN:
        node = OmegaConf.select(cfg, group)
        columns.update(_option_columns(group, node) if node is not None else {group: "none"})
    return {**columns, "seed": cfg.seed, "max_epochs": cfg.trainer.max_epochs}


def _option_columns(key: str, node: Any) -> dict[str, Any]:
    if not OmegaConf.is_dict(node):
        return {} if node is None else {key: readable(node)}
    columns = {key: class_name(node._target_)} if "_target_" in node else {}
    for name, value in node.items():
        if not str(name).startswith("_") and f"{key}.{name}" not in NOT_CHOICES:
            columns.update(_option_columns(f"{key}.{name}", value))
    return columns


def log_hparams(trainer: Trainer, cfg: DictConfig, metrics: dict[str, Any]) -> None:
    """Writes the run's HParams session: its readable choices, how it ended (`status`: ok, or why it stopped early:
    diverged, interrupted, pruned) and the final metrics it has. A resumed run's session replaces the earlier one."""
    logger = tensorboard(trainer)
    if logger is None or not trainer.is_global_zero:  # one session per run: other DDP ranks have no writer
        return
    # TensorBoard shows a session's metric as the last value of that scalar: written at the last step, not at 0.
    step = trainer.global_step
    logger.log_metrics({name: metrics[name] for name in REPORTED_METRICS if name in metrics}, step)
    logger.finalize("success")  # testing closed the event file; this flushes and closes the one just written
    # The session goes in an event file of its own, so that a resume (into the same folder) can drop the earlier
    # one once its own is written: TensorBoard shows the first session it finds in a run's folder.
    folder = Path(logger.log_dir)
    earlier = list(folder.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"))
    # The session's start and end only, not the experiment (the columns) that torch writes with them: TensorBoard
    # takes the first experiment it finds for all runs, so a sweep writes its own (sweep_hparams); without one,
    # TensorBoard derives the columns from the sessions, those that vary first. (Lightning's log_hyperparams
    # writes no session at all without a metric.)
    _, session_start, session_end = hparams({**run_hparams(cfg), "status": metrics["status"]}, {})
    written = write_events(folder, HPARAMS_SUFFIX, (session_start, session_end), step)
    for path in earlier:
        if path != written:  # the same name when both were written in the same second by one process
            path.unlink()


def sweep_hparams(sweep_dir: Path) -> None:
    """Writes the HParams experiment of a sweep: the columns of TensorBoard's HParams table, the choices that vary
    across its runs first (the table shows only the first few), then the rest, and the reported metrics.

    TensorBoard takes the first experiment it finds for all runs; it goes into the first job's folder (an event
    file at the sweep's root would add an empty run named `.`)."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    runs = sorted(sweep_dir.rglob("hparams.yaml"))
    if not runs:  # logger=none: no TensorBoard
        return
    values: dict[str, list[Any]] = {}
    for path in runs:
        for name, value in {**run_hparams(OmegaConf.load(path)), "status": read_metrics(path.parent)["status"]}.items():
            values.setdefault(name, []).append(value)
    # A column varies if its runs differ, or if only some runs have it (a model's own argument, in a model sweep).
    varying = [name for name, seen in values.items() if len(set(seen)) > 1 or len(seen) < len(runs)]
    order = [*varying, *(name for name in values if name not in varying)]
    summary = hp.hparams_config_pb([hp.HParam(name) for name in order], [hp.Metric(name) for name in REPORTED_METRICS])
    content = HParamsPluginData.FromString(summary.value[0].metadata.plugin_data.content)
    for info in content.experiment.hparam_infos:
        info.differs = info.name in varying
    summary.value[0].metadata.plugin_data.content = content.SerializeToString()
    for earlier in sweep_dir.rglob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}"):
        earlier.unlink()  # a rebuilt sweep's experiment replaces the old one
    write_events(runs[0].parent, EXPERIMENT_SUFFIX, (summary,))


def write_events(folder: Path, suffix: str, summaries: Iterable[Summary], step: int = 0) -> Path:
    """An event file of its own, named like TensorBoard's (after which it sorts) but for the suffix, written whole
    or not at all (mlplab.engine.runs.atomic_write): TensorBoard's writer would leave half a file on a full disk, and
    its close() alone loses the error of its writing thread. Returns the file."""
    name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}{suffix}"

    def write(f: Any) -> None:
        records = RecordWriter(f)
        records.write(Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        for summary in summaries:
            records.write(Event(wall_time=time.time(), step=step, summary=summary).SerializeToString())

    atomic_write(folder / name, write)
    return folder / name
