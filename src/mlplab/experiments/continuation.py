"""A sweep run again into its own folder continues it: what an earlier run of the same command left is kept.

`python src/train.py -m ... hydra.sweep.dir=<that sweep>` reruns every job into the folder it had. Per job:
- finished (`metrics.json` says ok): kept, not trained again;
- interrupted, or killed with no metrics.json: resumed from its newest checkpoint (from the start without one);
- failed, diverged: kept as it is, unless `sweep.rerun` lists that status: then trained again from the start;
- a folder whose run was composed from another config: refused in one line naming the keys that differ.
The comparison reads the config each run records in its run.json (Hydra rewrites .hydra/ before the job starts).
"""

import json
import shutil
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch import Callback
from omegaconf import DictConfig, open_dict

from mlplab.config.checks import RERUNNABLE
from mlplab.config.diff import differences, relocated
from mlplab.config.rules import without_ranges
from mlplab.engine.runs import read_metrics
from mlplab.errors import AlreadyFinished, SweepRefused
from mlplab.experiments.sweep_folder import NOT_COMPUTED
from mlplab.training import resumed_config, train


def train_task(cfg: DictConfig) -> dict[str, Any]:
    """What `python src/train.py` runs: a resume of ckpt_path, a job of a sweep (continued), or a new run."""
    if cfg.ckpt_path:
        return train(resumed_config(cfg))[0]
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return continue_job(cfg)
    return train(cfg)[0]


def continue_job(cfg: DictConfig) -> dict[str, Any]:
    """train(cfg) for one job of a sweep, continuing what an earlier run left in the job's folder."""
    folder = Path(cfg.paths.output_dir)
    rerun = list(cfg.sweep.get("rerun") or [])
    if unknown := [status for status in rerun if status not in RERUNNABLE]:
        allowed = ", ".join(RERUNNABLE)
        raise SweepRefused(f"sweep.rerun={rerun}: {unknown[0]} is not a status to rerun; choose from {allowed}")
    earlier = recorded_config(folder)
    if earlier is None:  # nothing trained here yet
        return train(cfg)[0]
    refuse_other_config(folder, earlier, plain(cfg))
    metrics = read_metrics(folder)
    status = metrics["status"]
    if status == "ok" or (status in RERUNNABLE and status not in rerun):
        print(f"kept: {folder.name} ({status}, from an earlier run of this sweep)", flush=True)
        return metrics
    checkpoint = None if status in rerun else newest_checkpoint(folder)
    if checkpoint is None:
        start_over(folder)
        return train(cfg)[0]
    print(f"resuming: {folder.name} from {checkpoint.relative_to(folder)}", flush=True)
    return resume(cfg, checkpoint)[0]


def resume(
    cfg: DictConfig, checkpoint: Path, callbacks: list[Callback] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """train(cfg) from a checkpoint that a killed run left in cfg.paths.output_dir. A run killed between its last
    checkpoint and its test has nothing left to train: it is trained again from the start (the same numbers)."""
    with open_dict(cfg):
        cfg.ckpt_path = str(checkpoint)
    try:
        return train(cfg, callbacks)
    except AlreadyFinished:
        start_over(Path(cfg.paths.output_dir))
        with open_dict(cfg):
            cfg.ckpt_path = None
        return train(cfg, callbacks)


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as run.json holds it (JSON values)."""
    return json.loads(json.dumps(without_ranges(cfg)))


def recorded_config(folder: Path) -> dict[str, Any] | None:
    """The config of the run that last trained in this folder (None: no run started training here), its paths in
    the folder where it is now (a sweep folder moved elsewhere continues there)."""
    record = folder / "run.json"
    if not record.exists():
        return None
    config = json.loads(record.read_text(encoding="utf-8")).get("config")
    old = (config or {}).get("paths", {}).get("output_dir")
    return relocated(config, old, str(folder)) if old and old != str(folder) else config


def refuse_other_config(folder: Path, earlier: dict[str, Any], now: dict[str, Any]) -> None:
    """SweepRefused when this folder's run was composed from another config: its results would mix into the table."""
    if differ := differences(earlier, now, ignored=NOT_COMPUTED):
        shown = ", ".join(f"{key}={old} there, {new} now" for key, old, new in differ[:3])
        more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        raise SweepRefused(
            f"{folder}: this job's folder holds a run of another config ({shown}{more}); run this sweep into "
            "another hydra.sweep.dir, or give the earlier command again to continue it"
        )


def newest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint written last (interrupted.ckpt after Ctrl-C, else last.ckpt), or None."""
    checkpoints = list((folder / "checkpoints").glob("*.ckpt"))
    return max(checkpoints, key=lambda path: path.stat().st_mtime_ns) if checkpoints else None


def start_over(folder: Path) -> None:
    """Clears what an earlier attempt trained, so that the job's TensorBoard curves and checkpoints are its own."""
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    for path in [*folder.glob("events.out.tfevents.*"), folder / "metrics.json"]:
        path.unlink(missing_ok=True)
