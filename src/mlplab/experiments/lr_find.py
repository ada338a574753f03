"""A learning-rate range test (Smith 2017; fastai's lr_find): the learning rate grows exponentially, one value per
optimizer step, while the training loss is recorded; the suggestion is where the smoothed loss falls fastest."""

import copy
import csv
import io
import math
import shlex
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch import Callback, LightningModule, Trainer
from omegaconf import DictConfig, open_dict

from mlplab.config.checks import SKIP_START, check_config
from mlplab.engine.hparams import class_name
from mlplab.engine.runs import atomic_write, write_json, write_text
from mlplab.errors import InputError
from mlplab.training import build


class Diverging(Exception):
    """The smoothed loss passed `divergence` times its minimum: the test has what it needs."""


class RangeTest(Callback):
    """Before every optimizer step: records the step's training loss, then sets the step's learning rate.

    Step k (from 0) runs at min_lr * (max_lr / min_lr) ** (k / (steps - 1)); its loss is that of the batches it steps
    on, computed before the step. A running mean (weight `smoothing` on the past, bias-corrected) smooths the curve.
    """

    def __init__(self, min_lr: float, max_lr: float, steps: int, smoothing: float, divergence: float) -> None:
        self.min_lr, self.max_lr, self.steps = min_lr, max_lr, steps
        self.smoothing, self.divergence = smoothing, divergence
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.pending: list[float] = []  # the losses of the batches of this optimizer step (accumulation)
        self.running = 0.0

    def on_before_backward(self, trainer: Trainer, module: LightningModule, loss: torch.Tensor) -> None:
        self.pending.append(loss.item())  # divided by accumulate_grad_batches: their sum is the step's mean loss

    def on_before_optimizer_step(self, trainer: Trainer, module: LightningModule, optimizer: Any) -> None:
        step = len(self.lrs)
        loss, self.pending = sum(self.pending), []
        self.running = self.smoothing * self.running + (1 - self.smoothing) * loss
        smoothed = self.running / (1 - self.smoothing ** (step + 1))
        lr = self.min_lr * (self.max_lr / self.min_lr) ** (step / (self.steps - 1))
        self.lrs.append(lr)
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        for logger in trainer.loggers:
            logger.log_metrics({"lr_find/lr": lr, "lr_find/loss": loss, "lr_find/smoothed_loss": smoothed}, step)
        if not math.isfinite(smoothed) or smoothed > self.divergence * min(self.smoothed):
            raise Diverging  # before this step: at this rate the network would only get worse
        for group in optimizer.param_groups:
            group["lr"] = lr


def range_test(datamodule: pl.LightningDataModule, module: LightningModule, trainer: Trainer, test: RangeTest) -> bool:
    """Runs the test with these objects; True if the loss diverged before the last step. The module's weights and
    buffers are as before (its optimizer is made by the fit and dropped with it)."""
    before = copy.deepcopy(module.state_dict())
    try:
        trainer.fit(module, datamodule=datamodule)
        diverged = False
    except Diverging:
        diverged = True
    finally:
        module.load_state_dict(before)
    return diverged


def range_test_config(cfg: DictConfig) -> DictConfig:
    """The train config as the range test trains it: lr_find.steps steps, nothing else run or kept."""
    with open_dict(cfg):
        cfg.scheduler = None  # the test sets every step's learning rate itself
        cfg.callbacks = {}  # no checkpoints, no dashboards: nothing of this fit is kept
        cfg.trainer.update(max_steps=cfg.lr_find.steps, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0)
        cfg.trainer.enable_checkpointing = False
    return cfg


