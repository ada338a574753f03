"""The LightningModule: network, loss, L1/L2 penalties, metrics, optimizer and schedule."""

from collections import defaultdict
from functools import partial
from typing import Any

import torch
from hydra.utils import instantiate
from lightning.pytorch import LightningModule
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mlplab.data import Chunk, chunk_images, last_chunk
from mlplab.errors import Diverged

Batch = tuple[Tensor, Tensor]

# The hooks that Lightning's manual_backward and LightningOptimizer.step run around every optimizer step.
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


class Classifier(LightningModule):
    """Trains the network that `model` describes, on training batches that arrive in chunks (mlplab.data.Chunks).

    `model`, `loss`, `optimizer` and `scheduler` are Hydra configs (plain dicts with `_target_`), kept as
    plain hyperparameters so that a checkpoint loads under `weights_only=True` with no extra arguments.
    """

    def __init__(
        self,
        model: dict[str, Any],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        l1: float = 0.0,
        l2: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.automatic_optimization = False  # training_step steps once per batch of a chunk
        self.net = instantiate(model)
        self.criterion = instantiate(loss)
        classes = self.net.num_classes
        self.train_acc = MulticlassAccuracy(classes, average="micro")
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
        """The L1 and L2 terms that are switched on, over Linear weights only (no biases, no batch norm)."""
        if not (self.hparams.l1 or self.hparams.l2):
            return {}
        weights = [m.weight for m in self.net.modules() if isinstance(m, nn.Linear)]
        terms = {}
        if self.hparams.l1:
            terms["l1_penalty"] = self.hparams.l1 * sum(w.abs().sum() for w in weights)
        if self.hparams.l2:
            terms["l2_penalty"] = self.hparams.l2 * sum(w.pow(2).sum() for w in weights)
        return terms

    def training_step(self, chunk: Chunk, batch_idx: int) -> None:
        # The optimizer steps here, once per batch of the chunk, rather than once per Lightning batch: the
        # datamodule hands over several batches at a time so that Lightning's per-batch cost is paid less often.
        optimizer = self.optimizers()
        [schedule] = self.trainer.lr_scheduler_configs or [None]  # configure_optimizers makes one at most
        interval = schedule.interval if schedule else None
        if self.trainer.max_steps != -1:  # max_steps counts optimizer steps: it may end the run mid-chunk
            chunk = chunk[: self.trainer.max_steps - self.global_step]
        direct = self.direct_steps()
        losses, outputs, penalties = [], [], defaultdict(list)
        for x, y in chunk:
            logits = self.net(x)
            loss = self.criterion(logits, y)
            terms = self.penalties()
            self._optimize(sum(terms.values(), loss), optimizer, direct)
            if interval == "step":
                schedule.scheduler.step()
            losses.append(loss.detach())
            outputs.append(logits.detach())
            for name, value in terms.items():
                penalties[name].append(value.detach())
        if interval == "epoch" and last_chunk(self.trainer):  # where Lightning would step it: before validation
            schedule.scheduler.step()
        self._log_chunk(chunk, losses, outputs, penalties)

    def direct_steps(self) -> bool:
        """Whether this run's optimizer steps may skip Lightning's strategy and precision plugin.

        They may where all those would add is empty hooks: Lightning's plain single-device strategy (no DDP gradient
        sync, no XLA step), 32-true or bf16-mixed precision (no loss scaling), and no callback or module code in the
        hooks around backward and the step. Dispatching those empty hooks to every callback costs about 0.2 ms per
        step on a CPU, over 10% of a batch-64 step of the lesson's MLP.
        """
        trainer = self.trainer
        plugin = trainer.precision_plugin
        return (
            type(trainer.strategy) is SingleDeviceStrategy
            and (type(plugin) is Precision or (type(plugin) is MixedPrecision and plugin.scaler is None))
            and not any(is_overridden(method, self) for method in ("backward", "manual_backward"))
            and not any(is_overridden(hook, obj) for obj in [self, *trainer.callbacks] for hook in STEP_HOOKS)
        )

    def _optimize(self, loss: Tensor, optimizer: LightningOptimizer, direct: bool) -> None:
        """One optimizer step on `loss`: through Lightning, or `direct`ly on the torch optimizer."""
        optimizer.optimizer.zero_grad()
        if not direct:
            self.manual_backward(loss)
            optimizer.step()
            return
        loss.backward()
        # What LightningOptimizer.step does around the strategy's step: count it (global_step, max_steps), profile it.
        # Private to Lightning: a test checks global_step and the profiler's record of these steps.
        optimizer._on_before_step()
        optimizer.optimizer.step()
        optimizer._on_after_step()

    def _log_chunk(
        self, chunk: Chunk, losses: list[Tensor], outputs: list[Tensor], penalties: dict[str, list[Tensor]]
    ) -> None:
        """Check and log the chunk's steps: one GPU sync and one set of log calls per Lightning batch."""
        stacked = torch.stack(losses)
        finite = torch.isfinite(stacked)
        if not finite.all():  # stop now: every later step would be wasted
            first = int(finite.logical_not().nonzero()[0])
            step = self.global_step - len(losses) + first
            raise Diverged(f"train/loss is {losses[first].item()} at epoch {self.current_epoch}, step {step}")
        labels = [y for _, y in chunk]
        self.train_acc.update(torch.cat(outputs), torch.cat(labels))
        # Means over the chunk's images; Lightning weighs each chunk by its images for the epoch means.
        images = chunk_images(chunk)
        weights = torch.tensor([len(y) / images for y in labels], dtype=stacked.dtype, device=stacked.device)

        def mean(values: list[Tensor]) -> Tensor:
            # Not a matrix product: autocast (bf16-mixed) would compute that in bfloat16, to 3 digits.
            return (torch.stack(values) * weights).sum()

        # train/loss is the data loss alone, so runs with and without penalties compare fairly.
        # sync_dist: under DDP the epoch means cover every process's batches (a no-op in one process).
        kwargs = {"on_step": True, "on_epoch": True, "sync_dist": True, "batch_size": images}
        self.log("train/loss", mean(losses), prog_bar=True, **kwargs)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        for name, values in penalties.items():
            self.log(f"train/{name}", mean(values), **kwargs)

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
        values = self._eval_epoch_end("val")
        if self.trainer.sanity_checking:  # a couple of batches before training: not a real epoch
            return
        self.val_acc_best.update(values["val/acc"])
        # torchmetrics already reduced these across processes: sync_dist only tells Lightning so.
        self.log_dict({**values, "val/acc_best": self.val_acc_best.compute()}, prog_bar=True, sync_dist=True)

    def test_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._eval_epoch_end("test"), sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.hparams.optimizer)(self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        config = dict(self.hparams.scheduler)
        make_scheduler = instantiate(config.pop("scheduler"))
        # A null total_steps (OneCycleLR) means: every optimizer step of this run.
        if "total_steps" in make_scheduler.keywords and make_scheduler.keywords["total_steps"] is None:
            make_scheduler = partial(make_scheduler, total_steps=self.total_steps())
        # training_step steps it, at the `interval` of the config (step | epoch).
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": make_scheduler(optimizer), **config}}

    def total_steps(self) -> int:
        """The optimizer steps this fit will take: batches per epoch (of the chunks trained) times epochs."""
        trainer = self.trainer
        trainer.estimated_stepping_batches  # noqa: B018 (Lightning loads the training data to count its chunks)
        steps = trainer.train_dataloader.batches(trainer.num_training_batches) * trainer.max_epochs
        return steps if trainer.max_steps == -1 else min(steps, trainer.max_steps)
