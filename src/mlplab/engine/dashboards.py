"""TensorBoard dashboards beyond the logged scalars: throughput, histograms, confusion matrices, mistakes, HParams."""

import math
import os
import socket
import time
import warnings
from collections.abc import Iterable
from functools import cache, partial
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf
from PIL import Image, ImageDraw, ImageFont
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
from tensorboard.summary.writer.record_writer import RecordWriter
from torch import Tensor, nn
from torch.utils.tensorboard.summary import hparams
from torchmetrics.classification import MulticlassConfusionMatrix

from mlplab.config.preflight import class_name
from mlplab.engine.runs import REPORTED_METRICS, atomic_write, read_metrics
from mlplab.idx import MEAN, STD

HPARAMS_SUFFIX = ".hparams"  # the end of the name of the event file that holds a run's HParams session
EXPERIMENT_SUFFIX = ".sweep"  # the event file that holds a sweep's HParams columns


def tensorboard(trainer: Trainer) -> TensorBoardLogger | None:
    """The run's TensorBoardLogger; None with logger=none or in debug=fast (Lightning's DummyLogger)."""
    return next((logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)), None)


class Dashboards(Callback):
    """Writes what TensorBoard shows beyond the logged scalars; does nothing when the run has no TensorBoardLogger.

    - at the start, with `graph`: the network, traced from the module's example_input_array (Graphs tab)
    - every epoch, with `histograms`: the network's weights (`weights/<parameter>`, what `Network.weights` names)
      and their gradients (`gradients/<parameter>`) after the epoch's last training batch
    - every validation epoch: `val/confusion_matrix`
    - after testing: `test/confusion_matrix`, and `test/misclassified`: up to `misclassified` wrongly classified
      test digits labelled with prediction and truth (0: none)
    - the mapping itself, every validation epoch: `weights/first_layer`, up to `weight_tiles` of the first
      layer's weight images (`Network.first_layer_images`: what each unit responds to; 0: none), and per layer of
      `Network.unit_layers` `val/dead_units/<n>`, the fraction of its units (or channels) that never fire on the
      validation set
    """

    def __init__(
        self, graph: bool = True, histograms: bool = True, misclassified: int = 32, weight_tiles: int = 64
    ) -> None:
        self.graph, self.histograms, self.misclassified = graph, histograms, misclassified
        self.weight_tiles = weight_tiles
        self.logger: TensorBoardLogger | None = None
        self.mistakes: list[tuple[Tensor, Tensor, Tensor]] = []  # (images, predictions, truths) of test batches
        self.fired: dict[int, Tensor] = {}  # hidden layer number -> which of its units fired on some image
        self.hooks: list[Any] = []

    def setup(self, trainer: Trainer, module: LightningModule, stage: str) -> None:
        self.logger = tensorboard(trainer)
        # Fed with the logits that the eval steps return (no second forward pass), on the module's device.
        # validate_args=False: its checks would wait for the GPU on every batch.
        self.matrix = MulticlassConfusionMatrix(module.net.num_classes, validate_args=False).to(module.device)

    def on_fit_start(self, trainer: Trainer, module: LightningModule) -> None:
        # Once per run: a resumed run (global_step > 0) already has its graph.
        if self.logger is not None and self.graph and trainer.global_step == 0:
            with warnings.catch_warnings():  # torch deprecates the torch.jit.trace that draws it: nothing to act on
                warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
                self.logger.experiment.add_graph(module.net, module.example_input_array.to(module.device))

    def on_train_batch_end(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        # The epoch's last training batch: validation comes next (and clears the gradients), the epoch's end after it.
        if self.logger is None or not self.histograms or not trainer.is_last_batch:
            return
        experiment, step = self.logger.experiment, trainer.global_step
        for name, weight in module.net.weights().items():
            # 64 even bins: TensorBoard's default of ~1,500 uneven ones takes 8 times as long for the same plot.
            experiment.add_histogram(f"weights/{name}", weight, step, bins=64)
            if weight.grad is not None:  # a frozen layer has none
                experiment.add_histogram(f"gradients/{name}", weight.grad, step, bins=64)

    def on_validation_epoch_start(self, trainer: Trainer, module: LightningModule) -> None:
        self.matrix.reset()
        if self.logger is not None and not trainer.sanity_checking:
            self.fired = {}
            layers = enumerate(module.net.unit_layers(), start=1)
            self.hooks = [layer.register_forward_hook(partial(self._fired, n)) for n, layer in layers]

    def _fired(self, layer: int, module: nn.Module, inputs: Any, output: Tensor) -> None:
        # A unit, or a convolution's channel, fires if it is positive for some image (at some place).
        fired = (output > 0).transpose(0, 1).flatten(1).any(dim=1)
        self.fired[layer] = fired if layer not in self.fired else self.fired[layer] | fired

    def on_validation_batch_end(
        self, trainer: Trainer, module: LightningModule, outputs: Tensor, batch: Any, batch_idx: int, *args: Any
    ) -> None:
        if self.logger is not None and not trainer.sanity_checking:  # the sanity check's batches are no epoch
            self.matrix.update(outputs, batch[1])

    def on_validation_epoch_end(self, trainer: Trainer, module: LightningModule) -> None:
        if self.logger is None or trainer.sanity_checking:
            return
        experiment, step = self.logger.experiment, trainer.global_step
        image = confusion_image(self.matrix.compute(), f"Validation, epoch {trainer.current_epoch}")
        experiment.add_image("val/confusion_matrix", image, step, dataformats="HWC")
        for hook in self.hooks:
            hook.remove()
        self.hooks = []
        for layer, fired in self.fired.items():
            experiment.add_scalar(f"val/dead_units/{layer}", 1 - fired.float().mean().item(), step)
        images = module.net.first_layer_images() if self.weight_tiles else None
        if images is not None:
            experiment.add_image("weights/first_layer", weight_tiles(images, self.weight_tiles), step, dataformats="HW")

    def on_test_epoch_start(self, trainer: Trainer, module: LightningModule) -> None:
        self.matrix.reset()
        self.mistakes = []

    def on_test_batch_end(
        self, trainer: Trainer, module: LightningModule, outputs: Tensor, batch: Any, batch_idx: int, *args: Any
    ) -> None:
        if self.logger is None:
            return
        images, labels = batch
        self.matrix.update(outputs, labels)
        wanted = self.misclassified - sum(len(kept) for _, _, kept in self.mistakes)
        if wanted > 0:
            predicted = outputs.argmax(dim=1)
            wrong = (predicted != labels).nonzero().squeeze(1)[:wanted]
            if len(wrong):
                self.mistakes.append((images[wrong].cpu(), predicted[wrong].cpu(), labels[wrong].cpu()))

    def on_test_epoch_end(self, trainer: Trainer, module: LightningModule) -> None:
        if self.logger is None:
            return
        step, experiment = trainer.global_step, self.logger.experiment
        image = confusion_image(self.matrix.compute(), "Test")
        experiment.add_image("test/confusion_matrix", image, step, dataformats="HWC")
        if self.mistakes:
            images, predicted, labels = (torch.cat(parts) for parts in zip(*self.mistakes, strict=True))
            image = misclassified_image(images, predicted, labels)
            experiment.add_image("test/misclassified", image, step, dataformats="HW")


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans, the font that ships with matplotlib, `size` pixels high."""
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


# The images are drawn with Pillow rather than as matplotlib figures: a tenth of the time (about 10 ms each).
CELL, LEFT, TOP, BOTTOM = 36, 64, 40, 48  # the confusion matrix's cells and margins, in pixels


def confusion_image(counts: Tensor, title: str) -> np.ndarray:
    """Counts per (true, predicted) class as an RGB image: the diagonal is right, every other number a confusion."""
    counts = counts.cpu().numpy()
    side = len(counts) * CELL
    # A log scale keeps the few confusions visible next to the diagonal's hundreds; empty cells stay white.
    shade = np.log1p(counts) / np.log1p(max(counts.max(), 1))
    colors = (matplotlib.colormaps["Blues"](shade)[..., :3] * 255).astype(np.uint8)
    colors[counts == 0] = 255
    image = Image.new("RGB", (LEFT + side + 16, TOP + side + BOTTOM), "white")
    image.paste(Image.fromarray(colors.repeat(CELL, axis=0).repeat(CELL, axis=1)), (LEFT, TOP))
    draw = ImageDraw.Draw(image)
    draw.rectangle((LEFT - 1, TOP - 1, LEFT + side, TOP + side), outline="gray")
    for (true, predicted), count in np.ndenumerate(counts):
        if count:
            center = (LEFT + (predicted + 0.5) * CELL, TOP + (true + 0.5) * CELL)
            color = "white" if shade[true, predicted] > 0.6 else "black"
            draw.text(center, str(count), fill=color, font=font(11), anchor="mm")
    for k in range(len(counts)):
        draw.text((LEFT + (k + 0.5) * CELL, TOP + side + 6), str(k), fill="black", font=font(13), anchor="mt")
        draw.text((LEFT - 8, TOP + (k + 0.5) * CELL), str(k), fill="black", font=font(13), anchor="rm")
    draw.text((LEFT + side / 2, TOP + side + BOTTOM - 8), "predicted", fill="black", font=font(13), anchor="mb")
    draw.text((6, TOP + side / 2), "true", fill="black", font=font(13), anchor="lm")
    title = f"{title}: {np.trace(counts)} of {counts.sum()} right"
    draw.text((LEFT + side / 2, TOP / 2), title, fill="black", font=font(15), anchor="mm")
    return np.asarray(image)


TILE_SIDE, TILE_GAP = 56, 2  # weight tiles: a small image enlarged to about 56 px (a 28 x 28 one twice), 2 px apart


def weight_tiles(images: Tensor, count: int, columns: int = 8) -> np.ndarray:
    """The first `count` weight images, each a grayscale tile scaled to its own largest magnitude: mid-gray is 0,
    white pixels excite the unit, black ones inhibit it."""
    units = images.detach()[:count].float().cpu().numpy()
    scale = np.abs(units).max(axis=(1, 2), keepdims=True)
    tiles = 0.5 + 0.5 * units / np.where(scale > 0, scale, 1)
    enlarge = max(1, TILE_SIDE // max(tiles.shape[1:]))  # a 5 x 5 filter is 11 times larger, 28 x 28 twice
    tiles = tiles.repeat(enlarge, axis=1).repeat(enlarge, axis=2)
    # White fills the last row; fewer tiles than columns (a GRU's three gates) make one row of their own width.
    laid = mosaic(tiles, min(columns, len(tiles)), ((0, TILE_GAP), (0, TILE_GAP)), fill=1)
    return (255 * laid).astype(np.uint8)


def mosaic(tiles: np.ndarray, columns: int, margins: tuple[tuple[int, int], ...], fill: float) -> np.ndarray:
    """Equal (H, W) tiles laid out in rows of `columns`, each framed by `margins` ((top, bottom), (left, right)
    pixels) of `fill`, which also fills the last row's missing tiles."""
    rows = math.ceil(len(tiles) / columns)
    tiles = np.concatenate([tiles, np.full((rows * columns - len(tiles), *tiles.shape[1:]), fill)])
    tiles = np.pad(tiles, ((0, 0), *margins), constant_values=fill)
    height, width = tiles.shape[1:]
    return tiles.reshape(rows, columns, height, width).swapaxes(1, 2).reshape(rows * height, columns * width)


SCALE, LABEL, GAP, TITLE = 3, 20, 4, 32  # misclassified digits: 28 px shown as 84, under a label; in pixels


def misclassified_image(images: Tensor, predicted: Tensor, labels: Tensor, columns: int = 8) -> np.ndarray:
    """Wrongly classified digits as a grayscale image, each under a label with the network's answer and the truth."""
    tiles = images[:, 0].numpy() * STD + MEAN  # undo the normalization: ink in [0, 1]
    tiles = tiles.repeat(SCALE, axis=1).repeat(SCALE, axis=2)
    laid = mosaic(tiles, columns, ((LABEL, GAP), (GAP, GAP)), fill=0)  # the label's strip above each digit
    rows, height, width = math.ceil(len(images) / columns), tiles.shape[1] + LABEL + GAP, tiles.shape[2] + 2 * GAP
    image = Image.new("L", (columns * width, TITLE + rows * height), 255)
    image.paste(Image.fromarray((255 * (1 - laid.clip(0, 1))).astype(np.uint8)), (0, TITLE))  # black ink
    draw = ImageDraw.Draw(image)
    title = "Misclassified test digits: prediction (truth)"
    draw.text((image.width / 2, TITLE / 2), title, fill=0, font=font(15), anchor="mm")
    for index, (answer, truth) in enumerate(zip(predicted.tolist(), labels.tolist(), strict=True)):
        row, column = divmod(index, columns)
        center = ((column + 0.5) * width, TITLE + row * height + LABEL / 2 + 2)
        draw.text(center, f"{answer} (true {truth})", fill=0, font=font(13), anchor="mm")
    return np.asarray(image)


def readable(value: Any) -> Any:
    """A config value as one HParams cell: a list as 512-256, a bool as on/off (TensorBoard shows it as 0 or 1)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if OmegaConf.is_list(value) or isinstance(value, list):
        return "-".join(str(item) for item in value)
    return value


def run_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run's choices as flat, readable values: one column each in TensorBoard's HParams tab.

    Every run has every key: TensorBoard takes the columns of a whole sweep from one of its runs.
    """
    optimizer, scheduler = cfg.optimizer, cfg.scheduler
    return {
        "optimizer": class_name(optimizer["_target_"]),
        "lr": optimizer.lr,
        # Adam's beta1 plays momentum's part (Lightning's LearningRateMonitor reports it as momentum too).
        "momentum": optimizer.get("momentum", optimizer.get("betas", [0.0])[0]),
        "weight_decay": optimizer.get("weight_decay", 0.0),
        "loss": class_name(cfg.loss["_target_"]),
        "model": class_name(cfg.model["_target_"]),
        # The model's own arguments, whatever they are: a sweep over models has the columns of all of them.
        **{key: readable(value) for key, value in cfg.model.items() if key != "_target_"},
        "l1": cfg.regularization.l1,
        "l2": cfg.regularization.l2,
        "early_stopping": readable(bool(cfg.callbacks.get("early_stopping"))),
        "batch_size": cfg.data.batch_size,
        "scheduler": class_name(scheduler.scheduler["_target_"]) if scheduler else "none",
        "seed": cfg.seed,
        "max_epochs": cfg.trainer.max_epochs,
    }


def log_hparams(trainer: Trainer, cfg: DictConfig, metrics: dict[str, Any]) -> None:
    """Writes the run's HParams session: its readable choices, how it ended (`status`: ok, or why it stopped early:
    diverged, interrupted, pruned) and the final metrics it has. A resumed run's session replaces the earlier one."""
    logger = tensorboard(trainer)
    if logger is None or not trainer.is_global_zero:  # one session per run: other DDP ranks have no writer
        return
    # TensorBoard shows a session's metric as the last value of that scalar: written at the last step, not at 0.
    step = trainer.global_step
    logger.log_metrics({name: metrics[name] for name in REPORTED_METRICS if name in metrics}, step)
    logger.finalize("success")  # testing closed the event file; this flushes and closes the one just written
    # The session goes in an event file of its own, so that a resume (into the same folder) can drop the earlier
    # one once its own is written: TensorBoard shows the first session it finds in a run's folder.
    folder = Path(logger.log_dir)
    earlier = list(folder.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"))
    # The session's start and end only, not the experiment (the columns) that torch writes with them: TensorBoard
    # takes the first experiment it finds for all runs, so a sweep writes its own (sweep_hparams); without one,
    # TensorBoard derives the columns from the sessions, those that vary first. (Lightning's log_hyperparams
    # writes no session at all without a metric.)
    _, session_start, session_end = hparams({**run_hparams(cfg), "status": metrics["status"]}, {})
    written = write_events(folder, HPARAMS_SUFFIX, (session_start, session_end), step)
    for path in earlier:
        if path != written:  # the same name when both were written in the same second by one process
            path.unlink()


def sweep_hparams(sweep_dir: Path) -> None:
    """Writes the HParams experiment of a sweep: the columns of TensorBoard's HParams table, the choices that vary
    across its runs first (the table shows only the first few), then the rest, and the reported metrics.

    TensorBoard takes the first experiment it finds for all runs; it goes into the first job's folder (an event
    file at the sweep's root would add an empty run named `.`)."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    runs = sorted(sweep_dir.rglob("hparams.yaml"))
    if not runs:  # logger=none: no TensorBoard
        return
    values: dict[str, list[Any]] = {}
    for path in runs:
        for name, value in {**run_hparams(OmegaConf.load(path)), "status": read_metrics(path.parent)["status"]}.items():
            values.setdefault(name, []).append(value)
    # A column varies if its runs differ, or if only some runs have it (a model's own argument, in a model sweep).
    varying = [name for name, seen in values.items() if len(set(seen)) > 1 or len(seen) < len(runs)]
    order = [*varying, *(name for name in values if name not in varying)]
    summary = hp.hparams_config_pb([hp.HParam(name) for name in order], [hp.Metric(name) for name in REPORTED_METRICS])
    content = HParamsPluginData.FromString(summary.value[0].metadata.plugin_data.content)
    for info in content.experiment.hparam_infos:
        info.differs = info.name in varying
    summary.value[0].metadata.plugin_data.content = content.SerializeToString()
    for earlier in sweep_dir.rglob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}"):
        earlier.unlink()  # a rebuilt sweep's experiment replaces the old one
    write_events(runs[0].parent, EXPERIMENT_SUFFIX, (summary,))


def write_events(folder: Path, suffix: str, summaries: Iterable[Summary], step: int = 0) -> Path:
    """An event file of its own, named like TensorBoard's (after which it sorts) but for the suffix, written whole
    or not at all (mlplab.engine.runs.atomic_write): TensorBoard's writer would leave half a file on a full disk, and
    its close() alone loses the error of its writing thread. Returns the file."""
    name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}{suffix}"

    def write(f: Any) -> None:
        records = RecordWriter(f)
        records.write(Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        for summary in summaries:
            records.write(Event(wall_time=time.time(), step=step, summary=summary).SerializeToString())

    atomic_write(folder / name, write)
    return folder / name
