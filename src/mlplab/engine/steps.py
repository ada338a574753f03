"""The machinery around each optimizer step, which the lesson's one-batch loop (mlplab.module.Classifier.training_batch)
calls without seeing it. Separation of concerns:

- `MultiStepModule.training_step` takes an execution of batches (mlplab.engine.execution) and runs the subclass's
  `training_batch(batch, optimizer)` on each, stopping at `trainer.max_steps`;
- `BatchOptimizer` is the `optimizer` that loop calls: its zero_grad, backward and step keep gradient accumulation,
  clipping, Lightning's strategy (or the direct path that skips its empty hooks) and the scheduler's steps out of
  the loop;
- after each execution, one check for a NaN loss, the epoch means of what the loop returned (train/<name>) and the
  step records that Lightning would have written one batch at a time.
"""

import math
import time
from collections import defaultdict
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.data import extract_batch_size
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor, nn
from torchmetrics import MaxMetric, Metric
from torchmetrics.utilities import dim_zero_cat

from mlplab.engine.execution import BatchLoader, ExecutedDataModule, Execution, Executions, Plan
from mlplab.errors import Diverged

# The hooks that Lightning's manual_backward and LightningOptimizer.step call around every optimizer step.
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
# The module's own bookkeeping, which the model summary leaves out (mlplab.engine.callbacks.NetworkSummary).
BOOKKEEPING = ("epoch_means", "last_step")


