"""The pictures of the dashboards, drawn with Pillow (a tenth of matplotlib's time, about 10 ms each): a confusion
matrix, the first layer's weights as tiles, the misclassified digits with their answers."""

import math
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from mlplab.idx import MEAN, STD


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans, the font that ships with matplotlib, `size` pixels high."""
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


# The images are drawn with Pillow rather than as matplotlib figures: a tenth of the time (about 10 ms each).
CELL, LEFT, TOP, BOTTOM = 36, 64, 40, 48  # the confusion matrix's cells and margins, in pixels


def confusion_image(counts: Tensor, title: str) -> np.ndarray:
    """Counts per (true, predicted) class as an RGB image: the diagonal is right, every other number a confusion."""
    counts = counts.cpu().numpy()
    side = len(counts) * CELL
    # A log scale keeps the few confusions visible next to the diagonal's hundreds; empty cells stay white.
    shade = np.log1p(counts) / np.log1p(max(counts.max(), 1))
    colors = (matplotlib.colormaps["Blues"](shade)[..., :3] * 255).astype(np.uint8)
    colors[counts == 0] = 255
    image = Image.new("RGB", (LEFT + side + 16, TOP + side + BOTTOM), "white")
    image.paste(Image.fromarray(colors.repeat(CELL, axis=0).repeat(CELL, axis=1)), (LEFT, TOP))
    draw = ImageDraw.Draw(image)
    draw.rectangle((LEFT - 1, TOP - 1, LEFT + side, TOP + side), outline="gray")
    for (true, predicted), count in np.ndenumerate(counts):
        if count:
            center = (LEFT + (predicted + 0.5) * CELL, TOP + (true + 0.5) * CELL)
            color = "white" if shade[true, predicted] > 0.6 else "black"
            draw.text(center, str(count), fill=color, font=font(11), anchor="mm")
    for k in range(len(counts)):
        draw.text((LEFT + (k + 0.5) * CELL, TOP + side + 6), str(k), fill="black", font=font(13), anchor="mt")
        draw.text((LEFT - 8, TOP + (k + 0.5) * CELL), str(k), fill="black", font=font(13), anchor="rm")
    draw.text((LEFT + side / 2, TOP + side + BOTTOM - 8), "predicted", fill="black", font=font(13), anchor="mb")
    draw.text((6, TOP + side / 2), "true", fill="black", font=font(13), anchor="lm")
    title = f"{title}: {np.trace(counts)} of {counts.sum()} right"
    draw.text((LEFT + side / 2, TOP / 2), title, fill="black", font=font(15), anchor="mm")
    return np.asarray(image)


TILE_SIDE, TILE_GAP = 56, 2  # weight tiles: a small image enlarged to about 56 px (a 28 x 28 one twice), 2 px apart


def weight_tiles(images: Tensor, count: int, columns: int = 8) -> np.ndarray:
    """The first `count` weight images, each a grayscale tile scaled to its own largest magnitude: mid-gray is 0,
    white pixels excite the unit, black ones inhibit it."""
    units = images.detach()[:count].float().cpu().numpy()
    scale = np.abs(units).max(axis=(1, 2), keepdims=True)
    tiles = 0.5 + 0.5 * units / np.where(scale > 0, scale, 1)
    enlarge = max(1, TILE_SIDE // max(tiles.shape[1:]))  # a 5 x 5 filter is 11 times larger, 28 x 28 twice
    tiles = tiles.repeat(enlarge, axis=1).repeat(enlarge, axis=2)
    # White fills the last row; fewer tiles than columns (a GRU's three gates) make one row of their own width.
    laid = mosaic(tiles, min(columns, len(tiles)), ((0, TILE_GAP), (0, TILE_GAP)), fill=1)
    return (255 * laid).astype(np.uint8)


def mosaic(tiles: np.ndarray, columns: int, margins: tuple[tuple[int, int], ...], fill: float) -> np.ndarray:
    """Equal (H, W) tiles laid out in rows of `columns`, each framed by `margins` ((top, bottom), (left, right)
    pixels) of `fill`, which also fills the last row's missing tiles."""
    rows = math.ceil(len(tiles) / columns)
    tiles = np.concatenate([tiles, np.full((rows * columns - len(tiles), *tiles.shape[1:]), fill)])
    tiles = np.pad(tiles, ((0, 0), *margins), constant_values=fill)
    height, width = tiles.shape[1:]
    return tiles.reshape(rows, columns, height, width).swapaxes(1, 2).reshape(rows * height, columns * width)


SCALE, LABEL, GAP, TITLE = 3, 20, 4, 32  # misclassified digits: 28 px shown as 84, under a label; in pixels


def misclassified_image(images: Tensor, predicted: Tensor, labels: Tensor, columns: int = 8) -> np.ndarray:
    """Wrongly classified digits as a grayscale image, each under a label with the network's answer and the truth."""
    tiles = images[:, 0].numpy() * STD + MEAN  # undo the normalization: ink in [0, 1]
    tiles = tiles.repeat(SCALE, axis=1).repeat(SCALE, axis=2)
    laid = mosaic(tiles, columns, ((LABEL, GAP), (GAP, GAP)), fill=0)  # the label's strip above each digit
    rows, height, width = math.ceil(len(images) / columns), tiles.shape[1] + LABEL + GAP, tiles.shape[2] + 2 * GAP
    image = Image.new("L", (columns * width, TITLE + rows * height), 255)
    image.paste(Image.fromarray((255 * (1 - laid.clip(0, 1))).astype(np.uint8)), (0, TITLE))  # black ink
    draw = ImageDraw.Draw(image)
    title = "Misclassified test digits: prediction (truth)"
    draw.text((image.width / 2, TITLE / 2), title, fill=0, font=font(15), anchor="mm")
    for index, (answer, truth) in enumerate(zip(predicted.tolist(), labels.tolist(), strict=True)):
        row, column = divmod(index, columns)
        center = ((column + 0.5) * width, TITLE + row * height + LABEL / 2 + 2)
        draw.text(center, f"{answer} (true {truth})", fill=0, font=font(13), anchor="mm")
    return np.asarray(image)
