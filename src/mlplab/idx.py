"""MNIST's IDX files read with NumPy and gzip alone: the lesson's NumPy code (scripts/from_scratch.py) needs no torch.

An IDX file is a magic number (two zero bytes, a type code, the number of dimensions), the size of each dimension
as a big-endian 32-bit integer, then the values in row-major order.
"""

import gzip
import hashlib
from pathlib import Path

import numpy as np

from mlplab.errors import InputError

# md5 of the official uncompressed IDX files (torchvision's MNIST/raw/ layout).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
UNSIGNED_BYTE = 0x08  # the type code of MNIST's pixels and labels
MEAN, STD = 0.1307, 0.3081  # the lesson's normalization constants: the training images' mean and std


def normalized(images: np.ndarray) -> np.ndarray:
    """Pixels 0..255 as the network's float32 inputs, (x / 255 - MEAN) / STD."""
    return (images.astype(np.float32) / 255 - MEAN) / STD


def parse_idx(content: bytes, name: str = "IDX data") -> np.ndarray:
    """The array an IDX file's bytes hold (uint8 values only, as MNIST's)."""
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] != UNSIGNED_BYTE:
        raise InputError(f"{name}: not an IDX file of unsigned bytes (its first bytes are {content[:4].hex()})")
    ndim = content[3]
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", count=ndim, offset=4))
    values = np.frombuffer(content, np.uint8, offset=4 + 4 * ndim)
    if values.size != np.prod(shape):
        raise InputError(f"{name}: holds {values.size} values for the shape {shape}: truncated or damaged")
    return values.reshape(shape)


def read_mnist(data_dir: Path, train: bool, md5: dict[str, str] = MNIST_MD5) -> tuple[np.ndarray, np.ndarray]:
    """One official split from data_dir/MNIST/raw (the .gz files as shipped, or the uncompressed ones), checked
    against its md5: (images uint8 (N, 28, 28), labels uint8 (N,))."""
    raw = Path(data_dir) / "MNIST" / "raw"
    split = "train" if train else "t10k"
    arrays = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{split}-{kind}-ubyte"
        path = raw / name if (raw / name).is_file() else raw / f"{name}.gz"
        if not path.is_file():
            raise InputError(f"{raw}: {name}.gz is missing; this repository ships the four MNIST files there")
        content = path.read_bytes()
        try:
            content = gzip.decompress(content) if path.suffix == ".gz" else content
        except (OSError, EOFError) as error:  # not gzip (a Git LFS pointer, say), or cut short
            raise InputError(f"{path}: not a complete gzip file ({error}); copy the shipped file again") from None
        if (actual := hashlib.md5(content).hexdigest()) != md5[name]:
            raise InputError(f"{path}: md5 of its content is {actual}, expected {md5[name]}: a damaged file")
        arrays.append(parse_idx(content, str(path)))
    return arrays[0], arrays[1]
