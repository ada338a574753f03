"""Progress report for output that is not a terminal (CI logs, files, pipes)."""

import time

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only


class EpochSummary(Callback):
    """Prints one line per epoch with its metrics, where a progress bar would fill the log with redraws."""

    def on_train_epoch_start(self, trainer: Trainer, module: LightningModule) -> None:
        self.start = time.perf_counter()

    @rank_zero_only
    def on_train_epoch_end(self, trainer: Trainer, module: LightningModule) -> None:
        metrics = trainer.callback_metrics
        shown = " ".join(
            f"{name} {value:.2%}" if name.endswith("acc") else f"{name} {value:.4f}"
            for name in ("train/loss_epoch", "train/acc", "val/loss", "val/acc")
            if (value := metrics.get(name)) is not None
        )
        seconds = time.perf_counter() - self.start
        # Numbered from 0 like Lightning's progress bar and checkpoint names; (done/total) in brackets.
        epoch = trainer.current_epoch
        print(f"epoch {epoch} ({epoch + 1}/{trainer.max_epochs})  {shown}  {seconds:.1f} s", flush=True)
