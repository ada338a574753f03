"""The published fast MNIST recipe, in plain PyTorch: `python scripts/reference_speedrun.py --seed 0`.

Written here from the description of tuomaso/train_mnist_fast's final notebook (no code copied): a small CNN,
conv 5x5 (24 channels) -> ReLU -> 2x2 max pool -> conv 3x3 (32) -> ReLU -> 2x2 max pool -> dense 256 -> ReLU -> 10,
Adam at lr 0.01 with betas (0.7, 0.9) under a one-cycle schedule, batch 256, one epoch over all 60,000 training
images held as one normalised tensor, then the 10,000 test images. It reports 99.04 ± 0.07% over 30 runs in
0.76 s on a laptop GPU. scripts/benchmark.py --speedrun races it against `experiment=speedrun`.

Prints one JSON line: {"seed", "train_time_s", "test_acc"}.
"""

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

MEAN, STD = 0.1307, 0.3081  # MNIST's training pixels, as everyone normalises them


def idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as an array: a big-endian header of dimension sizes, then unsigned bytes."""
    data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    dims = data[3]
    shape = np.frombuffer(data, ">u4", dims, 4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(raw: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    def find(stem: str) -> Path:
        return next(p for p in (raw / stem, raw / f"{stem}.gz") if p.exists())

    images = idx(find(f"{split}-images-idx3-ubyte"))
    labels = idx(find(f"{split}-labels-idx1-ubyte"))
    x = (torch.from_numpy(images.copy()).float().div_(255).sub_(MEAN).div_(STD)).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def network() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 24, 5), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 24 -> 12
        nn.Conv2d(24, 32, 3), nn.ReLU(), nn.MaxPool2d(2),  # 12 -> 10 -> 5
        nn.Flatten(), nn.Linear(32 * 5 * 5, 256), nn.ReLU(), nn.Linear(256, 10),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw", type=Path, default=Path("data/MNIST/raw"), help="folder of the MNIST IDX files")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the tensors and the model live")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    train_x, train_y = (t.to(device) for t in load(args.raw, "train"))
    test_x, test_y = (t.to(device) for t in load(args.raw, "t10k"))
    model = network().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.7, 0.9))
    steps = args.epochs * -(-len(train_y) // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()

    start = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        order = torch.randperm(len(train_y), device=device)
        for first in range(0, len(order), args.batch_size):
            batch = order[first : first + args.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(train_x[batch]), train_y[batch])
            loss.backward()
            optimizer.step()
            schedule.step()
    if device.type == "cuda":
        torch.cuda.synchronize()  # the GPU's queue done: its work counts
    train_time = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        correct = sum(
            int((model(x).argmax(1) == y).sum()) for x, y in zip(test_x.split(1000), test_y.split(1000), strict=True)
        )
    print(json.dumps({"seed": args.seed, "train_time_s": train_time, "test_acc": correct / len(test_y)}), flush=True)


if __name__ == "__main__":
    main()
