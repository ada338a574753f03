"""steps_per_execution: Lightning hands the module several training batches at a time (an execution), and the module
trains them one by one, each with its own forward pass, backward pass and optimizer step (Keras's
`steps_per_execution`).

Lightning spends 1-2 ms of its own on every batch it hands to a LightningModule (its loop, hooks, progress, logging):
as long as a whole batch-64 step of the lesson's MLP on a CPU. Handed N batches at once, it pays that once per N
steps, while training takes exactly the steps of one batch at a time. Separation of concerns:

- here, the loader's side: `Executions` groups a training loader's batches, counted and resumed in batches, and
  `trainer_arguments` keeps every count that a user sets in batches;
- mlplab.engine.steps, the module's side: `MultiStepModule.training_step` runs the lesson's one-batch loop
  (mlplab.module.Classifier.training_batch) on each batch of an execution, with accumulation, clipping and the log
  records around it.

What a user sees:
- `trainer.max_steps`, an integer `trainer.limit_train_batches` and `trainer.val_check_interval`, and
  `trainer.log_every_n_steps` count batches (optimizer steps, without accumulation), whatever N is. An execution ends
  at every validation; the records of a log interval that falls inside an execution are written at its end, each at
  its own step with the values of the batch that took it, as Lightning would one batch at a time.
- TensorBoard's step axis is `trainer.global_step`, the optimizer steps taken.
- `trainer.gradient_clip_val`, `trainer.gradient_clip_algorithm` and `trainer.accumulate_grad_batches` work as in
  Lightning's automatic optimization, which a module that takes its own steps does without.
- The position in the epoch is saved with the loader's `state_dict` (Lightning's protocol for stateful loaders), in
  batches: a run resumes from any checkpoint with any N.
"""

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any, Protocol

from lightning.pytorch import LightningDataModule
from lightning.pytorch.callbacks import TQDMProgressBar

from mlplab.errors import InputError


class BatchLoader(Protocol):
    """What executions need from a training loader: its batches per epoch, and each epoch's batches from any position
    (the datamodule's TensorLoader is one)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """The next iteration yields epoch `epoch`'s batches from position `start` on."""


@dataclass(frozen=True)
class Plan:
    """How a run's training batches are executed. Every count is in batches."""

    steps_per_execution: int = 1
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str | None = None  # norm (Lightning's default) | value
    limit_train_batches: int | float = 1.0  # batches per epoch: a count, or a fraction of the epoch
    val_check_interval: int | float = 1.0  # validate every N batches (an integer), or at each epoch's end (1.0)
    log_every_n_steps: int = 50  # Lightning's default

    def batches_per_epoch(self, loader_batches: int) -> int:
        """The batches an epoch trains of a loader's `loader_batches`: all, or limit_train_batches of them."""
        limit = self.limit_train_batches
        return min(loader_batches, limit) if isinstance(limit, int) else int(loader_batches * limit)


# The Trainer's arguments that Lightning would count in executions, or refuses when a module takes its own steps.
PLANNED = tuple(f.name for f in fields(Plan) if f.name != "steps_per_execution")


def trainer_arguments(trainer: dict[str, Any], steps_per_execution: int) -> tuple[dict[str, Any], Plan]:
    """The Trainer's arguments less the PLANNED ones, which the returned Plan applies in batches instead."""
    given = {key: trainer[key] for key in PLANNED if trainer.get(key) is not None}
    lightning = {key: value for key, value in trainer.items() if key not in PLANNED}
    # Lightning's own debug limits (a few batches) count what it hands over: then one batch at a time.
    debug = trainer.get("fast_dev_run") or trainer.get("overfit_batches")
    if debug:
        steps_per_execution = 1
        given["limit_train_batches"] = 1 if debug is True else debug
    plan = Plan(steps_per_execution, **given)
    if isinstance(plan.val_check_interval, int):  # executions end at each validation: this many per interval
        lightning["val_check_interval"] = math.ceil(plan.val_check_interval / steps_per_execution)
    lightning["log_every_n_steps"] = 1  # every execution; MultiStepModule writes every log_every_n_steps batches
    return lightning, plan


class Execution:
    """Consecutive training batches of one epoch, handed to training_step at once. Iterating it yields (position in
    the epoch, batch): the batches are drawn then, not when Lightning fetches the execution (one ahead), so that they
    are drawn in step order and from the epoch that the trainer is in."""

    def __init__(self, loader: "Executions", first: int, size: int, last: bool, epoch: int | None) -> None:
        self.loader, self.first, self.size, self.last, self.epoch = loader, first, size, last, epoch

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return self.loader.draw(self)


