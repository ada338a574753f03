"""A training run's checkpoint read back as what eval, predict, export and the digit pad need: its network, its loss
and its data settings.

Only the network is built, not the LightningModule that trained it: these commands make forward passes alone, so
they import neither Lightning nor torchmetrics and start in about the time torch takes to import.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

from hydra.utils import instantiate
from torch import nn

from mlplab.config.trust import check_targets
from mlplab.engine.checkpoints import load_checkpoint
from mlplab.errors import InputError, one_line

# mlplab.module.Classifier's arguments (tests/test_use_model.py checks them against its signature): named here so
# that reading a checkpoint need not import Lightning.
HYPERPARAMETERS = ("model", "loss", "optimizer", "scheduler", "penalties", "execution", "l1", "l2")


class Trained(NamedTuple):
    network: nn.Module  # on the CPU, in eval mode
    criterion: nn.Module  # the loss it was trained and tested with: eval's <split>/loss
    data: dict[str, Any]  # the MNISTDataModule arguments it was trained with


def load_trained(ckpt_path: str | None, trusted: Sequence[str] = ()) -> Trained:
    """What a checkpoint of `python src/train.py` holds, once its hyperparameters name only classes of the lab,
    torch, Lightning or a `trusted` module."""
    checkpoint = _checked(ckpt_path, trusted)
    hyper_parameters = checkpoint["hyper_parameters"]
    network = instantiate(hyper_parameters["model"], _convert_="all")
    state = checkpoint["state_dict"]
    weights = {key.removeprefix("net."): value for key, value in state.items() if key.startswith("net.")}
    _load(network, weights, ckpt_path)
    criterion = instantiate(hyper_parameters["loss"], _convert_="all")
    return Trained(network.eval(), criterion, checkpoint["datamodule_hyper_parameters"])


def _checked(ckpt_path: str | None, trusted: Sequence[str]) -> dict[str, Any]:
    """The checkpoint, once it is one of `python src/train.py`'s and what its hyperparameters build must be classes
    of the lab, torch, Lightning or a `trusted` module."""
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
    if not {"model", "loss", "optimizer"} <= hyper_parameters.keys() <= set(HYPERPARAMETERS):
        raise InputError(
            f"ckpt_path={ckpt_path}: not a checkpoint of this lab's classifier (another program's?): its "
            f"hyperparameters are {', '.join(map(str, hyper_parameters)) or 'none'}, where this lab's are model, "
            "loss, optimizer and their settings"
        )
    check_targets(hyper_parameters, f"ckpt_path={ckpt_path}", tuple(trusted))
    return checkpoint


def _load(module: nn.Module, state: dict[str, Any], ckpt_path: str | None) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as error:  # missing, unexpected or misshapen weights
        reason = one_line(str(error).split("\n\t", 1)[-1])[:200]
        raise InputError(
            f"ckpt_path={ckpt_path}: its weights do not fit the network its hyperparameters describe ({reason})"
        ) from None
