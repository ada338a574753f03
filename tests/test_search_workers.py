"""Several workers on one study, through Optuna's storage alone: SQLite on one machine, and a real PostgreSQL server
as workers on many machines would share. Heartbeats fail a dead worker's trial, which is run again."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.storages import fail_stale_trials

from mlplab.errors import InputError
from mlplab.experiments.search.storage import ReconnectingStorage, check_no_password

from conftest import REPO, SYNTHETIC, data_overrides, run_entry
from postgres import free_port

ENV = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
# Trials of 2 epochs on the synthetic data, heartbeats every second, a dead worker noticed after 3.
FAST = [*SYNTHETIC, "trainer.max_epochs=2", "logger=none", "search.pruner=null", "search.confirm.top_k=0"]
QUICK_HEARTBEATS = ["search.heartbeat_interval=1", "search.grace_period=3"]


def command(folder: Path, synthetic_mnist, *args: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "src" / "search.py"),
        *FAST,
        *data_overrides(synthetic_mnist),
        f"hydra.run.dir={folder}",
        f"search.experiment_dir={folder}/conf/experiment",
        *args,
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path, monkeypatch) -> str:
    """A storage URL for the study: SQLite in the test's folder, or a database of its own on the PostgreSQL server
    (its password in PGPASSWORD, for the workers this test starts too)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/study.db"
    url = request.getfixturevalue("postgres").url(f"study_{uuid.uuid4().hex[:12]}")
    monkeypatch.setitem(ENV, "PGPASSWORD", os.environ["PGPASSWORD"])
    return url


def load(storage: str, name: str = "mlp") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.user_attrs.get("status") not in (None, "interrupted")]


