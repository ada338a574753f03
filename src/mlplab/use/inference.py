"""predict(cfg): classify the user's own digit images, framed the way MNIST frames its digits."""

import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from PIL import Image, ImageOps
from torch import Tensor

from mlplab.engine.runs import write_json
from mlplab.errors import InputError
from mlplab.idx import MEAN, STD
from mlplab.use.trained import load_trained

SIZE, DIGIT_SIZE = 28, 20  # MNIST: the digit's longer side is 20 px, in a 28 x 28 field
# Pixels fainter than this share of the strongest ink do not stretch the bounding box: paper grain, JPEG noise.
INK_THRESHOLD = 0.2
# Below this contrast with the paper (in [0, 1]) an image holds no digit, only noise.
MIN_CONTRAST = 0.1


def grayscale(image: Image.Image) -> Tensor:
    """The image upright, as (H, W) float intensities in [0, 1]; transparent pixels count as paper: white, or
    black behind light ink (a white digit drawn on a transparent canvas)."""
    image = ImageOps.exif_transpose(image)  # phone photos are stored sideways with a rotation tag
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels keep an arbitrary hidden colour (often black): put paper behind them instead.
        image = image.convert("RGBA")
        opaque = _pixels(image.getchannel("A")) > 127
        visible = _pixels(image.convert("L"))[opaque] / 255
        # Strokes on a see-through canvas cover little of it and show one shade, the ink's; a page (even with
        # rounded corners or in a see-through margin) covers most of it, or shows its paper and its ink. So
        # when the little that shows is all light, it is light ink, and it goes on black paper.
        light_ink = opaque.float().mean() < 0.5 and visible.numel() > 0 and (visible > 0.5).float().mean() > 0.98
        image = Image.alpha_composite(Image.new("RGBA", image.size, "black" if light_ink else "white"), image)
    return _pixels(image.convert("L")) / 255


def frame(pixels: Tensor) -> Tensor:
    """An (H, W) digit image in [0, 1] as MNIST frames it: (28, 28), light ink on black, in [0, 1].

    Dark ink on light paper is inverted; the paper's own shade becomes black; the digit's bounding box is
    scaled so that its longer side is 20 px, then placed so that its centre of mass is the field's centre.
    """
    border = torch.cat([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    paper = border.median()
    if paper > 0.5:
        pixels, paper = 1 - pixels, 1 - paper
    ink = (pixels - paper).clamp(min=0)
    if ink.max() < MIN_CONTRAST:
        raise InputError("no digit found: the image is blank")
    ink = ink / ink.max()

    rows, cols = torch.nonzero(ink >= INK_THRESHOLD, as_tuple=True)
    digit = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = DIGIT_SIZE / max(digit.shape)
    height, width = (max(1, round(side * scale)) for side in digit.shape)
    # antialias: a large photo shrinks to an average of its pixels, not to a sample of them.
    digit = F.interpolate(digit[None, None], size=(height, width), mode="bilinear", antialias=True)[0, 0]
    digit = digit.clamp(0, 1)

    # In MNIST the centre of mass falls on pixel (14, 14), counting pixels from 0; a lopsided digit is
    # moved less rather than pushed past the edge.
    mass = digit.sum()
    centre_row = (digit.sum(dim=1) * torch.arange(height)).sum() / mass
    centre_col = (digit.sum(dim=0) * torch.arange(width)).sum() / mass
    top = min(max(round(SIZE // 2 - centre_row.item()), 0), SIZE - height)
    left = min(max(round(SIZE // 2 - centre_col.item()), 0), SIZE - width)
    field = torch.zeros(SIZE, SIZE)
    field[top : top + height, left : left + width] = digit
    return field


def network_input(field: Tensor) -> Tensor:
    """A framed (28, 28) digit as the network's input: (1, 28, 28), normalized as in training."""
    return ((field - MEAN) / STD).unsqueeze(0)


def preprocess(image: Image.Image) -> Tensor:
    """A digit image of any size and colour as the network's input."""
    return network_input(frame(grayscale(image)))


def read_image(path: Path | BinaryIO) -> Image.Image:
    """The decoded image of a file (or of bytes in memory); InputError when it is not an image, or a damaged one."""
    try:
        image = Image.open(path)
        image.load()  # decode now, so that a damaged file is reported as such
    except Image.UnidentifiedImageError:
        raise InputError("not an image (Pillow recognises no image format in it)") from None
    except (OSError, Image.DecompressionBombError) as e:
        raise InputError(f"a damaged or unreadable image ({e})") from None
    return image


def _pixels(image: Image.Image) -> Tensor:
    """A one-channel image's pixels as a 2-D uint8 tensor (torchvision's pil_to_tensor, without importing it)."""
    return torch.from_numpy(np.array(image, dtype=np.uint8))


def image_files(input_path: str | None) -> list[Path]:
    """The one file given, or every file of the folder given (not its subfolders), sorted by name."""
    if not input_path:
        raise InputError("input is required: give input=IMAGE or input=FOLDER of PNG/JPEG digit images")
    path = Path(input_path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"input={input_path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"input={input_path}: the folder holds no files; put PNG/JPEG digit images in it")
    return files


@dataclass
class Prediction:
    file: str
    digits: list[int]  # the top_k most probable digits, most probable first
    probabilities: list[float]

    def __str__(self) -> str:
        shown = zip(self.digits, self.probabilities, strict=True)
        return f"{self.file}: " + "  ".join(f"{digit} ({probability:.1%})" for digit, probability in shown)


def classify(module: torch.nn.Module, images: list[Tensor], top_k: int) -> list[tuple[list[int], list[float]]]:
    """The top_k digits and their probabilities for each preprocessed image: the one forward pass of predict and
    of the digit pad (src/draw.py)."""
    with torch.inference_mode():
        probabilities = module(torch.stack(images)).softmax(dim=1)
    top = probabilities.topk(top_k, dim=1)
    return list(zip(top.indices.tolist(), top.values.tolist(), strict=True))


def predict(cfg: DictConfig) -> tuple[list[Prediction], dict[str, str]]:
    """Classify cfg.input, print one line per file, write predictions.json; return (predictions, {file: error})."""
    top_k = cfg.top_k
    if not (isinstance(top_k, int) and 1 <= top_k <= 10):
        raise InputError(f"top_k={top_k}: give a whole number from 1 to 10 (the number of digits shown per image)")
    files = image_files(cfg.input)
    network = load_trained(cfg.ckpt_path, cfg.trusted_modules).network

    images, readable, failed = [], [], {}
    for path in files:
        try:
            images.append(preprocess(read_image(path)))
            readable.append(str(path))
        except InputError as e:  # one bad file must not cost the others their result
            failed[str(path)] = str(e)
            print(f"error: {path}: {e}", file=sys.stderr, flush=True)

    predictions = []
    for file, (digits, probs) in zip(readable, classify(network, images, top_k) if images else [], strict=True):
        predictions.append(Prediction(file, digits, probs))
        print(predictions[-1], flush=True)

    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {"predictions": [asdict(p) for p in predictions], "errors": failed}
    write_json(output_dir / "predictions.json", report)
    return predictions, failed
