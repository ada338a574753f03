"""Checkpoints written by earlier versions of the lab stay loadable: users share them (a teacher's trained model, a
classmate's run), and the lab's own modules may move. tests/data/ holds one written by version 0.1.0 (before the
package was split into folders), with the logits it gave then."""

import json
from pathlib import Path

import torch
from hydra.utils import get_class

from mlplab.engine.checkpoints import load_checkpoint
from mlplab.module import Classifier
from mlplab.use.trained import load_trained

DATA = Path(__file__).parent / "data"
CHECKPOINT = DATA / "v0.1.0_mlp16_l2_dropout_onecycle.ckpt"  # MLP 784-16-10, L2 1e-4, dropout 0.2, OneCycleLR
EXPECTED = json.loads((DATA / "v0.1.0_mlp16_l2_dropout_onecycle.json").read_text(encoding="utf-8"))


def targets(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["_target_"]] if "_target_" in node else []
        return own + [target for value in node.values() for target in targets(value)]
    return [target for value in node for target in targets(value)] if isinstance(node, list) else []


def test_every_target_an_old_checkpoint_names_is_still_importable():
    hyper_parameters = load_checkpoint(CHECKPOINT)["hyper_parameters"]
    found = targets(hyper_parameters)
    assert "mlplab.models.mlp.MLP" in found and len(found) == 4  # model, loss, optimizer, scheduler
    for target in found:
        assert get_class(target)


def test_an_old_checkpoint_gives_the_logits_it_gave_when_it_was_written():
    network, _, datamodule_arguments = load_trained(str(CHECKPOINT))
    images = torch.linspace(-1, 2, 2 * 784).reshape(2, 1, 28, 28)
    with torch.no_grad():
        assert network(images).tolist() == EXPECTED["logits"]
    assert datamodule_arguments == EXPECTED["datamodule"]


def test_an_old_checkpoint_loads_through_lightning_with_weights_only():
    module = Classifier.load_from_checkpoint(CHECKPOINT, weights_only=True, map_location="cpu").eval()
    images = torch.linspace(-1, 2, 2 * 784).reshape(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(module(images), torch.tensor(EXPECTED["logits"]))
