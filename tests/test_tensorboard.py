"""A sweep as TensorBoard shows it: runs named by what varies, HParams columns that put it first, and the pages
themselves in a real browser."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from test_sweep import multirun

from mlplab.engine.runs import read_metrics

import browser
from conftest import SYNTHETIC, data_overrides

RUNS = ["0_optimizer=sgd", "1_optimizer=adam"]


@pytest.fixture(scope="module")
def sweep(synthetic_mnist, tmp_path_factory) -> Path:
    """Two optimizers on the synthetic data, with TensorBoard, constant overrides given as a user would."""
    folder = tmp_path_factory.mktemp("tensorboard") / "sweep"
    args = [*SYNTHETIC, *data_overrides(synthetic_mnist), "++trainer.limit_train_batches=12", "trainer.max_epochs=2"]
    result = multirun(*args, "optimizer=sgd,adam", f"hydra.sweep.dir={folder}")
    assert result.returncode == 0, result.stderr
    return folder


@pytest.mark.slow
def test_runs_are_named_by_what_varies_and_the_hparams_columns_list_it_first(sweep):
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == RUNS
    assert not list(sweep.glob("events.*"))  # no empty run named `.`: the columns go with the first run
    events = EventAccumulator(str(sweep / RUNS[0]), size_guidance={"tensors": 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/experiment"]
    experiment = HParamsPluginData.FromString(content).experiment
    columns = [(info.name, info.differs) for info in experiment.hparam_infos]
    # SGD and Adam: the class and the learning rate differ, and each has arguments the other lacks; nothing else does.
    varying = ["optimizer", "optimizer.lr", "optimizer.momentum", "optimizer.betas", "optimizer.eps"]
    assert columns[:5] == [(name, True) for name in varying]
    assert not any(differs for _, differs in columns[5:]) and ("optimizer.weight_decay", False) in columns
    assert [info.name.tag for info in experiment.metric_infos] == ["val/acc_best", "test/acc", "test/loss"]


def shown_number(value: float) -> str:
    """A number as TensorBoard's HParams table shows it: 5 significant digits (JavaScript's toPrecision(5))."""
    return f"{value:#.5g}"


@pytest.mark.browser
@pytest.mark.slow
def test_tensorboard_shows_what_the_sweep_asks_at_a_glance(sweep, tmp_path):
    screenshots = tmp_path / "screenshots"
    screenshots.mkdir()
    with browser.tensorboard(sweep, tmp_path) as base, browser.chromium(width=1800) as driver:
        # Scalars: both runs by what varies, val/acc drawn for each, one learning-rate chart, no clutter.
        text = browser.open_page(driver, base + "#scalars&tagFilter=val%2Facc", ["val/acc", *RUNS])
        runs = text[text.index("\nRuns\n") :].split("Toggle All Runs")[0].split("\n")
        assert [line for line in runs if line in RUNS or line == "."] == RUNS  # no empty `.` run
        charts = browser.wait_for(lambda: (c := browser.scalar_charts(driver)).get("val/acc", 0) >= 4 and c)
        assert charts["val/acc"] >= 2 * len(RUNS)  # a raw and a smoothed line per run
        assert "train/lr" in charts and not [tag for tag in charts if tag == "epoch" or tag.startswith("lr-")]
        driver.save_screenshot(str(screenshots / "scalars.png"))

        # HParams: one row per run, what varies in the first columns, the runs' real final metrics.
        rows = browser.hparams_rows(driver, base, count=len(RUNS))
        assert [row["Trial ID"] for row in rows] == RUNS
        # TensorBoard sorts what varies by name
        assert list(rows[0])[1:6] == [
            "optimizer",
            "optimizer.betas",
            "optimizer.eps",
            "optimizer.lr",
            "optimizer.momentum",
        ]
        for row in rows:
            metrics = read_metrics(sweep / row["Trial ID"])
            assert row["optimizer"] == {"0_optimizer=sgd": "SGD", "1_optimizer=adam": "Adam"}[row["Trial ID"]]
            assert row["val/acc_best"] == shown_number(metrics["val/acc_best"])
            assert row["test/acc"] == shown_number(metrics["test/acc"])
        driver.save_screenshot(str(screenshots / "hparams.png"))

        # Images: each run's test confusion matrix, loaded.
        browser.open_page(driver, base + "#images&tagFilter=confusion", ["test/confusion_matrix", *RUNS])
        loaded = browser.wait_for(lambda: driver.execute_script(browser.LOADED_IMAGES) >= 2 * len(RUNS) and True)
        assert loaded
        driver.save_screenshot(str(screenshots / "images.png"))
    print(f"screenshots: {screenshots}")
