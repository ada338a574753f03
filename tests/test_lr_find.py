"""The learning-rate range test on the synthetic data."""

import json
import subprocess
import sys

import pytest
import torch
from lightning.pytorch import seed_everything
from test_sweep import multirun, read_csv

from mlplab.errors import InputError, RunStopped
from mlplab.experiments.lr_find import Diverging, RangeTest, lr_find, range_test, range_test_config
from mlplab.training import build, train

from conftest import REPO, SYNTHETIC, compose_train, data_overrides, real_data

# Plain SGD on the synthetic digits: 16 batches an epoch, so 150 steps cross several epochs.
SETTINGS = ["optimizer=sgd", "lr_find.min_lr=1e-4", "lr_find.max_lr=100", "lr_find.steps=150", "logger=none"]


def compose_lr_find(synthetic_mnist, tmp_path, *overrides: str):
    return compose_train([*SYNTHETIC, *overrides], tmp_path, synthetic_mnist, config_name="lr_find")


@pytest.fixture(scope="module")
def found(synthetic_mnist, tmp_path_factory):
    """`python src/lr_find.py` on the synthetic data: (its stdout, lr_find.json, the run folder)."""
    folder = tmp_path_factory.mktemp("lr_find")
    command = [sys.executable, str(REPO / "src" / "lr_find.py"), *SYNTHETIC, *data_overrides(synthetic_mnist)]
    result = subprocess.run([*command, *SETTINGS, f"hydra.run.dir={folder}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads((folder / "lr_find.json").read_text(encoding="utf-8")), folder


@pytest.mark.slow
def test_the_test_says_what_to_train_with_and_writes_its_curve(found):
    stdout, result, folder = found
    smoothed = result["curve"]["smoothed_loss"]
    lowest = smoothed.index(min(smoothed))
    assert smoothed[lowest] < 0.5 * smoothed[0]  # the easy synthetic digits: it falls, and at lr 100 still does
    assert not result["diverged"] and "raise lr_find.max_lr to see where it diverges" in stdout
    lrs = result["curve"]["lr"]
    assert lrs[0] == pytest.approx(1e-4) and lrs[1] / lrs[0] == pytest.approx((100 / 1e-4) ** (1 / 149))
    steepest = result["suggestions"]["steepest"]
    assert lrs[0] < steepest < lrs[lowest] and result["suggestions"]["minimum/10"] == pytest.approx(lrs[lowest] / 10)
    assert f"steepest descent of the smoothed loss: optimizer.lr={steepest:.3g}" in stdout
    [command] = [line for line in stdout.splitlines() if line.startswith("train with it: ")]
    assert command.startswith("train with it: python src/train.py data.val_size=200 ")
    assert command.endswith(f"optimizer=sgd logger=none optimizer.lr={steepest:.3g}")
    assert (folder / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    assert (folder / "lr_find.csv").read_text(encoding="utf-8").splitlines()[0] == "step,lr,loss,smoothed_loss"


class Optimizer:
    def __init__(self) -> None:
        self.param_groups = [{"lr": None}]


class Run:
    loggers: list = []


def test_the_test_stops_once_the_smoothed_loss_passes_its_divergence_bound():
    test = RangeTest(1e-3, 1e3, 7, smoothing=0.0, divergence=4.0)  # no smoothing: the losses as they are
    optimizer = Optimizer()
    with pytest.raises(Diverging):
        for loss in (2.0, 1.0, 0.5, 1.5, 2.5, 10.0):
            test.on_before_backward(Run(), None, torch.tensor(loss))
            test.on_before_optimizer_step(Run(), None, optimizer)
    assert test.losses == [2.0, 1.0, 0.5, 1.5, 2.5] and len(test.lrs) == 5  # 2.5 > 4 x 0.5 ended it
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 1e6 ** (3 / 6))  # the last step that ran: the 4th


@pytest.mark.slow
def test_training_at_the_suggestion_beats_a_hundred_times_more_and_less(found, make_cfg, tmp_path):
    steepest = found[1]["suggestions"]["steepest"]
    losses = {}
    for factor in (1, 100, 0.01):
        cfg = make_cfg("optimizer=sgd", f"optimizer.lr={steepest * factor}", "trainer.max_epochs=2", "logger=none")
        cfg.paths.output_dir = str(tmp_path / str(factor))
        try:
            losses[factor] = train(cfg)[0]["val/loss"]
        except RunStopped:  # diverged: worse than any loss
            losses[factor] = float("inf")
    assert losses[1] < losses[100] and losses[1] < losses[0.01], losses


def test_the_model_is_left_as_it_was_and_steps_per_execution_changes_nothing(synthetic_mnist, tmp_path):
    curves = []
    for steps in (1, 4):
        cfg = compose_lr_find(synthetic_mnist, tmp_path / str(steps), *SETTINGS, f"steps_per_execution={steps}")
        test = RangeTest(1e-4, 100, 150, 0.98, 4.0)
        seed_everything(cfg.seed)
        datamodule, module, trainer = build(range_test_config(cfg), callbacks=[test])
        before = {name: value.clone() for name, value in module.net.state_dict().items()}
        range_test(datamodule, module, trainer, test)
        for name, value in module.net.state_dict().items():
            assert torch.equal(value, before[name]), name  # weights and batch-norm buffers
        curves.append(test.losses)
    assert curves[0] == curves[1]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr_find.min_lr=0", r"lr_find.min_lr=0: must be a number > 0"),
        ("lr_find.max_lr=1e-7", r"lr_find.max_lr=1e-07: must be > lr_find.min_lr \(1e-06\)"),
        ("lr_find.steps=5", r"lr_find.steps=5: must be an integer >= 20"),
        ("lr_find.divergence=1", r"lr_find.divergence=1: must be a number > 1"),
    ],
)
def test_bad_settings_are_named(synthetic_mnist, tmp_path, override, message):
    with pytest.raises(InputError, match=message):
        lr_find(compose_lr_find(synthetic_mnist, tmp_path, override))


