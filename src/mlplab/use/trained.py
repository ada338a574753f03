"""A training run's checkpoint read back as what eval, predict and export need: the model and its data settings."""

import inspect
from collections.abc import Sequence
from typing import Any

from mlplab.config.trust import check_targets
from mlplab.engine.checkpoints import load_checkpoint
from mlplab.errors import InputError, one_line
from mlplab.module import Classifier


def load_trained(ckpt_path: str | None, trusted: Sequence[str] = ()) -> tuple[Classifier, dict[str, Any]]:
    """The trained module (on the CPU, in eval mode) and the MNISTDataModule arguments it was trained with; what the
    checkpoint's hyperparameters build must be classes of the lab, torch, Lightning or a `trusted` module."""
    if not ckpt_path:
        raise InputError(
            "ckpt_path is required: give ckpt_path=PATH to a checkpoint of a training run, "
            "e.g. outputs/train/<run>/checkpoints/last.ckpt"
        )
    checkpoint = load_checkpoint(ckpt_path)
    missing = [key for key in ("hyper_parameters", "datamodule_hyper_parameters") if key not in checkpoint]
    if missing:
        raise InputError(f"ckpt_path={ckpt_path}: not written by `python src/train.py` (it has no {missing[0]})")
    hyper_parameters = checkpoint["hyper_parameters"]
    arguments = inspect.signature(Classifier).parameters
    if not {"model", "loss", "optimizer"} <= hyper_parameters.keys() <= arguments.keys():
        raise InputError(
            f"ckpt_path={ckpt_path}: not a checkpoint of this lab's classifier (another program's?): its "
            f"hyperparameters are {', '.join(map(str, hyper_parameters)) or 'none'}, where this lab's are model, "
            "loss, optimizer and their settings"
        )
    check_targets(hyper_parameters, f"ckpt_path={ckpt_path}", tuple(trusted))
    module = Classifier(**hyper_parameters)
    module.on_load_checkpoint(checkpoint)  # as Lightning does before loading the state
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:  # missing, unexpected or misshapen weights
        reason = one_line(str(error).split("\n\t", 1)[-1])[:200]
        raise InputError(
            f"ckpt_path={ckpt_path}: its weights do not fit the network its hyperparameters describe ({reason})"
        ) from None
    return module.eval(), checkpoint["datamodule_hyper_parameters"]
