"""Training speed side by side, in one run: the lesson's pipeline, a plain PyTorch loop, and this project.

    python scripts/benchmark.py                    # batch 64, the lesson's recipe (about 3 minutes)
    python scripts/benchmark.py --batch-size 512   # the epoch time against the FLOP bound
    python scripts/benchmark.py --batches 20       # a quick check
    python scripts/benchmark.py --model cnn        # another network of conf/model/ (mlp, cnn, rnn, ...)
    python scripts/benchmark.py --speedrun         # time to 99%: the published fast recipe against experiment=speedrun
    python scripts/benchmark.py --startup          # how soon predict, train --help and --cfg job answer

All three train the same network, built from conf/model/<--model>.yaml (the lesson's 784-512-256-10 ReLU MLP by
default), with cross-entropy and SGD (momentum 0.9, lr 0.01):

(a) the lesson's pipeline: torchvision's MNIST dataset with per-sample ToTensor + Normalize, a DataLoader
    and a plain loop;
(b) a plain loop over the preloaded, normalized tensors;
(c) this project: MNISTDataModule and Classifier in the Trainer of `mlplab.training.build`, from the composed
    default config, so with its logging and checkpointing (the progress bar off, as in logs).

Each pipeline runs one epoch (or --batches) per round, in the order a, b, c (a, c, b every other round), and
the best of --repeats rounds counts: other processes on the machine can only slow a round down. The median
round against the best tells how steady the machine was. (c) is timed from its first
training batch to the end of fit, less its validation passes (work that (a) and (b) do not do); its logging,
metric updates, callbacks and checkpoint writes all count.

Start-up is timed from launching a child process to a wall-clock time it prints: the bare import of torch,
lightning, hydra, torchvision and torchmetrics, against `python src/train.py` with the default config plus one
callback (this file's FirstStep, added by a `++callbacks.first_step` override) that prints the time as its
first training batch starts, then ends the process.

Extra `key=value` arguments are Hydra overrides for the project's runs, (c) and the start-up one. All three run on
--device: `--device cuda` moves (a)'s batches as they are fetched, (b)'s tensors and both models to the GPU (the usual
`.to(device)`; the lesson's own code runs on the CPU only), adds `trainer=gpu` to the project's overrides, and times
the FLOP bound's matmul there; (a) and (b) stay in float32 whatever `trainer.precision` says.

--speedrun races, seed by seed, scripts/reference_speedrun.py (the published fast recipe in plain PyTorch) against
`python src/train.py experiment=speedrun` (the same recipe through the lab's Trainer, checkpoint and test), each a
process of its own in alternating order: training seconds as each reports them, whole-process seconds from launch to
exit, and test accuracy, with means, 95% intervals and the lab's ratios to the reference.

--startup times, best of --repeats, whole processes that do not train: `python src/eval.py` on the 10,000 test images
and `python src/predict.py` on one image (with the checkpoint in tests/data), `python src/train.py --help` and
`--cfg job`, each against a bare `python -c "import torch"`.

The FLOP bound is the network's training work per image, counted by torch's FlopCounterMode on one training step
(forward and backward; autograd skips the input's own gradient), at the rate of a large matmul: no pipeline can beat
it, and the convolutions and recurrent steps of small networks reach far less than that rate. On the CPU the last
lines say where (b)'s step goes: the FLOP-counted kernels (matrix products, convolutions) and the rate they reach at
their own shapes, against the rest (pooling, activations, a GRU's gates, the optimizer, autograd's bookkeeping).
"""

import argparse
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import redirect_stdout
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torchvision
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch import Callback, LightningModule, Trainer
from omegaconf import DictConfig, open_dict
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

from mlplab.engine.runs import REPO
from mlplab.experiments.comparison import mean_interval
from mlplab.idx import MEAN, MNIST_MD5, STD
from mlplab.mnist import REPO_DATA_DIR, load_split, prepare_mnist
from mlplab.training import build

EPOCH_IMAGES = 60_000  # epoch times are quoted for the whole MNIST training set, as in the lesson
STARTUP_IMPORTS = "torch, lightning, hydra, torchvision, torchmetrics"


class FirstStep(Callback):
    """In the start-up child: print the wall clock as the first training batch starts, then end the process."""

    def on_train_batch_start(self, trainer: Trainer, module: LightningModule, batch: Any, batch_idx: int) -> None:
        print(f"first training step at {time.time()!r}", flush=True)
        os._exit(0)  # the rest of the run is not start-up


