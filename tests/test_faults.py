"""Faults during a run: a disk that fills up, two processes on one run folder. One clear line, nothing half-written,
and what was already saved still loads and resumes."""

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lightning.pytorch import Callback

from mlplab.checkpoints import load_checkpoint
from mlplab.cli import user_error
from mlplab.training import train

from conftest import REPO, SYNTHETIC, compose_train, data_overrides

ENV = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}


def mounted(folder: Path, options: str) -> Path:
    """A small tmpfs mounted on folder: a real disk to fill up, or a read-only one."""
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]).returncode:
        pytest.skip("mounting a small tmpfs (a disk that fills up, a read-only one) needs root")
    return folder


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 4 MB filesystem, to fill up for real."""
    yield mounted(tmp_path / "disk", "size=4m")
    subprocess.run(["umount", "-l", str(tmp_path / "disk")], check=True)


def test_a_run_folder_on_a_read_only_disk_is_one_line(synthetic_mnist, tmp_path):
    disk = mounted(tmp_path / "readonly", "size=1m,ro")
    try:
        command = [sys.executable, str(REPO / "src" / "train.py"), *data_overrides(synthetic_mnist), "debug=fast"]
        result = subprocess.run([*command, f"hydra.run.dir={disk}/run"], capture_output=True, text=True, env=ENV)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: hydra.run.dir={disk}/run: cannot create the run folder (Read-only file system)"
    )


class FillDisk(Callback):
    """Fills the run's disk but for 8 kB once the first epoch's checkpoints are written, or to the last byte once
    training has ended (testing writes nothing but metrics.json)."""

    def __init__(self, disk: Path, when: str) -> None:
        self.disk, self.when = disk, when

    def fill(self, leave: int) -> None:
        free = os.statvfs(self.disk).f_bavail * os.statvfs(self.disk).f_frsize
        (self.disk / "filler").write_bytes(b"\0" * max(0, free - leave))

    def on_train_epoch_start(self, trainer, module) -> None:
        if self.when == "epoch" and trainer.current_epoch == 1:
            self.fill(8192)

    def on_test_start(self, trainer, module) -> None:
        if self.when == "test":
            self.fill(0)


# The disk fills up in the next epoch's checkpoint (a checkpoint of the synthetic runs' network is about 430 kB), or
# in the run's last write, metrics.json.
@pytest.mark.parametrize(("when", "failing"), [("epoch", "checkpoints/*.ckpt"), ("test", "metrics.json")])
def test_a_disk_that_fills_up_ends_in_one_line_and_the_saved_checkpoints_still_load(
    synthetic_mnist, small_disk, when, failing
):
    run_dir = small_disk / "run"
    cfg = compose_train([*SYNTHETIC, "logger=none", "trainer.max_epochs=3"], run_dir, synthetic_mnist)
    with pytest.raises(OSError) as raised:
        train(cfg, callbacks=[FillDisk(small_disk, when)])
    error = raised.value
    assert error.errno == errno.ENOSPC and Path(error.filename).match(str(run_dir / failing))
    assert user_error(error) == f"{error.filename}: No space left on device"  # the line the command prints
    leftovers = [p.name for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []  # nothing half-written, under any name
    epochs = {load_checkpoint(checkpoint)["epoch"] for checkpoint in (run_dir / "checkpoints").iterdir()}
    # Every checkpoint there loads: the first epoch's, or, when testing found the disk full, the last epoch's too.
    assert epochs == {0} if when == "epoch" else 2 in epochs
    assert not (run_dir / "metrics.json").exists()  # never half-written: complete, or absent

    if when == "epoch":
        (small_disk / "filler").unlink()  # space again: the run resumes from what it saved
        resumed = compose_train([*SYNTHETIC, "logger=none", "trainer.max_epochs=3"], run_dir, synthetic_mnist)
        resumed.ckpt_path = str(run_dir / "checkpoints" / "last.ckpt")
        metrics, _ = train(resumed)
        assert metrics["status"] == "ok" and metrics["epochs"] == 3


def test_a_second_process_resuming_the_same_checkpoint_is_refused(synthetic_mnist, tmp_path):
    run_dir = tmp_path / "run"
    train(compose_train([*SYNTHETIC, "logger=none", "trainer.max_epochs=1"], run_dir, synthetic_mnist))
    command = [sys.executable, str(REPO / "src" / "train.py"), *SYNTHETIC, *data_overrides(synthetic_mnist)]
    command += ["logger=none", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=400"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        lock = run_dir / ".lock"
        deadline = time.monotonic() + 60
        while f"process {first.pid}" not in (lock.read_text() if lock.exists() else ""):
            assert time.monotonic() < deadline and first.poll() is None, "the first resume did not start"
            time.sleep(0.2)
        second = subprocess.run(command, capture_output=True, text=True, env=ENV)
        assert first.poll() is None  # still training, undisturbed
    finally:
        first.terminate()
        first.wait(timeout=60)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"error: {run_dir}: process {first.pid} is training in this run folder; wait for it to end (two runs "
        "resuming one checkpoint would overwrite each other's), or resume from a copy of the checkpoint"
    )
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] >= 0  # the first run's, intact
