"""What a user sees in a browser: Debian's headless Chromium driven by Selenium, and a local TensorBoard server.

The tests' support code, also used by scripts/screenshots.py (README's images); not part of the package, which
installs without Selenium. Nothing is downloaded: Chromium and
its driver come from apt (`apt-get install chromium chromium-driver`), Selenium from pip (the `test` extra).
"""

import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mlplab.idx import read_mnist

REPO = Path(__file__).resolve().parents[1]  # the checkout these tests belong to
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Scripts run in the page. TensorBoard's Polymer dashboards (Scalars, Images, HParams) keep their content in
# shadow roots, which document.querySelectorAll does not enter: `elements` does.
ELEMENTS = """
const elements = root => {
  const found = [], walk = node => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children || []) { found.push(child); walk(child); }
  };
  walk(root);
  return found;
};
"""
# Every text of the page, in document order.
PAGE_TEXT = """
const texts = [], hidden = new Set(["STYLE", "SCRIPT", "NOSCRIPT", "TEMPLATE"]);
const walk = node => {
  if (hidden.has(node.nodeName)) return;
  if (node.shadowRoot) walk(node.shadowRoot);
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) { if (child.textContent.trim()) texts.push(child.textContent.trim()); }
    else walk(child);
  }
};
walk(document.body);
return texts.join("\\n");
"""
# The HParams table's cells (Vaadin's grid) as [slot, text], empty ones included.
HPARAMS_CELLS = (
    ELEMENTS + 'return elements(document.body).filter(e => e.tagName === "VAADIN-GRID-CELL-CONTENT")'
    '.map(e => [e.getAttribute("slot"), e.textContent.trim()]);'
)
# Each chart of the Scalars page: its tag, and how many of its lines have points (a raw and a smoothed per run).
SCALAR_CHARTS = (
    ELEMENTS
    + """
return elements(document.body).filter(e => e.tagName === "TF-SCALAR-CARD").map(card => [card.tag,
  elements(card).filter(e => e.tagName === "path" && e.classList.contains("line") && e.getAttribute("d")).length]);
"""
)
# How many images of the page have loaded.
LOADED_IMAGES = (
    ELEMENTS
    + """
return elements(document.body).filter(e => e.tagName === "IMG" && e.complete && e.naturalWidth > 0).length;
"""
)


def missing() -> str | None:
    """Why no browser can be driven here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing (apt-get install {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A headless Chromium window of the given size, as a Selenium WebDriver."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(argument)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver: Any) -> str:
    return driver.execute_script(PAGE_TEXT)


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "the page") -> Any:
    """condition()'s first truthy value, polled until timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not there after {timeout} s")
        time.sleep(0.2)


def open_page(driver: Any, url: str, expected: list[str], timeout: float = 60) -> str:
    """Opens url and returns the page's text once every expected text is in it."""
    driver.get(url)

    def shows() -> str | None:
        text = page_text(driver)
        return text if all(e in text for e in expected) else None

    return wait_for(shows, timeout, what=f"{url} showing {expected}")


def scalar_charts(driver: Any) -> dict[str, int]:
    """The Scalars page's charts: tag -> the number of its lines that have points (a raw and a smoothed per run)."""
    return dict(driver.execute_script(SCALAR_CHARTS))


def hparams_table(cells: list[list[str]]) -> list[dict[str, str]]:
    """The rows of the HParams table view as shown, from its grid cells (HPARAMS_CELLS: [slot, text]): column ->
    cell, with the Trial ID (a sweep's job folder, `<n>_...`); a run without a column's value has an empty cell (SGD
    has no betas). None while the table is not drawn yet."""
    # Vaadin's grid numbers its cells in reading order (header, then row by row) but may attach them out of order.
    texts = [text for _, text in sorted(cells, key=lambda cell: int(cell[0].rsplit("-", 1)[1]))]
    if "Trial ID" not in texts:
        return []
    start = texts.index("Trial ID")
    header = list(itertools.takewhile(bool, texts[start:]))  # Trial ID, Show Metrics (a checkbox), the columns
    columns = ["Trial ID", *header[2:]]
    rows = []
    for index in range(start + len(header), len(texts) - len(header) + 1):
        if re.match(r"\d+_", texts[index]):
            row = texts[index : index + len(header)]
            rows.append(dict(zip(columns, [row[0], *row[2:]], strict=True)))
    return rows


