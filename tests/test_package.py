"""The package installs on its own: its wheel, without the test extra, in a fresh virtual environment."""

import subprocess
import sys
import textwrap

import pytest

from conftest import REPO

IMPORT_EVERY_MODULE = textwrap.dedent(
    """
    import importlib, importlib.util, pkgutil, mlplab
    names = sorted(m.name for m in pkgutil.walk_packages(mlplab.__path__, "mlplab."))
    for name in names:
        importlib.import_module(name)
    present = [m for m in ("pytest", "selenium") if importlib.util.find_spec(m)]
    print(len(names), "modules;", "test tools present:", present)
    """
)


@pytest.mark.slow  # a few minutes: the wheel's dependencies (torch among them) install from scratch
def test_the_wheel_installs_without_the_test_extra_and_imports_every_module(tmp_path):
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(REPO)]
    subprocess.run(build, check=True, capture_output=True)
    [wheel] = tmp_path.glob("mlplab-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]
    # From another folder than the checkout, so that only the installed package can be imported.
    result = subprocess.run([python, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    count = sum(1 for path in (REPO / "src" / "mlplab").rglob("*.py") if path.name != "__init__.py")
    count += sum(1 for path in (REPO / "src" / "mlplab").rglob("__init__.py")) - 1  # subpackages, not mlplab itself
    assert result.stdout.strip() == f"{count} modules; test tools present: []"
