"""A run's folder and the JSON records it holds: one writer, one record of a failed run, one list of the metrics
that a run is judged by, and the commands a run prints, quoted to paste."""

import json
import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any, BinaryIO

from filelock import FileLock, Timeout

from mlplab.errors import InputError

REPO = Path(__file__).resolve().parents[3]  # the repository this package is installed from (pip install -e .)
# What a shell and Hydra's lexer both take unquoted: ASCII letters, digits and a few signs (no = , space or Chinese).
PLAIN = re.compile(r"[\w\-/.+@%:~]+", re.ASCII)
# What a run is judged by, in sweep tables and TensorBoard's HParams tab: val/acc_best picks, test/* reports.
REPORTED_METRICS = ("val/acc_best", "test/acc", "test/loss")


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Writes beside the target, then renames: a full disk or a kill leaves the old file or none, never half."""
    write_text(path, json.dumps(record, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Like write_json: the old file or the new one, never half; a failure is an OSError naming path."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """write(f) into a temporary file beside path, then rename it to path. On any error the temporary file is
    removed and the error raised as an OSError naming path (a full disk: "No space left on device")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno:
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise


def read_metrics(folder: Path) -> dict[str, Any]:
    """A run's metrics.json; a run that never wrote one is `incomplete`."""
    metrics_file = folder / "metrics.json"
    return json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.exists() else {"status": "incomplete"}


def record_failure(folder: Path, message: str) -> None:
    """A job or trial that failed before it could write its own metrics.json: its status and the error's line."""
    try:
        write_json(folder / "metrics.json", {"status": "failed", "error": message})
    except OSError as error:  # a full or read-only disk: the error line on stderr is all that is left
        print(f"error: cannot record the failure in {error.filename}: {error.strerror}", file=sys.stderr, flush=True)


# What claimed() says of a run folder that another process holds.
TRAINING_HERE = (
    "is training in this run folder; wait for it to end (two runs resuming one checkpoint would overwrite each "
    "other's), or resume from a copy of the checkpoint"
)


@contextmanager
def claimed(folder: Path, busy: str = TRAINING_HERE) -> Iterator[None]:
    """Holds the run folder for this process (a lock on folder/.lock that the system releases when the process
    ends, however it ends: flock on Linux and macOS, LockFileEx on Windows); InputError when another process holds
    it, saying `busy`. Who holds it is in folder/.holder (the lock file itself cannot be read on Windows while held)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock, holder = FileLock(folder / ".lock", timeout=0), folder / ".holder"
    try:
        lock.acquire()
    except Timeout:
        held_by = holder.read_text(encoding="utf-8").strip() if holder.exists() else "another process"
        raise InputError(f"{folder}: {held_by or 'another process'} {busy}") from None
    try:
        write_text(holder, f"process {os.getpid()}")
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def run_folder(checkpoint_path: str | Path) -> Path | None:
    """The run folder that wrote a checkpoint (<run>/checkpoints/x.ckpt), or None for a file elsewhere."""
    path = Path(checkpoint_path).expanduser().resolve()
    return path.parent.parent if path.parent.name == "checkpoints" else None


def run_record() -> dict[str, Any]:
    """What it takes to repeat a run besides its config: the command, the versions, the code's commit."""
    import torch  # here: the NumPy lesson (mlplab.idx) uses this module's REPO without torch

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
        try:
            commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
            changes = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout
        except OSError:  # no git on this machine: the record goes without the commit
            return record
        record["git"] = {"commit": commit, "uncommitted_changes": bool(changes.strip())}
    return record


def shell_word(text: str) -> str:
    """text as one word of a command to paste into bash, zsh or PowerShell: single-quoted where it has to be."""
    return text if PLAIN.fullmatch(text) else "'" + text.replace("'", "'\"'\"'") + "'"


def pasted(key: str, value: str) -> str:
    """`key=value` as one word to paste after `python src/...`: the value quoted for Hydra where its lexer would refuse
    it (a space, a Chinese folder name, a sweep job's = and ,), the whole override quoted for the shell."""
    return f"{key}={value}" if PLAIN.fullmatch(value) else shell_word(f'{key}="{value}"')