LAUNCHERS = {  # a launcher's options for three workers at once, and the files where the workers' output goes
    "joblib": (["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"], None),
    "submitit_local": (["hydra/launcher=submitit_local"], "workers/.submitit/*/*_log.out"),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("launcher", "storage"),
    [("joblib", "sqlite"), ("joblib", "postgresql"), ("submitit_local", "sqlite")],
    indirect=["storage"],
)
def test_three_workers_started_by_one_command_share_the_budget(synthetic_mnist, tmp_path, launcher, storage):
    """python src/search.py -m search.worker=range(3) hydra/launcher=...: three processes, one study."""
    folder = tmp_path / "study"
    options, logs = LAUNCHERS[launcher]
    args = ["search.worker=range(3)", *options, f"search.storage={storage}", "search.n_trials=6"]
    workers = [*command(folder, synthetic_mnist, *args), "-m"]
    result = subprocess.run(workers, capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    output = "".join(path.read_text(encoding="utf-8") for path in folder.glob(logs)) if logs else result.stdout
    study = load(storage)
    done = counted(study)
    # Workers that end trials at the same instant may each start one more: at most workers - 1 = 2 extra.
    assert 6 <= len(done) <= 8 and all(t.state.name == "COMPLETE" for t in done), [t.state for t in study.trials]
    assert len({tuple(sorted(t.params.items())) for t in done}) == len(done)  # no trial run twice
    # The table and the best configuration written once, by the worker that finished the last trial.
    assert output.count("best configuration:") == 1, output
    assert output.count("writes its table and best configuration") == 2
    with (folder / "results.csv").open(encoding="utf-8") as table:
        rows = list(csv.DictReader(table))
    assert sum(int(row["seeds"]) for row in rows) == len(done)
    assert (folder / "best.yaml").exists() and {"0", "1", "2"} <= {p.name for p in (folder / "workers").iterdir()}


@pytest.mark.slow
def test_a_killed_worker_s_trial_is_failed_by_another_and_run_again(synthetic_mnist, tmp_path, storage):
    folder = tmp_path / "study"
    base = command(folder, synthetic_mnist, f"search.storage={storage}", "search.n_trials=3", *QUICK_HEARTBEATS)
    # 20 epochs of about 0.07 s: killed after its first checkpoint, the victim is still training.
    base += ["trainer.max_epochs=20"]
    victim = subprocess.Popen(base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    for line in victim.stdout:
        if line.startswith("trial 0 ("):
            break
    while not list(folder.glob("0_*/checkpoints/last.ckpt")):
        time.sleep(0.02)
    survivor = subprocess.Popen(base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    out, err = survivor.communicate(timeout=600)
    print(out)
    assert survivor.returncode == 0, err[-3000:]
    study = load(storage)
    dead = study.trials[0]
    assert dead.state.name == "FAIL" and "status" not in dead.user_attrs  # failed for its silent worker
    [retry] = [t for t in study.trials if t.system_attrs.get("retry_history") == [0]]
    assert retry.state.name == "COMPLETE" and retry.params == dead.params
    assert f"trial {retry.number} runs trial 0 again, whose worker stopped sending heartbeats: resuming from" in out
    assert len(counted(study)) == 3  # the budget, the dead trial not counted
    assert not list(folder.glob("0_*"))  # its folder taken over by the retry, where it resumed
    assert (next(folder.glob(f"{retry.number}_*")) / "metrics.json").exists()


@pytest.mark.slow
def test_sigterm_stops_the_search_in_one_line_and_the_next_call_replaces_the_trial(synthetic_mnist, tmp_path):
    folder, storage = tmp_path / "study", f"sqlite:///{tmp_path}/study.db"
    base = command(folder, synthetic_mnist, f"search.storage={storage}", "search.n_trials=2")
    # Long enough that the signal comes during training (a trial is about 0.07 s per epoch here).
    search = subprocess.Popen(
        [*base, "trainer.max_epochs=30"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV
    )
    while not list(folder.glob("0_*/checkpoints/last.ckpt")):
        time.sleep(0.02)
    search.send_signal(signal.SIGTERM)
    _, err = search.communicate(timeout=120)
    assert search.returncode == 143
    assert err.strip().splitlines()[-1] == (
        "interrupted: SIGTERM in trial 0 (0 of 2 trials done); run the same command again to resume the search"
    )
    [trial] = load(storage).trials
    assert trial.state.name == "FAIL" and trial.user_attrs["status"] == "interrupted"
    status, _, err = in_process(
        folder, synthetic_mnist, f"search.storage={storage}", "search.n_trials=2", "trainer.max_epochs=30"
    )
    assert status == 0, err[-3000:]
    assert [(t.number, t.user_attrs["status"]) for t in load(storage).trials] == [
        (0, "interrupted"),
        (1, "ok"),
        (2, "ok"),
    ]


def in_process(folder: Path, synthetic_mnist, *args: str) -> tuple[int, str, str]:
    """The search's command, run in this process: (exit status, stdout, stderr)."""
    return run_entry("src/search.py", command(folder, synthetic_mnist, *args)[2:])


@pytest.mark.slow
def test_two_studies_in_one_database_stay_apart(synthetic_mnist, tmp_path, storage):
    for name, trials in (("first", 1), ("second", 2)):
        args = [f"search.storage={storage}", f"search.study_name={name}", f"search.n_trials={trials}"]
        status, _, err = in_process(tmp_path / name, synthetic_mnist, *args)
        assert status == 0, err[-3000:]
    assert [len(load(storage, name).trials) for name in ("first", "second")] == [1, 2]


@pytest.mark.slow
def test_a_study_searched_with_other_fixed_values_is_refused(synthetic_mnist, tmp_path):
    folder = tmp_path / "study"
    status, _, err = in_process(folder, synthetic_mnist, "search.n_trials=1")
    assert status == 0, err[-3000:]
    status, _, err = in_process(folder, synthetic_mnist, "search.n_trials=2", "trainer.max_epochs=3")
    assert status != 0
    [line] = err.strip().splitlines()
    assert line == (
        "error: search.study_name=mlp: the study was searched with other fixed values (trainer.max_epochs=2 in the "
        "study, 3 now); give the same, or choose another search.study_name"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql+psycopg://someone@127.0.0.1:1/optuna",
            r"search.storage=postgresql\+psycopg://someone@127.0.0.1:1/optuna: cannot connect \(.*\); "
            "start the database server",
        ),
        (
            "mysql://someone@127.0.0.1/optuna",
            r"search.storage=mysql://someone@127.0.0.1/optuna: its database driver \(MySQLdb\) is not installed",
        ),
        ("nonsense", r"search.storage=nonsense: not a database URL"),
    ],
)
@pytest.mark.slow  # about 3 s each: the search's checks run before the storage is opened
def test_a_storage_that_cannot_be_used_is_one_line_and_writes_nothing(synthetic_mnist, tmp_path, url, message):
    folder = tmp_path / "study"
    status, out, err = in_process(folder, synthetic_mnist, f"search.storage={url}")
    assert status != 0
    [line] = err.strip().splitlines()
    assert re.search(message, line), line
    assert sorted(p.name for p in folder.iterdir()) == [".hydra", "search.log"]  # Hydra's own: no trial, no study


def test_a_password_in_the_storage_url_is_refused_before_anything_is_written(synthetic_mnist, tmp_path):
    folder = tmp_path / "study"
    url = "postgresql+psycopg://someone:hunter2@127.0.0.1:1/optuna"
    status, out, err = in_process(folder, synthetic_mnist, f"search.storage={url}")
    assert (status, err) == (
        1,
        "error: search.storage=postgresql+psycopg://someone:***@127.0.0.1:1/optuna: a password in the URL would be "
        "written into the study's folder (its .hydra/, the trials' run.json); leave it out and set the environment "
        "variable PGPASSWORD (PostgreSQL reads it), or write ${oc.env:VARIABLE} in its place\n",
    )
    assert "hunter2" not in out and not folder.exists()


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("postgresql+psycopg://someone:hunter2@host/optuna", True),
        ("postgresql+psycopg://someone:${oc.env:DB_PASSWORD}@host/optuna", False),
        ("postgresql+psycopg://someone@host/optuna", False),
        ("postgresql+psycopg://someone:@host/optuna", False),
        ("sqlite:///outputs/search/mlp/study.db", False),
    ],
)
def test_only_a_password_written_out_in_the_url_is_refused(url, refused):
    if refused:
        with pytest.raises(InputError, match=r"someone:\*\*\*@host"):
            check_no_password(url)
    else:
        check_no_password(url)


