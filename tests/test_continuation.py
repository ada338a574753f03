"""A sweep killed with SIGKILL continues where it stopped when its command is run again into its folder."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lightning.pytorch import Callback

from conftest import REPO, SYNTHETIC, data_overrides, run_entry

pytestmark = pytest.mark.slow  # whole sweeps, killed in processes of their own

TESTS = Path(__file__).parent
# A pause after every training epoch gives the kill a moment inside a job; it changes no number.
SWEEP = [*SYNTHETIC, "trainer.max_epochs=4", "logger=none", "++callbacks.pause._target_=test_continuation.Pause"]
JOBS = ["0_optimizer=sgd", "1_optimizer=momentum", "2_optimizer=adam"]


class Pause(Callback):
    def on_train_epoch_end(self, trainer, module) -> None:
        time.sleep(0.4)


def command(folder: Path, data, *extra: str, swept: tuple[str, ...] = ("optimizer=sgd,momentum,adam",)) -> list[str]:
    return [
        sys.executable, str(REPO / "src" / "train.py"), "-m", *SWEEP, *data_overrides(data), *swept,
        f"hydra.sweep.dir={folder}", *extra,
    ]  # fmt: skip


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return {**env, "PYTHONPATH": os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])}


def sweep(folder: Path, data, *extra: str, **swept: tuple[str, ...]) -> subprocess.CompletedProcess:
    """The sweep's command run in this process; its launcher's workers find Pause through PYTHONPATH."""
    run = command(folder, data, *extra, **swept)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = environment()["PYTHONPATH"]
    try:
        status, out, err = run_entry("src/train.py", run[2:])
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    return subprocess.CompletedProcess(run, status, out, err)


def results(folder: Path) -> list[dict[str, str]]:
    """results.csv without its time columns, the one thing a resumed job cannot repeat."""
    with (folder / "results.csv").open(encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if "time" not in k} for row in csv.DictReader(f)]


def stamps(folder: Path) -> dict[str, int]:
    """When each job last started training: its run.json, rewritten by every training start."""
    return {job: (folder / job / "run.json").stat().st_mtime_ns for job in JOBS if (folder / job / "run.json").exists()}


@pytest.fixture(scope="module")
def killed(synthetic_mnist, tmp_path_factory):
    """A sweep of three jobs killed with SIGKILL while its second job trains, then the same command run again."""
    folder = tmp_path_factory.mktemp("sweeps") / "killed"
    process = subprocess.Popen(
        command(folder, synthetic_mnist), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment()
    )
    deadline = time.monotonic() + 300
    while not (folder / JOBS[1] / "checkpoints" / "last.ckpt").exists():  # its first epoch is done
        assert process.poll() is None and time.monotonic() < deadline, "the sweep ended before the kill"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = stamps(folder)
    left = {job: (folder / job / "metrics.json").exists() for job in JOBS}
    resumed = sweep(folder, synthetic_mnist)
    return folder, before, left, resumed


def test_the_kill_fell_inside_the_second_job(killed):
    _, before, left, _ = killed
    assert left == {JOBS[0]: True, JOBS[1]: False, JOBS[2]: False}
    assert set(before) == {JOBS[0], JOBS[1]}  # the third never started


def test_the_rerun_keeps_finished_jobs_resumes_the_killed_one_and_trains_the_rest(killed):
    folder, before, _, resumed = killed
    assert resumed.returncode == 0, resumed.stderr
    out = resumed.stdout
    assert out.count("kept: ") == 1 and f"kept: {JOBS[0]} (ok, from an earlier run of this sweep)" in out
    assert out.count("resuming: ") == 1 and f"resuming: {JOBS[1]} from checkpoints/last.ckpt" in out
    after = stamps(folder)
    assert after[JOBS[0]] == before[JOBS[0]]  # not trained again
    assert after[JOBS[1]] > before[JOBS[1]] and JOBS[2] in after  # trained: resumed, and new


def test_the_continued_sweep_has_the_results_of_an_uninterrupted_one(killed, synthetic_mnist, tmp_path):
    folder, *_ = killed
    whole = sweep(tmp_path / "whole", synthetic_mnist)
    assert whole.returncode == 0, whole.stderr
    assert results(folder) == results(tmp_path / "whole")  # every metric of every row, as written: bit for bit
    assert len(results(folder)) == 3


def test_a_finished_sweep_run_again_trains_nothing(killed, synthetic_mnist):
    folder, *_ = killed
    before = stamps(folder)
    again = sweep(folder, synthetic_mnist)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("kept: ") == 3 and stamps(folder) == before


def test_a_job_folder_of_another_config_is_refused_and_left_as_it_was(killed, synthetic_mnist, tmp_path):
    folder, *_ = killed
    metrics = (folder / JOBS[0] / "metrics.json").read_text(encoding="utf-8")
    other = sweep(folder, synthetic_mnist, "optimizer.weight_decay=0.1")
    assert other.returncode == 1
    [line] = [line for line in other.stderr.splitlines() if line.startswith("error: ")]
    assert line.startswith(f"error: hydra.sweep.dir={folder}: this folder holds the sweep of another command")
    assert "optimizer.weight_decay=(not set) there, 0.1 now" in line
    assert (folder / JOBS[0] / "metrics.json").read_text(encoding="utf-8") == metrics
    # A folder without the command's record (an earlier version's), or whose conf/ changed since: each job compares
    # the config its run recorded.
    copy = shutil.copytree(folder, tmp_path / "copy")
    (copy / "sweep.json").unlink()
    other = sweep(copy, synthetic_mnist, "optimizer.weight_decay=0.1")
    [line] = [line for line in other.stderr.splitlines() if line.startswith("error: ")]
    assert line.startswith(f"error: {copy / JOBS[0]}: this job's folder holds a run of another config")
    assert "optimizer.weight_decay=0.0 there, 0.1 now" in line
    assert (copy / JOBS[0] / "metrics.json").read_text(encoding="utf-8") == metrics


def test_diverged_jobs_are_kept_unless_sweep_rerun_names_them(synthetic_mnist, tmp_path):
    folder = tmp_path / "diverging"
    lrs = {"swept": ("optimizer=sgd", "optimizer.lr=0.01,1e12", "trainer.max_epochs=2")}
    first = sweep(folder, synthetic_mnist, **lrs)
    assert first.returncode == 1 and "diverged" in first.stdout  # a sweep with a diverged job ends in status 1
    jobs = sorted(p.name for p in folder.iterdir() if p.name[0].isdigit())
    before = {job: (folder / job / "run.json").stat().st_mtime_ns for job in jobs}
    kept = sweep(folder, synthetic_mnist, **lrs)
    assert kept.stdout.count("kept: ") == 2 and "(diverged, from an earlier run of this sweep)" in kept.stdout
    rerun = sweep(folder, synthetic_mnist, "sweep.rerun=[diverged]", **lrs)
    assert rerun.returncode == 1 and rerun.stdout.count("kept: ") == 1  # the other job; the rerun diverges again
    after = {job: (folder / job / "run.json").stat().st_mtime_ns for job in jobs}
    assert [job for job in jobs if after[job] != before[job]] == [jobs[1]]  # the diverged one (lr 1e12) only
    refused = sweep(folder, synthetic_mnist, "sweep.rerun=[ok]", **lrs)
    assert refused.returncode == 1
    assert "error: sweep.rerun=['ok']: ok is not a status to rerun; choose from failed, diverged" in refused.stderr


def killed_and_continued(folder: Path, data, until: str, swept: tuple[str, ...]) -> tuple[set[str], str]:
    """A sweep killed (its whole process group, launcher workers included, as a lost machine would be) once the
    checkpoint `until` (a glob in the sweep folder) exists, then run again: (the jobs finished before the kill, the
    second run's output)."""
    process = subprocess.Popen(
        command(folder, data, swept=swept), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=environment(), start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(folder.glob(until)):
        assert process.poll() is None and time.monotonic() < deadline, "the sweep ended before the kill"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = {str(path.parent.relative_to(folder)) for path in folder.glob("**/metrics.json")}
    # A process of its own: joblib's workers print its jobs' kept: and resuming: lines into its output.
    again = subprocess.run(command(folder, data, swept=swept), capture_output=True, text=True, env=environment())
    assert again.returncode == 0, again.stderr
    # submitit's jobs print into its logs (the killed run's print no kept: or resuming: lines).
    return finished, again.stdout + "".join(
        path.read_text(encoding="utf-8") for path in folder.glob(".submitit/*/*_log.out")
    )


@pytest.mark.parametrize(
    "launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=submitit_local"]]
)
def test_a_sweep_killed_with_its_launcher_s_workers_continues_with_the_same_results(
    synthetic_mnist, tmp_path, launcher
):
    swept = ("optimizer=sgd,momentum,adam", *launcher)
    finished, out = killed_and_continued(tmp_path / "killed", synthetic_mnist, "*/checkpoints/last.ckpt", swept)
    assert out.count("kept: ") == len(finished)
    assert all(f"kept: {job} (ok, from an earlier run of this sweep)" in out for job in finished)
    assert out.count("resuming: ") >= 1  # at least the job whose checkpoint the kill waited for
    whole = sweep(tmp_path / "whole", synthetic_mnist, swept=swept)
    assert whole.returncode == 0, whole.stderr
    assert results(tmp_path / "killed") == results(tmp_path / "whole")


