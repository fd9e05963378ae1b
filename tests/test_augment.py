"""dlplay/data/augment.py: the batch transforms on synthetic and real images, reproducibility, the settings."""
from __future__ import annotations

import pytest
import torch

from dlplay.classify.train import TrainingSession
from dlplay.data.augment import (
    LEVELS,
    Augment,
    affine_matrices,
    augment_batch,
    batch_augmenter,
    preview,
    smooth_field,
    warp,
)
from dlplay.errors import UserError
from dlplay.nn.spec import ModelSpec, TrainConfig, dense_spec
from dlplay.server.share import from_params, to_params


def _square(top: int = 10, left: int = 6, side: int = 4) -> torch.Tensor:
    image = torch.zeros(1, 28, 28)
    image[0, top : top + side, left : left + side] = 255.0
    return image


def _move(images: torch.Tensor, angle: float = 0.0, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> torch.Tensor:
    n = images.shape[0]
    theta = affine_matrices(torch.full((n,), angle), torch.full((n,), scale), torch.full((n,), dx),
                            torch.full((n,), dy), (28, 28))
    return warp(images.float(), theta)


@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (-5, 0), (0, 7), (1, 1)])
def test_a_shifted_square_moves_by_exactly_the_shift(dx: int, dy: int) -> None:
    square = _square()
    moved = _move(square, dx=dx, dy=dy)
    expected = _square(10 + dy, 6 + dx)
    assert torch.allclose(moved, expected, atol=1e-3), (moved - expected).abs().max()


def test_a_half_pixel_shift_spreads_the_edge_evenly() -> None:
    moved = _move(_square(), dx=0.5)
    row = moved[0, 11]
    assert row[6].item() == pytest.approx(127.5, abs=1e-3)
    assert row[10].item() == pytest.approx(127.5, abs=1e-3)
    assert row[7:10].tolist() == pytest.approx([255.0] * 3, abs=1e-3)


def test_rotation_turns_counter_clockwise_and_90_degrees_is_exact() -> None:
    dot = torch.zeros(1, 28, 28)
    dot[0, 13:15, 20:22] = 255.0  # right of the centre
    turned = _move(dot, angle=90.0)
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = turned[0].sum()
    assert float((ys * turned[0]).sum() / mass) == pytest.approx(6.5, abs=1e-3)  # 7 px above the centre
    assert float((xs * turned[0]).sum() / mass) == pytest.approx(13.5, abs=1e-3)
    assert float(turned.sum()) == pytest.approx(float(dot.sum()), rel=1e-5)  # a lattice rotation moves pixels whole


@pytest.mark.parametrize("angle", [10.0, 25.0, 45.0, -30.0])
def test_rotation_preserves_ink_mass_of_real_digits(mnist, angle: float) -> None:
    """Bilinear resampling gives each output pixel weights that sum to 1, and a rotation's Jacobian is 1, so
    ink is kept on average; what varies is how the rotated pixel lattice falls on thin strokes (aliasing).
    Measured on 300 test digits: at most 2.7 % per image at 45° (0.3 % at 15°), mean within 0.02 %. Bounds:
    5 % per image, 0.5 % on average (a wrong scale or a dropped row would cost tens of per cent)."""
    images = mnist.test_images[:300].float()
    turned = _move(images, angle=angle)
    ratio = turned.sum((1, 2)) / images.sum((1, 2)) - 1.0
    assert float(ratio.abs().max()) < 0.05
    assert abs(float(ratio.mean())) < 0.005


def test_zoom_scales_ink_mass_by_the_area() -> None:
    blob = torch.zeros(1, 28, 28)
    blob[0, 10:18, 10:18] = 255.0
    assert float(_move(blob, scale=1.25).sum()) / float(blob.sum()) == pytest.approx(1.25**2, rel=0.02)


def test_all_settings_zero_is_the_identity(mnist) -> None:
    images = mnist.train_images[:64]
    out = augment_batch(images, Augment())
    assert out.dtype == torch.float32
    assert torch.equal(out, images.float())
    same = batch_augmenter(Augment(), 0, "cpu")
    assert same(images) is images  # the training loop normalises the batch as it always did


def test_noise_level_zero_leaves_the_image_and_noise_has_its_strength(mnist) -> None:
    images = mnist.test_images[:200]
    assert torch.equal(augment_batch(images, Augment(noise=0.0)), images.float())
    noisy = augment_batch(images, Augment(noise=0.1), torch.Generator().manual_seed(0))
    mid = (images > 60) & (images < 190)  # away from 0 and 255, where clamping cuts the noise
    std = float((noisy - images.float())[mid].std())
    assert std == pytest.approx(25.5, rel=0.05)
    assert float(noisy.min()) >= 0.0
    assert float(noisy.max()) <= 255.0