@pytest.mark.slow  # it starts the PostgreSQL server
@pytest.mark.parametrize("given", ["PGPASSWORD", "oc.env"])
def test_the_password_is_written_nowhere(synthetic_mnist, tmp_path, postgres, monkeypatch, given):
    url, password = postgres.url(f"secret_{given.replace('.', '_').lower()}"), os.environ["PGPASSWORD"]
    if given == "oc.env":  # the password in a variable of the user's own naming, read when the storage opens
        monkeypatch.delenv("PGPASSWORD")
        monkeypatch.setenv("MLPLAB_DB_PASSWORD", password)
        url = url.replace("mlplab@", "mlplab:${oc.env:MLPLAB_DB_PASSWORD}@")
    folder = tmp_path / "study"
    status, out, err = in_process(folder, synthetic_mnist, f"search.storage={url}", "search.n_trials=2")
    assert status == 0, err[-3000:]
    assert len(load(url.replace("${oc.env:MLPLAB_DB_PASSWORD}", password)).trials) == 2
    written = [path for path in folder.rglob("*") if path.is_file()]
    assert len(written) > 20  # run.json, .hydra/, metrics.json, checkpoints, event files, tables, the log
    assert [path for path in written if password.encode() in path.read_bytes()] == []
    assert password not in out + err


@pytest.mark.slow  # it starts the PostgreSQL server
def test_a_wrong_password_is_one_line(synthetic_mnist, tmp_path, postgres, monkeypatch):
    url = postgres.url("wrong_password")
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    status, _, err = in_process(tmp_path / "study", synthetic_mnist, f"search.storage={url}")
    assert status != 0
    [line] = err.strip().splitlines()
    assert "cannot connect" in line and 'password authentication failed for user "mlplab"' in line, line
    assert "not-the-password" not in line


