"""Bad input fails fast in one line; divergence, interruption and SIGKILL lose nothing; reruns are identical."""

import codecs
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, Trainer

from mlplab.engine.checkpoint_io import AtomicCheckpointIO
from mlplab.engine.checkpoints import load_checkpoint
from mlplab.errors import InputError
from mlplab.training import train

from conftest import REPO, SYNTHETIC, data_overrides, run_entry


def run_train(args: list[str]) -> tuple[int, str]:
    """`python src/train.py ARGS` in this process: (exit status, stderr)."""
    status, _, err = run_entry("src/train.py", args)
    return status, err


class Unsafe:
    """Anything that only unpickling code could rebuild."""


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "notes.txt").write_text("not a checkpoint", encoding="utf-8")
    torch.save({"state_dict": {}, "extra": Unsafe()}, folder / "pickled.ckpt")
    raw = folder / "corrupt" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / name).write_bytes(b"damaged")
    return {
        "text": folder / "notes.txt",
        "pickled": folder / "pickled.ckpt",
        "folder": folder,
        "corrupt": raw.parents[1],
    }


BAD_INPUT = [
    (
        ["optimizer=foo"],
        r"optimizer=foo: unknown option; choose one of adagrad, adam, adamw, momentum, nadam, rmsprop, sgd",
    ),
    (["optimizer.lr=-0.1"], r"optimizer.lr=-0.1: must be a number > 0"),
    (["optimizer.lr=0"], r"optimizer.lr=0: must be a number > 0"),
    (["model.dropout=1.0"], r"model.dropout=1.0: must be a number in \[0, 1\)"),
    (["model.dropout=-0.2"], r"model.dropout=-0.2: must be a number in \[0, 1\)"),
    (["data.batch_size=0"], r"data.batch_size=0: must be an integer >= 1"),
    (["steps_per_execution=0"], r"steps_per_execution=0: must be an integer >= 1"),
    (["seed=-1"], r"seed=-1: must be an integer from 0 to 4294967295"),
    (["seed=4294967296"], r"seed=4294967296: must be an integer from 0 to 4294967295"),
    (["++trainer.gradient_clip_val=-1.0"], r"trainer.gradient_clip_val=-1.0: must be null or a number >= 0"),
    (["++trainer.gradient_clip_algorithm=l2"], r"trainer.gradient_clip_algorithm=l2: must be null, norm or value"),
    (["++trainer.accumulate_grad_batches=0"], r"trainer.accumulate_grad_batches=0: must be an integer >= 1"),
    (["++trainer.val_check_interval=0.5"], r"trainer.val_check_interval=0.5: must be a number of training batches"),
    (["++trainer.overfit_batches=0.1"], r"trainer.overfit_batches=0.1: must be a number of batches \(an integer >= 0"),
    (
        ["++trainer.check_val_every_n_epoch=null", "++trainer.val_check_interval=10"],
        r"trainer.check_val_every_n_epoch=null: validating every trainer.val_check_interval batches across epochs",
    ),
    (["model.hidden_dims=[]"], r"model.hidden_dims=\[\]: must be a list of one or more integers >= 1"),
    (["model.hidden_dims=[64,-1]"], r"model.hidden_dims=\[64, -1\]: must be a list of one or more integers >= 1"),
    (["model.activation=swish"], r"model.activation=swish: must be relu, leaky_relu, elu, gelu, silu, sigmoid or tanh"),
    (["regularization=l1", "regularization.l1.strength=-1e-5"], r"regularization.l1.strength=-1e-05: must be a number"),
    (["regularization=l2", "regularization.l2.strength=-1"], r"regularization.l2.strength=-1: must be a number >= 0"),
    (["trainer.max_epochs=0"], r"trainer.max_epochs=0: must be an integer >= 1"),
    (["scheduler=cosine", "scheduler.interval=steps"], r"scheduler.interval=steps: must be step or epoch"),
    (["data.val_size=1000"], r"data.val_size=1000: must be between 0 \(no validation set\) and 999 \(the training set"),
    (["data.val_size=-1"], r"^error: data.val_size=-1: must be an integer >= 0 \(0: no validation set\)$"),
    (
        ["data.val_size=0", "regularization=early_stopping"],
        r"^error: data.val_size=0: regularization=early_stopping stops on val/loss, and there is no validation set",
    ),
    (["ckpt_path={folder}/missing.ckpt"], r"ckpt_path=.*missing.ckpt: no such file"),
    (["ckpt_path={text}"], r"ckpt_path=.*notes.txt: not a PyTorch checkpoint file"),
    (["ckpt_path={pickled}"], r"ckpt_path=.*pickled.ckpt: refused, it needs pickled code to load .*Unsafe"),
    (["data.data_dir={text}"], r"data.data_dir=.*notes.txt: not a folder"),
    (["data.data_dir={corrupt}"], r"corrupt/MNIST/raw/train-images-idx3-ubyte: md5 is \w+, expected \w+; delete it"),
    (["hydra.run.dir={text}/run"], r"hydra.run.dir=.*notes.txt/run: cannot create the run folder \(Not a directory\)"),
    (["trainer.foo=1"], r"Could not override 'trainer.foo'. To append to your config use \+trainer.foo=1"),
    (["model.hidden_dims=["], r"model.hidden_dims=\[: cannot parse this override"),
    # Each of mlplab.cli.HYDRA_FLAG_MISUSES, the errors Hydra gives as text alone.
    (["--resolve"], r"^error: The --resolve flag can only be used in conjunction with --cfg or --help$"),
    (["-m", "--cfg", "job"], r"^error: Only one of --run, --multirun, --cfg, --info and --shell_completion can be"),
    # Ranges (an option's _ranges_, mlplab.config.checks.CONFIG_RULES) that the libraries check too, or not at all.
    (["optimizer.momentum=-1"], r"^error: optimizer.momentum=-1: must be a number in \[0, 1\)$"),
    (
        ["optimizer=adam", "optimizer.betas=[0.9,1.5]"],
        r"^error: optimizer.betas=\[0.9, 1.5\]: must be a list of 2 numbers in \[0, 1\)$",
    ),
    (["optimizer=rmsprop", "optimizer.alpha=-0.5"], r"^error: optimizer.alpha=-0.5: must be a number in \[0, 1\)$"),
    (
        ["scheduler=step", "scheduler.scheduler.step_size=0"],
        r"^error: scheduler.scheduler.step_size=0: must be an integer >= 1$",
    ),
    (["trainer.precision=bad"], r"^error: trainer.precision=bad: must be 64, 32, 16, transformer-engine, .* or bf16$"),
    (["trainer.devices=0"], r"^error: trainer.devices=0: must be auto, -1 \(every device\), a count >= 1 or a list"),
    # Values that only the libraries check, found before training and named by their key (mlplab.config.preflight).
    (["optimizer=sgd", "++optimizer.nesterov=true"], r"^error: optimizer.nesterov=True: refused by torch.optim.SGD "),
    (
        ["++optimizer.foo=1"],
        r"^error: optimizer.foo=1: refused by torch.optim.SGD \(.*unexpected keyword argument 'foo'",
    ),
    (
        ["trainer=cpu", "trainer.devices=[0]"],
        r"^error: trainer.devices=\[0\]: refused by lightning.pytorch.Trainer \(`devices` selected with `CPUAcc",
    ),
    (["regularization=[l1,l1]"], r"^error: regularization=\[l1,l1\]: l1 listed more than once; list each member once$"),
    (["regularization=[l2,dropout,l2]"], r"^error: regularization=\[l2,dropout,l2\]: l2 listed more than once"),
    # Too large for this machine: refused with its size before anything is allocated.
    (
        ["model.hidden_dims=[100000000]"],
        r"^error: model.hidden_dims=\[100000000\]: this network needs about [\d.]+ [GT]iB \([\d,]+ weights .*"
        r"but [\d.]+ [GMT]iB of memory available here; use smaller layers or batches$",
    ),
    (["data.batch_size=400000000"], r"^error: data.batch_size=400000000: this network needs about [\d.]+ TiB"),
    (  # a sweep job's checkpoint: its folder's name holds = and ,
        ["ckpt_path=outputs/3_optimizer=adam,seed=0/checkpoints/last.ckpt"],
        r"cannot parse this override .*; a value with = or , in it goes in quotes: "
        r"\"ckpt_path='outputs/3_optimizer=adam,seed=0/checkpoints/last.ckpt'\"$",
    ),
    (  # a folder named in Chinese: Hydra's lexer takes only ASCII unquoted
        ["hydra.run.dir=输出/实验"],
        r"^error: hydra.run.dir=输出/实验: cannot parse this override .*; a value with '输' in it goes in quotes, "
        r"inside the override and around it: 'hydra.run.dir=\"输出/实验\"' "
        r"\(in cmd.exe: \"hydra.run.dir='输出/实验'\"\)$",
    ),
]
if not torch.cuda.is_available():
    BAD_INPUT.append((["trainer=gpu"], r"trainer.accelerator=gpu: no CUDA GPU is available here; use trainer=cpu"))


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_a_nonzero_exit(synthetic_mnist, bad_files, tmp_path, args, message):
    args = [a.format(**{k: str(v) for k, v in bad_files.items()}) for a in args]
    run_dir = tmp_path / "run"
    status, stderr = run_train([*SYNTHETIC, *data_overrides(synthetic_mnist), f"hydra.run.dir={run_dir}", *args])
    lines = [line for line in stderr.splitlines() if not line.startswith(("GPU available", "TPU available"))]
    assert status == 1
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert re.search(message, lines[0]), lines[0]
    assert not (run_dir / "checkpoints").exists()  # nothing was trained


