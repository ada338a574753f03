"""The package installs on its own: its wheel, without the test extra, in a fresh virtual environment.

Installing the wheel's dependencies from scratch copies several GB (torch's CUDA build) and takes minutes. The fresh
environment instead sees exactly the distributions that the wheel's own requirements reach, followed through their
requirements (the test extra's selenium and pytest are not among them), linked from this environment: `pip check`
proves that they satisfy the wheel, and importing every module proves that the package needs nothing else.
"""

import email.parser
import subprocess
import sys
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO

IMPORT_EVERY_MODULE = textwrap.dedent(
    """
    import importlib, importlib.util, pkgutil, mlplab
    names = sorted(m.name for m in pkgutil.walk_packages(mlplab.__path__, "mlplab."))
    for name in names:
        importlib.import_module(name)
    present = [m for m in ("pytest", "selenium") if importlib.util.find_spec(m)]
    print(len(names), "modules;", "test tools present:", present, "from", mlplab.__file__)
    """
)


def requirement_closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions that these requirements reach (with the extras they ask for), by name."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(Requirement(text), "") for text in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name not in found:
            found[name] = metadata.distribution(requirement.name)
            todo += [(Requirement(text), "") for text in found[name].requires or []]
        todo += [(Requirement(text), wanted) for wanted in requirement.extras for text in found[name].requires or []]
    return found


def link_distributions(distributions: dict[str, metadata.Distribution], folder: Path) -> None:
    """Links each distribution's top-level files and folders (its modules and its .dist-info) into `folder`."""
    folder.mkdir()
    for distribution in distributions.values():
        site = Path(distribution.locate_file(""))
        for top in {path.parts[0] for path in distribution.files or [] if path.parts[0] != ".."}:
            if not (folder / top).exists() and (site / top).exists():
                (folder / top).symlink_to(site / top)


@pytest.mark.slow
def test_the_wheel_installs_without_the_test_extra_and_imports_every_module(tmp_path):
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(REPO)]
    subprocess.run(build, check=True, capture_output=True)
    [wheel] = tmp_path.glob("mlplab-*.whl")
    # Without pip and setuptools of its own (torch requires a newer setuptools): this environment's pip installs.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    install = [*pip, "install", "--quiet", "--no-deps", str(wheel)]
    installed = subprocess.run(install, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]

    with zipfile.ZipFile(wheel) as archive:
        [info] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        requirements = email.parser.Parser().parsestr(archive.read(info).decode()).get_all("Requires-Dist")
    closure = requirement_closure(requirements)  # the extras' requirements have markers that leave them out
    assert not {"pytest", "selenium", "ruff"} & closure.keys()
    link_distributions(closure, tmp_path / "dependencies")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    (Path(site) / "dependencies.pth").write_text(f"{tmp_path / 'dependencies'}\n", encoding="utf-8")

    checked = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # From another folder than the checkout, so that only the installed package can be imported.
    result = subprocess.run([python, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    count = sum(1 for path in (REPO / "src" / "mlplab").rglob("*.py") if path.name != "__init__.py")
    count += sum(1 for path in (REPO / "src" / "mlplab").rglob("__init__.py")) - 1  # subpackages, not mlplab itself
    assert result.stdout.strip() == f"{count} modules; test tools present: [] from {site}/mlplab/__init__.py"