# Adam at too high a rate kills the ReLUs rather than blowing up: its loss settles at ln 10 = 2.30, which can stay
# under 4 times its minimum (seen on 2026-12-03 on this machine, also before the models were added); 3 times it is not.
@real_data
@pytest.mark.parametrize(
    ("optimizer", "low", "high", "divergence"), [("sgd", 0.03, 1.0, 4.0), ("adam", 1e-4, 1e-2, 3.0)]
)
@pytest.mark.slow
def test_on_real_mnist_the_loss_falls_then_diverges_and_the_suggestion_is_where_these_optimizers_train(
    tmp_path, optimizer, low, high, divergence
):
    overrides = [f"optimizer={optimizer}", f"lr_find.divergence={divergence}", "logger=none"]
    result = lr_find(compose_train(overrides, tmp_path, config_name="lr_find"))
    smoothed = result["curve"]["smoothed_loss"]
    assert result["diverged"] and min(smoothed) < 0.8 * smoothed[0]
    assert low < result["suggestions"]["steepest"] < high


@real_data
@pytest.mark.slow
def test_on_real_mnist_sgd_at_the_suggestion_trains_as_well_as_the_best_of_a_coarse_grid(tmp_path):
    """The issue's check: 3 epochs of the lesson's network at the steepest-descent suggestion come within 0.5
    points of validation accuracy of the best learning rate on a grid half a decade apart."""
    found = lr_find(compose_train(["optimizer=sgd", "logger=none"], tmp_path / "find", config_name="lr_find"))
    suggested = f"{found['suggestions']['steepest']:.3g}"
    grid = ["0.01", "0.03", "0.1", "0.3", "1.0"]
    sweep = tmp_path / "sweep"
    lrs = f"optimizer.lr={','.join([*grid, suggested])}"
    result = multirun("optimizer=sgd", lrs, "trainer.max_epochs=3", "logger=none", f"hydra.sweep.dir={sweep}")
    rows = {r["optimizer.lr"]: r for r in read_csv(sweep / "results.csv")}
    assert rows[suggested]["status"] == "ok", result.stderr
    accuracy = {lr: float(r["val/acc_best mean"]) for lr, r in rows.items() if r["status"] == "ok"}
    best = max(accuracy[lr] for lr in grid if lr in accuracy)  # lr 1.0 diverges: recorded, not compared
    assert accuracy[suggested] >= best - 0.005, (suggested, accuracy)
