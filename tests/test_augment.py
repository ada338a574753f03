"""Batched augmentation: exact geometry, random draws within bounds, applied to training batches only."""

import pytest
import torch
from lightning.pytorch import Callback, seed_everything

from mlplab.augment import RandomDistortion, warp
from mlplab.errors import InputError
from mlplab.training import build

from conftest import SYNTHETIC, compose_train


def dot(row: int, col: int, n: int = 1) -> torch.Tensor:
    images = torch.zeros(n, 1, 28, 28)
    images[:, 0, row, col] = 1.0
    return images


def centroid(images: torch.Tensor) -> torch.Tensor:
    """(row, col) centre of mass of each image."""
    weights = images[:, 0]
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = weights.sum((1, 2))
    return torch.stack([(weights * rows).sum((1, 2)) / mass, (weights * cols).sum((1, 2)) / mass], dim=1)


def test_warp_is_exact_for_identity_whole_pixel_shifts_and_quarter_turns():
    x = torch.rand(3, 1, 28, 28)
    zero, one = torch.zeros(3), torch.ones(3)
    assert torch.allclose(warp(x, zero, one, torch.zeros(3, 2)), x, atol=1e-5)
    shifted = warp(dot(5, 10), torch.zeros(1), torch.ones(1), torch.tensor([[3.0, 2.0]]))
    assert torch.allclose(shifted, dot(7, 13), atol=1e-5)  # 3 right, 2 down
    assert torch.allclose(warp(x, 90 * one, one, torch.zeros(3, 2)), torch.rot90(x, -1, (2, 3)), atol=1e-5)


def test_warp_fills_uncovered_areas_with_the_edge_pixels():
    background = -0.4242  # MNIST's black after normalization: not zero
    x = torch.full((1, 1, 28, 28), background)
    x[0, 0, 10:18, 10:18] = 2.8
    out = warp(x, torch.tensor([15.0]), torch.tensor([0.9]), torch.tensor([[2.5, -1.5]]))
    assert out.min().item() == pytest.approx(background)
    edges = torch.cat([out[0, 0, 0], out[0, 0, -1], out[0, 0, :, 0], out[0, 0, :, -1]])
    assert torch.allclose(edges, torch.full_like(edges, background))


def test_random_distortion_draws_per_image_within_its_bounds():
    torch.manual_seed(0)
    x = dot(13, 14, n=500)
    shifted = RandomDistortion(shift=2)(x)
    moved = centroid(shifted) - torch.tensor([13.0, 14.0])
    # Bilinear weights sum to one: a shifted dot keeps its mass and its centroid moves by exactly the shift.
    assert torch.allclose(shifted.sum((1, 2, 3)), torch.ones(500), atol=1e-5)
    assert moved.abs().max() <= 2 + 1e-4 and moved.abs().max() > 1.9
    assert len({tuple(m) for m in moved.round(decimals=3).tolist()}) == 500  # a fresh shift per image

    def angle(rows_cols: torch.Tensor) -> torch.Tensor:  # degrees, clockwise on screen, about the centre
        return torch.rad2deg(torch.atan2(rows_cols[:, 0] - 13.5, rows_cols[:, 1] - 13.5))

    start = angle(torch.tensor([[13.0, 24.0]]))
    angles = angle(centroid(RandomDistortion(rotate=10)(dot(13, 24, n=500)))) - start
    assert angles.abs().max() <= 10 + 0.5 and angles.abs().max() > 9
    assert angles.std() > 4  # spread over the range, not stuck at one angle