def suggestions(lrs: list[float], smoothed: list[float]) -> dict[str, float]:
    """The steepest descent of the smoothed loss (against log lr) before its minimum, and the minimum's lr / 10."""
    lowest = int(np.argmin(smoothed))
    if lowest < SKIP_START + 2:
        raise InputError(
            f"lr_find.min_lr={lrs[0]:g}: the loss is lowest after {lowest + 1} steps already; "
            "start lower (lr_find.min_lr) or take more steps (lr_find.steps)"
        )
    falling = np.gradient(np.array(smoothed[: lowest + 1]), np.log(lrs[: lowest + 1]))
    steepest = SKIP_START + int(np.argmin(falling[SKIP_START:]))
    return {"steepest": lrs[steepest], "minimum/10": lrs[lowest] / 10}


def lr_find(cfg: DictConfig) -> dict[str, Any]:
    """The range test of the composed config: prints the suggestions, writes the curve into the run folder."""
    settings, output_dir = cfg.lr_find, Path(cfg.paths.output_dir)
    check_config(cfg)  # lr_find.* values too (mlplab.config.checks.CONFIG_RULES)
    if settings.max_lr <= settings.min_lr:
        raise InputError(f"lr_find.max_lr={settings.max_lr}: must be > lr_find.min_lr ({settings.min_lr})")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    test = RangeTest(settings.min_lr, settings.max_lr, settings.steps, settings.smoothing, settings.divergence)
    datamodule, module, trainer = build(range_test_config(cfg), callbacks=[test])
    output_dir.mkdir(parents=True, exist_ok=True)
    diverged = range_test(datamodule, module, trainer, test)
    suggested = suggestions(test.lrs, test.smoothed)
    result = {
        "optimizer": class_name(cfg.optimizer["_target_"]),
        "steps": len(test.lrs),
        "diverged": diverged,
        "suggestions": suggested,
        "curve": {"lr": test.lrs, "loss": test.losses, "smoothed_loss": test.smoothed},
    }
    write_json(output_dir / "lr_find.json", result)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["step", "lr", "loss", "smoothed_loss"])
    writer.writerows(zip(range(len(test.lrs)), test.lrs, test.losses, test.smoothed, strict=True))
    write_text(output_dir / "lr_find.csv", table.getvalue())  # like the JSON: whole, and a failure names the file
    plot(test, suggested, output_dir / "lr_find.png")
    ended = f"the smoothed loss passed {settings.divergence:g}x its minimum" if diverged else "the last step"
    if not diverged:
        ended += f"; the loss still fell at lr {test.lrs[-1]:.3g}: raise lr_find.max_lr to see where it diverges"
    print(
        f"lr range test of {result['optimizer']}: {len(test.lrs)} steps from lr {test.lrs[0]:.3g} to "
        f"{test.lrs[-1]:.3g} (stopped at {ended})\n"
        f"steepest descent of the smoothed loss: optimizer.lr={suggested['steepest']:.3g}\n"
        f"lowest smoothed loss / 10:            optimizer.lr={suggested['minimum/10']:.3g}\n"
        f"train with it: {train_command(suggested['steepest'])}\n"
        f"curve: {output_dir}/lr_find.{{png,json,csv}}",
        flush=True,
    )
    return result


def train_command(lr: float) -> str:
    """`python src/train.py` with this command's overrides of the train config, at learning rate lr."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [o for o in overrides if not o.startswith(("lr_find.", "optimizer.lr="))]
    return shlex.join(["python", "src/train.py", *kept, f"optimizer.lr={lr:.3g}"])


def plot(test: RangeTest, suggested: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    axes.plot(test.lrs, test.losses, alpha=0.3, label="loss")
    axes.plot(test.lrs, test.smoothed, label="smoothed loss")
    for (name, lr), color in zip(suggested.items(), ("tab:red", "tab:green"), strict=True):
        axes.axvline(lr, color=color, linestyle="--", label=f"{name}: {lr:.3g}")
    axes.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="Learning-rate range test")
    top = 2 * max(test.smoothed[0], min(test.smoothed))
    axes.set_ylim(bottom=0, top=top if math.isfinite(top) else None)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=100))
    plt.close(figure)