def test_the_same_seed_gives_the_same_augmentation_and_another_seed_differs(mnist) -> None:
    images = mnist.train_images[:32]
    strong = LEVELS["strong"]
    a = batch_augmenter(strong, 7, "cpu")
    b = batch_augmenter(strong, 7, "cpu")
    c = batch_augmenter(strong, 8, "cpu")
    first_a, first_b, first_c = a(images), b(images), c(images)
    assert torch.equal(first_a, first_b)
    assert not torch.equal(first_a, first_c)
    assert not torch.equal(a(images), first_a)  # the next batch gets new random transforms
    assert not torch.equal(first_a, images.float())


def test_every_image_of_a_batch_gets_its_own_transform(mnist) -> None:
    one = mnist.train_images[:1].repeat(16, 1, 1)
    out = augment_batch(one, Augment(rotate=30.0, shift=2.0), torch.Generator().manual_seed(1))
    assert len({tuple(row.flatten()[::7].round().tolist()) for row in out}) == 16


def test_elastic_field_has_unit_variance_and_is_smooth() -> None:
    field = smooth_field(256, (28, 28), 4.0, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert field.shape == (256, 28, 28, 2)
    assert float(field.std()) == pytest.approx(1.0, rel=0.05)
    neighbours = torch.corrcoef(torch.stack([field[:, :, :-1, 0].flatten(), field[:, :, 1:, 0].flatten()]))[0, 1]
    assert float(neighbours) > 0.9  # neighbouring pixels move together (sigma 4 px: exp(-1/16) ≈ 0.94)


def test_elastic_distortion_keeps_the_digit_close(mnist) -> None:
    images = mnist.test_images[:100]
    out = augment_batch(images, Augment(elastic=1.0), torch.Generator().manual_seed(0))
    mass = out.sum((1, 2)) / images.float().sum((1, 2)) - 1.0
    # a smooth field stretches some strokes and squeezes others (measured: 9 % per digit, 1 % on average)
    assert float(mass.abs().mean()) < 0.2
    assert abs(float(mass.mean())) < 0.05
    assert 0 < float((out - images.float()).abs().mean()) < 40


def test_preview_shape_and_a_new_seed_shows_new_images(mnist) -> None:
    images = mnist.train_images[:4]
    grid = preview(images, LEVELS["medium"], copies=5, seed=1)
    assert grid.shape == (4, 5, 28, 28)
    assert torch.equal(grid, preview(images, LEVELS["medium"], copies=5, seed=1))
    assert not torch.equal(grid, preview(images, LEVELS["medium"], copies=5, seed=2))


def test_settings_are_validated_and_round_trip() -> None:
    with pytest.raises(UserError) as info:
        Augment(rotate=400)
    assert info.value.key == "augment.range"
    with pytest.raises(UserError):
        Augment(noise=float("nan"))
    with pytest.raises(UserError):
        TrainConfig.from_dict({"augment": {"shift": 1, "flip": True}})
    config = TrainConfig(augment=LEVELS["medium"])
    assert TrainConfig.from_json(config.to_json()) == config
    assert "augment" not in TrainConfig().to_dict()  # older records and checkpoints read as before
    assert TrainConfig.from_dict({"augment": {"shift": 2}}).augment == Augment(shift=2.0)
    params = to_params(ModelSpec(), config)
    assert params["aug"] == "s2.5_r12_z0.1_e1_n0.05"
    assert from_params(params)[1] == config
    assert "aug" not in to_params(ModelSpec(), TrainConfig())
    for bad in ("s2_s3", "x1", "r1000", "s"):
        with pytest.raises(UserError):
            from_params({"aug": bad})


def test_training_with_augmentation_is_reproducible_and_differs_from_plain(mnist) -> None:
    def weights(augment: Augment, seed: int = 0) -> dict[str, torch.Tensor]:
        run = TrainingSession(dense_spec([16]), TrainConfig(epochs=1, seed=seed, train_size=320, augment=augment),
                              mnist, "cpu")
        run.start()
        assert run.join(60), run.snapshot().progress
        assert run.status == "done", run.snapshot().progress
        return run.state_dict()

    a, b, plain = weights(LEVELS["medium"]), weights(LEVELS["medium"]), weights(Augment())
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], plain[k]) for k in a)


def test_preview_grid_puts_each_digit_first_in_its_row(mnist) -> None:
    from dlplay.data.augment import preview_grid

    grid = preview_grid(mnist.train_images, mnist.train_labels, LEVELS["light"], (2, 7), copies=3, seed=0)
    assert grid.shape == (2 * 28 + 2, 4 * 28 + 3 * 2)
    assert grid.dtype.name == "uint8"
    first_two = int(torch.nonzero(mnist.train_labels == 2)[0])
    assert (grid[:28, :28] == mnist.train_images[first_two].numpy()).all()
    assert (grid[28:30] == 90).all()  # the grey gap between rows