def test_a_uniform_flow_is_a_shift_and_random_elastic_displacements_stay_within_their_bound():
    x = torch.rand(2, 1, 28, 28)
    zero, one = torch.zeros(2), torch.ones(2)
    flow = torch.tensor([-3.0, -2.0]).view(1, 2, 1, 1).expand(2, 2, 28, 28)  # read from 3 left, 2 up
    shifted = warp(x, zero, one, torch.tensor([[3.0, 2.0]] * 2))
    assert torch.allclose(warp(x, zero, one, torch.zeros(2, 2), flow), shifted)

    torch.manual_seed(0)
    bent = RandomDistortion(elastic=2)(dot(13, 14, n=500))
    moved = centroid(bent) - torch.tensor([13.0, 14.0])
    # Each lit output pixel reads from within one pixel of the dot, through a displacement of at most 2 per axis.
    assert moved.abs().max() < 3
    assert (moved.std(dim=0) > 0.5).all()  # a fresh displacement per image


def test_random_distortion_repeats_under_the_same_seed_and_does_nothing_at_zero_strength():
    x = torch.rand(8, 1, 28, 28)
    distort = RandomDistortion(rotate=10, scale=0.1, shift=2, elastic=1)
    torch.manual_seed(1)
    first = distort(x)
    torch.manual_seed(1)
    assert torch.equal(distort(x), first)
    assert not torch.allclose(first, x, atol=0.05)
    assert torch.allclose(RandomDistortion()(x), x, atol=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rotate": -1}, r"^data\.augment\.rotate=-1: must be a number >= 0$"),
        ({"shift": "2"}, r"^data\.augment\.shift=2: must be a number >= 0$"),
        ({"scale": 1.0}, r"^data\.augment\.scale=1\.0: must be below 1"),
        ({"rotation": 10}, r"^data\.augment\.rotation: unknown key; choose from rotate, scale, shift, elastic$"),
    ],
)
def test_bad_options_name_the_key(options, message):
    with pytest.raises(InputError, match=message):
        RandomDistortion.from_config(options)


class Batches(Callback):
    """Records the training batches as the module's training_batch receives them, and the validation batches."""

    def __init__(self) -> None:
        self.train: list[torch.Tensor] = []
        self.val: list[torch.Tensor] = []

    def setup(self, trainer, module, stage):
        training_batch = module.training_batch

        def recorded(batch, optimizer):
            self.train.append(batch.images.clone())
            return training_batch(batch, optimizer)

        module.training_batch = recorded

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self.val.append(batch[0].clone())


def fit_batches(synthetic_mnist, tmp_path, *overrides: str) -> tuple[Batches, dict]:
    cfg = compose_train(
        [*SYNTHETIC, "trainer.max_epochs=1", "++trainer.limit_train_batches=12", "logger=none", *overrides],
        tmp_path,
        synthetic_mnist,
    )
    seed_everything(cfg.seed)  # as train() does
    datamodule, module, trainer = build(cfg)
    batches = Batches()
    trainer.callbacks.append(batches)
    trainer.fit(module, datamodule=datamodule)
    return batches, datamodule.splits


def nearest_distance(images: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """For each image, the largest pixel difference to its closest image in pool."""
    return torch.cdist(images.flatten(1), pool.flatten(1), p=float("inf")).min(dim=1).values


@pytest.mark.slow
def test_training_batches_are_distorted_and_evaluation_batches_are_not(synthetic_mnist, tmp_path):
    augment = "data.augment={rotate:10,scale:0.1,shift:2}"
    batches, splits = fit_batches(synthetic_mnist, tmp_path / "a", augment)
    train, val = torch.cat(batches.train), torch.cat(batches.val)
    assert len(train) == 12 * 50 and len(val) == 200  # 12 batches of 50
    assert nearest_distance(train, splits["train"][0]).min() > 0.05  # no training image arrives untouched
    assert nearest_distance(val, splits["val"][0]).max() == 0  # every validation image arrives as it is

    again, _ = fit_batches(synthetic_mnist, tmp_path / "b", augment)
    assert torch.equal(torch.cat(again.train), train)  # same seed, same distortions
    plain, _ = fit_batches(synthetic_mnist, tmp_path / "c")
    assert nearest_distance(torch.cat(plain.train), splits["train"][0]).max() == 0
