"""MNIST held as whole-split tensors: verified files in, normalized batches out."""

import gzip
import hashlib
import os
import shutil
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torchvision
from lightning.pytorch import LightningDataModule, Trainer
from torch import Tensor

from mlplab.augment import RandomDistortion
from mlplab.errors import InputError

# md5 of the official uncompressed IDX files (torchvision's MNIST/raw/ layout).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MEAN, STD = 0.1307, 0.3081  # the lesson's normalization constants
REPO = Path(__file__).resolve().parents[2]  # the repository this package is installed from (pip install -e .)
REPO_DATA_DIR = REPO / "data"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _gunzip(src: Path, dst: Path) -> None:
    # Write under a private name and rename, so a concurrent or killed run never sees half a file.
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
    try:
        with gzip.open(src) as fin, tmp.open("wb") as fout:
            shutil.copyfileobj(fin, fout)
    except (OSError, EOFError, zlib.error) as e:
        tmp.unlink(missing_ok=True)
        raise InputError(
            f"{src}: cannot be decompressed ({e}); restore it from the repository with "
            f"`git checkout -- {src.name}` in {src.parent}"
        ) from None
    os.replace(tmp, dst)


def prepare_mnist(data_dir: Path, md5: dict[str, str] = MNIST_MD5) -> Path:
    """Make the uncompressed IDX files exist under data_dir/MNIST/raw and match their md5; return that folder."""
    if data_dir.exists() and not data_dir.is_dir():
        raise InputError(f"data.data_dir={data_dir}: not a folder")
    if data_dir.exists() and not os.access(data_dir, os.R_OK | os.X_OK):
        raise InputError(f"data.data_dir={data_dir}: cannot be read (permission denied)")
    raw = data_dir / "MNIST" / "raw"
    for name in md5:
        gz = raw / f"{name}.gz"
        if not (raw / name).exists() and gz.exists():
            _gunzip(gz, raw / name)
    missing = [name for name in md5 if not (raw / name).exists()]
    if missing:
        try:
            for train in (True, False):
                torchvision.datasets.MNIST(data_dir, train=train, download=True)
        except Exception as e:  # any network or mirror failure: the message says what to do instead
            reason = " ".join(str(e).split())  # torchvision's message spans lines: keep the error on one
            raise InputError(
                f"{raw}: missing {', '.join(missing)} and the download failed ({reason}); put the four "
                f"MNIST *-ubyte.gz files in that folder (this repository ships them in {REPO_DATA_DIR}/MNIST/raw)"
            ) from None
    for name, expected in md5.items():
        actual = _md5(raw / name)
        if actual != expected:
            raise InputError(
                f"{raw / name}: md5 is {actual}, expected {expected}; delete it so that it is "
                f"decompressed again from {name}.gz (or downloaded if that is missing too)"
            )
    return raw


def load_split(data_dir: Path, train: bool) -> tuple[Tensor, Tensor]:
    """One official split as normalized float images (N, 1, 28, 28) and int64 labels (N,)."""
    mnist = torchvision.datasets.MNIST(data_dir, train=train, download=False)
    images = (mnist.data.unsqueeze(1).float() / 255 - MEAN) / STD
    return images, mnist.targets


