"""MNIST's files checked and read as whole-split tensors, without Lightning: the training's data module
(mlplab.data) and eval (mlplab.use.evaluation) both take their images from here."""

import gzip
import hashlib
import os
import shutil
import zlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from mlplab.augment import RandomDistortion
from mlplab.config.rules import PATH, SEED, Rule, optional, within
from mlplab.engine.runs import REPO
from mlplab.errors import InputError, one_line
from mlplab.idx import MEAN, MNIST_MD5, STD, parse_idx

REPO_DATA_DIR = REPO / "data"

# The ranges of the data settings (MNISTDataModule's arguments), checked before anything is built
# (mlplab.config.checks), and by eval for the settings it overrides.
SETTINGS = (
    Rule("data_dir", *optional(PATH), refused=[1, 2]),
    Rule("batch_size", *within("[1, inf)", "integer"), refused=0),
    Rule("eval_batch_size", *within("[1, inf)", "integer"), refused=0),
    # Its upper bound, the training set's size, is checked by the datamodule, which knows that size.
    Rule("val_size", within("[0, inf)", "integer")[0], "an integer >= 0 (0: no validation set)", refused=-1),
    Rule("split_seed", *SEED, refused=-1),
    Rule("seed", *SEED, refused=-1),
    Rule(
        "md5",
        lambda value: value is None or (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())),
        "null or a mapping of IDX file names to md5 sums",
        refused="abc",
    ),
    Rule(
        "augment",
        lambda value: value is None or (isinstance(value, dict) and set(value) <= set(RandomDistortion.KEYS)),
        f"null or a mapping of any of {', '.join(RandomDistortion.KEYS)}",
        refused={"flip": 1},
    ),
    Rule("augment.rotate", *within("[0, 180]"), refused=-10),  # degrees either way
    Rule("augment.scale", *within("[0, 1)"), refused=1.0),  # a scale within 1 +- scale stays positive
    Rule("augment.shift", *within("[0, 28)"), refused=-2),  # pixels
    Rule("augment.elastic", *within("[0, inf)"), refused=-1.5),
)


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
        if isinstance(e, OSError) and e.errno:  # the system's error (a full disk), not a damaged archive
            raise OSError(e.errno, e.strerror, str(dst)) from None
        raise InputError(
            f"{src}: cannot be decompressed ({e}); restore it from the repository with "
            f"`git checkout -- {src.name}` in {src.parent}"
        ) from None
    os.replace(tmp, dst)


def prepare_mnist(data_dir: Path, md5: Mapping[str, str] | None = None) -> Path:
    """Make the uncompressed IDX files exist under data_dir/MNIST/raw and match their md5; return that folder."""
    if data_dir.exists() and not data_dir.is_dir():
        raise InputError(f"data.data_dir={data_dir}: not a folder")
    if data_dir.exists() and not os.access(data_dir, os.R_OK | os.X_OK):
        raise InputError(f"data.data_dir={data_dir}: cannot be read (permission denied)")
    md5 = md5 or MNIST_MD5
    raw = data_dir / "MNIST" / "raw"
    for name in md5:
        gz = raw / f"{name}.gz"
        if not (raw / name).exists() and gz.exists():
            _gunzip(gz, raw / name)
    missing = [name for name in md5 if not (raw / name).exists()]
    if missing:
        try:
            import torchvision  # only to download: reading the files needs only mlplab.idx

            for train in (True, False):
                torchvision.datasets.MNIST(data_dir, train=train, download=True)
        except Exception as e:  # any network or mirror failure: the message says what to do instead
            reason = one_line(str(e))  # torchvision's message spans lines
            raise InputError(
                f"data.data_dir={data_dir}: {raw} misses {', '.join(missing)} and the download failed ({reason}); "
                f"put the four MNIST *-ubyte.gz files in that folder (this repository ships them in "
                f"{REPO_DATA_DIR}/MNIST/raw)"
            ) from None
    for name, expected in md5.items():
        actual = _md5(raw / name)
        if actual != expected:
            raise InputError(
                f"data.data_dir={data_dir}: {raw / name}: md5 is {actual}, expected {expected}; delete it so that it "
                f"is decompressed again from {name}.gz (or downloaded if that is missing too)"
            )
    return raw


def data_folder(data_dir: str | None) -> Path:
    """data.data_dir as a folder: the repository's data/ when it is null."""
    return Path(data_dir).expanduser() if data_dir else REPO_DATA_DIR


def load_split(data_dir: Path, train: bool) -> tuple[Tensor, Tensor]:
    """One official split, from the files prepare_mnist made, as normalized float images (N, 1, 28, 28) and int64
    labels (N,)."""
    raw = data_dir / "MNIST" / "raw"
    images, labels = (
        torch.from_numpy(parse_idx(bytearray((raw / name).read_bytes()), str(raw / name)))
        for name in (f"{'train' if train else 't10k'}-{kind}-ubyte" for kind in ("images-idx3", "labels-idx1"))
    )
    return (images.unsqueeze(1).float() / 255 - MEAN) / STD, labels.long()


def load_splits(data_dir: Path, val_size: int, split_seed: int) -> dict[str, tuple[Tensor, Tensor]]:
    """train, val and test: `val_size` of the training images, drawn by `split_seed`, validate; the rest train."""
    train_images, train_labels = load_split(data_dir, train=True)
    if not 0 <= val_size < len(train_labels):
        raise InputError(
            f"data.val_size={val_size}: must be between 0 (no validation set) and {len(train_labels) - 1} "
            f"(the training set has {len(train_labels)} images)"
        )
    # Its own generator: every run, whatever its seed, validates on the same images.
    order = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(split_seed))
    val, train = order[:val_size], order[val_size:]
    return {
        "train": (train_images[train], train_labels[train]),
        "val": (train_images[val], train_labels[val]),
        "test": load_split(data_dir, train=False),
    }
