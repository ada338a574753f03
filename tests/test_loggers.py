"""logger=csv and logger=mlflow: what they record, read back with their own readers (csv, MLflow's client), beside
TensorBoard without changing the run's numbers, and kept across a resume up to the step it starts from."""

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mlplab.training import train

import browser
from conftest import SYNTHETIC, compose_train

TWO_EPOCHS = [*SYNTHETIC, "trainer.max_epochs=2", "trainer.log_every_n_steps=4"]


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "csv" / "metrics.csv").open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def same_numbers(a: dict, b: dict) -> bool:
    """metrics.json of two runs, but for where they live and how long they took."""
    return {k: v for k, v in a.items() if k not in ("best_checkpoint", "train_time_s")} == {
        k: v for k, v in b.items() if k not in ("best_checkpoint", "train_time_s")
    }


@pytest.fixture(scope="module")
def tensorboard_only(synthetic_mnist, tmp_path_factory):
    return train(compose_train(TWO_EPOCHS, tmp_path_factory.mktemp("tensorboard") / "run", synthetic_mnist))[0]


def test_csv_logger_writes_every_record_and_leaves_the_numbers_alone(synthetic_mnist, tmp_path, tensorboard_only):
    run_dir = tmp_path / "run"
    metrics, _ = train(compose_train([*TWO_EPOCHS, "logger=[tensorboard,csv]"], run_dir, synthetic_mnist))
    assert same_numbers(metrics, tensorboard_only)
    rows = csv_rows(run_dir)
    assert list(rows[0])[0] == "step"
    steps = {int(row["step"]) for row in rows if row.get("train/loss_step")}
    assert steps == set(range(4, 33, 4))  # every log_every_n_steps=4 optimizer steps of 2 epochs of 16 batches
    epoch_ends = [row for row in rows if row.get("val/acc")]
    assert [int(row["step"]) for row in epoch_ends] == [16, 32]
    assert float(epoch_ends[-1]["val/acc_best"]) == pytest.approx(metrics["val/acc_best"])
    [tested] = [row for row in rows if row.get("test/acc")]
    assert float(tested["test/acc"]) == pytest.approx(metrics["test/acc"])


def test_csv_logger_keeps_its_rows_across_a_resume_and_clears_them_on_a_start_over(synthetic_mnist, tmp_path):
    three = [*SYNTHETIC, "trainer.max_epochs=3", "trainer.log_every_n_steps=4", "logger=csv"]
    whole_dir, part_dir = tmp_path / "whole", tmp_path / "part"
    train(compose_train(three, whole_dir, synthetic_mnist))
    train(compose_train([*three, "trainer.max_epochs=2"], part_dir, synthetic_mnist))
    first_part = csv_rows(part_dir)
    checkpoint = part_dir / "checkpoints" / "last.ckpt"
    train(compose_train([*three, f"ckpt_path={checkpoint}"], part_dir, synthetic_mnist))
    resumed = csv_rows(part_dir)
    # The first part's training rows are still there, and the resumed run's training rows are the uninterrupted run's.
    training = ("step", "train/loss_step", "train/acc_step", "train/lr")
    kept = [{k: row[k] for k in training} for row in resumed if row.get("train/loss_step")]
    assert kept[: len([r for r in first_part if r.get("train/loss_step")])] == [
        {k: row[k] for k in training} for row in first_part if row.get("train/loss_step")
    ]
    assert kept == [{k: row[k] for k in training} for row in csv_rows(whole_dir) if row.get("train/loss_step")]
    # A run that starts in a folder where an earlier attempt logged clears what that attempt wrote.
    train(compose_train([*three, "trainer.max_epochs=1"], part_dir, synthetic_mnist))
    assert max(int(row["step"]) for row in csv_rows(part_dir)) == 16


def mlflow_overrides(store: Path) -> list[str]:
    return ["logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri=sqlite:///{store}"]


def test_mlflow_runs_read_back_with_mlflows_client(synthetic_mnist, tmp_path, tensorboard_only):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]')")
    store, run_dir = tmp_path / "mlflow.db", tmp_path / "run"
    metrics, _ = train(compose_train([*TWO_EPOCHS, *mlflow_overrides(store)], run_dir, synthetic_mnist))
    assert same_numbers(metrics, tensorboard_only)
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("train")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["optimizer/lr"] == "0.01" and run.data.params["model/hidden_dims"] == "[64, 32]"
    history = client.get_metric_history(run.info.run_id, "train/loss_step")
    assert [point.step for point in history] == list(range(4, 33, 4))
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"])
    assert run.data.metrics["val/acc_best"] == pytest.approx(
        json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["val/acc_best"]
    )
    # A resume logs into the same MLflow run; a start-over in the folder replaces it.
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    resumed = [*TWO_EPOCHS, *mlflow_overrides(store), "trainer.max_epochs=3", f"ckpt_path={checkpoint}"]
    train(compose_train(resumed, run_dir, synthetic_mnist))
    [again] = client.search_runs([experiment.experiment_id])
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert [p.step for p in client.get_metric_history(run.info.run_id, "val/acc")] == [16, 32, 48]
    train(compose_train([*TWO_EPOCHS, *mlflow_overrides(store)], run_dir, synthetic_mnist))
    [fresh] = client.search_runs([experiment.experiment_id])
    assert fresh.info.run_id != run.info.run_id
    assert [p.step for p in client.get_metric_history(fresh.info.run_id, "val/acc")] == [16, 32]


@pytest.mark.browser
def test_mlflow_ui_shows_the_run_offline(synthetic_mnist, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]')")
    store, run_dir = tmp_path / "mlflow.db", tmp_path / "sgd_run"
    train(compose_train([*TWO_EPOCHS, *mlflow_overrides(store)], run_dir, synthetic_mnist))
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{store}"]
    address = ["--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen([*command, *address], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with browser.chromium() as driver:
            base = f"http://127.0.0.1:{port}"
            browser.wait_for(lambda: _answers(base), timeout=90, what="mlflow ui")
            experiment = mlflow.MlflowClient(f"sqlite:///{store}").get_experiment_by_name("train").experiment_id
            text = browser.open_page(driver, f"{base}/#/experiments/{experiment}/runs", ["Training runs", "sgd_run"])
            assert "1\nmatching run" in text
            driver.save_screenshot(str(tmp_path / "mlflow_ui.png"))
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(base: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
