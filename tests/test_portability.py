"""The lab on a learner's laptop: no POSIX-only module on any command's path (Windows has no fcntl), a checkout in a
folder whose path holds Chinese characters and a space."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SYNTHETIC, data_overrides

ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
# What Windows's Python lacks: modules, and functions and signals of os and signal (the lab's own code may use none
# of them; the libraries it uses pick their own backends by platform).
POSIX_MODULES = {"fcntl", "termios", "tty", "pty", "resource", "pwd", "grp", "posix"}
POSIX_NAMES = {
    "os": {"sysconf", "fork", "getuid", "geteuid", "killpg", "setsid", "getpgid", "uname", "nice", "WNOHANG"},
    "signal": {"SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGQUIT", "alarm", "setitimer"},
}


def posix_only_uses(path: Path) -> list[str]:
    """file:line: name of each POSIX-only module that the file imports, or POSIX-only os/signal name it uses."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names if alias.name.split(".")[0] in POSIX_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in POSIX_MODULES:
                names = [node.module]
            names += [f"{node.module}.{a.name}" for a in node.names if a.name in POSIX_NAMES.get(node.module, ())]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [f"{node.value.id}.{node.attr}"] if node.attr in POSIX_NAMES.get(node.value.id, ()) else []
        found += [f"{path.name}:{node.lineno}: {name}" for name in names]
    return sorted(found, key=lambda use: int(use.split(":")[1]))


def test_no_command_uses_a_posix_only_module_or_call():
    files = [*(REPO / "src").rglob("*.py"), *(REPO / "scripts").glob("*.py")]
    assert len(files) > 50
    assert [use for path in sorted(files) for use in posix_only_uses(path)] == []


def test_the_posix_check_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import fcntl\nimport os, signal\nos.sysconf('x')\nsignal.SIGKILL\n", encoding="utf-8")
    assert posix_only_uses(sample) == ["sample.py:1: fcntl", "sample.py:3: os.sysconf", "sample.py:4: signal.SIGKILL"]


def without_fcntl(script: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python SCRIPT ARGS` in a process where `import fcntl` fails, as on Windows."""
    code = f"import runpy, sys\nsys.modules['fcntl'] = None\nsys.argv = [{str(script)!r}, *{args!r}]\n"
    code += f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, encoding="utf-8")


@pytest.mark.slow  # a training in a process of its own
def test_a_short_training_runs_where_fcntl_cannot_be_imported(synthetic_mnist, tmp_path):
    run_dir = tmp_path / "run"
    args = [*SYNTHETIC, *data_overrides(synthetic_mnist), "trainer.max_epochs=1", f"hydra.run.dir={run_dir}"]
    result = without_fcntl(REPO / "src" / "train.py", args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["status"] == "ok" and metrics["epochs"] == 1 and metrics["test/acc"] > 0.5
    assert not (run_dir / ".holder").exists()  # the folder was claimed, and given back at the end


@pytest.mark.slow  # a training, an evaluation, a prediction and a sweep, each a process of its own
def test_a_checkout_in_a_chinese_folder_with_a_space_trains_evaluates_predicts_and_sweeps(synthetic_mnist, tmp_path):
    # As a learner on Windows has it: C:\Users\张三\我的 文档\mlplab. Commands typed as README says, from the checkout.
    checkout = tmp_path / "我的 文档" / "mlplab"
    for part in ("src", "conf"):
        shutil.copytree(REPO / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    data_dir = checkout / "数据"
    shutil.copytree(synthetic_mnist[0], data_dir)
    data = ['data.data_dir="数据"', "data.md5={" + ",".join(f"{k}:{v}" for k, v in synthetic_mnist[1].items()) + "}"]
    env = {"PYTHONPATH": str(checkout / "src"), "PYTHONUTF8": "1"}
    env.update({key: value for key, value in os.environ.items() if key in ENV_KEEP})

    def command(script: str, *args: str) -> subprocess.CompletedProcess:
        line = [sys.executable, f"src/{script}", *args]
        result = subprocess.run(line, cwd=checkout, capture_output=True, text=True, encoding="utf-8", env=env)
        assert result.returncode == 0, f"{line}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr
        return result

    trained = command("train.py", *SYNTHETIC, *data, "trainer.max_epochs=1", "hydra.run.dir=outputs/first")
    run_dir = checkout / "outputs" / "first"
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["status"] == "ok" and Path(metrics["best_checkpoint"]).is_relative_to(checkout)
    assert "run folder:  outputs/first" in trained.stdout
    checkpoint = Path(metrics["best_checkpoint"]).relative_to(checkout).as_posix()

    evaluated = command("eval.py", f'ckpt_path="{checkpoint}"', "hydra.run.dir=outputs/eval")
    assert f"test/acc {metrics['test/acc']:.2%}" in evaluated.stdout

    digits = checkout / "我的数字"
    digits.mkdir()
    seven = np.zeros((28, 28), np.uint8)
    seven[6:9, 8:20], seven[9:22, 16:19] = 255, 255  # a stroke across and one down
    Image.fromarray(seven).save(digits / "七.png")
    predicted = command("predict.py", f'ckpt_path="{checkpoint}"', 'input="我的数字/七.png"', "hydra.run.dir=outputs/p")
    assert predicted.stdout.startswith("我的数字/七.png: ")

    sweep = ["-m", *SYNTHETIC, *data, "trainer.max_epochs=1", "optimizer=sgd,adam", 'hydra.sweep.dir="outputs/扫描 1"']
    swept = command("train.py", *sweep)
    table = (checkout / "outputs" / "扫描 1" / "results.md").read_text(encoding="utf-8")
    assert "| sgd |" in table and "| adam |" in table, swept.stdout
