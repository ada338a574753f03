"""Checkpoint files written atomically, through Lightning's checkpoint plugin."""

import io
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from mlplab.engine.runs import atomic_write


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