class Clock(Callback):
    """Seconds of a fit's training: first training batch to the end, less the validation passes."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.validating = 0.0

    def on_train_batch_start(self, trainer: Trainer, module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self.start is None:
            self.start = time.perf_counter()

    def on_validation_start(self, trainer: Trainer, module: LightningModule) -> None:
        self.validation_start = time.perf_counter()

    def on_validation_end(self, trainer: Trainer, module: LightningModule) -> None:
        if self.start is not None:  # the sanity check before training is start-up, not training
            self.validating += time.perf_counter() - self.validation_start

    def on_train_end(self, trainer: Trainer, module: LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start - self.validating


def network(model: DictConfig) -> nn.Module:
    """The network of a model config, as plain torch builds it (the same layers the project trains)."""
    torch.manual_seed(0)
    return instantiate(model, _convert_="all")


def flop_per_image(model: DictConfig) -> float:
    """FLOP of one training step per image: forward and backward, as torch's FlopCounterMode counts them."""
    images, labels = torch.randn(8, 1, 28, 28), torch.arange(8) % 10
    # oneDNN off: its fused LSTM kernel is one op that FlopCounterMode has no formula for (it would count 0 FLOP);
    # without it the LSTM's steps are matrix products, counted.
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(network(model)(images), labels).backward()
    return counter.get_total_flops() / len(labels)


def lesson_step(model: DictConfig, device: torch.device) -> Callable[[Tensor, Tensor], None]:
    """One step of the lesson's loop (zero_grad, forward, cross-entropy, backward, SGD step) on a fresh network."""
    net = network(model).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    def step(x: Tensor, y: Tensor) -> None:
        optimizer.zero_grad()
        criterion(net(x), y).backward()
        optimizer.step()

    return step


def plain_loop(
    batches: Iterable[tuple[Tensor, Tensor]], model: DictConfig, limit: int | None, device: torch.device
) -> tuple[int, float]:
    """(images, seconds) of the lesson's training loop over `batches` on `device`; fetching the batches counts."""
    step = lesson_step(model, device)
    images = 0
    start = time.perf_counter()
    for x, y in itertools.islice(batches, limit):
        step(x, y)
        images += len(y)
    synchronize(device)
    return images, time.perf_counter() - start


# The ops that do the FLOP flop_per_image counts (on the CPU; oneDNN's LSTM layer is one op that does all of its
# products and gates): the rest of a step is elementwise work and bookkeeping.
FLOP_OPS = (
    *("aten::mm", "aten::addmm", "aten::bmm", "aten::mkldnn_convolution", "aten::convolution_backward"),
    *("aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward"),
)


def step_profile(model: DictConfig, batch_size: int, gflops: float, steps: int = 50) -> str:
    """Where (b)'s training step spends its time, by torch.profiler: the FLOP-counted kernels (and the rate they
    reach) against everything else, the largest ops first."""
    step = lesson_step(model, torch.device("cpu"))
    x, y = torch.randn(batch_size, 1, 28, 28), torch.arange(batch_size) % 10
    for _ in range(10):
        step(x, y)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step(x, y)
    ops = sorted(profiler.key_averages(), key=lambda op: -op.self_cpu_time_total)
    total = sum(op.self_cpu_time_total for op in ops) / steps / 1e3  # ms per step
    kernels = sum(op.self_cpu_time_total for op in ops if op.key in FLOP_OPS) / steps / 1e3
    rate = flop_per_image(model) * batch_size / (kernels / 1e3) / 1e9 if kernels else 0.0
    lines = [
        f"(b)'s step under torch.profiler, {steps} steps (its overhead included): {total:.2f} ms; FLOP-counted "
        f"kernels {kernels:.2f} ms ({kernels / total:.0%}) at {rate:.0f} GFLOP/s ({rate / gflops:.2f} of the "
        f"matmul's); the rest {total - kernels:.2f} ms. Largest ops, ms per step:"
    ]
    lines += [f"  {op.key:52} {op.self_cpu_time_total / steps / 1e3:7.3f}  x{op.count // steps}" for op in ops[:6]]
    return "\n".join(lines)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: a GPU's clock stops only when its steps are done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lesson_pipeline(
    data_dir: Path, model: DictConfig, batch_size: int, limit: int | None, device: torch.device
) -> tuple[int, float]:
    """(a): torchvision's dataset, per-sample transforms, a DataLoader."""
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    dataset = torchvision.datasets.MNIST(data_dir, train=True, transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)
    # Each batch to the device as it is fetched; (b)'s tensors are there already.
    return plain_loop(((x.to(device), y.to(device)) for x, y in loader), model, limit, device)


