"""A sweep folder is its command's: one process sweeps into it at a time, another command is refused (or added with
sweep.add=true, the table saying which command made each row), and more seeds reuse the seeds already trained."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, SYNTHETIC, data_overrides, run_entry

QUICK = [*SYNTHETIC, "trainer.max_epochs=1", "logger=none"]


def sweep(folder: Path, data, *swept: str) -> tuple[int, str, str]:
    return run_entry("src/train.py", ["-m", *QUICK, *data_overrides(data), *swept, f"hydra.sweep.dir={folder}"])


def snapshot(folder: Path) -> dict[str, int]:
    """Every file under the folder and when it last changed."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def table_rows(folder: Path) -> list[str]:
    lines = (folder / "results.md").read_text(encoding="utf-8").splitlines()
    return [line for line in lines[2:] if line.startswith("| ")]


def test_another_command_into_a_sweep_folder_is_refused_before_it_changes_anything(synthetic_mnist, tmp_path):
    folder = tmp_path / "sweep"
    status, _, err = sweep(folder, synthetic_mnist, "optimizer=sgd,momentum,adam")
    assert status == 0, err[-3000:]
    before = snapshot(folder)
    status, out, err = sweep(folder, synthetic_mnist, "optimizer=sgd,adam")
    assert (status, err.splitlines()[-1]) == (
        1,
        f"error: hydra.sweep.dir={folder}: this folder holds the sweep of another command (optimizer=sgd,momentum,adam "
        "there, sgd,adam now); give that command again to continue it, another hydra.sweep.dir for a new sweep, or "
        "sweep.add=true to add this command's jobs to its table",
    )
    assert snapshot(folder) == before  # no job's .hydra/, no table, nothing rewritten
    assert "| momentum |" in (folder / "results.md").read_text(encoding="utf-8")


@pytest.mark.slow  # three sweeps
def test_added_commands_share_the_table_which_says_who_made_each_row(synthetic_mnist, tmp_path):
    folder = tmp_path / "sweep"
    assert sweep(folder, synthetic_mnist, "optimizer=sgd,adam")[0] == 0
    status, out, err = sweep(folder, synthetic_mnist, "optimizer=sgd,momentum", "sweep.add=true")
    assert status == 0, err[-3000:]
    assert "kept: 0_optimizer=sgd (ok, from an earlier run of this sweep)" in out  # sgd is not trained twice
    rows = {row.split(" | ")[0].strip("| "): row.split(" | ")[1] for row in table_rows(folder)}
    assert rows == {"sgd": "1, 2", "adam": "1", "momentum": "2"}
    table = (folder / "results.md").read_text(encoding="utf-8")
    assert "Commands:\n1. `optimizer=sgd,adam`\n2. `optimizer=sgd,momentum sweep.add=true`" in table.replace(
        " ".join(QUICK + data_overrides(synthetic_mnist)) + " ", ""
    )
    # Without sweep.add, the folder's first command continues; a third one is still refused.
    assert sweep(folder, synthetic_mnist, "optimizer=sgd,adam")[0] == 0
    assert sweep(folder, synthetic_mnist, "optimizer=rmsprop")[0] == 1


@pytest.mark.slow  # two sweeps
def test_more_seeds_reuse_the_seeds_already_trained_and_fewer_leave_them_out_of_the_table(synthetic_mnist, tmp_path):
    folder = tmp_path / "sweep"
    assert sweep(folder, synthetic_mnist, "optimizer=sgd,adam", "seed=0")[0] == 0
    trained = {
        job: json.loads((folder / job / "metrics.json").read_text(encoding="utf-8"))
        for job in ("0_optimizer=sgd", "1_optimizer=adam")
    }
    status, out, err = sweep(folder, synthetic_mnist, "optimizer=sgd,adam", "seed=0,1")
    assert status == 0, err[-3000:]
    assert out.count("kept: ") == 2 and "kept: 0_optimizer=sgd (ok" in out and "kept: 1_optimizer=adam (ok" in out
    for job, metrics in trained.items():  # the seed-0 runs, untouched
        assert json.loads((folder / job / "metrics.json").read_text(encoding="utf-8")) == metrics
    assert [row.split(" | ")[1] for row in table_rows(folder)] == ["2", "2"]  # seeds per row
    assert len([p for p in folder.iterdir() if (p / "metrics.json").exists()]) == 4
    assert sweep(folder, synthetic_mnist, "optimizer=sgd,adam", "seed=0")[0] == 0  # fewer: the table of seed 0
    assert [row.split(" | ")[1] for row in table_rows(folder)] == ["1", "1"]


@pytest.mark.slow  # a sweep in a process of its own
def test_a_second_process_sweeping_into_a_held_folder_is_refused_and_the_first_finishes(synthetic_mnist, tmp_path):
    folder = tmp_path / "sweep"
    swept = ["optimizer=sgd,adam", "trainer.max_epochs=30"]
    command = [sys.executable, str(REPO / "src" / "train.py"), "-m", *QUICK, *data_overrides(synthetic_mnist)]
    first = subprocess.Popen([*command, *swept, f"hydra.sweep.dir={folder}"], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(folder.glob("0_*/.holder")):  # the first job trains
        assert time.monotonic() < deadline and first.poll() is None, "the first sweep did not start"
        time.sleep(0.1)
    held = snapshot(folder)
    status, _, err = sweep(folder, synthetic_mnist, *swept)
    assert (status, err.splitlines()[-1]) == (
        1,
        f"error: {folder}: process {first.pid} is sweeping into this folder; wait for it to end, or sweep into "
        "another hydra.sweep.dir",
    )
    assert {k: v for k, v in snapshot(folder).items() if k in held and ".hydra" in k} == {
        k: v for k, v in held.items() if ".hydra" in k
    }
    assert first.wait(timeout=300) == 0
    assert [row.split(" | ")[-1] for row in table_rows(folder)] == ["ok |", "ok |"]
