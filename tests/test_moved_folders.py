"""A run or sweep folder moved elsewhere goes on there: the paths its checkpoints and records hold follow it, and
a resumed run keeps its best score (Lightning drops it when the folder a checkpoint names has changed)."""

import json
import shutil

import pytest

from conftest import SYNTHETIC, data_overrides, run_entry

pytestmark = pytest.mark.slow  # several trainings
QUICK = [*SYNTHETIC, "logger=none"]
COMPARED = ("val/acc_best", "test/acc", "test/loss", "epochs", "history")


def train(*args: str) -> tuple[int, str, str]:
    return run_entry("src/train.py", list(args))


def test_a_moved_run_folder_resumes_as_it_would_have_in_place(synthetic_mnist, tmp_path):
    data = data_overrides(synthetic_mnist)
    for name in ("in_place", "before_move"):
        status, _, err = train(*QUICK, *data, "trainer.max_epochs=2", f"hydra.run.dir={tmp_path / name}")
        assert status == 0, err
    moved = shutil.move(tmp_path / "before_move", tmp_path / "elsewhere" / "moved")
    for folder in (tmp_path / "in_place", moved):
        resume = [f"ckpt_path={folder / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=4"]
        status, _, err = train(*resume, f"hydra.run.dir={tmp_path / 'resume' / folder.name}")
        assert status == 0, err
    kept, followed = (
        json.loads((f / "metrics.json").read_text(encoding="utf-8")) for f in (tmp_path / "in_place", moved)
    )
    assert {k: followed[k] for k in COMPARED} == {k: kept[k] for k in COMPARED}
    assert followed["best_checkpoint"] == str(moved / "checkpoints" / kept["best_checkpoint"].rsplit("/", 1)[-1])
    best = sorted(p.name for p in (moved / "checkpoints").glob("epoch_*.ckpt"))
    assert best == sorted(p.name for p in (tmp_path / "in_place" / "checkpoints").glob("epoch_*.ckpt"))


def test_a_moved_sweep_folder_continues_where_it_is_now(synthetic_mnist, tmp_path):
    swept = ["-m", *QUICK, *data_overrides(synthetic_mnist), "trainer.max_epochs=1", "optimizer=sgd,adam"]
    status, _, err = train(*swept, "seed=0", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert status == 0, err
    moved = shutil.move(tmp_path / "sweep", tmp_path / "elsewhere" / "sweep")
    status, out, err = train(*swept, "seed=0,1", f"hydra.sweep.dir={moved}")
    assert status == 0, err
    assert out.count("kept: ") == 2  # the seed-0 jobs, compared with their recorded configs' paths moved along
    rows = [
        line for line in (moved / "results.md").read_text(encoding="utf-8").splitlines()[2:] if line.startswith("| ")
    ]
    assert [row.split(" | ")[1] for row in rows] == ["2", "2"]
