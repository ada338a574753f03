"""The documentation site as a reader sees it: built by `mkdocs build --strict`, opened from disk in headless Chromium
(no server): the home page in each language, the switch between them, the search, the code tour's links; and an
exercise's check as the learner's console shows it. MLPLAB_SCREENSHOTS=<folder> keeps what the browser showed."""

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_docs import build_site
from test_exercises import lessons_step_4_as_printed

import browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The search box and its results (Material for MkDocs).
SEARCH_RESULTS = """
return [...document.querySelectorAll(".md-search-result__item")].map(item => {
  const title = item.querySelector("h1, h2");
  return [item.querySelector("a").getAttribute("href"), title ? title.textContent : ""];
});
"""
# Every resource the page loaded: none may come from the network.
RESOURCES = "return performance.getEntriesByType('resource').map(entry => entry.name);"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site") / "site"
    built = build_site(folder)
    assert built.returncode == 0, built.stderr[-3000:]
    return folder


@pytest.fixture(scope="module")
def driver() -> Any:
    with browser.chromium(1280, 900) as driver:
        yield driver


def keep(driver: Any, name: str, tmp_path: Path) -> None:
    """A screenshot of what the reader sees, into MLPLAB_SCREENSHOTS when it is set (for the docs and for review)."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    if folder := os.environ.get("MLPLAB_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


def search(driver: Any, query: str, expected: str) -> list[str]:
    """The pages (without their `?h=` and `#anchor`) that the search box lists for query, once one ends in expected."""
    box = browser.wait_for(lambda: driver.find_elements("css selector", "input.md-search__input"), what="search box")[0]
    driver.execute_script("document.querySelector('label.md-search__icon, .md-header__button[for=__search]').click()")
    box.clear()
    box.send_keys(query)

    def pages() -> list[str]:
        return [re.split(r"[?#]", href)[0] for href, _ in driver.execute_script(SEARCH_RESULTS)]

    try:
        return browser.wait_for(lambda: any(p.endswith(expected) for p in pages()) and pages(), timeout=30)
    except TimeoutError:
        raise AssertionError(f"the search for {query!r} lists {pages()}, not {expected}") from None


@pytest.mark.parametrize(
    ("page", "expected", "name"),
    [
        ("index.html", ["A learner's path", "Install", "Configuration"], "home-en"),
        ("zh-CN/index.html", ["学习路线", "安装", "配置"], "home-zh"),
    ],
)
def test_the_home_page_opens_from_disk_in_each_language_and_loads_nothing_from_outside(
    site, driver, tmp_path, page, expected, name
):
    browser.open_page(driver, (site / page).as_uri(), expected)
    keep(driver, name, tmp_path)
    outside = [url for url in driver.execute_script(RESOURCES) if not url.startswith("file://")]
    assert not outside, f"{page} fetched {outside}"


def test_the_language_switch_leads_to_the_same_page_in_the_other_language(site, driver):
    browser.open_page(driver, (site / "lesson.html").as_uri(), ["The lesson's math, line by line"])
    driver.execute_script("document.querySelector('a[hreflang=\"zh-CN\"]').click()")
    browser.wait_for(lambda: "课程里的数学" in browser.page_text(driver), what="the Chinese lesson page")
    assert driver.current_url.endswith("/zh-CN/lesson.html")
    driver.execute_script("document.querySelector('a[hreflang=\"en\"]').click()")
    browser.wait_for(lambda: driver.current_url.endswith("/site/lesson.html"), what="back to the English page")


@pytest.mark.parametrize(
    ("page", "query", "expected"),
    [
        ("zh-CN/index.html", "交叉熵", "zh-CN/lesson.html"),
        ("index.html", "steps_per_execution", "configuration.html"),
    ],
)
def test_the_search_finds_a_chinese_word_and_a_config_key_offline(site, driver, tmp_path, page, query, expected):
    browser.open_page(driver, (site / page).as_uri(), ["mlplab"])
    search(driver, query, expected)
    keep(driver, f"search-{'zh' if page.startswith('zh') else 'en'}", tmp_path)


def test_the_code_tours_links_land_on_the_lines_they_name(site, driver, tmp_path):
    browser.open_page(driver, (site / "code-tour.html").as_uri(), ["§5.4 Training"])
    link = driver.find_element("css selector", 'a[href$="module.py.html#L76"]')
    assert link.text == "src/mlplab/module.py:76"
    driver.execute_script("arguments[0].click()", link)
    target = browser.wait_for(
        lambda: driver.execute_script("const t = document.querySelector(':target'); return t && [t.id, t.textContent]"),
        what="the line the link names",
    )
    assert target[0] == "L76" and "optimizer.zero_grad()" in target[1]
    # The line is on the screen, not merely on the page.
    top = driver.execute_script("return document.getElementById('L76').getBoundingClientRect().top")
    assert 0 <= top < driver.execute_script("return window.innerHeight")
    keep(driver, "code-tour-line", tmp_path)
    browser.open_page(driver, (site / "zh-CN" / "code-tour.html").as_uri(), ["代码导读"])
    keep(driver, "code-tour-zh", tmp_path)


def test_an_exercise_check_fails_then_passes_as_the_learner_sees_it(driver, tmp_path):
    """§4.4 in a learner's own folder: start, the lesson's step 4 copied as printed (refused, naming the line and the
    shapes), then the corrected backward pass (passes); the console's text, shown in Chromium with Noto CJK."""
    from mlplab.exercises import EXERCISES, solution_file

    def exercises(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mlplab.exercises", *command, "4.4", "--lang", "zh"], cwd=tmp_path,
            capture_output=True, text=True, encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )  # fmt: skip

    started = exercises("start")
    answer = tmp_path / "exercises" / "ex_4_4.py"
    assert started.returncode == 0 and answer.read_text(encoding="utf-8") == EXERCISES["4.4"].TEMPLATE
    answer.write_text(lessons_step_4_as_printed(), encoding="utf-8")
    failing = exercises("check")
    shutil.copy(solution_file("4.4"), answer)
    passing = exercises("check")
    assert (
        failing.returncode == 1 and "的形状对不上" in failing.stdout and failing.stdout.endswith("还没通过：backward\n")
    )
    assert passing.returncode == 0 and passing.stdout.endswith("全部通过\n") and passing.stdout.count("✓") == 4

    page = tmp_path / "console.html"
    shown = "".join(
        f"<p>$ python -m mlplab.exercises check 4.4</p><pre>{html.escape(run.stdout)}</pre>"
        for run in (failing, passing)
    )
    page.write_text(
        "<html><head><style>pre { white-space: pre-wrap }</style></head>"
        f'<body style="background:#1e1e1e;color:#ddd;font:15px monospace;margin:1em">{shown}</body></html>',
        encoding="utf-8",
    )
    browser.open_page(driver, page.as_uri(), ["全部通过", "还没通过"])
    keep(driver, "exercise-4.4-check", tmp_path)