class TensorLoader:
    """Batches cut from whole-split tensors: one index gather per batch, no per-sample work.

    Training order is a permutation drawn from (seed, epoch). `position()` tells (epoch, batches of it
    already trained), so a run resumed mid-epoch carries on with exactly the batches it had left.
    With several processes each rank takes a disjoint shard.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        train: bool,
        seed: int = 0,
        position: Callable[[], tuple[int, int]] = lambda: (0, 0),
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.train, self.seed, self.position = batch_size, train, seed, position
        self.rank, self.world_size = rank, world_size

    def _used(self) -> int:
        n = len(self.labels)
        # Equal shard sizes keep DDP ranks in step: the few leftover images wait for another epoch.
        return n - n % self.world_size if self.train else n

    def _order(self, epoch: int) -> Tensor:
        if self.train:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(len(self.labels), generator=generator)[: self._used()]
        else:
            order = torch.arange(len(self.labels))
        return order[self.rank :: self.world_size].to(self.labels.device)

    def __len__(self) -> int:
        shard = len(range(self.rank, self._used(), self.world_size))
        return -(-shard // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch, done = self.position() if self.train else (0, 0)
        for index in self._order(epoch).split(self.batch_size)[done:]:
            yield self.images[index], self.labels[index]


Chunk = list[tuple[Tensor, Tensor]]


class Chunks:
    """A training loader's batches, handed out `size` at a time as a list (a chunk).

    Lightning's fixed cost per training batch (loop, hooks, logging; 1-2 ms on a CPU) is then paid once
    per chunk, while the module still takes one optimizer step per batch: the same steps, in the same order.
    """

    def __init__(self, loader: TensorLoader, size: int) -> None:
        self.loader, self.size = loader, size

    def __len__(self) -> int:
        return -(-len(self.loader) // self.size)

    def batches(self, chunks: int) -> int:
        """How many batches (optimizer steps) the first `chunks` chunks hold."""
        return min(chunks * self.size, len(self.loader))

    def __iter__(self) -> Iterator[Chunk]:
        chunk: Chunk = []
        for batch in self.loader:
            chunk.append(batch)
            if len(chunk) == self.size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def chunk_images(chunk: Chunk) -> int:
    """Training images in a chunk (a shape, so no GPU sync)."""
    return sum(len(labels) for _, labels in chunk)


def last_chunk(trainer: Trainer) -> bool:
    """Whether the chunk being trained is the epoch's last (as Lightning's own _num_ready_batches_reached)."""
    return (
        trainer.is_last_batch
        or trainer.fit_loop.epoch_loop.batch_progress.current.ready == trainer.num_training_batches
    )


class MNISTDataModule(LightningDataModule):
    """MNIST train/validation/test splits, held on the training device.

    `augment` (e.g. {"rotate": 10, "scale": 0.1, "shift": 2, "elastic": 1}: mlplab.augment.RandomDistortion)
    distorts each training batch at random, on the device, as it reaches the module; validation and test images
    stay as they are. Training batches reach the module `chunk` at a time (see Chunks).
    """

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        split_seed: int = 0,
        seed: int = 0,
        md5: dict[str, str] | None = None,
        augment: dict[str, float] | None = None,
        chunk: int = 64,
    ) -> None:
        super().__init__()
        # Stored in checkpoints (plain values), so a checkpoint alone can rebuild its data splits.
        self.save_hyperparameters(logger=False)
        self.data_dir = Path(data_dir).expanduser() if data_dir else REPO_DATA_DIR
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.seed = val_size, split_seed, seed
        self.md5 = dict(md5) if md5 else MNIST_MD5
        self.chunk = chunk
        self.augment = RandomDistortion.from_config(augment) if augment else None
        self.generator: torch.Generator | None = None  # the distortions' random stream, made in setup
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    def prepare_data(self) -> None:
        prepare_mnist(self.data_dir, self.md5)

    def setup(self, stage: str) -> None:
        if self.splits:
            return
        train_images, train_labels = load_split(self.data_dir, train=True)
        if not 0 < self.val_size < len(train_labels):
            raise InputError(
                f"data.val_size={self.val_size}: must be between 1 and {len(train_labels) - 1} "
                f"(the training set has {len(train_labels)} images)"
            )
        # Its own generator: every run, whatever its seed, validates on the same images.
        order = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(self.split_seed))
        val, train = order[: self.val_size], order[self.val_size :]
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        splits = {
            "train": (train_images[train], train_labels[train]),
            "val": (train_images[val], train_labels[val]),
            "test": load_split(self.data_dir, train=False),
        }
        self.splits = {name: (x.to(device), y.to(device)) for name, (x, y) in splits.items()}
        if self.augment:
            # A stream of its own, apart from dropout's (torch's global one): drawing a chunk's distortions before
            # its steps then draws the same numbers as drawing each just before its step would.
            self.generator = torch.Generator(device).manual_seed(self.seed + 1_000_003)

    # The distortions' stream in checkpoints, so that a resumed run draws what an uninterrupted one would.
    def state_dict(self) -> dict[str, Any]:
        return {"augment_generator": self.generator.get_state()} if self.generator else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.generator and "augment_generator" in state_dict:
            self.generator.set_state(state_dict["augment_generator"])

    def _loader(self, split: str, batch_size: int, train: bool) -> TensorLoader:
        if not self.trainer:
            return TensorLoader(*self.splits[split], batch_size, train, self.seed)
        trainer = self.trainer

        def position() -> tuple[int, int]:
            # Lightning restores both from a checkpoint; `ready` counts this epoch's chunks already trained.
            return trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_progress.current.ready * self.chunk

        return TensorLoader(
            *self.splits[split], batch_size, train, self.seed, position, trainer.global_rank, trainer.world_size
        )

    def train_dataloader(self) -> Chunks:
        # overfit_batches means the same few batches every epoch: no shuffling then.
        overfit = bool(self.trainer and self.trainer.overfit_batches)
        return Chunks(self._loader("train", self.batch_size, train=not overfit), self.chunk)

    def val_dataloader(self) -> TensorLoader:
        return self._loader("val", self.eval_batch_size, train=False)

    def test_dataloader(self) -> TensorLoader:
        return self._loader("test", self.eval_batch_size, train=False)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Called just before each chunk's steps, although Lightning fetches a chunk ahead: the distortions' stream is
        # drawn in step order, so a resumed run draws the same ones. The splits live on the device already, so this
        # runs there. The module's example input (a bare tensor, for its summary and graph) passes untouched.
        if self.augment is None or not (self.trainer and self.trainer.training and isinstance(batch, list)):
            return batch
        return [(self.augment(images, self.generator), labels) for images, labels in batch]
