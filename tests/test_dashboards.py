"""What a run shows in TensorBoard: scalars, HParams, images, histograms, graph, and a real server's data API."""

import json
import signal
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch import Callback, Trainer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from mlplab.engine.dashboards import Dashboards
from mlplab.engine.drawing import weight_tiles
from mlplab.errors import Diverged, Interrupted
from mlplab.training import build, train

from browser import tensorboard
from conftest import SYNTHETIC, compose_train

# Two epochs of 16 batches of 50 (800 training images), 4 per execution; the learning rate is logged every 2 batches,
# so at the end of every execution. TensorBoard's step counts optimizer steps; an epoch's values are at its last one.
OVERRIDES = [*SYNTHETIC, "trainer.max_epochs=2", "scheduler=cosine", "regularization=[dropout,l2]"]
EPOCH_ENDS = [16, 32]


def hparams_content(events: EventAccumulator) -> dict[str, HParamsPluginData]:
    """A run's HParams session, by tag: experiment, session start (the hparams), session end."""
    return {tag: HParamsPluginData.FromString(data) for tag, data in events.PluginTagToContent("hparams").items()}


@pytest.fixture(scope="module")
def run(synthetic_mnist, tmp_path_factory):
    """One run with TensorBoard on the synthetic data: (run folder, metrics, its events with nothing dropped)."""
    run_dir = tmp_path_factory.mktemp("dashboards") / "sgd_cosine"  # alone in its parent, as a sweep job
    metrics, _ = train(compose_train(OVERRIDES, run_dir, synthetic_mnist))
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    events.Reload()
    return run_dir, metrics, events


def test_scalars_include_learning_rate_and_throughput(run):
    _, metrics, events = run
    tags = set(events.Tags()["scalars"])
    assert {"train/loss_step", "train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best"} <= tags
    assert {"test/loss", "test/acc", "train/l2_penalty", "train/lr", "train/samples_per_s"} <= tags
    # Every log_every_n_steps=2 steps, whatever steps_per_execution is: cosine annealing over 2 epochs keeps lr 0.01
    # for the first epoch's 16 steps and halves it for the second's.
    lr = {event.step: event.value for event in events.Scalars("train/lr")}
    assert lr == pytest.approx({step: 0.01 if step <= 16 else 0.005 for step in range(2, 33, 2)})
    # One value per epoch, with the epoch's other values; each epoch's 800 images took less than the whole run.
    throughput = events.Scalars("train/samples_per_s")
    assert [event.step for event in throughput] == [event.step for event in events.Scalars("train/loss")]
    assert [event.step for event in throughput] == EPOCH_ENDS
    assert all(800 / metrics["train_time_s"] < event.value < 1e7 for event in throughput)


def test_hparams_session_holds_readable_choices_and_the_final_metrics(run):
    run_dir, metrics, events = run
    content = hparams_content(events)
    start = content["_hparams_/session_start_info"].session_start_info
    hparams = {name: value.string_value or value.number_value for name, value in start.hparams.items()}
    # Derived from the composed config: each chosen option's class, then its arguments by their dotted keys.
    assert hparams == {
        "model": "MLP",
        "model.input_dim": 784,
        "model.hidden_dims": "64-32",
        "model.num_classes": 10,
        "model.activation": "relu",
        "model.dropout": 0.2,
        "model.batch_norm": "off",
        "loss": "CrossEntropyLoss",
        "optimizer": "SGD",
        "optimizer.lr": 0.01,
        "optimizer.momentum": 0.9,
        "optimizer.weight_decay": 0.0,
        "scheduler.scheduler": "CosineAnnealingLR",
        "scheduler.scheduler.T_max": 2,
        "scheduler.interval": "epoch",
        "regularization.l2": "L2",
        "regularization.l2.strength": 1e-4,
        "data": "MNISTDataModule",
        "data.batch_size": 50,
        "data.eval_batch_size": 100,
        "data.val_size": 200,
        "data.split_seed": 0,
        "data.seed": 0,
        "callbacks.early_stopping": "none",
        "seed": 0,
        "max_epochs": 2,
        "status": "ok",
    }
    # No experiment (the columns): a sweep writes its own for all its runs (test_sweep_hparams_list_what_varies_first).
    assert "_hparams_/experiment" not in content and "hp_metric" not in events.Tags()["scalars"]
    # hparams.yaml keeps the whole resolved config, nested as in .hydra/config.yaml.
    full = yaml.safe_load((run_dir / "hparams.yaml").read_text(encoding="utf-8"))
    assert full["optimizer"]["_target_"] == "torch.optim.SGD" and full["model"]["hidden_dims"] == [64, 32]
    # TensorBoard shows a session's metric as the last value of the scalar of that name: the run's final one.
    saved = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    for name in ("val/acc_best", "test/acc", "test/loss"):
        # The latest step: the run's event files are read in name order, which need not be the order written.
        last = max(events.Scalars(name), key=lambda event: event.step)
        assert last.value == pytest.approx(saved[name]) and saved[name] == metrics[name]
        assert last.step == EPOCH_ENDS[-1]  # after training, not back at step 0
    assert 0.5 < saved["test/acc"] <= 1 and saved["val/acc_best"] >= saved["val/acc"]