# The kill comes once a job of the final phase (folders 0_... beside tune/), or of the tuning phase, has saved an
# epoch (the tuning runs train 1 epoch with a pause after it: the kill falls inside the job).
@pytest.mark.parametrize(
    ("phase", "until"), [("final", "[0-9]*/checkpoints/last.ckpt"), ("tuning", "tune/1_*/checkpoints/last.ckpt")]
)
def test_a_tuned_sweep_killed_in_either_phase_keeps_what_both_phases_finished(synthetic_mnist, tmp_path, phase, until):
    swept = ("sweep=optimizers_tuned", "optimizer=sgd,adam", "sweep.tune.grid=[0.003,0.1]", "sweep.seeds=2")
    finished, out = killed_and_continued(tmp_path / "killed", synthetic_mnist, until, swept)
    tuning = {job for job in finished if job.startswith("tune/")}
    assert len(tuning) == 4 if phase == "final" else len(tuning) < 4  # where the kill fell
    assert out.count("kept: ") == len(finished)  # none of them trained again
    assert out.count("resuming: ") <= 1
    whole = sweep(tmp_path / "whole", synthetic_mnist, swept=swept)
    assert whole.returncode == 0, whole.stderr
    assert results(tmp_path / "killed") == results(tmp_path / "whole")
    assert results(tmp_path / "killed" / "tune") == results(tmp_path / "whole" / "tune")
