"""The lesson's classifier as a LightningModule: network, loss, L1/L2 penalties, metrics, optimizer and schedule."""

from functools import partial
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mlplab.data import Batch
from mlplab.engine.execution import MultiStepModule, Plan
from mlplab.models.network import Network


class Classifier(MultiStepModule):
    """Trains the network that `model` describes with `loss`, `optimizer` and `scheduler`, plus L1/L2 penalties.

    `model`, `loss`, `optimizer` and `scheduler` are Hydra configs (plain dicts with `_target_`), kept as
    plain hyperparameters so that a checkpoint loads under `weights_only=True` with no extra arguments.
    `execution`: how training batches are executed, the fields of mlplab.engine.execution.Plan (default: one at a time).
    """

    def __init__(
        self,
        model: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
        execution: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(Plan(**execution) if execution else None)
        self.save_hyperparameters(logger=False)
        self.net: Network = instantiate(model, _convert_="all")
        self.criterion = instantiate(loss, _convert_="all")
        classes = self.net.num_classes
        self.eval_acc = nn.ModuleDict({s: MulticlassAccuracy(classes, average="micro") for s in ("val", "test")})
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in ("val", "test")})
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # a resumed run must remember its best epoch
        # For the model summary's sizes and TensorBoard's graph. Both run it in eval mode, where batch norm
        # takes a single image; a batch of 2 makes tracing the graph 7 times slower on the CPU (150 ms).
        self.example_input_array = torch.zeros(1, 1, 28, 28)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def penalties(self) -> dict[str, Tensor]:
        """The L1 and L2 terms that are switched on, over the network's weights (no biases, no normalization)."""
        if not (self.hparams.l1 or self.hparams.l2):
            return {}
        weights = self.net.weights().values()
        terms = {}
        if self.hparams.l1:
            terms["l1_penalty"] = self.hparams.l1 * sum(w.abs().sum() for w in weights)
        if self.hparams.l2:
            terms["l2_penalty"] = self.hparams.l2 * sum(w.pow(2).sum() for w in weights)
        return terms

    def train_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """One training batch, as in the lesson's loop: forward pass, loss, penalties. Returns what to minimise and
        what to log as train/<name>; MultiStepModule does the rest (zero_grad, backward, the optimizer step)."""
        images, labels = batch
        logits = self.net(images)
        loss = self.criterion(logits, labels)  # train/loss: the data loss alone, so runs with penalties compare
        penalties = self.penalties()
        accuracy = (logits.argmax(dim=1) == labels).float().mean()  # argmax: no gradient to detach
        return sum(penalties.values(), loss), {"loss": loss, "acc": accuracy, **penalties}

    def _eval_step(self, stage: str, batch: Batch) -> Tensor:
        x, y = batch
        logits = self.net(x)
        self.eval_loss[stage].update(self.criterion(logits, y), weight=len(y))
        self.eval_acc[stage].update(logits, y)
        return logits  # for callbacks: the dashboards' confusion matrices and misclassified digits

    def _eval_epoch_end(self, stage: str) -> dict[str, Tensor]:
        values = {f"{stage}/loss": self.eval_loss[stage].compute(), f"{stage}/acc": self.eval_acc[stage].compute()}
        self.eval_loss[stage].reset()
        self.eval_acc[stage].reset()
        return values

    def validation_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        values = self._eval_epoch_end("val")
        if self.trainer.sanity_checking:  # a couple of batches before training: not a real epoch
            return
        self.val_acc_best.update(values["val/acc"])
        # torchmetrics already reduced these across processes: sync_dist only tells Lightning so.
        self.log_dict({**values, "val/acc_best": self.val_acc_best.compute()}, prog_bar=True, sync_dist=True)

    def test_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.log_dict(self._eval_epoch_end("test"), sync_dist=True)

    def configure_optimizers(self) -> Any:
        # Plain values ("all"): an optimizer holds its arguments (NAdam's betas), and its state goes into checkpoints,
        # which weights_only loading refuses to read back with OmegaConf containers in them.
        optimizer = instantiate(self.hparams.optimizer, _convert_="all")(self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        config = dict(self.hparams.scheduler)
        make_scheduler = instantiate(config.pop("scheduler"), _convert_="all")
        # A null total_steps (OneCycleLR) means: every optimizer step of this run.
        if "total_steps" in make_scheduler.keywords and make_scheduler.keywords["total_steps"] is None:
            make_scheduler = partial(make_scheduler, total_steps=self.total_steps())
        # MultiStepModule steps it, at the `interval` of the config (step | epoch).
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": make_scheduler(optimizer), **config}}
