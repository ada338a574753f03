"""The lesson's classifier as a LightningModule: network, loss, penalties, metrics, optimizer and schedule.

`Classifier.training_batch` is the lesson's §5.4 loop for one batch (zero_grad, forward, loss, backward, step); the
engine (mlplab.engine.steps) runs it on every training batch and keeps accumulation, clipping and logging around it.
"""

from functools import partial
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mlplab.config.trust import check_targets
from mlplab.data import Batch
from mlplab.engine.checkpoints import load_checkpoint
from mlplab.engine.execution import Plan
from mlplab.engine.steps import BatchOptimizer, MultiStepModule
from mlplab.models.network import Network
from mlplab.penalties import Penalty


class Classifier(MultiStepModule):
    """Trains the network that `model` describes with `loss`, `optimizer` and `scheduler`, plus `penalties`.

    `model`, `loss`, `optimizer`, `scheduler` and each of `penalties` (by name: l1, l2, elastic_net, ...) are Hydra
    configs (plain dicts with `_target_`), kept as plain hyperparameters so that a checkpoint loads under
    `weights_only=True` with no extra arguments. `execution`: how training batches are executed, the fields of
    mlplab.engine.execution.Plan (default: one at a time). `l1`, `l2`: the penalty strengths of checkpoints written
    by version 0.1.0, which had no penalty configs.
    """

    def __init__(
        self,
        model: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        penalties: dict[str, dict[str, Any]] | None = None,
        execution: dict[str, Any] | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        super().__init__(Plan(**execution) if execution else None)
        self.save_hyperparameters(logger=False)
        self.net: Network = instantiate(model, _convert_="all")
        self.criterion = instantiate(loss, _convert_="all")
        penalties = {**legacy_penalties(l1, l2), **(penalties or {})}
        self.penalties: dict[str, Penalty] = {name: instantiate(config) for name, config in penalties.items()}
        classes = self.net.num_classes
        self.eval_acc = nn.ModuleDict({s: MulticlassAccuracy(classes, average="micro") for s in ("val", "test")})
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in ("val", "test")})
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # a resumed run must remember its best epoch
        # For the model summary's sizes and TensorBoard's graph. Both run it in eval mode, where batch norm
        # takes a single image; a batch of 2 makes tracing the graph 7 times slower on the CPU (150 ms).
        self.example_input_array = torch.zeros(1, 1, 28, 28)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, *args: Any, **kwargs: Any) -> "Classifier":
        """Lightning's load_from_checkpoint, once what the checkpoint's hyperparameters would build is checked
        (mlplab.config.trust: classes of the lab, torch or Lightning; `trusted_modules=[...]` names others)."""
        trusted = tuple(kwargs.pop("trusted_modules", ()))
        check_targets(load_checkpoint(checkpoint_path).get("hyper_parameters", {}), str(checkpoint_path), trusted)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_batch(self, batch: Batch, optimizer: BatchOptimizer) -> dict[str, Tensor]:
        """One training batch, the lesson's §5.4 loop. Returns what to log as train/<name>: means over the epoch."""
        inputs, labels = batch
        optimizer.zero_grad()
        outputs = self.net(inputs)
        loss = self.criterion(outputs, labels)  # train/loss: the data loss alone, so that runs with penalties compare
        weights = list(self.net.weights().values()) if self.penalties else []
        penalties = {f"{name}_penalty": penalty(weights) for name, penalty in self.penalties.items()}
        optimizer.backward(sum(penalties.values(), loss))  # the lesson's loss.backward(), penalties added
        optimizer.step()
        accuracy = (outputs.argmax(dim=1) == labels).float().mean()  # argmax: no gradient to detach
        return {"loss": loss, "acc": accuracy, **penalties}

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


def legacy_penalties(l1: float, l2: float) -> dict[str, dict[str, Any]]:
    """The penalty configs of a 0.1.0 checkpoint's l1 and l2 strengths (0: none)."""
    strengths = {"l1": (l1, "L1"), "l2": (l2, "L2")}
    return {name: {"_target_": f"mlplab.penalties.{cls}", "strength": s} for name, (s, cls) in strengths.items() if s}
