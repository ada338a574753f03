"""Every formula, code line and phrase that a page presents as the lesson's occurs in the lesson's text.

The lesson's text is docs/lesson_source.txt (tests/test_lesson_script.py checks that it is the copy received).
A page presents something as the lesson's in one of four ways, which this test finds:

- `<q>…</q>`: the lesson's words (Markdown pages and the notebook's Markdown cells);
- a table whose first header cell is `the lesson, as printed` or `课程原文`: each row's first cell quotes the
  lesson in `$…$` (its LaTeX, copied) or `` `…` `` (its code) spans, every one of them checked;
- a fenced block (```` ``` ```` or `$$`) right after a line `<!-- lesson -->`: each of its lines; in code, a line
  that ends in `# ours: …` is the page's change and is left out (so is a comment line);
- a notebook code cell whose first line starts `# 课程原文`: each code line, the same way.

A `§4.4`-style reference right after a quote (in the table cell, or after `</q>`) must name the section the quote
is in. A line that says `as printed` or `照原样` (a lesson table's header aside) must carry a checked quote.
Matching ignores whitespace, `$`, backticks, LaTeX's alignment `&` and line break `\\`, and reads σ, η, ⊙ and ×
as \\sigma, \\eta, \\odot and \\times.
"""

import json
import re
from pathlib import Path

import pytest

from conftest import DOC_PAGES, REPO

LESSON = (REPO / "docs" / "lesson_source.txt").read_text(encoding="utf-8")
PAGES = [page for twins in DOC_PAGES for page in twins] + ["notebooks/lesson.ipynb"]
TABLE_HEADERS = ("the lesson, as printed", "课程原文")
CLAIMS = re.compile(r"as printed|照原样", re.I)
SECTION_REF = re.compile(r"§(\d+(?:\.\d+)*)")
SYMBOLS = {"σ": r"\sigma", "η": r"\eta", "⊙": r"\odot", "×": r"\times"}


def normalised(text: str) -> str:
    for symbol, latex in SYMBOLS.items():
        text = text.replace(symbol, latex)
    text = text.replace("\\\\", "").replace("&", "").replace("$", "").replace("`", "")
    return re.sub(r"\s+", "", text)


def sections(text: str) -> dict[str, str]:
    """Each numbered section's text (its subsections included), by number: "4.4", "5", "2.1"."""
    parts = re.split(r"^#{2,4} (\d+(?:\.\d+)*)\.? .*$", text, flags=re.M)
    bodies = dict(zip(parts[1::2], parts[2::2], strict=True))
    return {
        number: "".join(body for other, body in bodies.items() if other == number or other.startswith(number + "."))
        for number in bodies
    }


LESSON_ALL = normalised(LESSON)
LESSON_SECTIONS = {number: normalised(body) for number, body in sections(LESSON).items()}


class Quote:
    def __init__(self, page: str, line: int, text: str, refs: list[str]) -> None:
        self.page, self.line, self.text, self.refs = page, line, text, refs

    def problem(self) -> str | None:
        """None when the quote is in the lesson (and in the section it names), else what is wrong."""
        quoted = normalised(self.text)
        if len(quoted) < 2:
            return f"{self.page}:{self.line}: too short to be a quote: {self.text!r}"
        if quoted not in LESSON_ALL:
            return f"{self.page}:{self.line}: not in the lesson's text: {self.text!r}"
        unknown = [ref for ref in self.refs if ref not in LESSON_SECTIONS]
        if unknown:
            return f"{self.page}:{self.line}: the lesson has no §{unknown[0]}: {self.text!r}"
        if self.refs and not any(quoted in LESSON_SECTIONS[ref] for ref in self.refs):
            return f"{self.page}:{self.line}: not in §{', §'.join(self.refs)}: {self.text!r}"
        return None


