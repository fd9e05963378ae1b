"""The MNIST GAN core: networks, one training step, the sample grid and its PNG, the filmstrip,
grading by a classifier, the memorisation check, Draw -> D, checkpoints and the ONNX export.
All on the real MNIST sample, with a few steps only (the recipe itself is measured by bench/gan_mnist.py)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlplay.errors import UserError
from dlplay.gan.grade import MISSING_FRACTION, classify, grade, nearest_training, typical_nearest_distance
from dlplay.gan.images import (
    GRID_PIXELS,
    Filmstrip,
    generate,
    grid_noise,
    grid_png,
    interpolate,
    sample_grid,
    score_drawing,
    score_image28,
    tile_grid,
)
from dlplay.gan.mnist import (
    GAN_PRESETS,
    GanConfig,
    GanSpec,
    build_gan,
    export_generator_onnx,
    load_gan_checkpoint,
    save_gan_checkpoint,
    to_signed,
    to_uint8,
    train_for,
)

TINY = {"mlp": GanSpec("mlp", noise_dim=16, width=16), "dcgan": GanSpec("dcgan", noise_dim=16, width=8)}


@pytest.fixture(scope="module")
def digits_model(trained_tutorial):
    """The learner's own classifier: the tutorial model trained for one epoch on the sample."""
    return trained_tutorial.model_copy("cpu").eval()


# ------------------------------------------------------------------ networks and training

