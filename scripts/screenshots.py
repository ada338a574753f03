"""README's images, taken in headless Chromium from a finished sweep: python scripts/screenshots.py SWEEP_FOLDER

Writes docs/img/tensorboard_scalars.png, tensorboard_hparams.png and tensorboard_weight_tiles.png (TensorBoard on
the sweep), and
docs/img/digit_pad.png (the digit pad serving the sweep's best checkpoint, with a real MNIST test digit drawn on
it). README's images come from `python src/train.py -m optimizer=sgd,momentum,adam trainer.max_epochs=3`.

    python scripts/screenshots.py --first-layer SWEEP_FOLDER

writes only docs/img/tensorboard_first_layer_<model>.png, the first layer's weights (TensorBoard's
`weights/first_layer`) of the first job of each network in the sweep; README's come from the model sweep of
"Choosing a mapping".
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from mlplab.engine.runs import REPO, read_metrics
from mlplab.experiments.sweep import load_jobs, summarize

sys.path.insert(0, str(REPO / "tests"))  # the browser helpers the tests drive Chromium with
import browser  # noqa: E402

IMAGES = REPO / "docs" / "img"


def tensorboard_pages(sweep: Path, driver, scratch: Path) -> None:
    runs = sorted(p.name for p in sweep.iterdir() if (p / "hparams.yaml").exists())
    with browser.tensorboard(sweep, scratch) as base:
        browser.open_page(driver, base + "#scalars&tagFilter=train%2Flr%7Ctrain%2Floss%24%7Cval%2Facc%24", runs)
        browser.wait_for(lambda: all(n >= 2 * len(runs) for n in browser.scalar_charts(driver).values()))
        driver.save_screenshot(str(IMAGES / "tensorboard_scalars.png"))
        browser.hparams_rows(driver, base, count=len(runs))
        driver.save_screenshot(str(IMAGES / "tensorboard_hparams.png"))
        first_layer_page(driver, base, runs, IMAGES / "tensorboard_weight_tiles.png")


def first_layer_page(driver, base: str, runs: list[str], path: Path) -> None:
    browser.open_page(driver, base + "#images&tagFilter=first_layer", ["weights/first_layer", *runs])
    browser.wait_for(lambda: driver.execute_script(browser.LOADED_IMAGES) >= 1)
    driver.save_screenshot(str(path))


def first_layer_pages(sweep: Path, driver, scratch: Path) -> None:
    """Per network in the sweep, its first job's first-layer images, in a TensorBoard that shows that job alone."""
    firsts: dict[str, Path] = {}
    for job in sorted(sweep.iterdir(), key=lambda p: p.name):
        if (job / "hparams.yaml").exists():
            model = OmegaConf.load(job / ".hydra" / "hydra.yaml").hydra.runtime.choices.model
            firsts.setdefault(model, job)
    for model, job in firsts.items():
        logdir = scratch / f"logs_{model}"
        shutil.copytree(job, logdir / model, ignore=shutil.ignore_patterns("checkpoints"))
        with browser.tensorboard(logdir, scratch) as base:
            first_layer_page(driver, base, [model], IMAGES / f"tensorboard_first_layer_{model}.png")


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
    parser.add_argument("--first-layer", action="store_true", help="only each network's first-layer images")
    args = parser.parse_args()
    sweep = args.sweep
    if reason := browser.missing():
        sys.exit(f"error: no browser to take screenshots with: {reason}")
    if args.first_layer:
        with tempfile.TemporaryDirectory() as scratch, browser.chromium(width=1400, height=860) as driver:
            first_layer_pages(sweep, driver, Path(scratch))
        print(f"written: {', '.join(sorted(str(p.relative_to(REPO)) for p in IMAGES.glob('*first_layer*.png')))}")
        return
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