@pytest.mark.slow
def test_the_dashboard_shows_a_finished_study(synthetic_mnist, tmp_path):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is missing: pip install -e '.[dashboard]'")
    folder = tmp_path / "study"
    status, _, err = in_process(folder, synthetic_mnist, "search.n_trials=2")
    assert status == 0, err[-3000:]
    port = free_port()
    dashboard = shutil.which("optuna-dashboard") or str(Path(sys.executable).parent / "optuna-dashboard")
    server = subprocess.Popen(
        [dashboard, f"sqlite:///{folder}/study.db", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        studies = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as answer:
                    studies = json.load(answer)["study_summaries"]
                break
            except OSError:
                time.sleep(0.2)
        assert studies is not None, "the dashboard did not answer"
        [study] = studies
        assert study["study_name"] == "mlp"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}") as answer:
            detail = json.load(answer)
        assert [t["state"] for t in detail["trials"]] == ["Complete", "Complete"]
        assert [t["number"] for t in detail["best_trials"]] == [load(f"sqlite:///{folder}/study.db").best_trial.number]
    finally:
        server.terminate()
        server.wait()


def searching_on_the_server(postgres, monkeypatch, synthetic_mnist, folder: Path, *settings: str):
    """(storage URL, command, process) of a search of 2 trials on a database of its own on the PostgreSQL server,
    started and returned once its trial 0 has saved a checkpoint (it trains on)."""
    monkeypatch.setitem(ENV, "PGPASSWORD", os.environ["PGPASSWORD"])
    url = postgres.url(f"study_{uuid.uuid4().hex[:12]}")
    base = [*command(folder, synthetic_mnist, f"search.storage={url}", "search.n_trials=2"), *settings]
    search = subprocess.Popen(base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    while not list(folder.glob("0_*/checkpoints/last.ckpt")):
        assert search.poll() is None, search.stderr.read()[-3000:]
        time.sleep(0.05)
    return url, base, search


@pytest.mark.slow  # it stops and starts the PostgreSQL server
def test_a_database_that_goes_away_briefly_is_waited_for_and_the_search_ends_as_usual(
    synthetic_mnist, tmp_path, postgres, monkeypatch
):
    settings = ["trainer.max_epochs=30", "search.heartbeat_interval=1", "search.grace_period=20"]
    url, _, search = searching_on_the_server(postgres, monkeypatch, synthetic_mnist, tmp_path / "study", *settings)
    try:
        postgres.stop()  # a restart: heartbeats and the trial's pruning reports fail for a few seconds
        time.sleep(4)
    finally:
        postgres.restart()
    out, err = search.communicate(timeout=600)
    assert search.returncode == 0, err[-3000:]
    study = load(url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]  # none failed, none run twice
    assert "Traceback" not in err


@pytest.mark.slow  # it stops and starts the PostgreSQL server
def test_a_trial_whose_heartbeats_fail_stops_training_and_is_taken_over_after_the_grace_period(
    synthetic_mnist, tmp_path, postgres, monkeypatch
):
    folder = tmp_path / "study"
    # search.reconnect_for (60 s by default) longer than the grace period: the heartbeats decide
    settings = ["trainer.max_epochs=40", *QUICK_HEARTBEATS]
    url, base, search = searching_on_the_server(postgres, monkeypatch, synthetic_mnist, folder, *settings)
    try:
        postgres.stop()
        out, err = search.communicate(timeout=120)  # gone for good, as far as this worker can tell
    finally:
        postgres.restart()
    assert search.returncode == 1, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"error: search\.storage=postgresql\+psycopg://mlplab@127\.0\.0\.1:\d+/study_\w+: trial 0: its heartbeats "
        r"could not be written for \d s \(.+\); it stopped training so that no two workers train it \(another worker "
        r"takes it over from its checkpoints after search\.grace_period\); run the same command again once the "
        r"database answers",
        line,
    ), line
    assert "Traceback" not in err
    [trial] = load(url).trials
    assert trial.state.name == "RUNNING"  # nothing recorded: the database was away
    epochs = json.loads((next(folder.glob("0_*")) / "run.json").read_text(encoding="utf-8"))  # the folder is whole
    assert epochs["config"]["trainer"]["max_epochs"] == 40
    # The database is back: the same command fails the silent trial after the grace period, takes it over and ends.
    again = subprocess.run(base, capture_output=True, text=True, env=ENV, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "runs trial 0 again, whose worker stopped sending heartbeats: resuming from" in again.stdout
    assert [t.state.name for t in load(url).trials] == ["FAIL", "COMPLETE", "COMPLETE"]


@pytest.mark.slow
def test_a_full_disk_under_sqlite_stops_the_worker_in_one_line_after_reconnect_for(synthetic_mnist, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]).returncode:
        pytest.skip("mounting a small tmpfs (a disk that fills up) needs root")
    try:
        url, folder = f"sqlite:///{disk}/study.db", tmp_path / "study"
        base = command(folder, synthetic_mnist, f"search.storage={url}", "search.reconnect_for=2")
        assert subprocess.run([*base, "search.n_trials=1"], capture_output=True, env=ENV).returncode == 0
        filler = disk / "filler"
        with filler.open("wb") as f:  # the rest of the disk
            while True:
                try:
                    f.write(b"\0" * 65536)
                    f.flush()
                except OSError:
                    break
        full = subprocess.run([*base, "search.n_trials=3"], capture_output=True, text=True, env=ENV, timeout=300)
        assert full.returncode == 1
        assert "Traceback" not in full.stderr
        assert full.stderr.strip().splitlines()[-1] == (
            f"error: search.storage={url}: the database could not be reached or written (database or disk is full) "
            "for search.reconnect_for=2 s; the study is as it was: run the same command again once it can"
        )
        filler.unlink()
        again = subprocess.run([*base, "search.n_trials=3"], capture_output=True, text=True, env=ENV, timeout=300)
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(counted(load(url))) == 3
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_running_trial_that_never_wrote_a_heartbeat_is_failed_after_the_grace_period(tmp_path):
    url = f"sqlite:///{tmp_path}/study.db"
    store = ReconnectingStorage(url, reconnect_for=1, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=store)
    study.ask()  # running, and its worker gone before its first heartbeat (Optuna's own check never fails it)
    fail_stale_trials(study)
    assert study.trials[0].state.name == "RUNNING"  # within the grace period
    time.sleep(1.5)
    fail_stale_trials(study)
    assert study.trials[0].state.name == "FAIL"
    plain = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    other = optuna.load_study(study_name=study.study_name, storage=plain)
    other.ask()
    time.sleep(1.5)
    fail_stale_trials(other)
    assert other.trials[1].state.name == "RUNNING"  # what Optuna's storage alone leaves
