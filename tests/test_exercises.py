"""Compute it yourself (dlplay/learn/exercises.py): the expected values equal autograd's for dense and
convolutional networks, the tolerance covers the shown numbers' rounding and nothing much more, and a
wrong answer is placed at the right step of the worked solution."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlplay.classify.predict import normalise, to_pixels
from dlplay.errors import UserError
from dlplay.learn.exercises import (
    CLOSEST,
    DEFINITIONS,
    LEFT_OUT,
    RELATIVE,
    SIGN,
    STOPPED,
    Exercise,
    ExerciseProgress,
    decimals_for,
    exercises,
    grade,
    parse_answer,
)
from dlplay.learn.trace import trace
from dlplay.nn.activations import ACTIVATIONS
from dlplay.nn.model import Net, build_model
from dlplay.nn.presets import small_cnn_spec
from dlplay.nn.spec import LayerSpec, ModelSpec, dense_spec


def autograd_numbers(model: Net, image, info, target: int):
    """z, a and dJ/dz of every block and dJ/dW of every weight block, straight from autograd (not the trace)."""
    model.eval()
    x = normalise(to_pixels(image, model.spec.input_shape, "cpu"), float(info.mean), float(info.std))
    record: list = []
    logits = model(x, record)
    loss = F.cross_entropy(logits, torch.tensor([target]))
    zs = [z for z, _ in record]
    blocks = [i for i, b in enumerate(model.blocks) if b.kind in ("dense", "conv2d")]
    grads = torch.autograd.grad(loss, zs + [model.blocks[i].op.weight for i in blocks])
    return x, record, grads[: len(zs)], dict(zip(blocks, grads[len(zs):]))


def by_kind(exs: list[Exercise]) -> dict[str, Exercise]:
    return {ex.kind: ex for ex in exs}


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_dense_expected_equals_autograd(mnist, activation):
    spec = dense_spec([48, 24], activation)
    model = build_model(spec, seed=1)
    for index in (0, 7):
        image, label = mnist.test_images[index], int(mnist.test_labels[index])
        tr = trace(model, image, mnist.info, label=label)
        exs = by_kind(exercises(tr, spec))
        assert list(exs) == ["z", "a", "delta", "grad"]
        _x, record, deltas, wgrads = autograd_numbers(model, image, mnist.info, label)
        h = 1  # the last hidden layer
        (j,) = exs["z"].where
        z, a = (t.detach() for t in record[h])
        w, b = model.blocks[h].op.weight, model.blocks[h].op.bias
        by_hand = float((w[j].double() * record[0][1][0].double()).sum().detach() + b[j].double().detach())
        assert exs["z"].expected == pytest.approx(float(z[0, j]), abs=1e-6)
        assert exs["z"].expected == pytest.approx(by_hand, abs=1e-5)
        assert exs["a"].expected == pytest.approx(float(a[0, j]), abs=1e-6)
        assert exs["delta"].expected == pytest.approx(float(deltas[h][0, j]), abs=1e-7)
        jj, i = exs["grad"].where
        assert jj == j
        assert exs["grad"].expected == pytest.approx(float(wgrads[h][j, i]), abs=1e-7)
        assert exs["delta"].expected != 0  # the neuron followed has a gradient


def test_conv_expected_equals_autograd(mnist):
    spec = small_cnn_spec()
    model = build_model(spec, seed=2)
    image, label = mnist.test_images[3], int(mnist.test_labels[3])
    tr = trace(model, image, mnist.info, label=label)
    exs = exercises(tr, spec)
    assert [ex.kind for ex in exs] == ["conv_z", "conv_a", "z", "a", "delta", "grad"]
    x, record, deltas, _ = autograd_numbers(model, image, mnist.info, label)
    cz = exs[0]
    c, y, col = cz.where
    conv = model.blocks[0].op
    direct = F.conv2d(x, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding).detach()
    assert cz.expected == pytest.approx(float(direct[0, c, y, col]), abs=1e-5)
    assert cz.expected == pytest.approx(float(record[0][0][0, c, y, col].detach()), abs=1e-6)
    assert len(cz.factors) == 9
    assert cz.rest is None  # one input channel: the whole 3×3 patch
    assert exs[1].expected == pytest.approx(float(record[0][1][0, c, y, col].detach()), abs=1e-6)
    h = len(model.blocks) - 2  # the dense hidden layer
    (j,) = exs[4].where
    assert exs[4].expected == pytest.approx(float(deltas[h][0, j]), abs=1e-7)
    # the second convolution (32 input channels) would show its largest terms: the first is the one covered
    assert exs[0].layer_name == "conv2d1"


def test_conv_without_dense_hidden_layer(mnist):
    spec = ModelSpec(layers=(LayerSpec("conv2d", 4, "tanh", kernel=3, stride=2, padding=0),))
    model = build_model(spec, seed=0)
    tr = trace(model, mnist.test_images[0], mnist.info, label=int(mnist.test_labels[0]))
    exs = exercises(tr, spec)
    assert [ex.kind for ex in exs] == ["conv_z", "conv_a", "z", "grad"]
    x, _record, _, wgrads = autograd_numbers(model, mnist.test_images[0], mnist.info, tr.target)
    c, y, col = exs[0].where
    assert exs[0].expected == pytest.approx(float(F.conv2d(x, model.blocks[0].op.weight, model.blocks[0].op.bias,
                                                           stride=2)[0, c, y, col].detach()), abs=1e-5)
    j, i = exs[3].where
    assert j == tr.target
    assert exs[3].expected == pytest.approx(float(wgrads[1][j, i]), abs=1e-7)


def all_exercises(mnist) -> list[Exercise]:
    out = []
    for spec, seed in ((dense_spec([64], "relu"), 0), (dense_spec([32, 32], "gelu"), 1), (dense_spec([32], "elu"), 2),
                       (dense_spec([16, 16], "sigmoid"), 3), (small_cnn_spec(), 4)):
        model = build_model(spec, seed=seed)
        for index in (1, 2):
            tr = trace(model, mnist.test_images[index], mnist.info, label=int(mnist.test_labels[index]))
            out += exercises(tr, spec)
    return out


def test_tolerance_covers_the_rounding_of_the_shown_numbers(mnist):
    exs = all_exercises(mnist)
    for ex in exs:
        # the shown numbers rounded to their decimals; the worked steps use them
        for g in ex.givens:
            assert abs(g.shown - g.value) <= g.half + 1e-12
            assert g.decimals == decimals_for(g.value)
        gap = abs(ex.from_shown - ex.expected)
        assert gap <= ex.tolerance.rounding + RELATIVE * abs(ex.expected), (ex.id, gap, ex.tolerance)
        # an answer worked out from the shown numbers and rounded as asked is right ...
        assert grade(ex, round(ex.from_shown, ex.decimals)).correct, ex.id
        # ... one a few tolerances away is not
        assert not grade(ex, ex.expected + 3 * ex.allowed).correct
        # and the tolerance is a rounding bound, not a blanket: well below the answer's size (or tiny)
        assert ex.allowed < max(0.05 * abs(ex.expected), 0.003), (ex.id, ex.allowed, ex.expected)


def test_tolerance_numbers():
    from dlplay.learn.exercises import Factor, _Chain, given
    chain = _Chain(3)
    f = Factor("1", given("w", 0.01234), given("a", 2.0))  # shown 0.0123 (4 decimals) and 2.000 (3)
    assert (f.w.decimals, f.w.text, f.v.decimals, f.v.text) == (4, "0.0123", 3, "2.000")
    chain.product(f, "k")
    # |w̃ã - wa| <= h_a |w̃| + h_w |ã| + h_w h_a, from the shown numbers
    first = 0.0005 * 0.0123 + 0.00005 * 2.0 + 0.0005 * 0.00005
    assert chain.bound == pytest.approx(first)
    chain.add(given("b", 1.5), "k")
    assert chain.bound == pytest.approx(first + 0.0005)
    chain.mul(given("f", 0.25), "k")  # |ũf̃ - uf| <= |f̃| B + |ũ| h_f + B h_f
    value = 0.0123 * 2.0 + 1.5
    assert chain.bound == pytest.approx(0.25 * (first + 0.0005) + value * 0.0005 + (first + 0.0005) * 0.0005)


def sigmoid_exercises(mnist) -> dict[str, Exercise]:
    spec = dense_spec([32, 32], "sigmoid")
    model = build_model(spec, seed=5)
    tr = trace(model, mnist.test_images[0], mnist.info, label=int(mnist.test_labels[0]))
    return by_kind(exercises(tr, spec))


def big_steps(ex: Exercise) -> list[int]:
    """Term steps whose contribution is far outside the tolerance, largest first."""
    idx = [i for i, s in enumerate(ex.steps) if s.op == "add" and abs(s.operand) > 10 * ex.allowed]
    return sorted(idx, key=lambda i: -abs(ex.steps[i].operand))


def test_wrong_answers_part_at_the_right_step(mnist):
    exs = sigmoid_exercises(mnist)
    z = exs["z"]
    n = len(z.steps)
    assert z.steps[-1].key == "exercises.step_bias"
    # forgot the bias: the answer is the value before the last step -> it parts at the bias step
    forgot_bias = round(z.steps[-2].value, z.decimals)
    if abs(z.extras[0].shown) > 3 * z.allowed:
        d = grade(z, forgot_bias).diagnosis
        assert d is not None
        assert d.kind == STOPPED
        assert d.step == n - 1
        assert d.learner == forgot_bias
        assert d.right == pytest.approx(z.steps[-1].value)
    big = big_steps(z)
    assert len(big) >= 2
    # left out one term
    i = big[0]
    d = grade(z, z.from_shown - z.steps[i].operand).diagnosis
    assert d is not None
    assert (d.kind, d.step) == (LEFT_OUT, i)
    assert d.right == pytest.approx(z.steps[i].value)
    # subtracted a term instead of adding it
    i = big[1]
    d = grade(z, z.from_shown - 2 * z.steps[i].operand).diagnosis
    assert d is not None
    assert (d.kind, d.step) == (SIGN, i)
    # a = f(z): answered z itself -> it parts at applying f
    a = exs["a"]
    d = grade(a, round(a.steps[0].value, 3)).diagnosis
    assert d is not None
    assert (d.kind, d.step) == (STOPPED, 1)
    # delta: forgot f'(z) -> parts at the multiplication by f'
    delta = exs["delta"]
    assert delta.steps[-1].op == "mul"
    d = grade(delta, delta.steps[-2].value).diagnosis
    assert d is not None
    assert (d.kind, d.step) == (STOPPED, len(delta.steps) - 1)
    # an answer far from every mistake above: the step whose running value is nearest it
    slip = max(abs(s.value) for s in z.steps) * 3 + 5
    d = grade(z, slip).diagnosis
    values = [abs(slip - s.value) for s in z.steps]
    assert d is not None
    assert (d.kind, d.step) == (CLOSEST, int(np.argmin(values)))
    assert d.learner == slip
    # a right answer has no diagnosis
    assert grade(z, z.expected).diagnosis is None


@pytest.mark.parametrize("index", [1, 3])
def test_typical_wrong_answers_are_named(mnist, trained_tutorial, index):
    """Issue 33: an answer that left out the four products shown was told it was "nearest the value after step 6
    (add the bias)", the last step. The usual slips are each named: left out the products, only the bias, only
    the products, no rest, forgot δ or a in δ·a, only the slope f′(z)."""
    from dlplay.learn.exercises import OMITTED, TERM_KEYS

    model = trained_tutorial.model_copy()  # the Inside page's usual network: 784 inputs, 4 products shown
    tr = trace(model, mnist.test_images[index], mnist.info, label=int(mnist.test_labels[index]))
    exs = by_kind(exercises(tr, trained_tutorial.spec))
    z = exs["z"]
    n = len(z.steps)
    terms = tuple(i for i, s in enumerate(z.steps) if s.key in TERM_KEYS)
    rest = next(i for i, s in enumerate(z.steps) if s.key == "exercises.step_rest")
    bias = n - 1
    assert terms == (0, 1, 2, 3)
    assert rest == 4
    assert z.steps[bias].key == "exercises.step_bias"
    shown = [s.operand for s in z.steps]
    assert abs(sum(shown[i] for i in terms)) > 10 * z.allowed
    assert abs(shown[rest]) > 10 * z.allowed
    # left out the four products shown: the rest plus the bias
    d = grade(z, round(shown[rest] + shown[bias], z.decimals)).diagnosis
    assert d is not None, d
    assert d.kind == OMITTED, d
    assert d.omitted == terms, d
    assert d.kept(n) == (rest, bias), d
    # added only the bias
    if abs(shown[bias]) > 10 * z.allowed:
        d = grade(z, round(shown[bias], z.decimals)).diagnosis
        assert d is not None, d
        assert d.kind == OMITTED, d
        assert d.kept(n) == (bias,), d
    # the products shown and nothing else: stopped before the rest
    d = grade(z, round(sum(shown[i] for i in terms), z.decimals)).diagnosis
    assert d is not None
    assert (d.kind, d.step) == (STOPPED, rest)
    # the products and the bias, not the rest
    d = grade(z, round(sum(shown[i] for i in terms) + shown[bias], z.decimals)).diagnosis
    assert d is not None
    assert (d.kind, d.step) == (LEFT_OUT, rest)
    # ∂J/∂w = δ·a: a alone (forgot δ), δ alone (forgot a)
    g = exs["grad"]
    delta_shown, a_shown = g.steps[0].operand, g.steps[1].operand
    if abs(a_shown - g.expected) > 10 * g.allowed:
        d = grade(g, a_shown).diagnosis
        assert d is not None, d
        assert (d.kind, d.step) == (LEFT_OUT, 0), d
    d = grade(g, delta_shown).diagnosis
    assert d is not None
    assert (d.kind, d.step) == (STOPPED, 1)
    # δ: only the slope f′(z), no sum
    delta = exs["delta"]
    fprime = delta.steps[-1].operand
    d = grade(delta, fprime).diagnosis
    assert d is not None, d
    assert d.kind == OMITTED, d
    assert d.kept(len(delta.steps)) == (len(delta.steps) - 1,), d
    # an answer nowhere near any slip is still placed at the nearest step
    d = grade(z, 1000.0).diagnosis
    assert d is not None
    assert d.kind == CLOSEST


def test_every_activation_has_its_definition():
    assert set(DEFINITIONS) == set(ACTIVATIONS)


def test_parse_answer():
    assert parse_answer(" 1.25 ") == 1.25
    assert parse_answer("−0.5") == -0.5
    assert parse_answer("-0,75") == -0.75
    assert parse_answer("１．５") == 1.5  # noqa: RUF001 - full-width input
    assert parse_answer("2e-3") == 0.002
    assert parse_answer(".5") == 0.5
    for bad in ("", "abc", "1..2", "1,000.5", "1e", "--1"):
        with pytest.raises(UserError) as err:
            parse_answer(bad)
        assert err.value.key == "exercises.bad_number"
        assert err.value.message("zh") != err.value.message("en")


@pytest.mark.parametrize(("text", "key"), [
    ("9" * 5000, "exercises.answer_too_long"),  # issue 33: read as inf and graded
    ("0." + "1" * 60, "exercises.answer_too_long"),
    ("inf", "exercises.answer_not_finite"), ("-inf", "exercises.answer_not_finite"),  # -inf was "not a number"
    ("+Infinity", "exercises.answer_not_finite"), ("NaN", "exercises.answer_not_finite"), ("∞", "exercises.answer_not_finite"),
    ("1e999", "exercises.answer_not_finite"), ("-1e400", "exercises.answer_not_finite"),
    ("1e308", None),  # the largest floats are still numbers
])
def test_non_finite_and_absurdly_long_answers_are_refused_alike(text, key):
    if key is None:
        assert parse_answer(text) == float(text)
        return
    with pytest.raises(UserError) as err:
        parse_answer(text)
    assert err.value.key == key
    for lang in ("en", "zh"):
        message = err.value.message(lang)
        assert "{" not in message
        assert len(message) < 300  # the 5,000 digits are not echoed back


def test_progress():
    p = ExerciseProgress()
    assert p.state("z:dense1:3") == "new"
    p.record("z:dense1:3", False)
    assert p.state("z:dense1:3") == "tried"
    p.record("z:dense1:3", True)
    p.record("a:dense1:3", True)
    assert p.state("z:dense1:3") == "right"
    assert p.tries["z:dense1:3"] == 2
    assert p.done(["z:dense1:3", "a:dense1:3", "delta:dense1:3"]) == 2