def test_a_run_that_diverged_keeps_its_hparams_session(synthetic_mnist, tmp_path):
    run_dir = tmp_path / "lr_1e12"
    with pytest.raises(Diverged):
        train(compose_train([*SYNTHETIC, "optimizer.lr=1e12"], run_dir, synthetic_mnist))
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    content = hparams_content(events)
    start = content["_hparams_/session_start_info"].session_start_info
    assert start.hparams["status"].string_value == "diverged" and start.hparams["optimizer.lr"].number_value == 1e12
    assert "_hparams_/session_end_info" in content
    # It stopped before validating: no metric to show.
    assert not {"val/acc_best", "test/acc", "test/loss"} & set(events.Tags()["scalars"])


class InterruptSecondExecution(Callback):
    """As Ctrl-C does (mlplab.engine.callbacks.Interruption): save the training state, then stop."""

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        if trainer.global_step == 8:
            trainer.save_checkpoint(Path(trainer.default_root_dir) / "checkpoints" / "stop.ckpt", weights_only=False)
            raise Interrupted("SIGINT at epoch 0", signal.SIGINT)


def session_status(run_dir: Path) -> str:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return hparams_content(events)["_hparams_/session_start_info"].session_start_info.hparams["status"].string_value


def test_a_resumed_run_shows_the_session_of_its_real_end(synthetic_mnist, tmp_path):
    run_dir = tmp_path / "interrupted"
    with pytest.raises(Interrupted):
        train(compose_train(SYNTHETIC, run_dir, synthetic_mnist), callbacks=[InterruptSecondExecution()])
    assert session_status(run_dir) == "interrupted"
    # The resume writes into the same folder, where TensorBoard would show the first session it finds.
    train(compose_train([*SYNTHETIC, f"ckpt_path={run_dir / 'checkpoints' / 'stop.ckpt'}"], tmp_path, synthetic_mnist))
    assert session_status(run_dir) == "ok"
    assert len(list(run_dir.glob("events.out.tfevents.*.hparams"))) == 1