def markdown_quotes(page: str, text: str, line_offset: int = 0) -> tuple[list[Quote], list[str]]:
    """The quotes of a Markdown text, and the problems found while collecting them."""
    quotes, problems = [], []
    lines = text.splitlines()
    in_lesson_table = False
    i = 0
    while i < len(lines):
        line, number = lines[i], line_offset + i + 1
        for match in re.finditer(r"<q>(.*?)</q>", line):
            after = line[match.end() : match.end() + 14]
            refs = SECTION_REF.findall(after) if re.match(r"\s*[（(]?§", after) else []
            quotes.append(Quote(page, number, match[1], refs))
        if line.startswith("|"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if is_lesson_table_header(line):
                in_lesson_table = True
            elif in_lesson_table and not set(cells[0]) <= set("-: "):
                spans = re.findall(r"\$[^$]+\$|`[^`]+`", cells[0])
                if not spans:
                    problems.append(f"{page}:{number}: a row of a lesson table quotes nothing: {cells[0]!r}")
                refs = SECTION_REF.findall(cells[0])
                quotes += [Quote(page, number, span, refs) for span in spans]
        else:
            in_lesson_table = False
        if line.strip() == "<!-- lesson -->":
            fence = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if not (fence.startswith("```") or fence == "$$"):
                problems.append(f"{page}:{number}: <!-- lesson --> is not followed by a fenced block")
            else:
                close = "```" if fence.startswith("```") else "$$"
                j = i + 2
                while j < len(lines) and lines[j].strip() != close:
                    quotes += code_line_quote(page, line_offset + j + 1, lines[j])
                    j += 1
                i = j
        i += 1
    return quotes, problems


def code_line_quote(page: str, number: int, line: str) -> list[Quote]:
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or re.search(r"#\s*ours\b", line):
        return []
    return [Quote(page, number, stripped, [])]


def page_quotes(page: str) -> tuple[list[Quote], list[str], list[tuple[int, str]]]:
    """(quotes, problems, lines that claim `as printed` without a quote on them) of one page."""
    path = REPO / page
    if path.suffix == ".ipynb":
        quotes, problems, claims = [], [], []
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            source = "".join(cell["source"])
            name = f"{page}[cell {index}]"
            if cell["cell_type"] == "markdown":
                cell_quotes, cell_problems = markdown_quotes(name, source)
                quotes += cell_quotes
                problems += cell_problems
                claims += unsupported_claims(name, source, cell_quotes)
            elif source.startswith("# 课程原文"):
                lines = source.splitlines()
                quotes += [quote for n, line in enumerate(lines[1:], 2) for quote in code_line_quote(name, n, line)]
        return quotes, problems, claims
    text = path.read_text(encoding="utf-8")
    quotes, problems = markdown_quotes(page, text)
    return quotes, problems, unsupported_claims(page, text, quotes)


def unsupported_claims(page: str, text: str, quotes: list[Quote]) -> list[tuple[int, str]]:
    quoted_lines = {quote.line for quote in quotes}
    return [
        (number, line)
        for number, line in enumerate(text.splitlines(), 1)
        if CLAIMS.search(line) and number not in quoted_lines and not is_lesson_table_header(line)
    ]


def is_lesson_table_header(line: str) -> bool:
    return re.match(r"\|\s*(" + "|".join(TABLE_HEADERS) + ")", line, flags=re.I) is not None


@pytest.mark.parametrize("page", PAGES)
def test_every_quote_of_the_lesson_on_the_page_is_in_its_text(page):
    quotes, problems, _ = page_quotes(page)
    problems += [problem for quote in quotes if (problem := quote.problem())]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_every_as_printed_claim_carries_a_quote(page):
    _, _, claims = page_quotes(page)
    assert not claims, "\n".join(f"{page}:{number}: {line}" for number, line in claims)


def test_the_pages_quote_the_lesson_a_lot():
    counts = {page: len(page_quotes(page)[0]) for page in PAGES}
    print("quotes checked:", counts, "in all", sum(counts.values()))
    teaching = [page for page in PAGES if re.search(r"lesson|code-tour|glossary", page)]
    assert all(counts[page] for page in teaching) and sum(counts.values()) >= 150, counts


def test_the_lessons_sections_are_found():
    assert {"2.1.1", "3.2", "4.4", "5.3", "5.5"} <= LESSON_SECTIONS.keys()
    assert (
        normalised(r"\frac{\partial L}{\partial a^{(1)}} = \frac{\partial L}{\partial z^{(2)}} \cdot W^{(2)}")
        in (LESSON_SECTIONS["4.4"])
    )


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        # A formula the lesson never prints, presented as printed.
        ("| the lesson, as printed | x |\n| --- | --- |\n| $\\text{ReLU}(z) = \\max(0, z)$ | as printed |\n", "not in"),
        # The right formula under the wrong section: the update rule is §4.3's, not §3.2's.
        (
            "| 课程原文 | x |\n| --- | --- |\n"
            "| $w \\leftarrow w - \\eta \\frac{\\partial L}{\\partial w}$ (§3.2) | x |\n",
            "§3.2",
        ),
        # A row of a lesson table with nothing quoted in it.
        ("| the lesson, as printed | x |\n| --- | --- |\n| the ReLU derivative | x |\n", "quotes nothing"),
        # Words put in the lesson's mouth.
        ("The lesson says <q>σ 泛指激活函数</q>.\n", "not in"),
        # A code block presented as the lesson's with a line it does not have.
        ("<!-- lesson -->\n```python\nnet = Net()\nnet.eval()\n```\n", "net.eval()"),
    ],
)
def test_the_check_fails_a_page_that_misquotes_the_lesson(page, problem):
    quotes, problems = markdown_quotes("page", page)
    problems += [found for quote in quotes if (found := quote.problem())]
    assert any(problem in found for found in problems), problems


def test_the_check_fails_an_as_printed_claim_without_a_quote():
    text = "| ReLU(z) = max(0, z) | as printed |\n"
    quotes, _ = markdown_quotes("page", text)
    assert unsupported_claims("page", text, quotes) == [(1, text.strip())]


def test_the_lessons_text_is_read_whole():
    assert (
        Path(REPO / "docs" / "lesson_source.txt").read_text(encoding="utf-8").rstrip().endswith("以关")
    )  # where the source ends
