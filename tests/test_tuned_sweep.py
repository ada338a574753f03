"""sweep=optimizers_tuned: each optimizer's learning rate chosen on validation, then trained on every seed."""

import pytest
from hydra import compose, initialize_config_dir
from test_sweep import FAST, multirun, read_csv

from mlplab.experiments.sweep import load_jobs

from conftest import CONF_DIR, data_overrides

GRID = "sweep.tune.grid=[0.003,0.1,1e12]"  # 1e12 diverges


@pytest.fixture(scope="module")
def tuned(synthetic_mnist, tmp_path_factory):
    """sgd and adam, each tuned over GRID for 1 epoch, then 2 seeds of 2 epochs: (sweep folder, process)."""
    folder = tmp_path_factory.mktemp("tuned")
    args = [*FAST, *data_overrides(synthetic_mnist), "sweep=optimizers_tuned", "optimizer=sgd,adam", GRID]
    return folder, multirun(*args, "sweep.seeds=2", f"hydra.sweep.dir={folder}")


@pytest.mark.slow
def test_each_grid_point_runs_once_with_the_tuning_budget_and_a_diverging_one_is_skipped(tuned):
    folder, result = tuned
    assert result.returncode == 0, result.stderr  # a diverged grid point is expected, not a failed sweep
    points = {(j.overrides["optimizer"], j.overrides["optimizer.lr"]): j for j in load_jobs(folder / "tune")}
    assert sorted(points) == [(o, lr) for o in ("adam", "sgd") for lr in ("0.003", "0.1", "1000000000000.0")]
    for job in points.values():
        assert job.seed == 0 and job.overrides["trainer.max_epochs"] == "1"
        assert job.metrics["epochs"] == 1 if job.metrics["status"] == "ok" else job.metrics["status"] == "diverged"
    assert {o for (o, lr), j in points.items() if j.metrics["status"] == "diverged"} == {"sgd", "adam"}
    assert len(read_csv(folder / "tune" / "results.csv")) == 6 and "diverged: train/loss is nan" in result.stderr


@pytest.mark.slow
def test_final_runs_use_the_learning_rate_best_on_validation_on_every_seed(tuned):
    folder, result = tuned
    tuning, final = load_jobs(folder / "tune"), load_jobs(folder)
    for optimizer in ("sgd", "adam"):
        finished = {
            j.overrides["optimizer.lr"]: j.metrics["val/acc_best"]
            for j in tuning
            if j.overrides["optimizer"] == optimizer and j.metrics["status"] == "ok"
        }
        best = max(finished, key=finished.get)  # chosen by validation alone
        runs = [j for j in final if j.overrides["optimizer"] == optimizer]
        assert sorted((j.overrides["optimizer.lr"], j.seed) for j in runs) == [(best, 0), (best, 1)]
        assert all(j.metrics["epochs"] == 2 for j in runs)  # the full budget
        assert f"optimizer={optimizer}: optimizer.lr={best} (val/acc_best {finished[best]:.2%})" in result.stdout
    rows = read_csv(folder / "results.csv")
    assert {r["optimizer"] for r in rows} == {"sgd", "adam"} and rows[0]["verdict"] == "best"
    assert all(r["seeds"] == "2" and r["status"] == "ok" for r in rows)
    assert (folder / "results.md").read_text(encoding="utf-8") in result.stdout


@pytest.mark.slow
def test_an_optimizer_whose_every_grid_point_diverges_gets_a_failed_row(synthetic_mnist, tmp_path):
    args = [*FAST, *data_overrides(synthetic_mnist), "sweep=optimizers_tuned", "optimizer=sgd,adam"]
    result = multirun(*args, "sweep.tune.grid=[1e12]", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 1
    rows = {r["optimizer"]: r for r in read_csv(tmp_path / "results.csv")}
    for optimizer in ("sgd", "adam"):
        assert rows[optimizer]["status"] == "1 failed"
        assert rows[optimizer]["error"].startswith("no value of optimizer.lr in sweep.tune.grid finished training")
        line = f"optimizer={optimizer}: no value of optimizer.lr finished training with a val/acc_best; left out"
        assert line in result.stdout


@pytest.mark.parametrize("override", ["optimizer.lr=0.1", "seed=0,1"])
@pytest.mark.slow
def test_the_tuned_key_and_the_seed_are_the_sweeps_own(synthetic_mnist, tmp_path, override):
    result = multirun("sweep=optimizers_tuned", override, f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 1
    key = override.split("=")[0]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {override}: this sweep sets {key} itself (the grid: sweep.tune.grid; the seeds: sweep.seeds); "
        "leave it off the command line"
    )


def test_the_preset_tunes_every_optimizer_on_a_log_grid():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["sweep=optimizers_tuned", "sweep.seeds=3"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper.params.optimizer == "sgd,momentum,rmsprop,adam,adamw"
    assert sweeper.tuned == "optimizer.lr" and sweeper.seeds == 3 and list(sweeper.budget) == ["trainer.max_epochs=1"]
    grid = list(sweeper.grid)
    assert (
        grid[0] == 1e-4
        and grid[-1] == 1.0
        and all(b / a == pytest.approx(10**0.5, rel=0.06) for a, b in zip(grid, grid[1:], strict=False))
    )
