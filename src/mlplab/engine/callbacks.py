"""Callbacks of every run: what is trained (the run's first lines), the network's table, a progress line for logs,
metric history, resumable random state, graceful interruption."""

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities import rank_zero_only

from mlplab.engine.hparams import class_name
from mlplab.engine.runs import pasted
from mlplab.engine.steps import BOOKKEEPING
from mlplab.errors import Interrupted


def described(node: dict[str, Any]) -> str:
    """A config node as the class it builds and its arguments: `SGD lr=0.01, momentum=0.9`."""
    name = class_name(str(node.get("_target_", "?")))
    arguments = ", ".join(f"{key}={value}" for key, value in node.items() if not key.startswith("_"))
    return f"{name} {arguments}".strip()


class RunSummary(Callback):
    """The run's first lines, in the lesson's terms: the network, the loss, the optimizer and the data that are about
    to be trained, before the first epoch (Lightning's own messages are left to `verbose=true`). At the start of
    training, not of the fit: a resume has restored its step by then."""

    @rank_zero_only
    def on_train_start(self, trainer: Trainer, module: LightningModule) -> None:
        hparams = module.hparams
        parameters = sum(p.numel() for p in module.net.parameters())
        schedule = described(hparams["scheduler"]["scheduler"]) if hparams.get("scheduler") else "a constant lr"
        penalties = ", ".join(described(penalty) for penalty in hparams.get("penalties", {}).values())
        rows = {
            "network": f"{described(hparams['model'])}: {parameters:,} parameters",
            "loss": described(hparams["loss"]) + (f" + {penalties}" if penalties else ""),
            "optimizer": f"{described(hparams['optimizer'])}; {schedule}",
            "data": trainer.datamodule.describe() if hasattr(trainer.datamodule, "describe") else "",
            "training": f"{trainer.max_epochs} epoch{'s' * (trainer.max_epochs != 1)} on "
            f"{type(trainer.accelerator).__name__.removesuffix('Accelerator')}, seed {os.environ.get('PL_GLOBAL_SEED')}"
            + (f", resumed at step {trainer.global_step}" if trainer.global_step else ""),
        }
        print("\n".join(f"{name:<10} {text}" for name, text in rows.items() if text), flush=True)


class NetworkSummary(ModelSummary):
    """Lightning's model summary of the module's parts (the network, the loss, the metrics), without the rows of the
    engine's bookkeeping (mlplab.engine.steps.BOOKKEEPING), which are no part of the model."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], *args: Any, **kwargs: Any) -> None:
        names = dict(summary_data)["Name"]
        kept = [row for row, name in enumerate(names) if name.split(".")[0] not in BOOKKEEPING]
        rows = [(header, [values[row] for row in kept]) for header, values in summary_data]
        rows = [(header, [str(n) for n in range(len(kept))] if header == " " else values) for header, values in rows]
        ModelSummary.summarize(rows, *args, **kwargs)


class EpochSummary(Callback):
    """Prints one line per epoch with its metrics, where a progress bar would fill the log with redraws."""

    def on_train_start(self, trainer: Trainer, module: LightningModule) -> None:
        self.start = time.perf_counter()  # a run resumed mid-epoch starts without on_train_epoch_start

    def on_train_epoch_start(self, trainer: Trainer, module: LightningModule) -> None:
        self.start = time.perf_counter()

    @rank_zero_only
    def on_train_epoch_end(self, trainer: Trainer, module: LightningModule) -> None:
        metrics = trainer.callback_metrics
        shown = " ".join(
            f"{name} {value:.2%}" if name.endswith("acc") else f"{name} {value:.4f}"
            for name in ("train/loss", "train/acc", "val/loss", "val/acc")
            if (value := metrics.get(name)) is not None
        )
        seconds = time.perf_counter() - self.start
        # Numbered from 0 like Lightning's progress bar and checkpoint names; (done/total) in brackets.
        epoch = trainer.current_epoch
        print(f"epoch {epoch} ({epoch + 1}/{trainer.max_epochs})  {shown}  {seconds:.1f} s", flush=True)


class History(Callback):
    """Each epoch's validation and training metrics, kept across resumes (for curves in sweep summaries)."""

    NAMES = ("val/acc", "val/loss", "train/acc", "train/loss")

    def __init__(self) -> None:
        self.epochs: dict[str, list[float]] = {name: [] for name in self.NAMES}

    def on_train_epoch_end(self, trainer: Trainer, module: LightningModule) -> None:
        for name in self.NAMES:
            value = trainer.callback_metrics.get(name)
            self.epochs[name].append(float("nan") if value is None else value.item())

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs = state_dict["epochs"]


