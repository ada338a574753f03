"""Checkpoint files read back, only through torch's weights_only loading; without Lightning, so that predict and
export start quickly (mlplab/engine/checkpoint_io.py writes them)."""

import os
from pathlib import Path
from typing import Any

import torch

from mlplab.errors import InputError, one_line


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