def test_the_quoted_form_that_the_error_suggests_trains_into_a_chinese_folder_with_a_space(synthetic_mnist, tmp_path):
    run_dir = tmp_path / "输出" / "实验 1"
    status, stderr = run_train(
        [*SYNTHETIC, *data_overrides(synthetic_mnist), "trainer.max_epochs=1", f'hydra.run.dir="{run_dir}"']
    )
    if codecs.lookup(sys.getfilesystemencoding()).name != "utf-8":  # Linux under zh_CN.GB18030, say
        assert status == 1 and stderr.splitlines()[-1] == (
            f"error: {run_dir}: TensorBoard (logger=tensorboard) names its files in UTF-8, and this system names "
            f"them in {sys.getfilesystemencoding()} (its locale): run Python in UTF-8 mode (set PYTHONUTF8=1, or "
            "python -X utf8), choose a folder whose name is ASCII, or logger=csv"
        )
        assert not (run_dir / "run.json").exists()  # said before anything was written
        status, stderr = run_train(  # the third way out it offers
            [
                *SYNTHETIC,
                *data_overrides(synthetic_mnist),
                "trainer.max_epochs=1",
                f'hydra.run.dir="{run_dir}"',
                "logger=csv",
            ]
        )
    assert status == 0, stderr
    assert json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["status"] == "ok"


