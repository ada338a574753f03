"""On-the-fly augmentation of whole training batches: small random rotations, scalings, shifts and elastic
distortions, computed as one resampling of the batch on its device."""

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from mlplab.errors import InputError

# The elastic displacement is drawn on a coarse grid of control points and interpolated smoothly between them:
# a spacing of about 7 pixels bends strokes without tearing them (Simard et al., 2003, smooth with sigma = 4).
ELASTIC_GRID = 5


def warp(images: Tensor, angle: Tensor, scale: Tensor, shift: Tensor, flow: Tensor | None = None) -> Tensor:
    """Images (N, C, H, W), image i rotated by angle[i] degrees (clockwise on screen) and scaled by scale[i]
    about its centre, then shifted by shift[i] = (right, down) pixels; `flow` (N, 2, H, W), if given, moves the
    point each output pixel is read from by a further (x, y) pixels. Bilinear; edge pixels extend outwards."""
    n, _, h, w = images.shape
    # grid_sample reads each output pixel from an input position: the inverse transform, in coordinates
    # that run from -1 to 1 across the image (one pixel is 2 / width).
    radians = torch.deg2rad(angle).view(n, 1, 1)
    cos, sin = torch.cos(radians) / scale.view(n, 1, 1), torch.sin(radians) / scale.view(n, 1, 1)
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=images.device).view(1, h, 1)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=images.device).view(1, 1, w)
    u = xs - (2 / w) * shift[:, 0].view(n, 1, 1)
    v = ys - (2 / h) * shift[:, 1].view(n, 1, 1)
    grid = torch.stack([cos * u + sin * v, cos * v - sin * u], dim=-1)
    if flow is not None:
        grid = grid + flow.permute(0, 2, 3, 1) * torch.tensor([2 / w, 2 / h], device=images.device)
    # "border" repeats the edge pixels, which are background in MNIST, whatever the normalization.
    return F.grid_sample(images, grid.to(images.dtype), padding_mode="border", align_corners=False)


class RandomDistortion:
    """Draws, per image and per call, a rotation within ±rotate degrees, a scale within 1 ± scale, a shift
    within ±shift pixels on each axis and a smooth elastic displacement of up to about ±elastic pixels.

    Draws from `generator` (on the images' device): the datamodule keeps one of its own, seeded and checkpointed.
    """

    KEYS = ("rotate", "scale", "shift", "elastic")

    def __init__(self, rotate: float = 0.0, scale: float = 0.0, shift: float = 0.0, elastic: float = 0.0) -> None:
        for key, value in zip(self.KEYS, (rotate, scale, shift, elastic), strict=True):
            if not (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0):
                raise InputError(f"data.augment.{key}={value}: must be a number >= 0")
        if scale >= 1:
            raise InputError(f"data.augment.scale={scale}: must be below 1 (a scale of 1 - scale must stay positive)")
        self.rotate, self.scale, self.shift, self.elastic = float(rotate), float(scale), float(shift), float(elastic)

    @classmethod
    def from_config(cls, options: Mapping[str, float]) -> "RandomDistortion":
        """From `data.augment`, naming any unknown key."""
        unknown = sorted(set(options) - set(cls.KEYS))
        if unknown:
            raise InputError(f"data.augment.{unknown[0]}: unknown key; choose from {', '.join(cls.KEYS)}")
        return cls(**options)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n, _, h, w = images.shape

        def uniform(*shape: int) -> Tensor:  # in [-1, 1)
            return torch.rand(*shape, device=images.device, generator=generator) * 2 - 1

        flow = None
        if self.elastic:
            coarse = self.elastic * uniform(n, 2, ELASTIC_GRID, ELASTIC_GRID)
            flow = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True)
        return warp(images, self.rotate * uniform(n), 1 + self.scale * uniform(n), self.shift * uniform(n, 2), flow)
