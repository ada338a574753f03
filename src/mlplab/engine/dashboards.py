"""TensorBoard dashboards beyond the logged scalars: histograms, confusion matrices, the first layer's weights, the
misclassified digits, the graph. The pictures are drawn by mlplab.engine.drawing, the HParams tab written by
mlplab.engine.hparams."""

import warnings
from functools import partial
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor, nn
from torchmetrics.classification import MulticlassConfusionMatrix

from mlplab.engine.drawing import confusion_image, misclassified_image, weight_tiles
from mlplab.engine.hparams import tensorboard


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