class RandomState(Callback):
    """Checkpoints the global torch RNG, so a resumed run draws the same dropout masks as an uninterrupted one."""

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["cpu"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class Interruption(Callback):
    """Ctrl-C or SIGTERM, in any stage of a run, ends it cleanly (exit 130 or 143; train() records `interrupted`):

    - in training, after the current training step, once checkpoints/interrupted.ckpt is saved: stopping between
      Lightning's steps keeps the checkpoint consistent (no half-applied optimizer step), and the training loader
      resumes the epoch at the next batch;
    - in the sanity check, at once: nothing was trained, the same command starts again;
    - in the test stage, at once: training had finished, and a resume of last.ckpt tests it.

    A second Ctrl-C stops at once, without a checkpoint. Lightning raises its own SIGTERMException in its evaluation
    loops, outside training; train() reports it through `interrupted`.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, dirpath: str | Path) -> None:
        self.path = Path(dirpath) / "interrupted.ckpt"
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def _receive(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    @contextmanager
    def catching(self) -> Iterator[None]:
        """Receives the signals around a run's fit and test (training.train), in the sanity check and the test stage
        too, where Lightning's handlers would end the process with status 0 and no record."""
        if threading.current_thread() is not threading.main_thread():  # Python delivers signals there only
            yield
            return
        previous = {s: signal.signal(s, self._receive) for s in self.SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def on_train_start(self, trainer: Trainer, module: LightningModule) -> None:
        # Here, after Lightning has set its own SIGTERM handler (which would end the run without a checkpoint).
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._receive) for s in self.SIGNALS}

    def on_validation_batch_end(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        if self.received is not None and trainer.sanity_checking:
            raise self.interrupted("the sanity check", trainer)

    def on_test_batch_end(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        if self.received is not None:
            raise self.interrupted("the test stage", trainer)

    def on_train_batch_end(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        # After the epoch's last batch comes its validation: a checkpoint from before it would resume without it.
        if self.received is not None and not trainer.is_last_batch:
            self.stop(trainer)

    def on_train_epoch_end(self, trainer: Trainer, module: LightningModule) -> None:
        if self.received is not None:
            self.stop(trainer)

    def stop(self, trainer: Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # the full training state, to resume
        name = signal.Signals(self.received).name
        raise Interrupted(
            f"{name} at epoch {trainer.current_epoch}, step {trainer.global_step}; saved {self.path}; "
            f"resume with: python src/train.py {pasted('ckpt_path', str(self.path))}",
            self.received,
        )

    def interrupted(self, stage: str, trainer: Trainer, signum: int = signal.SIGTERM) -> Interrupted:
        """The stop in the sanity check or the test stage (nothing to save: before training, or after it)."""
        signum = self.received or signum
        name = signal.Signals(signum).name
        if stage == "the sanity check":
            return Interrupted(f"{name} in the sanity check, before training; run the same command again", signum)
        last = Path(getattr(trainer.checkpoint_callback, "last_model_path", "") or self.path.parent / "last.ckpt")
        return Interrupted(
            f"{name} in the test stage, after training; test it with: python src/train.py "
            f"{pasted('ckpt_path', str(last))}",
            signum,
        )

    def _restore_signals(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def on_fit_end(self, trainer: Trainer, module: LightningModule) -> None:
        self._restore_signals()

    def on_exception(self, trainer: Trainer, module: LightningModule, exception: BaseException) -> None:
        self._restore_signals()
