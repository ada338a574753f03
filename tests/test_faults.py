"""Faults during a run: a disk that fills up, two processes on one run folder. One clear line, nothing half-written,
and what was already saved still loads and resumes."""

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lightning.pytorch import Callback
from test_use_model import compose_use
from torch.utils.tensorboard import SummaryWriter

from mlplab.cli import quiet_libraries, user_error
from mlplab.engine.checkpoints import load_checkpoint
from mlplab.engine.runs import write_json, write_text
from mlplab.experiments.sweep import write_results
from mlplab.training import train
from mlplab.use.export import export_model

from conftest import REPO, SYNTHETIC, compose_train, data_overrides, run_entry

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
        args = [*data_overrides(synthetic_mnist), "debug=fast", f"hydra.run.dir={disk}/run"]
        status, _, err = run_entry("src/train.py", args)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
    assert status == 1
    assert err.strip().splitlines()[-1] == (
        f"error: hydra.run.dir={disk}/run: cannot create the run folder (Read-only file system)"
    )


def fill(disk: Path, leave: int) -> None:
    """Fills the disk with a file named filler, but for `leave` bytes."""
    (disk / "filler").unlink(missing_ok=True)
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


class FillDisk(Callback):
    """Fills the run's disk but for 8 kB once the first epoch's checkpoints are written, or to the last byte once
    training has ended (testing writes nothing but metrics.json)."""

    def __init__(self, disk: Path, when: str) -> None:
        self.disk, self.when = disk, when

    def on_train_epoch_start(self, trainer, module) -> None:
        if self.when == "epoch" and trainer.current_epoch == 1:
            fill(self.disk, 8192)

    def on_test_start(self, trainer, module) -> None:
        if self.when == "test":
            fill(self.disk, 0)


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