def hparams_rows(driver: Any, base: str, count: int, timeout: float = 60) -> list[dict[str, str]]:
    """Opens the HParams page and returns its table once it shows `count` rows."""
    driver.get(base + "#hparams")
    cells = lambda: driver.execute_script(HPARAMS_CELLS)  # noqa: E731
    return wait_for(lambda: len(rows := hparams_table(cells())) == count and rows, timeout, "HParams rows")


@contextmanager
def tensorboard(logdir: Path, scratch: Path) -> Iterator[str]:
    """`tensorboard --logdir logdir` on 127.0.0.1 at a free port; yields its address. `scratch` takes the
    .tensorboard-info/ folder that it writes into $TMPDIR."""
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", "0", "--load_fast=false"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    try:
        for line in server.stderr:
            if match := re.search(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+/)", line):
                break
        else:
            raise RuntimeError(f"tensorboard --logdir {logdir} did not start")
        threading.Thread(target=server.stderr.read, daemon=True).start()  # a full pipe would stall the server
        yield match.group(1)
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- the digit pad (src/draw.py) ---


@contextmanager
def digit_pad(checkpoint: str | Path) -> Iterator[str]:
    """`python src/draw.py ckpt_path=CHECKPOINT port=0` running; yields the address it prints."""
    # Quoted: a sweep job's folder has = and , in its name, which Hydra would read as syntax.
    command = [sys.executable, str(REPO / "src" / "draw.py"), f"ckpt_path='{checkpoint}'", "port=0"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    pad = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = pad.stdout.readline()
        if not (match := re.match(r"digit pad: (http://127\.0\.0\.1:\d+)/", line)):
            raise RuntimeError(f"the digit pad did not start: {line}{pad.stderr.read() if not line else ''}")
        yield match.group(1)
    finally:
        pad.terminate()
        pad.wait(timeout=30)


def mnist_test_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` digits of the real MNIST test set: (images (n, 28, 28), labels)."""
    images, labels = read_mnist(REPO / "data", train=False)
    return images[:count], labels[:count]


def strokes(image: np.ndarray) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """A digit's ink as pen strokes: each row's runs of inked pixels, from the first pixel's centre to the last's,
    in units of the 28 x 28 field."""
    lines = []
    for row, pixels in enumerate(image >= 128):
        columns = np.flatnonzero(pixels)
        for run in np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1) if len(columns) else []:
            lines.append(((run[0] + 0.5, row + 0.5), (run[-1] + 0.5, row + 0.5)))
    return lines


def draw(driver: Any, image: np.ndarray, pointer: str = "mouse") -> None:
    """Replays a digit's strokes on the pad's canvas as pointer moves of a mouse, a pen or a finger."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.ID, "pad")
    size = canvas.size["width"]  # the canvas is square; offsets count from its centre
    kind = {"mouse": interaction.POINTER_MOUSE, "pen": interaction.POINTER_PEN, "touch": interaction.POINTER_TOUCH}
    # Moves without a duration: each is one pointermove to its end (Selenium's default glides for 250 ms).
    actions = ActionBuilder(driver, mouse=PointerInput(kind[pointer], pointer), duration=0)
    for start, end in strokes(image):
        (x0, y0), (x1, y1) = (
            (round(x * size / 28 - size / 2), round(y * size / 28 - size / 2)) for x, y in (start, end)
        )
        actions.pointer_action.move_to(canvas, x0, y0).pointer_down().move_to(canvas, x1, y1).pointer_up()
    actions.perform()


def shown(driver: Any) -> dict[str, Any]:
    """What the page shows once it has read the last stroke: the digits, their percentages, the seen image."""
    wait_for(lambda: driver.execute_script("return document.body.dataset.reading") == "no", what="a reading")
    return driver.execute_script(
        """
        const items = [...document.querySelectorAll('#top li')];
        const seen = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data;
        return {digits: items.map(li => Number(li.dataset.digit)), texts: items.map(li => li.textContent),
                seen: Array.from({length: 784}, (_, i) => seen[4 * i] / 255),
                drawing: document.getElementById('pad').toDataURL('image/png'),
                message: document.getElementById('message').textContent};
        """
    )