@pytest.mark.slow
def test_bad_input_from_a_real_process_has_no_traceback_unless_asked(synthetic_mnist, tmp_path):
    command = [sys.executable, str(REPO / "src" / "train.py"), "optimizer.lr=-1", f"hydra.run.dir={tmp_path}"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: optimizer.lr=-1: must be a number > 0"
    result = subprocess.run(command, capture_output=True, text=True, env={**env, "HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 1 and "Traceback" in result.stderr and "InputError" in result.stderr


def test_divergence_stops_at_once_and_is_recorded(synthetic_mnist, tmp_path):
    run_dir = tmp_path / "run"
    args = [*SYNTHETIC, *data_overrides(synthetic_mnist), f"hydra.run.dir={run_dir}", "optimizer.lr=1e12"]
    status, stderr = run_train(args)
    assert status == 1
    assert stderr.strip().splitlines()[-1].startswith("diverged: train/loss is nan at epoch 0, step ")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["status"] == "diverged" and metrics["error"].startswith("train/loss is nan")
    assert metrics["epochs"] == 0  # stopped inside the first epoch, not at its end


def test_checkpoint_loading_refuses_pickled_code_and_accepts_real_checkpoints(bad_files, synthetic_mnist, make_cfg):
    with pytest.raises(InputError, match="refused, it needs pickled code"):
        load_checkpoint(bad_files["pickled"])
    from mlplab.training import train

    metrics, _ = train(make_cfg("trainer.max_epochs=1", "logger=none"))
    checkpoint = load_checkpoint(metrics["best_checkpoint"])
    assert checkpoint["epoch"] == 0 and "net.layers.1.weight" in checkpoint["state_dict"]


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)

    def killed(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(3))  # the old file, whole


# Slow enough per epoch that a signal lands mid-run, with dropout, distortions and a schedule so that resuming
# has random states (torch's and the distortions'), optimizer state and scheduler state to get right.
LONG_RUN = [
    *SYNTHETIC,
    "trainer.max_epochs=25",
    "data.batch_size=10",
    "data.augment={rotate:10,shift:1}",
    "model.hidden_dims=[256,128]",
    "regularization=[dropout,l2]",
    "scheduler=cosine",
    "logger=none",
]
FINAL = ("test/acc", "test/loss", "val/acc_best", "val/loss", "val/acc", "train/loss", "epochs")


def start(args: list[str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    command = [sys.executable, str(REPO / "src" / "train.py"), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def run_until_epoch(args: list[str], epoch_line: str, signum: int) -> tuple[int, str]:
    process = start(args)
    for line in process.stdout:
        if line.startswith(epoch_line):
            process.send_signal(signum)
            break
    process.stdout.read()
    return process.wait(timeout=120), process.stderr.read()


@pytest.fixture(scope="module")
def uninterrupted(synthetic_mnist, tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    status, _, err = run_entry(
        "src/train.py", [*LONG_RUN, *data_overrides(synthetic_mnist), f"hydra.run.dir={run_dir}"]
    )
    assert status == 0, err
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_sigkill_leaves_a_usable_last_checkpoint_and_resuming_matches_the_uninterrupted_run(
    synthetic_mnist, tmp_path, uninterrupted
):
    run_dir = tmp_path / "killed"
    status, _ = run_until_epoch(
        [*LONG_RUN, *data_overrides(synthetic_mnist), f"hydra.run.dir={run_dir}"], "epoch 2 ", signal.SIGKILL
    )
    assert status == -signal.SIGKILL and not (run_dir / "metrics.json").exists()
    last = run_dir / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["epoch"] >= 1  # the epoch before the line, or that one
    # A bare resume: the run's own config comes from its folder, and the results go back into it.
    status, out, err = run_entry("src/train.py", [f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'again'}"])
    assert status == 0, err
    assert f"resuming {run_dir}" in out
    resumed = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert {k: resumed[k] for k in FINAL} == {k: uninterrupted[k] for k in FINAL}
    # Finished now: resuming it once more is refused in one line, and its results stay as they are.
    status, _, err = run_entry("src/train.py", [f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'third'}"])
    assert status == 1, err
    assert f"ckpt_path={last}: that run had already finished" in err.strip().splitlines()[-1]
    assert json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")) == resumed


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.slow
def test_interruption_saves_a_checkpoint_says_how_to_resume_and_resumes_exactly(
    synthetic_mnist, tmp_path, uninterrupted, signum
):
    run_dir = tmp_path / "interrupted"
    args = [*LONG_RUN, *data_overrides(synthetic_mnist), f"hydra.run.dir={run_dir}"]
    status, stderr = run_until_epoch(args, "epoch 1 ", signum)
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    assert status == 128 + signum
    last_line = stderr.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    assert last_line.startswith(f"interrupted: {name} at epoch ")
    assert last_line.endswith(f"saved {saved}; resume with: python src/train.py ckpt_path={saved}")
    assert "Traceback" not in stderr
    assert json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["status"] == "interrupted"
    status, _, err = run_entry("src/train.py", [f"ckpt_path={saved}", f"hydra.run.dir={tmp_path / 'again'}"])
    assert status == 0, err
    resumed = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert {k: resumed[k] for k in FINAL} == {k: uninterrupted[k] for k in FINAL}


def test_run_folder_records_what_it_takes_to_repeat_the_run(make_cfg):
    from mlplab.training import train

    cfg = make_cfg("trainer.max_epochs=1", "logger=none")
    train(cfg)
    record = json.loads((Path(cfg.paths.output_dir) / "run.json").read_text(encoding="utf-8"))
    for package in ("torch", "lightning", "hydra-core", "torchmetrics"):
        assert record["packages"][package] == version(package)
    assert record["python"] == ".".join(map(str, sys.version_info[:3]))
    assert record["command"].startswith(Path(sys.executable).name)
    if (REPO / ".git").exists():
        assert len(record["git"]["commit"]) == 40


class Crash(Exception):
    pass


class SaveAt(Callback):
    """Saves checkpoints/mid.ckpt after the training step that reaches optimizer step `step`, then crashes."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(Path(trainer.default_root_dir) / "checkpoints" / "mid.ckpt", weights_only=False)
            raise Crash


@pytest.mark.parametrize(
    ("step", "steps_per_execution"),
    [(8, 8), (8, 1), (12, 3), (20, 64), (44, 5)],
    ids=["mid-epoch-larger", "mid-epoch-smaller", "last-execution", "second-epoch", "third-epoch-uneven"],
)
def test_resuming_from_any_checkpoint_with_any_steps_per_execution_trains_the_same_steps(
    make_cfg, tmp_path, step, steps_per_execution
):
    uninterrupted, _ = train(make_cfg("logger=none"))  # 3 epochs of 16 batches, in executions of 4
    first = make_cfg("logger=none")
    first.paths.output_dir = str(tmp_path / "first")
    with pytest.raises(Crash):
        train(first, callbacks=[SaveAt(step)])
    mid = Path(first.paths.output_dir) / "checkpoints" / "mid.ckpt"
    # Into the run folder that wrote the checkpoint, as `python src/train.py ckpt_path=...` resumes.
    resumed, objects = train(make_cfg(f"steps_per_execution={steps_per_execution}", f"ckpt_path={mid}", "logger=none"))
    assert objects["trainer"].global_step == 3 * 16
    # All of metrics.json, every epoch's history and the epoch means of the epoch resumed into included.
    different = {"train_time_s", "best_checkpoint"}  # the time, and the run folder
    assert {k: v for k, v in resumed.items() if k not in different} == {
        k: v for k, v in uninterrupted.items() if k not in different
    }
    assert Path(resumed["best_checkpoint"]).name == Path(uninterrupted["best_checkpoint"]).name


@pytest.mark.parametrize("steps_per_execution", [8, 2], ids=["larger", "smaller"])
def test_resuming_at_an_epoch_end_with_another_steps_per_execution_trains_the_same_steps(
    make_cfg, tmp_path, steps_per_execution
):
    uninterrupted, _ = train(make_cfg("logger=none"))  # 3 epochs in executions of 4
    first = make_cfg("trainer.max_epochs=2", "logger=none")
    first.paths.output_dir = str(tmp_path / "first")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    resumed, _ = train(make_cfg(f"steps_per_execution={steps_per_execution}", f"ckpt_path={last}", "logger=none"))
    for name in ("test/loss", "test/acc", "val/acc_best", "train/acc", "epochs"):
        assert resumed[name] == uninterrupted[name], name
    # Every epoch's validation, the resumed third one included: the same steps gave the same weights.
    for name in ("val/loss", "val/acc"):
        assert len(resumed["history"][name]) == 3 and resumed["history"][name] == uninterrupted["history"][name]


def test_resuming_between_validations_with_another_steps_per_execution_is_refused(make_cfg, tmp_path):
    first = make_cfg("trainer.max_epochs=1", "logger=none", "++trainer.val_check_interval=8")
    with pytest.raises(Crash):
        train(first, callbacks=[SaveAt(4)])
    mid = Path(first.paths.output_dir) / "checkpoints" / "mid.ckpt"
    again = make_cfg("++trainer.val_check_interval=8", "steps_per_execution=2", f"ckpt_path={mid}", "logger=none")
    again.paths.output_dir = str(tmp_path / "again")
    with pytest.raises(InputError, match=r"steps_per_execution=2: this checkpoint was written between two validat"):
        train(again)


def test_a_run_killed_after_its_last_checkpoint_is_trained_again_to_the_same_numbers(make_cfg):
    """What a sweep's job or a search's retried trial does with a run killed between its last epoch and its test."""
    from mlplab.experiments.continuation import resume

    cfg = make_cfg("trainer.max_epochs=2", "logger=none")
    finished, _ = train(cfg)
    folder = Path(cfg.paths.output_dir)
    (folder / "metrics.json").unlink()
    again, _ = resume(make_cfg("trainer.max_epochs=2", "logger=none"), folder / "checkpoints" / "last.ckpt")
    assert {k: again[k] for k in ("test/acc", "test/loss", "epochs")} == {
        k: finished[k] for k in ("test/acc", "test/loss", "epochs")
    }
    assert json.loads((folder / "metrics.json").read_text(encoding="utf-8"))["test/loss"] == finished["test/loss"]


PASTED_PATHS = [
    "outputs/train/2026-12-07_01-02-03_456789/checkpoints/last.ckpt",
    "outputs/输出/实验 1/checkpoints/last.ckpt",  # a Chinese folder with a space
    "outputs/train/multirun/x/3_optimizer=adam,seed=0/checkpoints/interrupted.ckpt",  # a sweep job's folder
    "C:/Users/Lei's laptop/run/checkpoints/last.ckpt",
]


@pytest.mark.parametrize("path", PASTED_PATHS)
def test_the_commands_the_lab_prints_paste_into_a_shell_as_they_are(path):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from mlplab.engine.runs import pasted, shell_word

    [word] = shlex.split(pasted("ckpt_path", path))  # as bash, zsh or PowerShell would pass it
    [override] = OverridesParser.create().parse_overrides([word])
    assert (override.key_or_group, override.value()) == ("ckpt_path", path)
    assert shlex.split(f"tensorboard --logdir {shell_word(path)}") == ["tensorboard", "--logdir", path]
    if path == PASTED_PATHS[0]:
        assert pasted("ckpt_path", path) == f"ckpt_path={path}"  # left as it is where nothing needs quotes


def test_a_resume_reads_its_checkpoint_once(make_cfg, tmp_path, monkeypatch):
    first = make_cfg("trainer.max_epochs=1", "logger=none")
    first.paths.output_dir = str(tmp_path / "first")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    reads: list[Path] = []
    real_load = torch.load

    def counted(source, *args, **kwargs):  # a path, or the file object that Lightning opens with fsspec
        named = source if isinstance(source, str | os.PathLike) else getattr(source, "path", None) or source.name
        reads.append(Path(named))
        return real_load(source, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted)
    resumed, _ = train(make_cfg("trainer.max_epochs=2", f"ckpt_path={last}", "logger=none"))
    assert resumed["status"] == "ok" and resumed["epochs"] == 2
    # Checked against the config, then restored by the trainer, from one read; the test stage reads the best one.
    assert reads.count(last) == 1, reads
