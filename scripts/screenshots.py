"""README's images, taken in headless Chromium from a finished sweep: python scripts/screenshots.py SWEEP_FOLDER

Writes docs/img/tensorboard_scalars.png, tensorboard_hparams.png and tensorboard_weight_tiles.png (TensorBoard on
the sweep), and
docs/img/digit_pad.png (the digit pad serving the sweep's best checkpoint, with a real MNIST test digit drawn on
it). README's images come from `python src/train.py -m optimizer=sgd,momentum,adam trainer.max_epochs=3`.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from mlplab import browser
from mlplab.runs import REPO, read_metrics
from mlplab.sweep import load_jobs, summarize

IMAGES = REPO / "docs" / "img"


def tensorboard_pages(sweep: Path, driver, scratch: Path) -> None:
    runs = sorted(p.name for p in sweep.iterdir() if (p / "hparams.yaml").exists())
    with browser.tensorboard(sweep, scratch) as base:
        browser.open_page(driver, base + "#scalars&tagFilter=train%2Flr%7Ctrain%2Floss%24%7Cval%2Facc%24", runs)
        browser.wait_for(lambda: all(n >= 2 * len(runs) for n in browser.scalar_charts(driver).values()))
        driver.save_screenshot(str(IMAGES / "tensorboard_scalars.png"))
        browser.hparams_rows(driver, base, count=len(runs))
        driver.save_screenshot(str(IMAGES / "tensorboard_hparams.png"))
        browser.open_page(driver, base + "#images&tagFilter=fc1_tiles", ["weights/fc1_tiles", *runs])
        browser.wait_for(lambda: driver.execute_script(browser.LOADED_IMAGES) >= 1)
        driver.save_screenshot(str(IMAGES / "tensorboard_weight_tiles.png"))


def pad_page(checkpoint: str, driver) -> None:
    with browser.digit_pad(checkpoint) as address:
        driver.get(address + "/")
        images, _ = browser.mnist_test_digits(1)  # a 7
        browser.draw(driver, images[0])
        browser.shown(driver)
        driver.save_screenshot(str(IMAGES / "digit_pad.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep folder, outputs/train/multirun/<date_time>")
    sweep = parser.parse_args().sweep
    if reason := browser.missing():
        sys.exit(f"error: no browser to take screenshots with: {reason}")
    _, rows = summarize(load_jobs(sweep))
    best = next((job for job in rows[0]["jobs"] if (job / "metrics.json").exists()), None) if rows else None
    if best is None:
        sys.exit(f"error: {sweep}: no finished sweep job here")
    checkpoint = read_metrics(best)["best_checkpoint"]
    with tempfile.TemporaryDirectory() as scratch, browser.chromium(width=1400, height=860) as driver:
        tensorboard_pages(sweep, driver, Path(scratch))
        driver.set_window_size(900, 560)
        pad_page(checkpoint, driver)
    print(f"written: {', '.join(sorted(str(p.relative_to(REPO)) for p in IMAGES.glob('*.png')))}")


if __name__ == "__main__":
    main()
