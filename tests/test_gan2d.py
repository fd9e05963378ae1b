"""The 2-D GAN lab's core (dlplay.gan.lab): the real shapes, the learner's drawn points (checked, with messages),
what the page draws (D's heatmap, G's manifold, the gradient arrows, the min-max value) against what they
mean, the divergences, and the lesson itself: in its default settings the lab CONVERGES on the ring and on
the two blobs.

The convergence bound. The energy distance ED between the real shape and 1,000 generated points is compared
with its sampling floor, the mean ED between two independent real samples of 1,000 points (``real_floor``).
Two real samples already reach up to ~8× the floor for the blobs (the share of points in each blob varies by
a few per cent) and ~2.5× for the ring; the failures a GAN shows reach far more: a ring missing a quarter of
its arc ~44×, half a ring ~170×, two blobs split 70/30 ~120×, one blob of two ~500× (``test_the_bound_
separates_success_from_the_failures`` measures these). So the bound is 10× the floor, on the median of the
last readings (training a GAN oscillates around its equilibrium; one reading can catch a swing).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlplay.errors import UserError
from dlplay.gan import lab as L
from dlplay.gan.session import Every

BOUND = 10.0  # × the sampling floor, see the module docstring
N_EVAL = 1000


# ----- real data --------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [s for s in L.SHAPES if s != "drawn"])
def test_shapes_lie_in_the_plane(shape):
    pts = L.real_points(shape, 2000, seed=0)
    assert pts.shape == (2000, 2)
    assert np.isfinite(pts).all()
    assert (np.abs(pts) < 1).mean() > 0.99
    assert np.array_equal(pts, L.real_points(shape, 2000, seed=0))


def test_the_shapes_are_what_they_say():
    ring = L.real_points("ring", 4000)
    assert np.linalg.norm(ring, axis=1).mean() == pytest.approx(L.RING_RADIUS, abs=0.01)
    blobs = L.real_points("blobs", 4000)
    nearest = np.linalg.norm(blobs[:, None] - np.array(L.BLOB_CENTERS)[None], axis=2)
    assert (nearest.min(1) < 4 * L.BLOB_STD).mean() > 0.99
    assert abs((nearest.argmin(1) == 0).mean() - 0.5) < 0.05
    assert np.abs(blobs[:, 0]).min() > 0.1  # disjoint: nothing between the blobs
    mix = L.real_points("mixture", 4000)
    angles = np.round(np.arctan2(mix[:, 1], mix[:, 0]) / (2 * math.pi / L.MIXTURE_MODES)) % L.MIXTURE_MODES
    assert len(set(angles.astype(int))) == L.MIXTURE_MODES


def test_drawn_points_become_a_distribution_around_them():
    drawn = [[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5]]
    pts = L.real_points("drawn", 3000, points=drawn)
    dist = np.linalg.norm(pts[:, None] - np.array(drawn)[None], axis=2).min(1)
    assert dist.max() < 6 * L.DRAWN_JITTER
    assert dist.mean() > 0.005
    sampler = L.real_sampler("drawn", drawn)
    assert sampler(10, torch.Generator().manual_seed(0)).shape == (10, 2)


@pytest.mark.parametrize(("points", "key"), [
    ([[0.1, 0.2], [0.3, float("nan")], [0.0, 0.0]], "gan.points_not_finite"),
    ([[0.1, 0.2], [0.3, float("inf")], [0.0, 0.0]], "gan.points_not_finite"),
    ([[0.1, 0.2, 0.3]] * 5, "gan.points_shape"),
    ([0.1, 0.2, 0.3], "gan.points_shape"),
    ([], "gan.points_shape"),
    ([[0.1, 0.2], [0.3, 0.4]], "gan.points_too_few"),
    ([[0.1, 0.2], [0.3, 0.4], [1.5, 0.0]], "gan.points_outside"),
    ([["a", "b"], ["c", "d"], ["e", "f"]], "gan.points_not_numbers"),
    ([[0.1, 0.2], [0.3]], "gan.points_not_numbers"),
])
def test_bad_drawn_points_are_rejected_with_a_message(points, key):
    with pytest.raises(UserError) as err:
        L.validate_points(points)
    assert err.value.key == key
    for lang in ("en", "zh"):
        assert "gan." not in err.value.message(lang)
        assert "{" not in err.value.message(lang)
    with pytest.raises(UserError):
        L.lab_session("drawn", points, device="cpu")


def test_many_drawn_points_are_thinned_and_kept_in_order():
    pts = np.stack([np.linspace(-0.9, 0.9, 5000), np.zeros(5000)], 1)
    kept = L.validate_points(pts)
    assert kept.shape == (L.MAX_DRAWN, 2)
    assert kept.dtype == np.float32
    assert kept[0, 0] == pytest.approx(-0.9)
    assert kept[-1, 0] == pytest.approx(0.9)
    assert (np.diff(kept[:, 0]) > 0).all()
    assert L.validate_points([(0, 0), (0.5, 0.5), (-1, 1)]).shape == (3, 2)


def test_an_unknown_shape_is_rejected():
    with pytest.raises(UserError) as err:
        L.real_sampler("spiral")
    assert err.value.key == "gan.bad_choice"
    assert "spiral" in err.value.message("zh")


# ----- what the page draws ----------------------------------------------------------------------

class Affine(torch.nn.Module):
    """A known D: logit = w·x + b."""

    def __init__(self, w: tuple[float, float], b: float):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([w]))
            self.lin.bias.fill_(b)

    def forward(self, x):
        return self.lin(x)


def test_heatmap_is_d_on_the_grid_with_rows_along_y():
    d = Affine((0.0, 4.0), 0.0)  # more real higher up
    heat = L.heatmap(d, resolution=9)
    _xs, ys = L.plane_grid(9)
    assert heat.shape == (9, 9)
    assert ((heat > 0) & (heat < 1)).all()
    assert heat[-1, 0] > 0.95
    assert heat[0, 0] < 0.05
    assert np.allclose(heat[:, 0], heat[:, -1])
    assert heat[4, 4] == pytest.approx(1 / (1 + math.exp(-4 * ys[4])))


def test_gradient_arrows_point_where_d_finds_points_more_real():
    d = Affine((1.0, -2.0), 0.0)
    pts = np.array([[0.0, 0.0], [0.5, 0.5], [-0.5, 0.2]], dtype=np.float32)
    arrows = L.gradient_arrows(d, pts)
    # −∂/∂x of −log σ(w·x) is (1 − σ(w·x)) w
    s = 1 / (1 + np.exp(-(pts @ np.array([1.0, -2.0]))))
    assert np.allclose(arrows, (1 - s)[:, None] * np.array([1.0, -2.0]), atol=1e-6)
    # a small move along the arrow makes D's verdict more real
    with torch.no_grad():
        before = d(torch.from_numpy(pts)).reshape(-1)
        after = d(torch.from_numpy(pts + 0.01 * arrows)).reshape(-1)
    assert (after > before).all()


def test_minimax_writes_the_game_out_with_the_current_numbers():
    half = Affine((0.0, 0.0), 0.0)  # D(x) = ½ everywhere: the equilibrium's D
    real, fake = L.real_points("ring", 100), L.real_points("blobs", 100)
    m = L.minimax(half, real, fake)
    assert m.value == pytest.approx(2 * math.log(0.5))
    assert m.d_loss == pytest.approx(-m.value)
    assert m.g_loss == pytest.approx(math.log(2))
    assert m.d_real == m.d_fake == pytest.approx(0.5)
    sure = Affine((0.0, 0.0), 5.0)  # calls everything real
    m = L.minimax(sure, real, fake)
    assert m.real_term == pytest.approx(math.log(1 / (1 + math.exp(-5))), rel=1e-5)
    assert m.fake_term == pytest.approx(math.log(1 - 1 / (1 + math.exp(-5))), rel=1e-5)
    assert m.g_loss < 0.01


def test_manifold_maps_the_noise_grid_through_g():
    identity = torch.nn.Linear(2, 2)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(2))
        identity.bias.zero_()
    lines = L.manifold(identity, "uniform", lines=5, points_per_line=7)
    assert lines.shape == (10, 7, 2)
    assert np.allclose(lines, L.noise_lines("uniform", 5, 7))
    assert np.allclose(lines[0, :, 0], -1)
    assert np.allclose(lines[5, :, 1], -1)  # z₁ = −1, then z₂ = −1
    assert L.noise_lines("gaussian", 3, 3).max() == 2.0


def test_divergences_are_zero_for_equal_sets_and_largest_for_disjoint_ones():
    a = L.real_points("ring", 800, seed=1)
    far = a * 0.1  # squeezed into the middle: no common cell with the ring
    assert L.js_divergence(a, a) == pytest.approx(0.0, abs=1e-12)
    assert L.js_divergence(a, far) == pytest.approx(math.log(2), abs=1e-9)
    assert L.kl_divergence(a, a) == pytest.approx(0.0, abs=1e-9)
    assert L.kl_divergence(a, far) > 5
    assert L.energy_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    b = L.real_points("ring", 800, seed=2)
    assert 0 < L.energy_distance(a, b) < L.energy_distance(a, b + 0.1) < L.energy_distance(a, far)


def test_the_bound_separates_success_from_the_failures():
    """The references of the module docstring: real vs real stays under the bound, the failures far above."""
    gen = torch.Generator().manual_seed(5)
    real = L.real_points("blobs", N_EVAL, seed=99)
    floor = L.real_floor("blobs", N_EVAL)
    twins = [L.energy_distance(real, L.real_points("blobs", N_EVAL, seed=s)) / floor for s in range(200, 210)]
    assert max(twins) < BOUND
    centers = torch.tensor(L.BLOB_CENTERS)
    one_blob = (centers[0] + L.BLOB_STD * torch.randn(N_EVAL, 2, generator=gen)).numpy()
    assert L.energy_distance(real, one_blob) / floor > 20 * BOUND
    which = (torch.rand(N_EVAL, generator=gen) < 0.7).long()
    split = (centers[which] + L.BLOB_STD * torch.randn(N_EVAL, 2, generator=gen)).numpy()
    assert L.energy_distance(real, split) / floor > 5 * BOUND
    ring = L.real_points("ring", N_EVAL, seed=99)
    ring_floor = L.real_floor("ring", N_EVAL)
    arc = L.real_points("ring", 4 * N_EVAL, seed=3)
    three_quarters = arc[np.arctan2(arc[:, 1], arc[:, 0]) < math.pi / 2][:N_EVAL]
    assert L.energy_distance(ring, three_quarters) / ring_floor > 3 * BOUND


def test_lab_frame_draws_everything_from_one_copy():
    session = L.lab_session("ring", config=L.LAB_CONFIG.with_changes(total_steps=5), device="cpu")
    session.start()
    assert session.join(30)
    assert session.status == "done"
    real = L.real_points("ring", 200)
    frame = L.lab_frame(session, real, session.noise(150, seed=1), resolution=16, lines=5)
    assert frame.step == 5
    assert frame.heat.shape == (16, 16)
    assert frame.fake.shape == (150, 2)
    assert frame.arrows.shape == (150, 2)
    assert frame.manifold.shape == (10, 41, 2)
    assert np.allclose(frame.fake, session.sample(session.noise(150, seed=1)).numpy(), atol=1e-6)
    assert frame.minimax.d_loss == pytest.approx(-frame.minimax.value)
    assert 0 <= frame.js <= math.log(2) + 1e-9
    assert frame.energy > 0


# ----- the lesson: it converges -----------------------------------------------------------------

@pytest.mark.parametrize(("shape", "steps"), [("ring", 1000), ("blobs", 1600)])
def test_the_lab_converges_in_its_default_settings(shape, steps):
    real = L.real_points(shape, N_EVAL, seed=99)
    floor = L.real_floor(shape, N_EVAL)
    readings: list[tuple[int, float]] = []

    def read(session, step):
        readings.append((step, L.energy_distance(real, session.sample(session.noise(N_EVAL, seed=7)).numpy()) / floor))

    config = L.LAB_CONFIG.with_changes(total_steps=steps, device="cpu")
    session = L.lab_session(shape, config=config, device="cpu", callbacks=[Every(100, read, at_start=True)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: more threads only add overhead
    try:
        session.start()
        assert session.join(600)
        assert session.status == "done"
    finally:
        torch.set_num_threads(threads)
    start = readings[0][1]
    last = [r for _, r in readings[-5:]]
    assert start > 5 * BOUND, readings  # it had something to learn
    assert float(np.median(last)) < BOUND, readings


# ----- the lesson: the contest is visible -------------------------------------------------------

def test_the_default_lab_shows_the_contest():
    """Issue 33: with the first converging defaults D stayed at ½ over the whole plane (D loss 1.386, G loss
    0.693, D(real) = D(fake) = 0.500, a white heatmap) from the first step to the last. In the defaults D must
    tell real from generated points before G catches up: its verdicts differ, its heatmap has structure and
    the losses move away from their equilibrium values."""
    config = L.LAB_CONFIG.with_changes(total_steps=100, device="cpu")
    session = L.lab_session("ring", config=config, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        session.start()
        assert session.join(120)
        assert session.status == "done"
    finally:
        torch.set_num_threads(threads)
    g, d = session.copies()
    real = L.real_points("ring", N_EVAL, seed=99)
    with torch.no_grad():
        fake = g(session.noise(N_EVAL, seed=7)).numpy()
    m = L.minimax(d, real, fake)
    assert m.d_real - m.d_fake > 0.1, m  # D tells them apart
    heat = L.heatmap(d)
    assert heat.max() - heat.min() > 0.3, (heat.min(), heat.max())  # green and purple on the plane, not white
    snap = session.snapshot()
    assert snap.d_loss.min() < 2 * math.log(2) - 0.3, snap.d_loss.min()  # D's loss left 1.386
    assert snap.g_loss.max() > math.log(2) + 0.3, snap.g_loss.max()  # and G's left 0.693
    assert (snap.d_real - snap.d_fake).max() > 0.2
