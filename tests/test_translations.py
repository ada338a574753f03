"""The Chinese pages stay honest twins of the English ones: linked both ways, no command of their own, and the
lesson page quoting the same code lines."""

import re

import pytest

from conftest import REPO

# (Chinese page, its English twin), paths from the repository's root.
TWINS = [("README.zh-CN.md", "README.md"), ("docs/lesson.zh-CN.md", "docs/lesson.md")]
COMMAND = re.compile(r"^(?:\$ )?((?:python|tensorboard) .*)$")


def commands(page: str) -> list[str]:
    """Every command line of the page's code blocks, as typed (a `$ ` prompt taken off)."""
    blocks = re.findall(r"```(?:bash|text)?\n(.*?)```", page, flags=re.S)
    return [match[1].strip() for block in blocks for line in block.splitlines() if (match := COMMAND.match(line))]


@pytest.mark.parametrize(("chinese", "english"), TWINS)
def test_each_chinese_page_links_its_english_twin_and_back(chinese, english):
    chinese_page, english_page = (
        (REPO / chinese).read_text(encoding="utf-8"),
        (REPO / english).read_text(encoding="utf-8"),
    )
    assert f"]({english.rsplit('/', 1)[-1]})" in chinese_page.splitlines()[0]  # the language switch, first line
    assert f"]({chinese.rsplit('/', 1)[-1]})" in english_page.splitlines()[0]


@pytest.mark.parametrize(("chinese", "english"), TWINS)
def test_every_command_of_a_chinese_page_is_one_of_its_english_twin(chinese, english):
    """So each one runs as the English page's do: tests/test_readme.py composes and builds README's commands."""
    chinese_commands = commands((REPO / chinese).read_text(encoding="utf-8"))
    english_page = (REPO / english).read_text(encoding="utf-8")
    assert chinese_commands, f"{chinese} shows no command"
    for command in chinese_commands:
        assert command in english_page, f"{chinese}: {command!r} is not in {english}"


def test_the_chinese_lesson_page_quotes_the_same_code_as_the_english_one():
    row = r"^\| .+ \| `(src/mlplab/\w+\.py:[\w.]+)` \| `(.+)` \|$"
    english = re.findall(row, (REPO / "docs" / "lesson.md").read_text(encoding="utf-8"), flags=re.M)
    chinese = re.findall(row, (REPO / "docs" / "lesson.zh-CN.md").read_text(encoding="utf-8"), flags=re.M)
    assert chinese == english  # tests/test_scratch.py checks each against its function


def test_the_chinese_readme_has_a_glossary_that_names_the_config_keys():
    page = (REPO / "README.zh-CN.md").read_text(encoding="utf-8")
    for term, key in [("学习率", "optimizer.lr"), ("动量", "optimizer.momentum"), ("批量归一化", "batch_norm")]:
        line = next((line for line in page.splitlines() if line.startswith("|") and term in line), "")
        assert key in line, f"the glossary has no row for {term} naming {key}"
    for term in ("前向传播", "反向传播", "损失函数", "早停", "偏置", "轮", "批"):
        assert term in page