def test_images_show_confusion_matrices_and_misclassified_digits(run):
    _, metrics, events = run
    images = {"val/confusion_matrix", "test/confusion_matrix", "test/misclassified", "weights/first_layer"}
    assert set(events.Tags()["images"]) == images
    assert [image.step for image in events.Images("val/confusion_matrix")] == EPOCH_ENDS
    [confusion] = events.Images("test/confusion_matrix")
    assert confusion.encoded_image_string.startswith(b"\x89PNG") and (confusion.width, confusion.height) == (440, 448)
    # 8 digits a row, each 92 px wide and 108 px tall with its label, under a 32 px title: a row per 8 mistakes.
    [grid] = events.Images("test/misclassified")
    wrong = round((1 - metrics["test/acc"]) * 300)
    rows = -(-min(wrong, 32) // 8)
    assert wrong > 0 and (grid.width, grid.height) == (8 * 92, 32 + rows * 108)


def test_histograms_of_each_weight_and_its_gradients(run):
    _, _, events = run
    sizes = {"layers.1.weight": 784 * 64, "layers.4.weight": 64 * 32, "layers.7.weight": 32 * 10}  # with dropout
    tags = {f"{kind}/{layer}" for kind in ("weights", "gradients") for layer in sizes}
    assert set(events.Tags()["histograms"]) == tags
    for tag in tags:
        epochs = events.Histograms(tag)
        assert [event.step for event in epochs] == EPOCH_ENDS
        histogram = epochs[-1].histogram_value
        assert histogram.num == sizes[tag.split("/")[1]] and histogram.min < 0 < histogram.max
        assert histogram.sum_squares > 0  # real gradients, not zeros


def test_graph_is_written_once(run):
    run_dir, _, events = run
    files = sorted(run_dir.glob("events.out.tfevents.*"))
    graphs = [event for file in files for event in EventFileLoader(str(file)).Load() if event.HasField("graph_def")]
    assert len(graphs) == 1  # at the start of training, not again for testing
    assert [node.op for node in events.Graph().node].count("aten::linear") == 3


def test_graph_of_a_batch_norm_network_traces_from_the_single_example_image(make_cfg):
    cfg = make_cfg("regularization=batch_norm")
    _, module, trainer = build(cfg)
    assert module.example_input_array.shape == (1, 1, 28, 28)  # batch norm takes one image in eval mode
    [dashboards] = [c for c in trainer.callbacks if isinstance(c, Dashboards)]
    dashboards.setup(trainer, module, "fit")
    dashboards.on_fit_start(trainer, module)
    trainer.logger.finalize("success")
    events = EventAccumulator(cfg.paths.output_dir)
    events.Reload()
    assert [node.op for node in events.Graph().node].count("aten::batch_norm") == 2


def test_without_tensorboard_runs_work_and_write_no_events(make_cfg, tmp_path):
    # debug=fast: Lightning swaps the logger for a DummyLogger, which the dashboards leave alone too.
    for overrides in (["logger=none", "trainer.max_epochs=1"], ["debug=fast"]):
        cfg = make_cfg(*overrides)
        cfg.paths.output_dir = str(tmp_path / overrides[0])
        metrics, objects = train(cfg)
        [dashboards] = [c for c in objects["trainer"].callbacks if isinstance(c, Dashboards)]
        assert metrics["status"] == "ok" and dashboards.logger is None and 0 < metrics["test/acc"] <= 1
        assert not list((tmp_path / overrides[0]).glob("events.out.tfevents.*"))


def get(url: str, data: dict | None = None) -> object:
    body = json.dumps(data).encode() if data is not None else None
    headers = {"Content-Type": "application/json"} if body else {}
    # TensorBoard refuses POSTs without this header (a guard against cross-site requests).
    headers["X-XSRF-Protected"] = "1"
    with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as response:
        return json.loads(response.read())


def test_tensorboard_serves_the_run(run, tmp_path):
    run_dir, metrics, _ = run
    with tensorboard(run_dir.parent, tmp_path) as base:
        assert get(base + "data/runs") == ["sgd_cosine"]
        tags = get(base + "data/plugin/scalars/tags")["sgd_cosine"]
        assert {"val/acc", "train/loss", "train/lr", "train/samples_per_s", "test/acc"} <= set(tags)
        query = urllib.parse.urlencode({"run": "sgd_cosine", "tag": "test/acc"})
        [*_, (_, step, value)] = get(base + "data/plugin/scalars/scalars?" + query)
        assert step == EPOCH_ENDS[-1] and value == pytest.approx(metrics["test/acc"])
        assert "test/misclassified" in get(base + "data/plugin/images/tags")["sgd_cosine"]
        assert "gradients/layers.1.weight" in get(base + "data/plugin/histograms/tags")["sgd_cosine"]
        experiment = get(base + "data/plugin/hparams/experiment", {"experimentName": ""})
        assert {info["name"] for info in experiment["hparamInfos"]} >= {
            "optimizer",
            "optimizer.lr",
            "model.hidden_dims",
            "seed",
        }
    assert (tmp_path / ".tensorboard-info").is_dir()


def test_the_mapping_is_visible_first_layer_tiles_and_dead_units(run):
    run_dir, _, events = run
    tiles = events.Images("weights/first_layer")
    assert [event.step for event in tiles] == EPOCH_ENDS  # every validation epoch
    # 64 hidden units (the synthetic runs' first layer) in 8 columns of 56 px tiles, 2 px apart.
    assert (tiles[-1].width, tiles[-1].height) == (8 * 58, 8 * 58)
    for layer in (1, 2):  # both hidden ReLU layers
        dead = events.Scalars(f"val/dead_units/{layer}")
        assert [event.step for event in dead] == EPOCH_ENDS and all(0 <= event.value <= 1 for event in dead)


def test_weight_tiles_show_each_units_weights_scaled_to_its_own_largest():
    weight = torch.zeros(3, 28, 28)
    weight[0, 0, 0], weight[1, 0, 0], weight[2, 0, 0] = 2.0, -0.5, 0.0  # excites, inhibits, nothing
    image = weight_tiles(weight, count=3, columns=2)
    assert image.shape == (2 * 58, 2 * 58) and image.dtype == np.uint8
    assert image[0, 0] == 255 and image[0, 58] == 0 and image[58, 0] == 127  # top-left pixel of each tile
    assert image[2, 2] == 127 and image[58, 58] == 255  # a zero weight is mid-gray; the empty 4th tile white


def test_dead_units_count_those_that_never_fire_on_the_validation_set(synthetic_mnist, tmp_path):
    class KillUnits(Callback):  # half of the first layer's units get a bias no image can overcome
        def on_validation_epoch_start(self, trainer, module) -> None:
            with torch.no_grad():
                module.net.layers[1].bias[:32] = -1e6

    cfg = compose_train([*SYNTHETIC, "trainer.max_epochs=1"], tmp_path / "run", synthetic_mnist)
    train(cfg, callbacks=[KillUnits()])
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0})
    events.Reload()
    [dead] = events.Scalars("val/dead_units/1")
    assert dead.value >= 0.5  # the 32 killed of 64, and any that died in training


