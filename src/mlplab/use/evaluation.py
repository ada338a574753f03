"""evaluate(cfg): test a trained checkpoint again, on the test set or on its own run's validation split.

A forward pass over each batch, as the training's test stage makes: the same loss (weighted by batch size) and
the same share of correct digits, with neither Lightning's Trainer nor torchmetrics to import.
"""

import contextlib
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from mlplab.engine.runs import write_json
from mlplab.errors import InputError
from mlplab.mnist import SETTINGS, data_folder, load_split, load_splits, prepare_mnist
from mlplab.use.trained import load_trained

SPLITS = {"test": "test", "val": "validation"}  # data.split: the images it names
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
AUTOCAST = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}  # precision: autocast's dtype


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Compute `<split>/acc` and `<split>/loss` of cfg.ckpt_path, write metrics.json, print them; return them."""
    settings = OmegaConf.to_container(cfg.data, resolve=True)
    split = settings.pop("split")
    if split not in SPLITS:
        raise InputError(f"data.split={split}: choose test (the official test images) or val (the validation split)")
    if cfg.precision not in AUTOCAST:
        raise InputError(f"precision={cfg.precision}: choose {', '.join(AUTOCAST)}")
    device = _device(cfg.accelerator)
    network, criterion, trained_data = load_trained(cfg.ckpt_path, cfg.trusted_modules)
    # Everything else as in training, so `val` is the very split that run validated on.
    overrides = {key: value for key, value in settings.items() if value is not None}
    unknown = sorted(overrides.keys() - trained_data.keys())
    if unknown:
        raise InputError(f"data.{unknown[0]}: not a data setting; choose from {', '.join(trained_data)} or split")
    for rule in SETTINGS:
        if rule.key in overrides:
            rule.check(overrides[rule.key], f"data.{rule.key}")
    data = {**trained_data, **overrides}
    folder = data_folder(data["data_dir"])
    prepare_mnist(folder, data["md5"])
    if split == "test":
        images, labels = load_split(folder, train=False)
    else:
        images, labels = load_splits(folder, data["val_size"], data["split_seed"])["val"]

    network, criterion = network.to(device), criterion.to(device)
    dtype = AUTOCAST[cfg.precision]
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    loss_sum = correct = 0.0
    with torch.inference_mode(), autocast:
        for x, y in zip(images.split(data["eval_batch_size"]), labels.split(data["eval_batch_size"]), strict=True):
            x, y = x.to(device), y.to(device)
            logits = network(x)
            loss_sum += criterion(logits, y).item() * len(y)
            correct += (logits.argmax(dim=1) == y).sum().item()
    metrics: dict[str, Any] = {f"{split}/acc": correct / len(labels), f"{split}/loss": loss_sum / len(labels)}
    metrics.update(split=split, images=len(labels), checkpoint=str(Path(cfg.ckpt_path).resolve()))

    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(output_dir / "metrics.json", metrics)
    print(
        f"{split}/acc {metrics[f'{split}/acc']:.2%}  {split}/loss {metrics[f'{split}/loss']:.4f}  "
        f"({Path(cfg.ckpt_path).name} on {len(labels):,} {SPLITS[split]} images)\n"
        f"run folder:  {output_dir}",
        flush=True,
    )
    return metrics


def _device(accelerator: str) -> torch.device:
    """Where the forward passes run, as the Trainer's `accelerator` names it (auto: a GPU when there is one)."""
    if accelerator not in ACCELERATORS:
        raise InputError(f"accelerator={accelerator}: choose {', '.join(ACCELERATORS)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if accelerator in ("gpu", "cuda") and not cuda:
        raise InputError(f"accelerator={accelerator}: no CUDA GPU is available here; use accelerator=cpu or auto")
    if accelerator == "mps" and not mps:
        raise InputError("accelerator=mps: Apple's Metal (MPS) is not available here; use accelerator=cpu or auto")
    if accelerator == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    return torch.device("cuda" if accelerator == "gpu" else accelerator)