class Executions:
    """A training loader's batches in executions of up to `plan.steps_per_execution`, counted and resumed in batches.

    No `__len__`: Lightning then ends an epoch when the executions run out, rather than by counting them, so that
    a resumed run may hand over executions of another size than the run that wrote the checkpoint.
    """

    def __init__(self, loader: BatchLoader, plan: Plan, epoch: Callable[[], int]) -> None:
        self.loader, self.plan, self.epoch = loader, plan, epoch
        self.trained = (0, 0)  # (epoch, its batches trained so far): the position a checkpoint saves
        self.resume_at: tuple[int, int] | None = None
        self.batches: Iterator[Any] = iter(())

    def batches_per_epoch(self) -> int:
        return self.plan.batches_per_epoch(len(self.loader))

    def __iter__(self) -> Iterator[Execution]:
        total, epoch, start = self.batches_per_epoch(), None, 0  # epoch None: the trainer's, once training starts
        if self.resume_at:
            (epoch, start), self.resume_at = self.resume_at, None
            if start >= total:  # saved after the epoch's last batch: the next epoch is next
                epoch, start = epoch + 1, 0
        for first, end in self.bounds(start, total):
            yield Execution(self, first, end - first, end == total, epoch if first == start else None)

    def bounds(self, start: int, total: int) -> Iterator[tuple[int, int]]:
        """(first, end) positions of the executions from batch `start` on: at most steps_per_execution batches,
        ending at every validation."""
        size, every = self.plan.steps_per_execution, self.plan.val_check_interval
        while start < total:
            end = min(start + size, total)
            if isinstance(every, int):
                end = min(end, (start // every + 1) * every)
            yield start, end
            start = end

    def draw(self, execution: Execution) -> Iterator[tuple[int, Any]]:
        """The execution's batches, with their positions in the epoch."""
        if execution.epoch is not None or execution.first == 0:  # the first execution of an epoch or of a resume
            epoch = self.epoch() if execution.epoch is None else execution.epoch
            self.loader.set_epoch(epoch, start=execution.first)  # skipped batches are not drawn
            self.batches = iter(self.loader)
            self.trained = (epoch, execution.first)
        for position in range(execution.first, execution.first + execution.size):
            batch = next(self.batches)
            self.trained = (self.trained[0], position + 1)  # a checkpoint comes after the step on it, if at all
            yield position, batch

    def state_dict(self) -> dict[str, Any]:
        epoch, batches = self.trained
        return {"epoch": epoch, "batches": batches, "steps_per_execution": self.plan.steps_per_execution}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (
            isinstance(self.plan.val_check_interval, int)
            and state["steps_per_execution"] != self.plan.steps_per_execution
            and state["batches"] % self.plan.val_check_interval
            and state["batches"] < self.batches_per_epoch()
        ):
            # Lightning counts the executions between validations, and it restores the count of the earlier ones.
            raise InputError(
                f"steps_per_execution={self.plan.steps_per_execution}: this checkpoint was written between two "
                f"validations (trainer.val_check_interval={self.plan.val_check_interval}) of a run with "
                f"steps_per_execution={state['steps_per_execution']}; resume with that, or from last.ckpt"
            )
        self.resume_at = (state["epoch"], state["batches"])


class ExecutedDataModule(LightningDataModule):
    """A datamodule whose training batches the trainer's module executes. A subclass writes `train_loader()`, its
    training loader (a BatchLoader); `train_dataloader` hands it over in the executions of a module that groups
    batches (mlplab.engine.steps.MultiStepModule.executions), or as it is to any other module."""

    def train_loader(self) -> BatchLoader:
        raise NotImplementedError(f"{type(self).__name__} must define train_loader()")

    def train_dataloader(self) -> Iterable[Any]:
        executions = getattr(self.trainer.lightning_module, "executions", None) if self.trainer else None
        loader = self.train_loader()
        return executions(loader) if executions else loader


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar, with the number of executions in an epoch as its total (Lightning counts none)."""

    @property
    def total_train_batches(self) -> int | float:
        loader = self.trainer.train_dataloader
        if not isinstance(loader, Executions):
            return super().total_train_batches
        return sum(1 for _ in loader.bounds(0, loader.batches_per_epoch()))
