"""A sweep as TensorBoard shows it: runs named by what varies, HParams columns that put it first, and the pages
themselves in a real browser."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from test_sweep import multirun

from mlplab import browser

from conftest import SYNTHETIC, data_overrides

needs_browser = pytest.mark.skipif(browser.missing() is not None, reason=f"no browser: {browser.missing()}")
RUNS = ["0_optimizer=sgd", "1_optimizer=adam"]


@pytest.fixture(scope="module")
def sweep(synthetic_mnist, tmp_path_factory) -> Path:
    """Two optimizers on the synthetic data, with TensorBoard, constant overrides given as a user would."""
    folder = tmp_path_factory.mktemp("tensorboard") / "sweep"
    args = [*SYNTHETIC, *data_overrides(synthetic_mnist), "++trainer.limit_train_batches=12", "trainer.max_epochs=2"]
    result = multirun(*args, "optimizer=sgd,adam", f"hydra.sweep.dir={folder}")
    assert result.returncode == 0, result.stderr
    return folder


def test_runs_are_named_by_what_varies_and_the_hparams_columns_list_it_first(sweep):
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == RUNS
    events = EventAccumulator(str(sweep), size_guidance={"tensors": 0})
    events.Reload()
    [content] = events.PluginTagToContent("hparams").values()
    experiment = HParamsPluginData.FromString(content).experiment
    columns = [(info.name, info.differs) for info in experiment.hparam_infos]
    # SGD and Adam: the class, the learning rate and momentum (Adam's beta1) differ; nothing else does.
    assert columns[:3] == [("optimizer", True), ("lr", True), ("momentum", True)]
    assert not any(differs for _, differs in columns[3:]) and ("weight_decay", False) in columns
    assert [info.name.tag for info in experiment.metric_infos] == ["val/acc_best", "test/acc", "test/loss"]