@pytest.mark.slow
@pytest.mark.parametrize("into", ["ckpt_path", "hydra.run.dir"])
def test_a_second_process_training_in_a_held_run_folder_is_refused(synthetic_mnist, tmp_path, into):
    run_dir = tmp_path / "run"
    command = [sys.executable, str(REPO / "src" / "train.py"), *SYNTHETIC, *data_overrides(synthetic_mnist)]
    if into == "ckpt_path":  # resuming the checkpoint that the first process resumes
        train(compose_train([*SYNTHETIC, "logger=none", "trainer.max_epochs=1"], run_dir, synthetic_mnist))
        command += [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"]
    else:  # the same folder named again: Hydra would rewrite its .hydra/ before the run starts
        command += [f"hydra.run.dir={run_dir}"]
    command += ["logger=none", "trainer.max_epochs=400"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        lock = run_dir / ".holder"
        deadline = time.monotonic() + 60
        while f"process {first.pid}" not in (lock.read_text(encoding="utf-8") if lock.exists() else ""):
            assert time.monotonic() < deadline and first.poll() is None, "the first resume did not start"
            time.sleep(0.2)
        recorded = {path: path.stat().st_mtime_ns for path in (run_dir / ".hydra").glob("*")}
        status, _, err = run_entry("src/train.py", command[2:])  # the second, in this process
        assert first.poll() is None  # still training, undisturbed
        assert {path: path.stat().st_mtime_ns for path in (run_dir / ".hydra").glob("*")} == recorded
    finally:
        first.terminate()
        first.wait(timeout=60)
    assert status == 1
    assert err.strip().splitlines()[-1] == (
        f"error: {run_dir}: process {first.pid} is training in this run folder; wait for it to end (two runs "
        "resuming one checkpoint would overwrite each other's), or resume from a copy of the checkpoint"
    )
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["epoch"] >= 0  # the first run's, intact


def test_a_sweep_table_on_a_full_disk_is_one_line_and_the_earlier_table_stays(small_disk):
    sweep_dir = small_disk / "sweep"
    for num, optimizer in enumerate(("sgd", "adam")):
        job = sweep_dir / f"{num}_optimizer={optimizer}"
        write_text(job / ".hydra" / "overrides.yaml", f"- optimizer={optimizer}\n")
        metrics = {"status": "ok", "val/acc_best": 0.9, "test/acc": 0.9, "test/loss": 0.3, "epochs": 3}
        write_json(job / "metrics.json", {**metrics, "train_time_s": 1.0, "history": {"val/acc": [0.8, 0.9]}})
    write_results(sweep_dir)
    write_json(sweep_dir / "0_optimizer=sgd" / "metrics.json", {"status": "failed", "error": "a new table"})
    # The tables are a few hundred bytes each, the plot 30 kB: with 16 kB left the tables are replaced, the plot
    # fails; with none left the first table fails.
    for leave, failing in ((16384, "results.png"), (0, "results.csv")):
        earlier = (sweep_dir / failing).read_bytes()
        fill(small_disk, leave)
        with pytest.raises(OSError) as raised:
            write_results(sweep_dir)
        assert user_error(raised.value) == f"{sweep_dir / failing}: No space left on device"
        assert (sweep_dir / failing).read_bytes() == earlier  # whole, as it was
        assert not list(sweep_dir.glob(".*.tmp"))
        assert b"a new table" in (sweep_dir / "results.md").read_bytes()


def test_an_export_to_a_full_disk_is_one_line_and_the_earlier_file_stays(synthetic_mnist, small_disk, tmp_path):
    metrics, _ = train(compose_train([*SYNTHETIC, "logger=none", "trainer.max_epochs=1"], tmp_path, synthetic_mnist))
    overrides = [f"ckpt_path={metrics['best_checkpoint']}", "format=torch_export", f"output={small_disk}/net.pt2"]
    exported = export_model(compose_use("export", overrides, tmp_path))["path"]
    earlier = exported.read_bytes()
    fill(small_disk, 0)
    with pytest.raises(OSError) as raised:
        export_model(compose_use("export", overrides, tmp_path))
    assert user_error(raised.value) == f"{exported}: No space left on device"
    assert exported.read_bytes() == earlier and sorted(p.name for p in small_disk.iterdir()) == ["filler", "net.pt2"]


def test_a_full_disk_under_tensorboards_writer_is_named_not_lost(small_disk, capfd):
    quiet_libraries()  # what every entry point does first
    writer = SummaryWriter(small_disk / "run")
    fill(small_disk, 0)
    with pytest.raises(OSError) as raised:
        for step in range(10_000):  # the writer's thread fails; a later write or the flush raises its error
            writer.add_scalar("train/loss", 1.0, step)
        writer.flush()
    [event_file] = (small_disk / "run").iterdir()
    assert user_error(raised.value) == f"{event_file}: No space left on device"
    assert "Traceback" not in capfd.readouterr().err  # the thread's own report is silenced: this is the one


# A run of the synthetic data (SYNTHETIC: 3 epochs, TensorBoard on) writes, in order: Hydra's .hydra/*.yaml (16 kB
# in 4 kB pages), .holder (the empty .lock takes no page), run.json, hparams.yaml (4 kB each), the event file (340 kB
# by the end), per epoch a best and a last checkpoint of 430 kB each, beside the earlier ones until renamed (1.6 MB at
# most, in the second epoch), then metrics.json and the HParams session; 1.25 MB in all. Sizes measured to fail in
# different writes, in that order: .hydra/overrides.yaml, .holder, run.json, hparams.yaml, the event file, the first
# checkpoint, the second epoch's (last.ckpt of the first left to resume from); and none. (A disk that fills from
# outside during testing fails in metrics.json: the test above.)
FULL_DISKS = ["12k", "16k", "20k", "28k", "64k", "300k", "1300k", "2m"]


@pytest.mark.slow  # a run per disk size, and a resume
def test_a_run_on_a_full_disk_of_any_size_ends_in_one_line_and_resumes(synthetic_mnist, tmp_path):
    command = [sys.executable, str(REPO / "src" / "train.py"), *SYNTHETIC, *data_overrides(synthetic_mnist)]
    summary, failed, resumable = [], set(), []
    for size in FULL_DISKS:
        disk = mounted(tmp_path / f"disk_{size}", f"size={size}")
        try:
            result = subprocess.run([*command, f"hydra.run.dir={disk}/run"], capture_output=True, text=True, env=ENV)
            run = shutil.copytree(disk / "run", tmp_path / f"run_{size}")  # what the disk held, kept off it
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=True)
        last_line = (result.stderr.strip().splitlines() or [""])[-1]
        failing = re.fullmatch(rf"error: {re.escape(str(disk / 'run'))}/(.+): No space left on device", last_line)
        summary.append(f"size {size}: " + (f"failed in {failing[1]}" if failing else f"exit {result.returncode}"))
        print(summary[-1])
        context = f"{summary[-1]}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, context
        assert (result.returncode, bool(failing)) in ((0, False), (1, True)), context
        if failing:
            failed.add(re.sub(r"tfevents\..*", "tfevents.*", failing[1]))  # the kind of file
        assert not list(run.rglob("*.tmp")), context  # nothing half-written left behind
        for record in run.glob("*.json"):
            json.loads(record.read_text(encoding="utf-8"))  # whole
        if (run / "checkpoints" / "last.ckpt").exists():
            epoch = load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"]
            if failing and epoch < 2:
                resumable.append(run)
        else:
            assert failing, context
    assert len(failed) >= 3, "the sizes no longer fail in different writes:\n" + "\n".join(summary)

    assert resumable, "no size left a checkpoint to resume from:\n" + "\n".join(summary)
    resume = [*command, f"ckpt_path={resumable[0] / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={tmp_path}/resume"]
    result = subprocess.run(resume, capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((resumable[0] / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["status"] == "ok" and metrics["epochs"] == 3
