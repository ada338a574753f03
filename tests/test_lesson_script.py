"""scripts/lesson_script.py is the lesson's §5 listing as printed, and runs offline on a synthetic MNIST."""

import ast
import gzip
import hashlib
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = REPO / "scripts" / "lesson_script.py"
LESSON = REPO / "docs" / "lesson_source.txt"
# The lesson's text as the project received it (shared/lesson/000_13e6beddc90915d4.txt): copied, never edited.
LESSON_SHA256 = "b76bb989f8f69803e6a34c79a6f3280fa3ecc64011b7f770f94804f9f249232b"


def lesson_listing() -> list[str]:
    """The lines of §5's code blocks (§5.1 to §5.5), in the lesson's order, blank lines left out."""
    section_5 = LESSON.read_text(encoding="utf-8").split("\n## 5.", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section_5, flags=re.S)
    assert len(blocks) == 5  # §5.1 imports, §5.2 the network, §5.3 the data, §5.4 training, §5.5 testing
    return [line.rstrip() for block in blocks for line in block.splitlines() if line.strip()]


def without_ours(script: str) -> list[str]:
    """The script with what is ours taken away: its docstring, `# ours >>>` ... `# ours <<<` blocks and every comment
    line dropped, each line marked `# ours: ...` replaced by the `# as printed: ...` line above it; blank lines left
    out."""
    first = ast.parse(script).body[0]
    docstring_end = first.end_lineno if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) else 0
    lines, inside, printed = [], False, None
    for line in script.splitlines()[docstring_end:]:
        stripped = line.strip()
        if stripped == "# ours >>>":
            inside = True
        elif stripped == "# ours <<<":
            inside = False
        elif inside or not stripped:
            continue
        elif stripped.startswith("# as printed: "):
            printed = line.split("# as printed: ", 1)[1]
        elif stripped.startswith("#"):
            continue
        elif re.search(r"  # ours: \S", line):
            assert printed is not None, f"{line!r} is marked as changed but gives no `# as printed:` line"
            lines.append(printed.rstrip())
            printed = None
        else:
            assert "#" not in line, f"a comment on a code line not marked `# ours: ...`: {line!r}"
            assert printed is None, f"`# as printed: {printed}` is not followed by a line marked `# ours: ...`"
            lines.append(line.rstrip())
    assert not inside and printed is None
    return lines


def test_the_lessons_text_is_the_copy_received():
    assert hashlib.sha256(LESSON.read_bytes()).hexdigest() == LESSON_SHA256


def test_taking_away_what_is_ours_gives_back_the_lessons_listing_exactly():
    assert without_ours(SCRIPT.read_text(encoding="utf-8")) == lesson_listing()


def test_an_unmarked_change_to_one_of_the_lessons_lines_is_caught():
    changed = SCRIPT.read_text(encoding="utf-8").replace("lr=0.01, momentum=0.9", "lr=0.1, momentum=0.9")
    assert without_ours(changed) != lesson_listing()


# Runs the script with every network connection refused, as on a machine without one.
OFFLINE = (
    "import runpy, socket, sys\n"
    "def refuse(*args, **kwargs):\n"
    "    raise OSError('no network in this test')\n"
    "socket.socket.connect = refuse\n"
    "socket.create_connection = refuse\n"
    "runpy.run_path(sys.argv[1], run_name='__main__')\n"
)


@pytest.mark.slow
def test_the_script_runs_offline_on_a_synthetic_mnist_and_prints_only_its_last_two_lines(synthetic_mnist, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(synthetic_mnist[0], data_dir)  # the script unpacks the .gz files beside them
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE, str(SCRIPT)],
        cwd=tmp_path,  # not the repository's root: the data folder does not depend on the working folder
        env={"PATH": "/usr/bin:/bin", "LESSON_DATA_DIR": str(data_dir), "LESSON_EPOCHS": "2", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # 1,000 synthetic training images make 16 batches of 64 an epoch: like the 938 of the real MNIST, never the
    # 1,000 that `if i % 1000 == 999` needs, so no loss line; the message says 10000 whatever the test set's size.
    assert len(lines) == 2 and lines[0] == "Finished Training", result.stdout
    accuracy = re.fullmatch(r"Accuracy of the network on the 10000 test images: (\d+) %", lines[1])
    assert accuracy and 90 <= int(accuracy[1]) <= 100, lines[1]  # the synthetic digits are easy to learn
    raw = data_dir / "MNIST" / "raw"
    for name, md5 in synthetic_mnist[1].items():  # torchvision read the files unpacked from the .gz, no download
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5
        assert (raw / name).read_bytes() == gzip.decompress((raw / f"{name}.gz").read_bytes())
    assert not list(raw.glob("*.tmp"))
