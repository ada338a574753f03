"""A run's folder and the JSON records it holds: one writer, one record of a failed run, one list of the metrics
that a run is judged by."""

import json
import os
import platform
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]  # the repository this package is installed from (pip install -e .)
# What a run is judged by, in sweep tables and TensorBoard's HParams tab: val/acc_best picks, test/* reports.
REPORTED_METRICS = ("val/acc_best", "test/acc", "test/loss")


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, indent=2) + "\n")


def read_metrics(folder: Path) -> dict[str, Any]:
    """A run's metrics.json; a run that never wrote one is `incomplete`."""
    metrics_file = folder / "metrics.json"
    return json.loads(metrics_file.read_text()) if metrics_file.exists() else {"status": "incomplete"}


def record_failure(folder: Path, message: str) -> None:
    """A job or trial that failed before it could write its own metrics.json: its status and the error's line."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "metrics.json", {"status": "failed", "error": message})


def run_folder(checkpoint_path: str | Path) -> Path | None:
    """The run folder that wrote a checkpoint (<run>/checkpoints/x.ckpt), or None for a file elsewhere."""
    path = Path(checkpoint_path).expanduser().resolve()
    return path.parent.parent if path.parent.name == "checkpoints" else None


def run_record() -> dict[str, Any]:
    """What it takes to repeat a run besides its config: the command, the versions, the code's commit."""
    packages = ("torch", "lightning", "hydra-core", "torchmetrics", "torchvision", "omegaconf", "numpy")
    record: dict[str, Any] = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "cwd": os.getcwd(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "packages": {name: version(name) for name in packages},
    }
    if (REPO / ".git").exists():
        git = ["git", "-C", str(REPO)]
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        changes = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout
        record["git"] = {"commit": commit, "uncommitted_changes": bool(changes.strip())}
    return record
