"""MkDocs hook: what the site's pages are made of, beyond docs/*.md.

- The READMEs are the home pages: docs/index.md and docs/index.zh-CN.md are README.md and README.zh-CN.md, their
  links turned into the site's.
- The repository's files that the pages link to become pages of the site, with a line anchor each; the notebook
  becomes a page with its outputs.
- A Chinese paragraph's line breaks are taken out (a browser shows each as a space).

A page links to a file as on GitHub, `[module.py:87](../src/mlplab/module.py#L87)`, so that the link works there
too; in the site the link lands on line 87 of the file's own page (source/src/mlplab/module.py.html#L87), which
works opened from disk, with no server. The notebook's link lands on the notebook's page, rendered with its outputs.
"""

import html
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from nbconvert import MarkdownExporter
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/lesson.ipynb"
# `](../src/mlplab/module.py#L87)`: a page in docs/ linking to a file of the repository, with an optional line.
REPO_LINK = re.compile(r"\]\(\.\./((?:src|conf|scripts|tests|notebooks|data|\.ci)/[^)#\s]+|pyproject\.toml)(#L\d+)?\)")


HOME = {"index.md": "README.md", "index.zh-CN.md": "README.zh-CN.md"}


def readme_as_page(readme: str) -> str:
    """The README's text with its links as a page in docs/ has them; its first line, the language switch, left out
    (the site has its own)."""
    text = (REPO / readme).read_text(encoding="utf-8").split("\n", 1)[1]
    text = re.sub(r"\]\((?!https?:|#)([^)]+)\)", r"](../\1)", text)
    return text.replace("](../docs/", "](")


def linked_files(docs_dir: Path) -> set[str]:
    """Every repository file that a page links to (the pages are read here: on_files comes before their markdown)."""
    pages = [page.read_text(encoding="utf-8") for page in docs_dir.glob("*.md")]
    pages += [readme_as_page(readme) for readme in HOME.values()]
    return {match[1] for page in pages for match in REPO_LINK.finditer(page)}


def source_page(path: str) -> str:
    """The file's text, highlighted, one `<span id="L<n>">` per line, as a Markdown page."""
    text = (REPO / path).read_text(encoding="utf-8")
    try:
        lexer = get_lexer_for_filename(path, stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    body = highlight(text, lexer, HtmlFormatter(linenos="inline", linespans="L"))
    body = re.sub(r'<span id="L-(\d+)">', r'<span id="L\1">', body)
    return f'# {html.escape(path)}\n\n<div class="source" markdown="0">\n{body}\n</div>\n'


def notebook_page() -> str:
    """The notebook as Markdown: its Markdown cells as they are, each code cell and then what it printed."""
    body, _ = MarkdownExporter().from_filename(str(REPO / NOTEBOOK))
    # Its links to the pages, from notebooks/; the language's own page of each is the site's switch away.
    body = re.sub(r"\]\(\.\./docs/([\w-]+)(?:\.zh-CN)?\.md", r"](\1.md", body)
    return body.replace("](../docs/", "](")


@event_priority(-200)  # after the i18n plugin has chosen each language's pages: these are the same in both
def on_files(files: Files, config: MkDocsConfig) -> Files:
    pages = {"notebook.md": notebook_page()}
    for path in sorted(linked_files(Path(config.docs_dir)) - {NOTEBOOK}):
        if (REPO / path).is_file():  # else the strict build reports the broken link
            pages[f"source/{path}.md"] = source_page(path)
    # Each language's build gets its own copy, under its folder (zh-CN/...), in its own navigation and language.
    i18n = config.plugins["i18n"]
    folder = "" if i18n.current_language == i18n.default_language else f"{i18n.current_language}/"
    for src_uri, content in pages.items():
        page = File.generated(config, src_uri, content=content)
        page.dest_uri = folder + page.dest_uri
        files.append(page)
    return files


# A line break between two Chinese characters: the pages wrap long Chinese paragraphs, and a browser would show each
# break as a space, which Chinese does not put between words.
CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
CJK_BREAK = re.compile(rf"(?<=[{CJK}])\n(?=[{CJK}])")


def joined_chinese(markdown: str) -> str:
    """The markdown with its Chinese paragraphs' line breaks taken out, outside code blocks."""
    parts = re.split(r"(^```.*?^```)", markdown, flags=re.M | re.S)
    return "".join(part if part.startswith("```") else CJK_BREAK.sub("", part) for part in parts)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri in HOME:
        markdown = readme_as_page(HOME[page.file.src_uri])
    markdown = joined_chinese(markdown)

    def target(match: re.Match) -> str:
        path, line = match[1], match[2] or ""
        if not (REPO / path).is_file():
            return match[0]
        return "](notebook.md)" if path == NOTEBOOK else f"](source/{path}.md{line})"

    return REPO_LINK.sub(target, markdown)
