"""Shared fixtures: a tiny synthetic MNIST in the real IDX format, and configs composed around it."""

import contextlib
import gzip
import hashlib
import io
import os
import runpy
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict

from mlplab.mnist import REPO_DATA_DIR

import browser
from postgres import postgres  # noqa: F401  (a fixture: a real PostgreSQL server)

# The checkout these tests belong to: its conf/, README and scripts, wherever the package is installed from.
REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
REAL_MNIST_PRESENT = all(
    (REPO_DATA_DIR / "MNIST" / "raw" / f"{name}.gz").exists()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )
)
# The documentation, each English page with its Chinese twin: the READMEs and the pages of docs/ (the site's home
# pages, docs/index*.md, are the READMEs: the site's build puts them there).
DOC_PAGES = [
    ("README.md", "README.zh-CN.md"),
    *(
        (f"docs/{page.name}", f"docs/{page.stem}.zh-CN.md")
        for page in sorted((REPO / "docs").glob("*.md"))
        if not page.name.endswith(".zh-CN.md") and page.name != "index.md"
    ),
]
ENGLISH_PAGES = [english for english, _ in DOC_PAGES]


# Markers of the second test command (README): `-m real_data` selects these tests, which skip, saying why, where
# their files or their browser are missing.
real_data = pytest.mark.real_data


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("real_data") and not REAL_MNIST_PRESENT:
        pytest.skip("the real MNIST files are not in data/MNIST/raw")
    if item.get_closest_marker("browser") and (reason := browser.missing()):
        pytest.skip(f"no browser: {reason}")


def idx_bytes(array: np.ndarray) -> bytes:
    """An uint8 array in the IDX format of the MNIST files: magic, big-endian sizes, then the raw bytes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def synthetic_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k lights a 6x6 block at its own place on a noisy background."""
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 60, size=(n, 28, 28))
    for i, k in enumerate(labels):
        row, col = 2 + 6 * (k // 4), 2 + 6 * (k % 4)
        images[i, row : row + 6, col : col + 6] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture(scope="session")
def synthetic_mnist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(data_dir, md5) of a small MNIST (1,000 train, 300 test) shipped as .gz files, like the real one."""
    data_dir = tmp_path_factory.mktemp("synthetic")
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    md5 = {}
    for split, n in (("train", 1000), ("t10k", 300)):
        images, labels = synthetic_digits(n, rng)
        for name, array in ((f"{split}-images-idx3-ubyte", images), (f"{split}-labels-idx1-ubyte", labels)):
            content = idx_bytes(array)
            (raw / f"{name}.gz").write_bytes(gzip.compress(content))
            md5[name] = hashlib.md5(content).hexdigest()
    return data_dir, md5


def compose_train(
    overrides: list[str], output_dir: Path, data: tuple[Path, dict[str, str]] | None = None, config_name: str = "train"
) -> DictConfig:
    """The train config (or another entry config built on it, such as lr_find) as `python src/train.py OVERRIDES`
    composes it, writing into output_dir."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.trainer.enable_progress_bar = False
        if data is not None:
            cfg.data.data_dir = str(data[0])
            cfg.data.md5 = data[1]
    return cfg


def data_overrides(data: tuple[Path, dict[str, str]]) -> list[str]:
    """Command-line overrides that point `python src/train.py` at the synthetic data."""
    data_dir, md5 = data
    return [f"data.data_dir={data_dir}", "data.md5={" + ",".join(f"{k}:{v}" for k, v in md5.items()) + "}"]


# Small, fast settings for runs on the synthetic data.
SYNTHETIC = [
    "data.val_size=200",
    "data.batch_size=50",
    "steps_per_execution=4",  # 16 batches of training data per epoch: 4 executions
    "data.eval_batch_size=100",
    "trainer.max_epochs=3",
    "model.hidden_dims=[64,32]",
    "trainer.log_every_n_steps=2",
]


@pytest.fixture
def make_cfg(synthetic_mnist, tmp_path):
    """Compose a config for the synthetic data: make_cfg("optimizer=adam", ...)."""

    def make(*overrides: str, synthetic: bool = True) -> DictConfig:
        base = SYNTHETIC if synthetic else []
        return compose_train([*base, *overrides], tmp_path / "run", synthetic_mnist)

    return make


def resolved(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


FRESH_PROCESS_THREADS = torch.get_num_threads()


def run_entry(script: str, args: list[str], cwd: Path | None = None) -> tuple[int, str, str]:
    """`python SCRIPT ARGS` (a path in the checkout; from the folder `cwd`) in this process, where the process
    boundary is not what a test checks: its imports are paid once. Returns (exit status, stdout, stderr)."""
    saved_argv, saved_env, saved_cwd = sys.argv, os.environ.get("HYDRA_FULL_ERROR"), Path.cwd()
    torch.set_num_threads(FRESH_PROCESS_THREADS)  # as a new process would have, whatever a test set before
    sys.argv = [script, *args]
    out, err = io.StringIO(), io.StringIO()
    status = 0
    try:
        os.chdir(cwd or saved_cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(str(REPO / script), run_name="__main__")
            except SystemExit as exit_info:  # as the interpreter ends a process: sys.exit("message") prints it
                status = 0 if exit_info.code is None else exit_info.code if isinstance(exit_info.code, int) else 1
                if isinstance(exit_info.code, str):
                    print(exit_info.code, file=sys.stderr)
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        if saved_env is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)  # run() sets it; subprocesses must not inherit it
    return status, out.getvalue(), err.getvalue()
