"""Multirun sweeps end in one table; failed jobs are recorded and do not stop the others."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mlplab.experiments.sweep import load_jobs, summarize

from conftest import CONF_DIR, REPO, SYNTHETIC, data_overrides, run_entry

FAST = [*SYNTHETIC, "trainer.max_epochs=2", "logger=none"]


def multirun(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`python src/train.py -m ARGS`, run in this process (the launchers' workers are processes of their own)."""
    status, out, err = run_entry("src/train.py", ["-m", *args], cwd)
    return subprocess.CompletedProcess(["train.py", "-m", *args], status, out, err)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sweep(synthetic_mnist, tmp_path_factory):
    """optimizer=sgd,adam x seed=0,1 on the synthetic data: (sweep folder, completed process)."""
    folder = tmp_path_factory.mktemp("sweep")
    args = [*FAST, *data_overrides(synthetic_mnist), "optimizer=sgd,adam", "seed=0,1", f"hydra.sweep.dir={folder}"]
    return folder, multirun(*args)


@pytest.mark.slow
def test_one_folder_per_job_named_after_its_overrides(sweep):
    folder, result = sweep
    assert result.returncode == 0, result.stderr
    jobs = sorted((p.name for p in folder.iterdir() if p.is_dir()), key=lambda name: int(name.split("_")[0]))
    expected = [("optimizer=sgd", "seed=0"), ("optimizer=sgd", "seed=1"), ("optimizer=adam", "seed=0")]
    expected.append(("optimizer=adam", "seed=1"))
    assert len(jobs) == 4
    # Named after the overrides that vary, not the many that every job shares (data.data_dir, ...).
    assert jobs == [f"{num}_{optimizer},{seed}" for num, (optimizer, seed) in enumerate(expected)]
    for job in jobs:
        assert json.loads((folder / job / "metrics.json").read_text(encoding="utf-8"))["status"] == "ok"


