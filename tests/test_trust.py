"""A checkpoint cannot run code: what its hyperparameters would build is checked before anything is built (a class of
the family its key allows, from mlplab, torch, Lightning or a trusted package), and a refused one ends in one line
naming the file, the key and the target, with nothing built and nothing written."""

import copy
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from mlplab.config.overrides import split
from mlplab.config.trust import check_overrides, check_targets
from mlplab.engine.checkpoints import load_checkpoint
from mlplab.errors import InputError
from mlplab.module import Classifier
from mlplab.use.trained import load_trained

from conftest import SYNTHETIC, data_overrides, run_entry

LEGACY = Path(__file__).parent / "data" / "v0.1.0_mlp16_l2_dropout_onecycle.ckpt"


def tampered(tmp_path: Path, change) -> tuple[Path, Path]:
    """A copy of a real checkpoint whose hyperparameters `change` edits, and a file of the user's it might harm."""
    victim = tmp_path / "homework.txt"
    victim.write_text("my homework", encoding="utf-8")
    checkpoint = load_checkpoint(LEGACY)
    hyper_parameters = copy.deepcopy(checkpoint["hyper_parameters"])
    change(hyper_parameters, str(victim))
    checkpoint["hyper_parameters"] = hyper_parameters
    path = tmp_path / "shared.ckpt"
    torch.save(checkpoint, path)
    return path, victim


def file_writer(hyper_parameters: dict, victim: str) -> None:
    # builtins.open(victim, "w") empties the file: what Hydra's instantiate would call for this target.
    hyper_parameters["model"] = {"_target_": "builtins.open", "file": victim, "mode": "w"}


NOT_TRUSTED = "not a module of mlplab, torch or lightning"
CASES = [
    (file_writer, f"refused model._target_=builtins.open: {NOT_TRUSTED}"),
    (
        lambda h, v: h["model"].update(activation={"_target_": "pathlib.Path.write_text", "self": v, "data": ""}),
        "refused model.activation._target_=pathlib.Path.write_text: nothing is built there",
    ),
    (lambda h, v: h["loss"].update(_args_=[v]), "refused loss._target_=torch.nn.CrossEntropyLoss: positional _args_"),
    (
        lambda h, v: h["model"].update(_target_="torch.nn.Linear"),
        "refused model._target_=torch.nn.Linear: not a subclass of mlplab.models.network.Network",
    ),
    (
        lambda h, v: h["optimizer"].update(_target_="torch.save"),
        "refused optimizer._target_=torch.save: not a subclass of torch.optim.Optimizer",
    ),
]


@pytest.mark.parametrize(("change", "message"), CASES, ids=["open", "nested", "args", "not-a-network", "a-function"])
def test_a_checkpoint_that_would_build_something_else_is_refused_before_anything_is_built(tmp_path, change, message):
    path, victim = tampered(tmp_path, change)
    with pytest.raises(InputError) as refused:
        load_trained(str(path))
    assert str(refused.value).startswith(f"ckpt_path={path}: {message}") and "\n" not in str(refused.value)
    with pytest.raises(InputError, match="refused"):
        Classifier.load_from_checkpoint(path, weights_only=True)
    assert victim.read_text(encoding="utf-8") == "my homework"


def test_predict_refuses_a_file_writing_checkpoint_in_one_line_and_the_users_file_survives(tmp_path):
    path, victim = tampered(tmp_path, file_writer)
    image = tmp_path / "seven.png"
    Image.new("L", (28, 28)).save(image)
    status, out, err = run_entry("src/predict.py", [f"ckpt_path={path}", f"input={image}"], cwd=tmp_path)
    assert status == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"error: ckpt_path={path}: refused model._target_=builtins.open")
    assert victim.read_text(encoding="utf-8") == "my homework"


def test_the_labs_own_checkpoints_and_trusted_packages_pass():
    check_targets(load_checkpoint(LEGACY)["hyper_parameters"], "ckpt_path=old.ckpt")
    foreign = {"model": {"_target_": "collections.OrderedDict"}}
    with pytest.raises(
        InputError,
        match="not a module of mlplab, torch or lightning; if it is a package of yours that you trust, name it in",
    ):
        check_targets(foreign, "ckpt_path=x.ckpt")
    with pytest.raises(
        InputError, match="refused model._target_=collections.OrderedDict: not a subclass of mlplab.models"
    ):
        check_targets(foreign, "ckpt_path=x.ckpt", trusted=("collections",))


def test_a_resume_refuses_a_target_that_the_runs_recorded_overrides_set(synthetic_mnist, tmp_path):
    run_dir, victim = tmp_path / "run", tmp_path / "created_by_the_file"
    base = [*SYNTHETIC, *data_overrides(synthetic_mnist), "logger=none", "trainer.max_epochs=1"]
    assert run_entry("src/train.py", [*base, f"hydra.run.dir={run_dir}"])[0] == 0
    saved = run_dir / ".hydra" / "overrides.yaml"
    planted = ["+callbacks.evil._target_=pathlib.Path.touch", f"+callbacks.evil.self={victim}"]
    saved.write_text(saved.read_text(encoding="utf-8") + "".join(f"- {o}\n" for o in planted), encoding="utf-8")
    resume = [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=2"]
    status, _, err = run_entry("src/train.py", [*resume, f"hydra.run.dir={tmp_path / 'resume'}"])
    assert (status, err.strip().splitlines()[-1]) == (
        1,
        f"error: {saved}: refused +callbacks.evil._target_=pathlib.Path.touch: overrides read from a file choose "
        "options and set values, not what is built; if it is yours, give it on the command line",
    )
    assert not victim.exists()
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 0  # not trained on


@pytest.mark.parametrize(
    ("override", "refused"),
    [
        ("model._target_=builtins.open", True),
        ("+callbacks.x._target_=os.system", True),
        ("loss._args_=[1]", True),
        ("~model._partial_", True),
        ("model=cnn", False),
        ("optimizer.lr=0.1", False),
        ("+trainer.target=1", False),
    ],
)
def test_overrides_from_a_file_may_not_set_what_is_built(override, refused):
    if refused:
        with pytest.raises(InputError, match=re.escape(f"run.yaml: refused {override}: overrides read from a file")):
            check_overrides([override], "run.yaml")
        check_overrides([override], "run.yaml", typed={split(override)[0]})  # the command line's own: allowed
    else:
        check_overrides([override], "run.yaml")