class EpochMean(Metric):
    """The mean of per-batch values over an epoch, weighted by the batches' images, computed from all of them at
    once: the same bits however the epoch's batches were grouped into executions, or split by a resume."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        # persistent: in checkpoints, so that a run resumed mid-epoch still averages over the whole epoch
        self.add_state("values", default=[], dist_reduce_fx="cat", persistent=True)
        self.add_state("images", default=[], dist_reduce_fx="cat", persistent=True)

    def update(self, values: Tensor, images: Tensor) -> None:
        self.values.append(values)
        self.images.append(images)

    def compute(self) -> Tensor:
        values, images = dim_zero_cat(self.values), dim_zero_cat(self.images)
        return (values.double() * images).sum() / images.sum()


class BatchOptimizer:
    """The run's optimizer as the one-batch loop calls it: `zero_grad()`, `backward(loss)`, `step()`.

    With `trainer.accumulate_grad_batches` N > 1, zero_grad clears the gradients only where an optimizer step
    begins, backward adds loss / N, and step steps only every N batches (and at the epoch's last, Lightning's rule).
    It records each step (its number, the batch's index in the execution, the learning rate) for the logs, and each
    loss for the NaN check.
    """

    def __init__(self, module: "MultiStepModule", first_step: int) -> None:
        self.module, self.optimizer = module, module.optimizers()
        self.accumulate = module.plan.accumulate_grad_batches
        [self.schedule] = module.trainer.lr_scheduler_configs or [None]  # configure_optimizers makes one at most
        self.direct = module.direct_steps(self.optimizer)
        self.first_step = first_step
        self.steps: list[tuple[int, int, float]] = []
        self.losses: list[Tensor] = []
        self.index, self.begins, self.ends = -1, True, True

    def at(self, position: int, epoch_end: bool) -> None:
        """The next batch is the one at `position` in the epoch (`epoch_end`: its last)."""
        self.index += 1
        self.begins = position % self.accumulate == 0
        self.ends = (position + 1) % self.accumulate == 0 or epoch_end

    def zero_grad(self) -> None:
        if self.begins:
            self.optimizer.zero_grad()

    def backward(self, loss: Tensor) -> None:
        self.losses.append(loss.detach())
        scaled = loss / self.accumulate if self.accumulate > 1 else loss
        scaled.backward() if self.direct else self.module.manual_backward(scaled)

    def step(self) -> None:
        if not self.ends:  # the gradients wait for the next batches of this optimizer step
            return
        self.steps.append(
            (self.first_step + len(self.steps) + 1, self.index, self.optimizer.optimizer.param_groups[0]["lr"])
        )
        if self.direct:
            self.module.on_before_optimizer_step(self.optimizer)
            _counted_step(self.optimizer)
        else:
            self.optimizer.step()
        if self.schedule and self.schedule.interval == "step":
            self.schedule.scheduler.step()


class MultiStepModule(LightningModule):
    """A LightningModule whose training_step trains each batch of an execution with
    `self.training_batch(batch, optimizer)`, which returns the tensors to log as `train/<name>` (means over the
    epoch's images). `optimizer` is a BatchOptimizer: the loop reads as a plain one, whatever the run's settings.
    """

    def __init__(self, plan: Plan | None = None) -> None:
        super().__init__()
        self.plan = plan or Plan()
        self.automatic_optimization = False  # training_step takes one optimizer step per batch (per accumulation)
        self.epoch_means = nn.ModuleDict()  # an EpochMean per name that training_batch logs
        self.accumulating = False  # whether gradients wait for more batches before the next optimizer step
        self.epoch_start: float | None = None  # for train/samples_per_s
        # The epoch's last optimizer step, the x-axis of its record. A step count is never NaN: "disable" skips the
        # check, which would wait for the GPU.
        self.last_step = MaxMetric(nan_strategy="disable")
        self.logged_in: int | None = None  # the epoch whose metrics are registered with Lightning
        self.epoch_images = 0

    def training_batch(self, batch: Any, optimizer: BatchOptimizer) -> dict[str, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must define training_batch(batch, optimizer)")

    def executions(self, loader: BatchLoader) -> Executions:
        """A training loader's batches in this module's executions (ExecutedDataModule hands them over so)."""
        return Executions(loader, self.plan, lambda: self.trainer.current_epoch)

    def training_step(self, execution: Execution, batch_idx: int) -> None:
        if execution.first == 0:  # an epoch begins: the means start afresh (a resume mid-epoch keeps its own)
            for mean in self.epoch_means.values():
                mean.reset()
        if execution.first == 0 or self.epoch_start is None:
            self.epoch_start, self.epoch_images = time.perf_counter(), 0
        first_step, max_steps = self.global_step, self.trainer.max_steps
        optimizer = BatchOptimizer(self, first_step)
        images, logged = [], defaultdict(list)
        for position, batch in execution:
            epoch_end = execution.last and position == execution.first + execution.size - 1
            optimizer.at(position, epoch_end)
            logs = self.training_batch(batch, optimizer)
            images.append(extract_batch_size(batch))
            for name, value in logs.items():
                logged[name].append(value.detach())
            if 0 <= max_steps <= first_step + len(optimizer.steps):  # the run ends inside this execution
                break
        self.accumulating = not optimizer.ends
        self._check_finite(torch.stack(optimizer.losses), first_step, optimizer.steps)
        if epoch_end and optimizer.schedule and optimizer.schedule.interval == "epoch":
            optimizer.schedule.scheduler.step()  # at the epoch's end, before validation
        self._log_execution(logged, images, epoch_end, optimizer.steps)

    def _check_finite(self, objectives: Tensor, first_step: int, steps: list[tuple[int, int, float]]) -> None:
        """Stop at a NaN or infinite objective: every later step would be wasted. One GPU sync per execution."""
        finite = torch.isfinite(objectives)
        if not finite.all():
            first = int(finite.logical_not().nonzero()[0])
            step = first_step + 1 + sum(index < first for _, index, _ in steps)  # the optimizer step it belongs to
            raise Diverged(f"train/loss is {objectives[first].item()} at epoch {self.current_epoch}, step {step}")

    def _log_execution(
        self, logged: dict[str, list[Tensor]], images: list[int], epoch_end: bool, steps: list[tuple[int, int, float]]
    ) -> None:
        """The execution's values into the epoch means, and its step records to the loggers."""
        stacked = {name: torch.stack(values) for name, values in logged.items()}
        self._update_epoch_means(stacked, torch.tensor(images, device=self.device))
        self.epoch_images += sum(images)
        self._write_records(stacked, epoch_end, steps)

    def _update_epoch_means(self, stacked: dict[str, Tensor], counts: Tensor) -> None:
        for name, values in stacked.items():
            if name not in self.epoch_means:
                self.epoch_means[name] = EpochMean().to(self.device)
                self.logged_in = None  # a new name: registered with Lightning below
            self.epoch_means[name].update(values, counts)
        self.last_step.update(float(self.global_step))
        # self.log costs about 0.5 ms a call. Logging a metric object registers it for the epoch, and Lightning
        # computes it at the epoch's end: so once an epoch, and in whichever execution comes first after a resume.
        if self.logged_in != self.current_epoch:
            for name in self.epoch_means:
                self.log(
                    f"train/{name}",
                    self.epoch_means[name],
                    on_step=False,
                    on_epoch=True,
                    metric_attribute=f"epoch_means.{name}",
                )
            # A logged `step` is the x-axis of a record in TensorBoard (Lightning's log_metrics): the optimizer steps.
            self.log("step", self.last_step, on_step=False, on_epoch=True, metric_attribute="last_step")
            self.logged_in = self.current_epoch

    def _write_records(self, stacked: dict[str, Tensor], epoch_end: bool, steps: list[tuple[int, int, float]]) -> None:
        """What Lightning would write one batch at a time: at every log_every_n_steps-th optimizer step the values of
        the batch that took it and the learning rate, and at the epoch's end its throughput. `steps`: (step, the
        batch's index in the execution, lr) per optimizer step."""
        records: dict[int, dict[str, float]] = {}
        due = [(step, index, lr) for step, index, lr in steps if step % self.plan.log_every_n_steps == 0]
        if due:
            names = list(stacked)
            values = torch.stack([stacked[name].float() for name in names])[:, [index for _, index, _ in due]].tolist()
            for column, (step, _, lr) in enumerate(due):
                records[step] = {f"train/{name}_step": values[row][column] for row, name in enumerate(names)}
                records[step]["train/lr"] = lr
        if epoch_end:  # training images per second over the epoch, validation left out
            # Under DDP each process trains an equal share of every batch: the run's rate is this one's × their count.
            records.setdefault(self.global_step, {})["train/samples_per_s"] = (
                self.epoch_images * self.trainer.world_size / (time.perf_counter() - self.epoch_start)
            )
            self.epoch_start = None
        for step, record in records.items():
            for logger in self.loggers:
                logger.log_metrics(record, step)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The epoch means of a run saved mid-epoch, made before Lightning loads their state.
        for key in checkpoint["state_dict"]:
            if key.startswith("epoch_means."):
                self.epoch_means[key.split(".")[1]] = EpochMean()

    # Validation and test results are drawn at the optimizer step they were computed after, as the training epoch's.
    def on_validation_epoch_end(self) -> None:
        self.log("step", float(self.global_step))

    def on_test_epoch_end(self) -> None:
        self.log("step", float(self.global_step))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Here, as in Lightning's automatic optimization: after the callbacks' hook, which sees unclipped gradients.
        if self.plan.gradient_clip_val:
            self.configure_gradient_clipping(optimizer, self.plan.gradient_clip_val, self.plan.gradient_clip_algorithm)

    def on_validation_model_zero_grad(self) -> None:
        if not self.accumulating:  # Lightning clears the gradients before validating, but not halfway through a step
            super().on_validation_model_zero_grad()

    def direct_steps(self, optimizer: LightningOptimizer) -> bool:
        """Whether this run's steps may skip Lightning's strategy and precision plugin, and their empty hooks.

        They may where those add nothing but empty hooks: Lightning's plain single-device strategy (no DDP gradient
        sync), 32-true or bf16-mixed precision without loss scaling, and no callback or module code in the hooks
        around backward and the step. Dispatching the empty hooks to every callback costs about 0.2 ms per step on
        a CPU, over 10% of a batch-64 step of the lesson's MLP. Counting a direct step needs two private methods
        of LightningOptimizer: without them (another Lightning release), every step takes Lightning's path.
        """
        trainer, plugin = self.trainer, self.trainer.precision_plugin
        return (
            all(callable(getattr(optimizer, name, None)) for name in ("_on_before_step", "_on_after_step"))
            and type(trainer.strategy) is SingleDeviceStrategy
            and (type(plugin) is Precision or (type(plugin) is MixedPrecision and plugin.scaler is None))
            and not any(is_overridden(method, self) for method in ("backward", "manual_backward"))
            and not any(is_overridden(hook, self, parent=MultiStepModule) for hook in STEP_HOOKS)
            and not any(is_overridden(hook, callback) for callback in trainer.callbacks for hook in STEP_HOOKS)
        )

    def total_steps(self) -> int:
        """The optimizer steps this fit will take (for a schedule over the whole run, such as OneCycleLR)."""
        trainer, plan = self.trainer, self.plan
        if not isinstance(trainer.datamodule, ExecutedDataModule):
            raise TypeError("total_steps counts the batches of an ExecutedDataModule's train_loader()")
        # The datamodule's loader, not the trainer's: Lightning's estimated_stepping_batches would set the fit loop's
        # up now, before a resumed run's checkpoint restores its position in the epoch, which then would never be.
        batches = plan.batches_per_epoch(len(trainer.datamodule.train_loader()))
        steps = math.ceil(batches / plan.accumulate_grad_batches) * trainer.max_epochs
        return steps if trainer.max_steps == -1 else min(steps, trainer.max_steps)


def _counted_step(optimizer: LightningOptimizer) -> None:
    """The torch optimizer's step, with what LightningOptimizer.step does around it in manual optimization: count it
    (trainer.global_step, max_steps) and profile it. Private to Lightning: direct_steps checks that both exist."""
    optimizer._on_before_step()
    optimizer.optimizer.step()
    optimizer._on_after_step()