def tensor_batches(images: Tensor, labels: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    for index in torch.randperm(len(labels), device=labels.device).split(batch_size):
        yield images[index], labels[index]


def project_config(data_dir: Path, md5: dict[str, str], output_dir: Path, overrides: list[str]) -> DictConfig:
    """The train config as `python src/train.py OVERRIDES` composes it, writing into output_dir."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.data.data_dir, cfg.data.md5 = str(data_dir), md5
    return cfg


def project_path(cfg: DictConfig, batches: int | None) -> tuple[int, float]:
    """(c): (images, seconds) of one fit of the project's datamodule, module and trainer."""
    if batches:
        with open_dict(cfg):
            cfg.trainer.limit_train_batches = batches
    datamodule, module, trainer = build(cfg)
    clock = Clock()
    trainer.callbacks.insert(0, clock)  # before the checkpoint callbacks: their writes after validation count
    with redirect_stdout(io.StringIO()):  # the run's own epoch line
        trainer.fit(module, datamodule=datamodule)
    # Every batch full but each epoch's last one.
    images = min(trainer.global_step * cfg.data.batch_size, trainer.max_epochs * len(datamodule.splits["train"][1]))
    return images, clock.seconds


def child_seconds(command: list[str], env: dict[str, str]) -> float:
    """Seconds from launching `command` to the wall-clock time (a float) on the last line it prints."""
    start = time.time()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    printed = re.findall(r"[0-9]+\.[0-9]+$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not printed:
        sys.exit(f"{' '.join(command)} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return float(printed[-1]) - start


def startup(overrides: list[str], output_dir: Path) -> tuple[float, float]:
    """(bare import, `python src/train.py` to its first training step), in seconds."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "scripts"), os.environ.get("PYTHONPATH", "")])}
    env.pop("HYDRA_FULL_ERROR", None)
    bare = [sys.executable, "-c", f"import {STARTUP_IMPORTS}, time; print(time.time())"]
    train = [
        sys.executable,
        "src/train.py",
        "++callbacks.first_step._target_=benchmark.FirstStep",
        f"hydra.run.dir={output_dir}",
        *overrides,
    ]
    return child_seconds(bare, env), child_seconds(train, env)


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """The best rate of a large float32 matmul: what the cores (or the GPU) can do at all."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up: thread pool, allocator
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return 2 * n**3 / min(seconds) / 1e9


def md5_argument(md5: dict[str, str]) -> str:
    """The override that tells the project's runs the data files' checksums."""
    return "++data.md5={" + ",".join(f"{name}:'{value}'" for name, value in md5.items()) + "}"


def data_files(data_dir: Path | None) -> tuple[Path, dict[str, str]]:
    """(data_dir, md5): the shipped MNIST, verified; or the IDX files in data_dir/MNIST/raw as they are."""
    if data_dir is None:
        prepare_mnist(REPO_DATA_DIR)
        return REPO_DATA_DIR, MNIST_MD5
    raw = data_dir / "MNIST" / "raw"
    missing = [name for name in MNIST_MD5 if not (raw / name).is_file()]
    if missing:
        sys.exit(f"{raw}: missing {', '.join(missing)} (uncompressed IDX files)")
    return data_dir, {name: hashlib.md5((raw / name).read_bytes()).hexdigest() for name in MNIST_MD5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size of all three (default 64)")
    parser.add_argument("--batches", type=int, default=None, help="train this many batches per round, not an epoch")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the best of them counts (default 5)")
    parser.add_argument("--data-dir", type=Path, default=None, help="a folder with MNIST/raw/*-ubyte files")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where all three train (default cpu)")
    models = sorted(path.stem for path in (REPO / "conf" / "model").glob("*.yaml"))
    parser.add_argument("--model", choices=models, default="mlp", help="the network all three train (default mlp)")
    parser.add_argument("--speedrun", action="store_true", help="race the fast reference recipe, seed by seed")
    parser.add_argument("--startup", action="store_true", help="time the commands that start without training")
    parser.add_argument("--seeds", type=int, default=5, help="seeds of --speedrun (default 5)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the project's runs (key=value)")
    args = parser.parse_args()
    if args.startup:
        print(startup_figures(args.repeats))
        return
    if args.speedrun:
        gpu = ["trainer=gpu"] if args.device == "cuda" else []
        print(speedrun(args.seeds, data_files(args.data_dir), [*gpu, *args.overrides], args.device))
        return
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA GPU here")
    overrides = [f"model={args.model}", *(["trainer=gpu"] if device.type == "cuda" else []), *args.overrides]
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # Lightning's device and model reports

    data_dir, md5 = data_files(args.data_dir)
    images, labels = (tensor.to(device) for tensor in load_split(data_dir, train=True))
    md5_override = md5_argument(md5)
    project = [f"data.batch_size={args.batch_size}", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
    samples: dict[str, list[float]] = defaultdict(list)  # images per second of each pipeline, round by round
    startups: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):
            cfg = project_config(data_dir, md5, Path(tmp) / f"c{round_}", [*project, *overrides])
            pipelines = {
                "a": partial(lesson_pipeline, data_dir, cfg.model, args.batch_size, args.batches, device),
                "b": partial(
                    plain_loop, tensor_batches(images, labels, args.batch_size), cfg.model, args.batches, device
                ),
                "c": partial(project_path, cfg, args.batches),
            }
            for name in "abc" if round_ % 2 == 0 else "acb":  # neither b nor c always runs right after (a)
                n, seconds = pipelines[name]()
                samples[name].append(n / seconds)
            startup_overrides = [f"data.data_dir={data_dir}", md5_override, *overrides]
            startups.append(startup(startup_overrides, Path(tmp) / f"startup{round_}"))
    gflops = matmul_gflops(device)
    rates = {name: max(values) for name, values in samples.items()}
    rates["bound"] = gflops * 1e9 / flop_per_image(cfg.model)
    steady = steadiness(samples)
    bare, train = min(s[0] for s in startups), min(s[1] for s in startups)

    print(report(args, rates, steady, gflops, bare, train))
    if device.type == "cpu":
        print(step_profile(cfg.model, args.batch_size, gflops))


def startup_figures(repeats: int) -> str:
    """Seconds of each short command (best of `repeats`) and its ratio to a bare import of torch."""
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "one.png"
        digit = torch.zeros(28, 28, dtype=torch.uint8)
        digit[5:23, 13:16] = 255  # a 1
        torchvision.io.write_png(digit.unsqueeze(0), str(image))
        checkpoint = REPO / "tests" / "data" / "v0.1.0_mlp16_l2_dropout_onecycle.ckpt"
        commands = {
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            "python src/eval.py ckpt_path=... (10,000 test images)": [
                *(sys.executable, "src/eval.py", f"ckpt_path={checkpoint}", f"hydra.run.dir={Path(tmp) / 'eval'}"),
            ],
            "python src/predict.py ckpt_path=... input=one.png": [
                *(sys.executable, "src/predict.py", f"ckpt_path={checkpoint}", f"input={image}"),
                f"hydra.run.dir={Path(tmp) / 'predict'}",
            ],
            "python src/train.py --help": [sys.executable, "src/train.py", "--help"],
            "python src/train.py --cfg job": [sys.executable, "src/train.py", "--cfg", "job"],
        }
        best = {}
        for _ in range(repeats):
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, cwd=REPO, check=True, capture_output=True)
                best[name] = min(best.get(name, math.inf), time.perf_counter() - start)
    bare = best['python -c "import torch"']
    lines = [f"start-up, best of {repeats}; torch {torch.__version__}", "| command | seconds | / import torch |"]
    lines.append("|---|---|---|")
    lines += [f"| `{name}` | {seconds:.2f} | {seconds / bare:.2f} |" for name, seconds in best.items()]
    return "\n".join(lines)


def speedrun(seeds: int, data: tuple[Path, dict[str, str]], overrides: list[str], device: str = "cpu") -> str:
    """The reference recipe and experiment=speedrun over the same seeds, as a table with means and ratios."""
    data_dir, md5 = data
    md5_override = md5_argument(md5)
    runs: dict[str, list[tuple[float, float, float]]] = defaultdict(list)  # (train s, process s, test acc)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            reference = [sys.executable, "scripts/reference_speedrun.py", f"--seed={seed}", f"--device={device}"]
            reference.append(f"--raw={data_dir / 'MNIST' / 'raw'}")
            folder = Path(tmp) / f"lab{seed}"
            lab = [sys.executable, "src/train.py", "experiment=speedrun", f"seed={seed}", "logger=none"]
            lab += [f"data.data_dir={data_dir}", md5_override, f"hydra.run.dir={folder}", *overrides]
            for name in ("reference", "lab") if seed % 2 == 0 else ("lab", "reference"):
                start = time.perf_counter()
                result = subprocess.run(
                    reference if name == "reference" else lab, cwd=REPO, capture_output=True, text=True
                )
                process = time.perf_counter() - start
                if result.returncode != 0:
                    sys.exit(f"{name} seed {seed} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
                if name == "reference":
                    figures = json.loads(result.stdout.strip().splitlines()[-1])
                    runs[name].append((figures["train_time_s"], process, figures["test_acc"]))
                else:
                    figures = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
                    runs[name].append((figures["train_time_s"], process, figures["test/acc"]))
    lines = [
        f"time to 99%: {seeds} seed{'s' if seeds > 1 else ''} each, one epoch of 60,000 images; "
        f"{torch.get_num_threads()} CPU threads, "
        f"torch {torch.__version__}",
        "| seed | reference: train s | process s | test acc % | lab: train s | process s | test acc % |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed, (r, c) in enumerate(zip(runs["reference"], runs["lab"], strict=True)):
        lines.append(f"| {seed} | {r[0]:.2f} | {r[1]:.2f} | {r[2]:.2%} | {c[0]:.2f} | {c[1]:.2f} | {c[2]:.2%} |")
    summary = {
        name: [statistics.fmean(column) for column in zip(*values, strict=True)] for name, values in runs.items()
    }
    for name in ("reference", "lab"):
        accuracies = [run[2] for run in runs[name]]
        interval = mean_interval(accuracies)
        shown = f" [{interval.low:.2%}, {interval.high:.2%}] (95% interval)" if interval else ""
        train, process, accuracy = summary[name]
        lines.append(f"{name}: train {train:.2f} s, process {process:.2f} s, test acc {accuracy:.2%}{shown}")
    r, c = summary["reference"], summary["lab"]
    lines.append(
        f"lab / reference: train {c[0] / r[0]:.2f}, process {c[1] / r[1]:.2f}; "
        f"accuracy {(c[2] - r[2]) * 100:+.2f} points"
    )
    return "\n".join(lines)


def steadiness(samples: dict[str, list[float]]) -> dict[str, float]:
    """Each pipeline's median round against its best: near 1 on a quiet machine."""
    return {name: statistics.median(values) / max(values) for name, values in samples.items()}


def report(
    args: argparse.Namespace,
    rates: dict[str, float],
    steadiness: dict[str, float],
    gflops: float,
    bare: float,
    train: float,
) -> str:
    """The figures as a table, then the ratios, how steady the rounds were, and the start-up times."""
    batch_size = args.batch_size
    per_round = f"{args.batches} batches" if args.batches else "one epoch"
    lines = [
        f"model={args.model}, batch {batch_size}, {per_round} per round, best of {args.repeats} rounds; "
        f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}"
        + (f", on {torch.cuda.get_device_name(args.device)}" if args.device == "cuda" else ""),
        f"{'':54}{'images/s':>10}{'s/epoch':>9}{'ms/step':>9}   (an epoch: 60,000 images)",
    ]
    labels = {
        "a": "(a) lesson: DataLoader, per-sample ToTensor+Normalize",
        "b": "(b) plain PyTorch loop on preloaded tensors",
        "c": "(c) mlplab: Lightning Trainer built from the config",
        "bound": f"FLOP bound: matmul at {gflops:.1f} GFLOP/s",
    }
    for name, label in labels.items():
        rate = rates[name]
        lines.append(f"{label:54}{rate:10,.0f}{EPOCH_IMAGES / rate:9.2f}{1e3 * batch_size / rate:9.3f}")
    a, b, c, bound = rates["a"], rates["b"], rates["c"], rates["bound"]
    lines += [
        f"c/a {c / a:.2f}   c/b {c / b:.2f}   c's epoch / bound {bound / c:.2f}   b's epoch / bound {bound / b:.2f}",
        f"c's extra time per step over b: {1e3 * batch_size * (1 / c - 1 / b):.3f} ms",
        "median round against the best: "
        + "   ".join(f"{name} {value:.2f}" for name, value in steadiness.items())
        + ("" if min(steadiness.values()) >= 0.9 else "   (below 0.9: the machine was busy; best run again)"),
        f"start-up to the first training step: python src/train.py {train:.2f} s, bare import {bare:.2f} s, "
        f"difference {train - bare:.2f} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
