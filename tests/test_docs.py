"""The documentation's shape and its links: READMEs a beginner reads in minutes, a code tour whose every link lands
on the line it names, and a site that builds strictly and works opened from disk."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

# A code tour row: the lesson's code | [path:line](../path#Lline) | the lab's code on that line.
TOUR_ROW = re.compile(r"^\| `.+` \| \[([^]:]+):(\d+)\]\(\.\./([^)#]+)#L(\d+)\) \| `(.+)` \|$", re.M)


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_each_readme_is_short(readme):
    lines = (REPO / readme).read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"{readme} has {len(lines)} lines: move the detail into docs/"
    assert max(len(line) for line in lines if not line.startswith("|")) <= 160


def tour_rows(page: str) -> list[tuple[str, ...]]:
    return TOUR_ROW.findall((REPO / "docs" / page).read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", ["code-tour.md", "code-tour.zh-CN.md"])
def test_every_line_of_the_code_tour_is_where_its_link_says(page):
    rows = tour_rows(page)
    assert len(rows) >= 25
    wrong = []
    for shown_path, shown_line, path, line, code in rows:
        assert (shown_path, shown_line) == (path, line), f"the link's text and target differ: {shown_path}:{shown_line}"
        lines = (REPO / path).read_text(encoding="utf-8").splitlines()
        if code not in lines[int(line) - 1]:
            found = [n for n, text in enumerate(lines, 1) if code in text]
            wrong.append(f"{path}:{line} does not hold {code!r}; it is on line(s) {found}")
    assert not wrong, "\n".join(wrong)


def build_site(site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, encoding="utf-8", timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_the_site_builds_strictly_and_needs_nothing_from_outside(tmp_path):
    built = build_site(tmp_path / "site")
    assert built.returncode == 0, built.stderr[-3000:]
    pages = sorted((tmp_path / "site").rglob("*.html"))
    for language in ("", "zh-CN/"):
        for page in ("index", "getting-started", "lesson", "code-tour", "exercises", "glossary", "notebook"):
            assert (tmp_path / "site" / f"{language}{page}.html").is_file(), f"{language}{page}.html"
    # Nothing is fetched from the network: no script, style sheet, font or image from another host.
    outside = re.compile(r"""<(?:script|link|img|iframe)[^>]+(?:src|href)=["'](?:https?:)?//""")
    assert not [page for page in pages if outside.search(page.read_text(encoding="utf-8"))]
    # The code tour's links land on their lines.
    tour = (tmp_path / "site" / "code-tour.html").read_text(encoding="utf-8")
    module = (tmp_path / "site" / "source" / "src" / "mlplab" / "module.py.html").read_text(encoding="utf-8")
    assert 'href="source/src/mlplab/module.py.html#L76"' in tour
    assert re.search(r'<span id="L76">.*optimizer.*zero_grad', module)
