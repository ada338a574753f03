"""Ctrl-C or SIGTERM in every stage of a run stops it cleanly: exit 130 or 143, metrics.json says `interrupted`, one
line says how to go on, and going on ends with the test results of a run that was never interrupted. The signals are
real: a callback sends one to its own process at the chosen hook."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lightning.pytorch import Callback

from conftest import REPO, SYNTHETIC, data_overrides

pytestmark = pytest.mark.slow  # runs in processes of their own
TESTS = Path(__file__).parent
RUN = [*SYNTHETIC, "logger=none"]
FINAL = ("test/acc", "test/loss", "val/acc_best", "epochs")


class SendSignal(Callback):
    """Sends `signum` to this process at the `skip`-th call (from 0) of `hook`, counted across processes in
    `counter`, and never again."""

    def __init__(self, hook: str, signum: int, counter: str, skip: int = 0) -> None:
        self.signum, self.counter, self.skip = signum, Path(counter), skip
        setattr(self, hook, self._maybe_send)

    def _maybe_send(self, *args, **kwargs) -> None:
        calls = int(self.counter.read_text(encoding="utf-8")) if self.counter.exists() else 0
        self.counter.write_text(str(calls + 1), encoding="utf-8")
        if calls == self.skip:
            os.kill(os.getpid(), self.signum)


def sending(hook: str, signum: int, counter: Path, skip: int = 0) -> list[str]:
    return [
        "++callbacks.signal._target_=test_signals.SendSignal",
        f"++callbacks.signal.hook={hook}",
        f"++callbacks.signal.signum={int(signum)}",
        f"++callbacks.signal.counter={counter}",
        f"++callbacks.signal.skip={skip}",
    ]


def train(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(REPO / "src" / "train.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def uninterrupted(synthetic_mnist, tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    result = train(*RUN, *data_overrides(synthetic_mnist), f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


# Each hook, the first line of what the run says, and how it goes on: the same command, or a resume of a checkpoint.
STAGES = [
    ("on_sanity_check_start", "in the sanity check, before training; run the same command again", "same"),
    ("on_validation_start", "at epoch 0, step 16; saved", "resume"),  # the first validation after training
    ("on_save_checkpoint", "at epoch ", "resume"),  # while a checkpoint is written
    ("on_test_start", "in the test stage, after training; test it with: python src/train.py ckpt_path=", "resume"),
]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize(("hook", "said", "going_on"), STAGES, ids=[hook for hook, *_ in STAGES])
def test_a_signal_in_any_stage_stops_cleanly_and_the_run_goes_on_to_the_same_results(
    synthetic_mnist, tmp_path, uninterrupted, signum, hook, said, going_on
):
    run_dir, counter = tmp_path / "run", tmp_path / "calls"
    # on_validation_start is called first by the sanity check: skip it
    args = [*RUN, *data_overrides(synthetic_mnist), *sending(hook, signum, counter, int(hook == "on_validation_start"))]
    stopped = train(*args, f"hydra.run.dir={run_dir}")
    name = signal.Signals(signum).name
    assert stopped.returncode == 128 + signum, stopped.stderr[-3000:]
    last_line = stopped.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"interrupted: {name} ") and said in last_line, last_line
    assert "Traceback" not in stopped.stderr
    assert json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["status"] == "interrupted"

    if going_on == "same":
        again = train(*args, f"hydra.run.dir={tmp_path / 'again'}")
        finished = tmp_path / "again"
    else:
        resume = last_line.split("python src/train.py ")[-1]  # ckpt_path=..., as printed
        again = train(resume, "++callbacks.signal._target_=test_signals.SendSignal", f"hydra.run.dir={tmp_path / 'x'}")
        finished = run_dir
    assert again.returncode == 0, again.stderr[-3000:]
    metrics = json.loads((finished / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["status"] == "ok"
    assert {k: metrics[k] for k in FINAL} == {k: uninterrupted[k] for k in FINAL}


def test_a_sweep_stopped_in_its_second_job_writes_the_table_of_the_first_and_goes_on(synthetic_mnist, tmp_path):
    folder, counter = tmp_path / "sweep", tmp_path / "calls"
    swept = ["-m", *RUN, *data_overrides(synthetic_mnist), "optimizer=sgd,adam", f"hydra.sweep.dir={folder}"]
    stopped = train(*swept, *sending("on_train_epoch_end", signal.SIGTERM, counter, skip=4))  # job 1, epoch 1
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    table = (folder / "results.md").read_text(encoding="utf-8")
    assert "| sgd |" in table and "| adam |" in table and "1 interrupted" in table
    assert f"the table of the jobs that finished: {folder / 'results.md'}" in stopped.stdout
    again = train(*swept, *sending("on_train_epoch_end", signal.SIGTERM, counter, skip=4))  # the counter is past 4
    assert again.returncode == 0, again.stderr[-3000:]
    assert "kept: 0_optimizer=sgd" in again.stdout and "resuming: 1_optimizer=adam" in again.stdout
    assert "interrupted" not in (folder / "results.md").read_text(encoding="utf-8")
