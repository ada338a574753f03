"""DDP with 2 CPU processes (gloo): one run folder per run, global metrics, and clean Hydra multiruns."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import REPO, SYNTHETIC, data_overrides

pytestmark = pytest.mark.slow  # each run starts extra Python processes

RUN = [*SYNTHETIC, "trainer.max_epochs=2", "logger=none"]


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    command = [sys.executable, str(REPO / "src" / "train.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.parametrize("model", ["mlp", "cnn", "rnn"])
def test_ddp_run_matches_one_process_with_the_same_global_batch(synthetic_mnist, tmp_path, model):
    data = [*data_overrides(synthetic_mnist), f"model={model}"]
    # 2 processes x 25 images: the very batches of one process x 50 (each rank takes every other image).
    ddp_args = ["trainer=ddp_cpu", "data.batch_size=25", "logger=tensorboard", f"hydra.run.dir={tmp_path / 'ddp'}"]
    ddp = train(*RUN, *data, *ddp_args, cwd=tmp_path)
    assert ddp.returncode == 0 and "Traceback" not in ddp.stderr, ddp.stderr  # rank 1 ends cleanly too
    single = train(*RUN, *data, "data.batch_size=50", f"hydra.run.dir={tmp_path / 'single'}", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]  # no folder per rank
    folder = tmp_path / "ddp"
    best, last = sorted(p.name for p in (folder / "checkpoints").iterdir())  # the best epoch's, and the last
    assert re.fullmatch(r"epoch_00[01]\.ckpt", best) and last == "last.ckpt"
    assert (folder / ".hydra" / "config.yaml").exists() and not list(folder.glob(".pl_hydra*"))
    assert len([line for line in ddp.stdout.splitlines() if line.startswith("test/acc ")]) == 1  # rank 0's
    events = EventAccumulator(str(folder))
    events.Reload()
    assert len(events.PluginTagToContent("hparams")) == 2  # rank 0's HParams session: its start and end
    ours, theirs = (json.loads((tmp_path / n / "metrics.json").read_text(encoding="utf-8")) for n in ("ddp", "single"))
    for key in ("val/acc_best", "test/acc", "val/loss", "test/loss"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-4), key


def test_ddp_inside_a_multirun_gives_one_complete_job_per_setting(synthetic_mnist, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *RUN, *data_overrides(synthetic_mnist), "trainer=ddp_cpu", "optimizer=momentum,adam"]
    result = train(*args, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [j.name.split("_")[0] for j in jobs] == ["0", "1"]
    assert [j.name for j in jobs] == ["0_optimizer=momentum", "1_optimizer=adam"]  # named by what varies
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["status"] == "ok" and metrics["epochs"] == 2 and metrics["test/acc"] > 0.5
        assert (job / "checkpoints" / "last.ckpt").exists()
    summaries = [line for line in result.stdout.splitlines() if line.startswith("test/acc ")]
    assert len(summaries) == 2  # each job trained once, not once per rank
    assert not (tmp_path / "outputs").exists()  # no rank ran a sweep of its own
    assert len((sweep / "results.csv").read_text(encoding="utf-8").strip().splitlines()) == 3  # header + 2 rows


def test_cluster_launcher_runs_a_sweep_as_separate_jobs(synthetic_mnist, tmp_path):
    # submitit_local: the SLURM launcher's machinery (pickled jobs, one process each) on this machine.
    sweep = tmp_path / "sweep"
    args = ["-m", *RUN, *data_overrides(synthetic_mnist), "hydra/launcher=submitit_local", "optimizer=sgd,adam"]
    result = train(*args, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit())
    assert len(jobs) == 2
    for job in jobs:
        assert json.loads((job / "metrics.json").read_text(encoding="utf-8"))["status"] == "ok"
    assert len((sweep / "results.csv").read_text(encoding="utf-8").strip().splitlines()) == 3
    assert list((sweep / ".submitit").iterdir())  # submitit's own job records
