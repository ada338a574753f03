"""The Chinese pages stay honest twins of the English ones: every page in both languages, no command of their own,
the READMEs linked both ways, and the pages that quote code quoting the same lines."""

import re

import pytest

from conftest import DOC_PAGES, REPO

COMMAND = re.compile(r"^(?:\$ )?((?:python|tensorboard) .*?)(?:\s+#.*)?$")


def commands(page: str) -> list[str]:
    """Every command line of the page's code blocks, as typed (a `$ ` prompt and a trailing comment taken off)."""
    blocks = re.findall(r"```(?:bash|text)?\n(.*?)```", page, flags=re.S)
    return [match[1].strip() for block in blocks for line in block.splitlines() if (match := COMMAND.match(line))]


def test_every_page_of_the_site_is_in_both_languages():
    english = {path.name for path in (REPO / "docs").glob("*.md") if not path.name.endswith(".zh-CN.md")}
    chinese = {path.name.replace(".zh-CN", "") for path in (REPO / "docs").glob("*.zh-CN.md")}
    assert english == chinese, f"only in English: {english - chinese}; only in Chinese: {chinese - english}"


def test_each_readme_links_its_twin_on_its_first_line():
    chinese, english = (
        (REPO / "README.zh-CN.md").read_text(encoding="utf-8"),
        (REPO / "README.md").read_text(encoding="utf-8"),
    )
    assert "](README.md)" in chinese.splitlines()[0] and "](README.zh-CN.md)" in english.splitlines()[0]


@pytest.mark.parametrize(("english", "chinese"), DOC_PAGES)
def test_every_command_of_a_chinese_page_is_one_of_its_english_twin(chinese, english):
    """So each one runs as the English page's do: tests/test_readme.py composes and builds their commands."""
    chinese_commands = commands((REPO / chinese).read_text(encoding="utf-8"))
    english_page = (REPO / english).read_text(encoding="utf-8")
    for command in chinese_commands:
        assert command in english_page, f"{chinese}: {command!r} is not in {english}"


@pytest.mark.parametrize(
    ("english", "row"),
    [
        ("docs/lesson.md", r"^\| .+ \| `(src/mlplab/[\w/]+\.py:[\w.]+)` \| `(.+)` \|$"),
        ("docs/code-tour.md", r"^\| (`.+`) \| \[[^]]+\]\(([^)]+)\) \| (`.+`) \|$"),
    ],
)
def test_the_chinese_page_quotes_the_same_code_as_the_english_one(english, row):
    chinese = english.replace(".md", ".zh-CN.md")
    rows = [re.findall(row, (REPO / page).read_text(encoding="utf-8"), flags=re.M) for page in (english, chinese)]
    assert rows[0] and rows[0] == rows[1]  # tests/test_scratch.py and tests/test_docs.py check them against the code


def test_the_chinese_glossary_names_the_config_keys():
    page = (REPO / "docs" / "glossary.zh-CN.md").read_text(encoding="utf-8")
    for term, key in [("学习率", "optimizer.lr"), ("动量", "optimizer.momentum"), ("批量归一化", "batch_norm")]:
        line = next((line for line in page.splitlines() if line.startswith(f"| {term}")), "")
        assert key in line, f"the glossary has no row for {term} naming {key}"
    for term in ("前向传播", "反向传播", "损失函数", "早停", "偏置", "轮", "批"):
        assert term in page