def test_a_small_filter_is_enlarged_to_a_visible_tile():
    filters = torch.zeros(6, 5, 5)
    filters[:, 0, 0] = 1.0  # each filter's top-left weight excites
    image = weight_tiles(filters, count=6, columns=8)
    # 5 px enlarged 11 times (55 px) with a 2 px gap; six filters make one row of six.
    assert image.shape == (57, 6 * 57)
    assert image[0, 0] == image[10, 10] == 255 and image[11, 11] == 127 and image[55, 55] == 255


def test_dead_channels_of_a_convolution_count_per_channel(synthetic_mnist, tmp_path):
    class KillChannels(Callback):  # 3 of the first convolution's 6 channels get a bias no image can overcome
        def on_validation_epoch_start(self, trainer, module) -> None:
            with torch.no_grad():
                module.net.features[0].bias[:3] = -1e6

    cfg = compose_train([*SYNTHETIC, "model=cnn", "trainer.max_epochs=1"], tmp_path / "run", synthetic_mnist)
    train(cfg, callbacks=[KillChannels()])
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    # Per channel, not per pixel: 3 of 6 channels never fire; a live channel fires somewhere on some image.
    assert events.Scalars("val/dead_units/1")[0].value == 0.5
    # Two convolution stages and two dense layers: four layers of units.
    assert {tag for tag in events.Tags()["scalars"] if tag.startswith("val/dead_units/")} == {
        f"val/dead_units/{n}" for n in (1, 2, 3, 4)
    }
    [tiles] = events.Images("weights/first_layer")
    assert (tiles.width, tiles.height) == (6 * 57, 57)  # six 5 x 5 filters, enlarged, in one row