@pytest.mark.slow
def test_results_group_seeds_with_mean_and_std_sorted_by_validation(sweep):
    folder, result = sweep
    rows = read_csv(folder / "results.csv")
    assert [r["optimizer"] for r in rows] == sorted(
        ["sgd", "adam"], key=lambda o: -float(next(r for r in rows if r["optimizer"] == o)["val/acc_best mean"])
    )
    for row in rows:
        assert row["seeds"] == "2" and row["status"] == "ok" and row["epochs"] == "2.0"
        jobs = [
            json.loads(p.read_text(encoding="utf-8"))
            for p in folder.glob(f"*_optimizer={row['optimizer']},seed=*/metrics.json")
        ]
        losses = [j["test/loss"] for j in jobs]
        assert len(losses) == 2 and losses[0] != losses[1]
        assert float(row["test/loss mean"]) == pytest.approx(sum(losses) / 2)
        assert float(row["test/loss std"]) == pytest.approx(abs(losses[0] - losses[1]) / 2**0.5)
        assert float(row["train_time_s"]) > 0
    table = (folder / "results.md").read_text(encoding="utf-8")
    assert table.splitlines()[0].startswith("| optimizer | seeds | val/acc_best % | test/acc % | test/loss |")
    assert table in result.stdout  # printed at the end too
    assert (folder / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_failed_and_diverged_jobs_are_recorded_and_the_rest_still_run(synthetic_mnist, tmp_path):
    args = [*FAST, *data_overrides(synthetic_mnist), "optimizer.lr=0.01,1e12,-1", f"hydra.sweep.dir={tmp_path}"]
    result = multirun(*args)
    assert result.returncode == 1  # some jobs did not end ok
    rows = {r["optimizer.lr"]: r for r in read_csv(tmp_path / "results.csv")}
    assert rows["0.01"]["status"] == "ok" and float(rows["0.01"]["test/acc mean"]) > 0.5
    assert rows["1000000000000.0"]["status"] == "1 diverged" and rows["1000000000000.0"]["error"].startswith(
        "train/loss is nan at epoch 0"
    )
    assert rows["-1"]["status"] == "1 failed" and rows["-1"]["error"] == "optimizer.lr=-1: must be a number > 0"
    assert "diverged: train/loss is nan" in result.stderr and "failed: optimizer.lr=-1" in result.stderr


@pytest.mark.slow
def test_summarize_rebuilds_the_table_of_an_interrupted_sweep(sweep, tmp_path):
    folder, _ = sweep
    copy = tmp_path / "sweep"
    shutil.copytree(folder, copy)
    for name in ("results.csv", "results.md", "results.png"):
        (copy / name).unlink()
    (next(copy.glob("3_*")) / "metrics.json").unlink()  # adam, seed 1: killed before it finished
    shutil.rmtree(next(copy.glob("1_*")))  # sgd, seed 1: never started
    status, _, err = run_entry("scripts/summarize.py", [str(copy)])
    assert status == 1, err  # not every job ended ok
    rows = {r["optimizer"]: r for r in read_csv(copy / "results.csv")}
    assert rows["sgd"]["seeds"] == "1" and rows["sgd"]["status"] == "ok"
    assert rows["adam"]["seeds"] == "2" and rows["adam"]["status"] == "1 incomplete, 1 ok"
    assert rows["adam"]["test/acc std"] == "nan"  # one finished seed: no spread to report
    assert (copy / "results.md").exists() and (copy / "results.png").exists()


def test_job_folder_names_are_cut_at_150_characters():
    import mlplab.cli  # noqa: F401  (registers the resolver, as every entry point does)

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    subdir = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"]
    subdir = subdir.replace("hydra.job.num", "num").replace("hydra.job.override_dirname", "name")
    assert OmegaConf.create({"num": 3, "name": "x" * 200, "subdir": subdir}).subdir == "3_" + "x" * 150


def test_summarize_rejects_a_folder_without_jobs(tmp_path):
    status, _, err = run_entry("scripts/summarize.py", [str(tmp_path)])
    assert status == 2 and "no sweep jobs here" in err


def test_rows_group_by_every_swept_key_but_the_seed(tmp_path):
    for num, (opt, lr, seed) in enumerate(
        [("sgd", "0.1", 0), ("sgd", "0.1", 1), ("sgd", "0.2", 0), ("adam", "0.1", 0)]
    ):
        job = tmp_path / f"{num}_x"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(
            f"- optimizer={opt}\n- optimizer.lr={lr}\n- seed={seed}\n", encoding="utf-8"
        )
        metrics = {"status": "ok", "val/acc_best": 0.9 + num / 100, "test/acc": 0.9, "test/loss": 0.3}
        (job / "metrics.json").write_text(json.dumps({**metrics, "epochs": 3, "train_time_s": 1.0}), encoding="utf-8")
    swept, rows = summarize(load_jobs(tmp_path))
    assert swept == ["optimizer", "optimizer.lr"]
    assert [(r["optimizer"], r["optimizer.lr"], r["seeds"]) for r in rows] == [
        ("adam", "0.1", 1),
        ("sgd", "0.2", 1),
        ("sgd", "0.1", 2),
    ]


@pytest.mark.parametrize(
    ("preset", "key", "values"),
    [
        ("optimizers", "optimizer", "sgd,momentum,rmsprop,adam"),
        (
            "regularization",
            "regularization",
            "[],l1,l2,dropout,batch_norm,early_stopping,[l1,l2,dropout,batch_norm,early_stopping]",
        ),
        ("losses", "loss", "cross_entropy,mse"),
    ],
)
def test_presets_sweep_their_options_over_the_asked_number_of_seeds(preset, key, values):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"sweep={preset}", "sweep.seeds=3"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params[key] == values and params.seed == "range(0,3)"


@pytest.mark.slow
def test_parallel_jobs_share_the_cores_and_runs_never_share_a_folder(synthetic_mnist, tmp_path):
    args = [*FAST, *data_overrides(synthetic_mnist), "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1"]
    result = multirun(*args, f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 0, result.stderr
    cores = os.cpu_count() or 1
    for record_file in (tmp_path / "sweep").glob("*/run.json"):
        record = json.loads(record_file.read_text(encoding="utf-8"))
        assert record["torch_threads"] == max(1, cores // min(2, cores))
    # Two single runs started together (same second) in one working folder get two folders.
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    command = [sys.executable, str(REPO / "src" / "train.py"), *data_overrides(synthetic_mnist), "data.val_size=200"]
    command.append("debug=fast")
    runs = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL) for _ in range(2)]
    assert [p.wait(timeout=120) for p in runs] == [0, 0]
    assert len(list((tmp_path / "outputs" / "debug").iterdir())) == 2
