"""Checkpoint files: written atomically, read only through torch's weights_only loading."""

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from mlplab.engine.runs import atomic_write
from mlplab.errors import InputError, one_line


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes beside the target, then renames: a kill at any moment leaves the old file or the new, never half.

    `loaded`: checkpoints already read by load_checkpoint, by their path, each handed to the trainer once instead of
    being read again (a resume checks its checkpoint before the trainer restores it)."""

    def __init__(self, loaded: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.loaded = dict(loaded or {})

    def load_checkpoint(self, path: str | Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.loaded.pop(str(path), None) or super().load_checkpoint(path, *args, **kwargs)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        # Lightning's own save goes through a temporary file under $TMPDIR, atomic only on the same filesystem.
        # Serialized in memory first: torch.save reports a failed file write as a RuntimeError without its cause,
        # while a plain write of the bytes raises the system's own error (ENOSPC: "No space left on device").
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(Path(path), lambda f: f.write(buffer.getbuffer()))


def load_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """A Lightning checkpoint, loaded on the CPU with weights_only=True: no pickled code ever runs."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"{key}={path}: a folder; give one of its .ckpt files, e.g. {path}/checkpoints/last.ckpt")
    if not path.is_file():
        raise InputError(f"{key}={path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a file that is not a checkpoint
        reason = one_line(str(e))
        if "Unsupported global" in reason:
            found = reason[reason.index("Unsupported global") :].split(" was not")[0]
            raise InputError(f"{key}={path}: refused, it needs pickled code to load ({found})") from None
        detail = reason.split("WeightsUnpickler error:")[-1].split(" Check the documentation")[0].strip()
        raise InputError(f"{key}={path}: not a PyTorch checkpoint file ({type(e).__name__}: {detail[:150]})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InputError(f"{key}={path}: not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def relocate(checkpoint: dict[str, Any], checkpoints: Path) -> None:
    """A checkpoint of a run folder that was moved (or copied) to where `checkpoints` is: its ModelCheckpoint states
    point there instead of the old place. Lightning keeps the best score and the best-k files only when the folder
    it saves to is the one the state names: otherwise a resumed run's first epoch would count as its best."""
    new = os.path.realpath(checkpoints)
    for state in checkpoint.get("callbacks", {}).values():
        old = state.get("dirpath") if isinstance(state, dict) else None
        if not old or old == new:
            continue

        def moved(path: str, old: str = old) -> str:
            return new + path[len(old) :] if path and path.startswith(old + os.sep) else path

        state["dirpath"] = new
        for key in ("best_model_path", "last_model_path", "kth_best_model_path"):
            if isinstance(state.get(key), str):
                state[key] = moved(state[key])
        if isinstance(state.get("best_k_models"), dict):
            state["best_k_models"] = {moved(path): score for path, score in state["best_k_models"].items()}