@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
@pytest.mark.parametrize("conditional", [False, True])
def test_networks_shapes_and_a_few_steps_change_the_weights(mnist, arch, conditional):
    spec = TINY[arch].with_changes(conditional=conditional)
    g, d = build_gan(spec, seed=0)
    noise = torch.randn(5, spec.noise_dim)
    digits = torch.tensor([0, 3, 9, 9, 1]) if conditional else None
    images = g(noise, digits)
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1
    assert images.max() <= 1
    assert d(images, digits).shape == (5,)
    before = [p.detach().clone() for p in (*g.parameters(), *d.parameters())]
    steps = train_for(g, d, GanConfig(batch_size=16), mnist.train_images[:256], mnist.train_labels[:256], steps=3)
    assert steps == 3
    after = list((*g.parameters(), *d.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(before, after) if a.dim() > 1)


def test_conditional_needs_digits_and_samples_per_digit():
    spec = TINY["mlp"].with_changes(conditional=True)
    g, _ = build_gan(spec, seed=0)
    with pytest.raises(ValueError, match="needs the digits"):
        g(torch.randn(2, spec.noise_dim))
    out = generate(g, torch.randn(7, spec.noise_dim), torch.full((7,), 4))
    assert out.shape == (7, 28, 28)
    assert out.dtype == torch.uint8


def test_pixels_scale_round_trip(mnist):
    real = mnist.train_images[:4]
    signed = to_signed(real)
    assert signed.shape == (4, 1, 28, 28)
    assert float(signed.min()) == -1.0
    assert float(signed.max()) == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(to_uint8(signed).squeeze(1), real)


def test_presets_and_settings_are_valid_and_round_trip():
    from dlplay.i18n import lookup

    assert {"mlp", "dcgan"} <= set(GAN_PRESETS)
    for preset in GAN_PRESETS.values():
        for lang in ("en", "zh"):
            assert lookup(f"gan_mnist.preset.{preset.key}.name", lang)
            assert lookup(f"gan_mnist.preset.{preset.key}.text", lang)
        assert GanSpec.from_json(preset.spec.to_json()) == preset.spec
        assert GanConfig.from_json(preset.config.to_json()) == preset.config
    with pytest.raises(UserError):
        GanSpec(arch="transformer")
    with pytest.raises(UserError):
        GanConfig(lr_d=0.0)
    with pytest.raises(UserError):
        GanSpec.from_json('{"arch": "mlp", "evil": 1}')


# ------------------------------------------------------------------ grid, PNG, filmstrip, interpolation

def test_grid_png_is_224_white_digits_on_black_row_major(mnist):
    tiles = mnist.test_images[:64]
    grid = tile_grid(tiles)
    png = grid_png(grid)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (GRID_PIXELS, GRID_PIXELS)
    assert image.mode == "L"
    pixels = np.asarray(image)
    for k in (0, 1, 7, 8, 63):  # row-major, 28x28 tiles, no gaps
        r, c = divmod(k, 8)
        assert np.array_equal(pixels[28 * r: 28 * r + 28, 28 * c: 28 * c + 28], tiles[k].numpy())
    # white digits on black: the border (background) is black, the ink is bright
    assert pixels[0, :].max() == 0
    assert pixels.max() == 255
    assert np.median(pixels) == 0


def test_sample_grid_of_a_generator_is_fixed_for_the_noise():
    spec = TINY["mlp"]
    g, _ = build_gan(spec, seed=0)
    noise, labels = grid_noise(spec)
    assert noise.shape == (64, spec.noise_dim)
    assert labels is None
    a, b = sample_grid(g, noise), sample_grid(g, grid_noise(spec)[0])
    assert a.shape == (224, 224)
    assert a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert g.training  # rendering restores the training mode
    cond = spec.with_changes(conditional=True)
    _, labels = grid_noise(cond)
    assert labels is not None
    assert labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_filmstrip_records_every_n_steps_and_stays_bounded(mnist):
    spec = TINY["mlp"]
    g, d = build_gan(spec, seed=0)
    strip = Filmstrip(spec, every=2, max_frames=4)
    for step in range(1, 21):
        strip.maybe_record(g, step)
    frames = strip.frames()
    assert 2 <= len(frames) <= 4
    steps = [f.step for f in frames]
    assert steps == sorted(steps)
    assert steps[0] == 2
    assert 20 - strip.every < steps[-1] <= 20  # the whole run, evenly
    assert strip.every > 2  # the interval grew when the strip was thinned
    assert all(f.grid.shape == (224, 224) and f.grid.dtype == np.uint8 for f in frames)
    # training changes what the grid shows
    train_for(g, d, GanConfig(batch_size=16), mnist.train_images[:256], mnist.train_labels[:256], steps=5)
    assert not np.array_equal(strip.record(g, 25).grid, frames[-1].grid)


def test_interpolation_starts_and_ends_at_the_two_samples():
    spec = TINY["mlp"]
    g, _ = build_gan(spec, seed=0)
    z0, z1 = torch.randn(spec.noise_dim), torch.randn(spec.noise_dim)
    walk = interpolate(g, z0, z1, steps=5)
    assert walk.shape == (5, 28, 28)
    ends = generate(g, torch.stack([z0, z1]))
    assert (walk[0].int() - ends[0].int()).abs().max() <= 1
    assert (walk[-1].int() - ends[1].int()).abs().max() <= 1
    cg, _ = build_gan(spec.with_changes(conditional=True), seed=0)
    assert interpolate(cg, z0, z1, steps=3, digit=7).shape == (3, 28, 28)


# ------------------------------------------------------------------ grading and memorisation

def test_grader_on_real_test_digits_is_confident_and_sees_every_class(mnist, digits_model):
    result = grade(mnist.test_images[:1000], digits_model)
    assert result.n == 1000
    assert sum(result.histogram) == 1000
    assert result.confident_share > 0.5, result  # a dense model after one epoch: about 64%
    assert not result.collapse
    assert result.missing == ()
    assert result.all_present
    assert result.requested_share is None
    assert not result.quick_classifier


def test_grader_raises_the_alarm_on_copies_of_one_digit(mnist, digits_model):
    seven = mnist.test_images[mnist.test_labels == 7][:1]
    result = grade(seven.repeat(1000, 1, 1), digits_model)
    assert result.collapse
    assert result.histogram[7] == 1000
    assert result.missing == (0, 1, 2, 3, 4, 5, 6, 8, 9)
    # the rule: fewer than a quarter of a uniform share (25 of 1000 for 10 classes)
    predicted = classify(mnist.test_images, digits_model).argmax(dim=1)

    def labelled(counts: list[int]) -> torch.Tensor:
        return torch.cat([mnist.test_images[predicted == k][:c] for k, c in enumerate(counts)])

    rare_nine = labelled([110] * 9 + [int(MISSING_FRACTION * 100) - 1])  # 9 labelled 24 times in 1014
    assert grade(rare_nine, digits_model).missing == (9,)
    assert grade(labelled([97] * 9 + [127]), digits_model).missing == ()


def test_grader_measures_the_requested_digit(mnist, digits_model):
    images, labels = mnist.test_images[:500], mnist.test_labels[:500]
    right = grade(images, digits_model, requested=labels)
    wrong = grade(images, digits_model, requested=(labels + 1) % 10)
    assert right.requested_share is not None
    assert right.requested_share > 0.85
    assert wrong.requested_share is not None
    assert wrong.requested_share < 0.1
    assert right.requested_confident_share is not None
    assert right.requested_confident_share <= right.requested_share


def test_memorisation_finds_the_exact_training_image(mnist):
    picks = torch.tensor([0, 17, 4321, 9999])
    found = nearest_training(mnist.train_images[picks], mnist.train_images)
    assert list(found.indices) == picks.tolist()
    assert max(found.distances) == 0.0
    typical = typical_nearest_distance(mnist, n=100)
    assert 0 < typical.low <= typical.median <= typical.high
    assert not typical.far(0.0)
    assert typical.far(typical.median)
    noise = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    assert min(nearest_training(noise, mnist.train_images).distances) > typical.high


def test_draw_score_uses_the_canvas_preprocessing():
    spec = TINY["mlp"]
    _, d = build_gan(spec, seed=0)
    canvas = np.zeros((280, 280, 4), dtype=np.uint8)
    assert score_drawing(d, canvas) is None  # nothing drawn
    canvas[60:220, 130:150] = 255  # a white stroke on an opaque black page: a "1"
    canvas[..., 3] = 255
    score = score_drawing(d, canvas)
    assert score is not None
    assert 0.0 < score.real < 1.0
    assert score.image28.shape == (28, 28)
    cond_d = build_gan(spec.with_changes(conditional=True), seed=0)[1]
    with pytest.raises(ValueError, match="needs the digit the drawing shows"):
        score_image28(cond_d, score.image28)
    assert 0.0 < score_image28(cond_d, score.image28, digit=1).real < 1.0


# ------------------------------------------------------------------ checkpoints and ONNX

@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_checkpoint_round_trip(mnist, arch):
    spec = TINY[arch].with_changes(conditional=arch == "dcgan")
    config = GanConfig(batch_size=16, d_steps=2)
    g, d = build_gan(spec, seed=0)
    train_for(g, d, config, mnist.train_images[:128], mnist.train_labels[:128], steps=2)
    data = save_gan_checkpoint(g, d, config, steps=2)
    ckpt = load_gan_checkpoint(data)
    assert ckpt.spec == spec
    assert ckpt.config == config
    assert ckpt.steps == 2
    g2, d2 = ckpt.networks()
    noise, labels = grid_noise(spec)
    assert np.array_equal(sample_grid(g, noise, labels), sample_grid(g2, noise, labels))
    for a, b in zip(d.state_dict().values(), d2.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_rejects_other_files(mnist, trained_tutorial):
    from dlplay.classify.checkpoint import checkpoint_from_session

    with pytest.raises(UserError, match="classifier"):
        load_gan_checkpoint(checkpoint_from_session(trained_tutorial))
    with pytest.raises(UserError):
        load_gan_checkpoint(b"not a zip")
    g, d = build_gan(TINY["mlp"], seed=0)
    other_g, _ = build_gan(TINY["mlp"].with_changes(width=32), seed=0)
    other_g.spec = g.spec  # a generator whose weights do not fit the spec it claims
    with pytest.raises(UserError):
        load_gan_checkpoint(save_gan_checkpoint(other_g, d, GanConfig()))


@pytest.mark.parametrize("conditional", [False, True])
def test_generator_exports_to_onnx(conditional):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    spec = TINY["dcgan"].with_changes(conditional=conditional)
    g, _ = build_gan(spec, seed=0)
    data = export_generator_onnx(g)
    onnx.checker.check_model(onnx.load_model_from_string(data))
    runner = ort.InferenceSession(data)
    noise = torch.randn(3, spec.noise_dim)
    feeds = {"noise": noise.numpy()}
    digits = torch.tensor([1, 5, 9]) if conditional else None
    if digits is not None:
        feeds["digits"] = digits.numpy()
    (pixels,) = runner.run(["pixels"], feeds)
    assert pixels.shape == (3, 1, 28, 28)
    g.eval()
    with torch.no_grad():
        expected = (g(noise, digits) + 1) / 2
    assert np.allclose(pixels, expected.numpy(), atol=1e-4)


def test_filmstrip_as_a_session_callback_records_start_interval_and_end():
    spec = TINY["mlp"].with_changes(conditional=True)
    g, _ = build_gan(spec, seed=0)

    class Session:  # what the filmstrip uses of a GanSession: sample(noise, labels) -> G's output in [-1, 1]
        def sample(self, noise, labels=None):
            with torch.no_grad():
                return g.eval()(noise, labels)

    strip, session = Filmstrip(spec, every=3, max_frames=10), Session()
    strip.on_start(session)
    for step in range(1, 8):
        strip.after_step(session, step)
    strip.on_end(session)
    assert [f.step for f in strip.frames()] == [0, 3, 6, 7]
    assert np.array_equal(strip.frames()[-1].grid, sample_grid(g, strip.noise, strip.labels))


@pytest.mark.parametrize("conditional", [False, True])
def test_mnist_session_trains_the_recipe_and_records_a_filmstrip(mnist, conditional):
    from dlplay.gan.mnist import mnist_session

    spec = TINY["mlp"].with_changes(conditional=conditional)
    strip = Filmstrip(spec, every=2, max_frames=10)
    session = mnist_session(spec, GanConfig(batch_size=16, label_smoothing=0.1), mnist, total_steps=6, device="cpu",
                            callbacks=[strip], sync_every=2)
    assert session.config.label_smoothing == 0.1
    assert session.config.num_classes == (10 if conditional else 0)
    session.start()
    assert session.join(60), session.status
    assert session.status == "done", session.status
    assert [f.step for f in strip.frames()] == [0, 2, 4, 6]
    g, _d = session.copies()
    noise, labels = grid_noise(spec)
    assert np.array_equal(strip.frames()[-1].grid, sample_grid(g, noise, labels))
    snap = session.snapshot()
    assert len(snap.d_loss) == 6
    assert np.isfinite(snap.d_loss).all()


def test_grade_generator_asks_a_conditional_generator_for_every_digit(digits_model):
    from dlplay.gan.grade import grade_generator

    g, _ = build_gan(TINY["mlp"].with_changes(conditional=True), seed=0)
    result = grade_generator(g, digits_model, n=50, quick_classifier=True)
    assert result.n == 50
    assert result.requested_share is not None
    assert result.quick_classifier
    plain = grade_generator(build_gan(TINY["mlp"], seed=0)[0], digits_model, n=50)
    assert plain.requested_share is None


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_preset_texts_are_a_beginners_sentence_or_two(lang):
    """Issue 33: the sidebar carried about twenty lines of benchmark notes ("Measured with bench/gan_mnist.py …
    28%, 38% …"). A preset's text says what it does and how good it gets, in at most two sentences; the
    measurements live in docs/GENERATE.md."""
    import re

    from dlplay.i18n import lookup

    docs = (Path(__file__).resolve().parents[1] / "docs" / "GENERATE.md").read_text()
    for preset in GAN_PRESETS.values():
        text = lookup(f"gan_mnist.preset.{preset.key}.text", lang)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+|(?<=[。！？])", text.strip()) if s.strip()]
        assert len(sentences) <= 2, sentences
        assert len(text) <= (320 if lang == "en" else 160), len(text)
        assert "bench/" not in text
        assert "`" not in text
        assert len(re.findall(r"\d+(?:\.\d+)?\s*%", text)) <= 1  # one figure of how good, not a table
    assert "bench/gan_mnist.py" in docs
    assert "72.7" in docs
    assert "44 %" in docs  # the figures moved, not lost
