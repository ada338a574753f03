"""MNIST held as whole-split tensors on the training device: verified files in (mlplab.mnist), normalized batches
out."""

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import Tensor

from mlplab.augment import RandomDistortion
from mlplab.engine.execution import ExecutedDataModule
from mlplab.idx import MEAN, STD
from mlplab.mnist import SETTINGS, data_folder, load_splits, prepare_mnist


class Batch(NamedTuple):
    images: Tensor
    labels: Tensor


class TensorLoader:
    """Batches cut from whole-split tensors: one index gather per batch, no per-sample work.

    Training order is a permutation drawn from (seed, epoch), set with `set_epoch` (as for torch's DistributedSampler):
    any epoch's order can be drawn again, so a resumed run trains what an uninterrupted one would. With several
    processes each rank takes a disjoint shard. `transform` changes each batch's images as it is drawn.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        train: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.rank, self.world_size, self.transform = rank, world_size, transform
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate over that epoch's batches, from batch `start` on."""
        self.epoch, self.start = epoch, start

    def _used(self) -> int:
        n = len(self.labels)
        # Equal shard sizes keep DDP ranks in step: the few leftover images wait for another epoch.
        return n - n % self.world_size if self.train else n

    def _order(self) -> Tensor:
        if self.train:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(len(self.labels), generator=generator)[: self._used()]
        else:
            order = torch.arange(len(self.labels))
        return order[self.rank :: self.world_size].to(self.labels.device)

    def __len__(self) -> int:
        shard = len(range(self.rank, self._used(), self.world_size))
        return -(-shard // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        for index in self._order().split(self.batch_size)[self.start :]:
            images = self.images[index]
            yield Batch(self.transform(images) if self.transform else images, self.labels[index])


class MNISTDataModule(ExecutedDataModule):
    """MNIST train/validation/test splits, held on the training device.

    `augment` (e.g. {"rotate": 10, "scale": 0.1, "shift": 2, "elastic": 1}: mlplab.augment.RandomDistortion)
    distorts each training batch at random, on the device, as it reaches the module; validation and test images
    stay as they are.
    """

    RULES = SETTINGS  # the ranges of its arguments (mlplab.mnist: eval checks its data overrides with them)

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
    ) -> None:
        super().__init__()
        # Stored in checkpoints (plain values), so a checkpoint alone can rebuild its data splits.
        self.save_hyperparameters(logger=False)
        self.data_dir = data_folder(data_dir)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.seed = val_size, split_seed, seed
        self.md5 = md5
        self.augment = RandomDistortion.from_config(augment) if augment else None
        self.generator: torch.Generator | None = None  # the distortions' random stream, made in setup
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    def prepare_data(self) -> None:
        prepare_mnist(self.data_dir, self.md5)

    def setup(self, stage: str) -> None:
        if self.splits:
            return
        splits = load_splits(self.data_dir, self.val_size, self.split_seed)
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        self.splits = {name: (x.to(device), y.to(device)) for name, (x, y) in splits.items()}
        if self.augment:
            # A stream of its own, apart from dropout's (torch's global one), saved in checkpoints (state_dict).
            self.generator = torch.Generator(device).manual_seed(self.seed + 1_000_003)

    def describe(self) -> str:
        """The data of the run, for its first lines (mlplab.engine.callbacks.RunSummary)."""
        sizes = {name: len(labels) for name, (_, labels) in self.splits.items()}
        validation = f"{sizes['val']:,} for validation" if sizes["val"] else "no validation set"
        return (
            f"MNIST: {sizes['train']:,} training images in batches of {self.batch_size}, {validation}, "
            f"{sizes['test']:,} for the test; pixels standardized to (x - {MEAN}) / {STD}"
            + (f"; distorted: {self.augment}" if self.augment else "")
        )

    # The distortions' stream in checkpoints, so that a resumed run draws what an uninterrupted one would.
    def state_dict(self) -> dict[str, Any]:
        return {"augment_generator": self.generator.get_state()} if self.generator else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.generator and "augment_generator" in state_dict:
            self.generator.set_state(state_dict["augment_generator"])

    def loader(self, split: str, batch_size: int, train: bool, transform: Callable | None = None) -> TensorLoader:
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        return TensorLoader(*self.splits[split], batch_size, train, self.seed, rank, world_size, transform)

    def train_loader(self) -> TensorLoader:
        # overfit_batches means the same few batches every epoch: no shuffling then.
        overfit = bool(self.trainer and self.trainer.overfit_batches)
        distort = partial(self.augment, generator=self.generator) if self.augment else None
        return self.loader("train", self.batch_size, not overfit, distort)

    def val_dataloader(self) -> TensorLoader:
        return self.loader("val", self.eval_batch_size, train=False)

    def test_dataloader(self) -> TensorLoader:
        return self.loader("test", self.eval_batch_size, train=False)
