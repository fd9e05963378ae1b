"""Compute it yourself: exercises on one traced input, from the forward pass to the backward pass.

:func:`exercises` turns a :class:`~dlplay.learn.trace.Trace` (one input through the current network) into a
sequence of small calculations the learner does by hand: a neuron's z from its incoming a, its row of
W and its b; its a = f(z); the δ of a neuron of the last hidden layer, δ = (Wᵀδ_next) ⊙ f′(z); one
entry of ∂J/∂W = δ aᵀ; and, in a convolutional network, one output position of a channel: the patch
times the kernel, plus b. A large sum shows its k largest terms and gives the rest as one number.

Every number shown is rounded (:func:`decimals_for`: about three significant digits), so the answer
the learner can reach differs from the exact one; :class:`Tolerance` bounds that difference from the
shown numbers (the rounding of each, carried through the arithmetic), adds the rounding of the typed
answer and float32's relative precision, and says so. The expected value is the trace's own (autograd).
A wrong answer is placed in the worked steps by :func:`grade` (:class:`Diagnosis`: where it parts).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from dlplay.errors import UserError
from dlplay.learn.trace import LayerTrace, Trace
from dlplay.nn.activations import ACTIVATIONS
from dlplay.nn.layers import DENSE, LAYER_KINDS
from dlplay.nn.spec import ModelSpec

TOP_K = 4  # terms of a large sum shown one by one; the rest are given as one number
SHOW_ALL = 9  # a sum of at most this many terms shows all of them (a 3×3 patch of one channel)
SIGNIFICANT = 3  # digits a shown number keeps ...
MIN_DECIMALS, MAX_DECIMALS = 3, 6  # ... within these decimals
RELATIVE = 1e-5  # float32 arithmetic of the network itself (its sums of hundreds of terms)

# f(z) and f'(z) as the learner reads them; one entry per activation of the registry (a test checks it)
DEFINITIONS: dict[str, tuple[str, str]] = {
    "relu": (r"\max(0,\ z)", r"1 \text{ if } z > 0 \text{, else } 0"),
    "leaky_relu": (r"z \text{ if } z > 0 \text{, else } 0.01\,z", r"1 \text{ if } z > 0 \text{, else } 0.01"),
    "elu": (r"z \text{ if } z > 0 \text{, else } e^{z} - 1", r"1 \text{ if } z > 0 \text{, else } e^{z}"),
    "gelu": (r"z\,\Phi(z)", r"\Phi(z) + z\,\varphi(z)"),
    "tanh": (r"\frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}", r"1 - \tanh^2(z)"),
    "sigmoid": (r"\frac{1}{1 + e^{-z}}", r"\sigma(z)\,(1 - \sigma(z))"),
    "softplus": (r"\ln(1 + e^{z})", r"\frac{1}{1 + e^{-z}}"),
    "identity": (r"z", r"1"),
}


def decimals_for(value: float) -> int:
    """Decimals that keep about SIGNIFICANT digits of ``value`` (3 for 2.345, 4 for 0.0123, at most 6)."""
    if value == 0 or not math.isfinite(value):
        return MIN_DECIMALS
    return int(min(MAX_DECIMALS, max(MIN_DECIMALS, SIGNIFICANT - 1 - math.floor(math.log10(abs(value))))))


def fmt(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text  # no "-0.000"


@dataclass(frozen=True)
class Given:
    """A number the exercise shows, rounded to ``decimals``; ``value`` is the exact one behind it."""

    symbol: str  # LaTeX: w_{17,406}
    value: float
    decimals: int

    @property
    def shown(self) -> float:
        return round(self.value, self.decimals)

    @property
    def text(self) -> str:
        return fmt(self.shown, self.decimals)

    @property
    def half(self) -> float:
        """The most the rounding moved it: half a unit of the last shown decimal."""
        return 0.5 * 10.0 ** -self.decimals


def given(symbol: str, value: float) -> Given:
    return Given(symbol, float(value), decimals_for(float(value)))


@dataclass(frozen=True)
class Factor:
    """One term w · v of a sum (w_ji · a_i, w_kj · δ_k, a kernel weight · a patch value)."""

    label: str  # which input: "406", "(12, 15)"
    w: Given
    v: Given


@dataclass(frozen=True)
class Step:
    """One step of the worked solution, with the shown numbers. ``op``: ``add`` (the running value plus
    ``operand``: a product w·v or a given), ``mul`` (times ``operand``), ``apply`` (f of the running value)."""

    key: str  # translation key of what the step does (exercises.step_*)
    params: tuple[tuple[str, str], ...]  # its parameters
    op: str
    operand: float
    expr: str  # the arithmetic, with the shown numbers
    value: float  # the running value after this step

    def text_params(self) -> dict[str, str]:
        return dict(self.params)


@dataclass(frozen=True)
class Tolerance:
    """How far an answer may be from the exact (autograd) value, and why.

    ``rounding``: the most the shown numbers' rounding can move the result (each number's half unit
    carried through the steps); ``answer``: rounding the typed answer to the decimals asked for;
    ``relative``: float32's precision in the network's own arithmetic.
    """

    rounding: float
    answer: float
    relative: float
    numbers: int  # how many rounded numbers the exercise shows

    def allowed(self, expected: float) -> float:
        return self.rounding + self.answer + self.relative * abs(expected)


@dataclass(frozen=True)
class Exercise:
    """One hidden quantity of the traced input: the numbers to compute it from, the worked steps, the
    exact value (from the trace: autograd) and the tolerance."""

    id: str  # stable for the same network position: "z:dense1:17"
    kind: str  # conv_z, conv_a, z, a, delta, grad
    layer: int  # block index
    layer_name: str
    where: tuple[int, ...]  # the neuron (j,), a conv output (channel, row, col), a weight (j, i)
    activation: str
    answer_symbol: str  # LaTeX of the hidden quantity: z_{17}
    formula: str  # LaTeX with symbols: z_{17} = \sum_i w_{17,i} a_i + b_{17}
    factors: tuple[Factor, ...]  # the terms shown one by one
    n_terms: int  # all the terms of the sum (0: no sum)
    rest: Given | None  # the sum of the terms not shown
    extras: tuple[Given, ...]  # the other numbers it uses: b, z, f'(z), δ, a
    steps: tuple[Step, ...]
    expected: float  # the trace's value (autograd)
    decimals: int  # the answer's decimals asked for
    tolerance: Tolerance
    note: str = ""  # a translation key of a remark (the first layer's inputs are pixels)
    note_params: tuple[tuple[str, str], ...] = ()

    @property
    def from_shown(self) -> float:
        """The answer the shown numbers give (the worked steps' result)."""
        return self.steps[-1].value

    @property
    def allowed(self) -> float:
        return self.tolerance.allowed(self.expected)

    @property
    def definition(self) -> tuple[str, str]:
        """f(z) and f'(z) of the exercise's activation as LaTeX."""
        return DEFINITIONS[self.activation]

    @property
    def givens(self) -> tuple[Given, ...]:
        out: list[Given] = [g for f in self.factors for g in (f.w, f.v)]
        if self.rest is not None:
            out.append(self.rest)
        return (*out, *self.extras)


# --------------------------------------------------------------------------------- worked steps
@dataclass
class _Chain:
    """Builds the steps and carries the rounding bound of the running value through them."""

    decimals: int
    value: float = 0.0
    bound: float = 0.0
    started: bool = False
    steps: list[Step] = field(default_factory=list)

    def _show(self, v: float) -> str:
        return fmt(v, self.decimals + 1)

    def _push(self, key: str, params: dict[str, str], op: str, operand: float, expr: str) -> None:
        self.steps.append(Step(key, tuple(params.items()), op, operand, expr, self.value))
        self.started = True

    def start(self, g: Given, key: str, **params: str) -> None:
        self.value, self.bound = g.shown, g.half
        self._push(key, {"symbol": g.symbol, **params}, "add", g.shown, f"{g.text}")

    def product(self, f: Factor, key: str, **params: str) -> None:
        w, v = f.w.shown, f.v.shown
        p = w * v
        before = self.value
        self.value += p
        self.bound += f.v.half * abs(w) + f.w.half * abs(v) + f.w.half * f.v.half
        if self.started:
            expr = f"{self._show(before)} + ({f.w.text}) × ({f.v.text}) = {self._show(self.value)}"
        else:
            expr = f"({f.w.text}) × ({f.v.text}) = {self._show(self.value)}"
        self._push(key, {"label": f.label, **params}, "add", p, expr)

    def add(self, g: Given, key: str, **params: str) -> None:
        before = self.value
        self.value += g.shown
        self.bound += g.half
        self._push(key, {"symbol": g.symbol, **params}, "add", g.shown,
                   f"{self._show(before)} + ({g.text}) = {self._show(self.value)}")

    def mul(self, g: Given, key: str, **params: str) -> None:
        before, b = self.value, self.bound
        self.value *= g.shown
        self.bound = abs(g.shown) * b + abs(before) * g.half + b * g.half
        self._push(key, {"symbol": g.symbol, **params}, "mul", g.shown,
                   f"({self._show(before)}) × ({g.text}) = {self._show(self.value)}")

    def apply(self, activation: str, key: str, **params: str) -> None:
        before, b = self.value, self.bound
        self.value = apply_activation(activation, before)
        self.bound = b * max_slope(activation, before, b)
        self._push(key, {"f": activation, **params}, "apply", 0.0,
                   f"{activation}({self._show(before)}) = {self._show(self.value)}")


def apply_activation(name: str, z: float) -> float:
    """f(z) by the registry's own module, in float64."""
    return float(ACTIVATIONS[name].module()(torch.tensor([z], dtype=torch.float64))[0])


def max_slope(name: str, z: float, radius: float, samples: int = 257) -> float:
    """The largest |f'| on [z - radius, z + radius] (the registry's derivative, sampled densely):
    f moves by at most this times the radius."""
    grid = torch.linspace(z - radius, z + radius, samples, dtype=torch.float64)
    return float(ACTIVATIONS[name].derivative(grid).abs().max())


def _replay(steps: tuple[Step, ...], activation: str, *, skip: int | None = None, flip: int | None = None,
            upto: int | None = None, omit: frozenset[int] = frozenset()) -> float:
    """The steps' result with step ``skip`` (or the steps in ``omit``) left out, or step ``flip``'s operand
    negated (up to step ``upto``). A multiplication with nothing before it starts from its operand (δ·a
    without δ is a), as a learner who left out the first factor would get."""
    value: float | None = None
    last = len(steps) - 1 if upto is None else upto
    for i, s in enumerate(steps[: last + 1]):
        if i == skip or i in omit:
            continue
        operand = -s.operand if i == flip else s.operand
        if s.op == "add":
            value = (value or 0.0) + operand
        elif s.op == "mul":
            value = operand if value is None else value * operand
        else:
            value = apply_activation(activation, value or 0.0)
    return 0.0 if value is None else value


# --------------------------------------------------------------------------------- grading
STOPPED, LEFT_OUT, SIGN, OMITTED, CLOSEST = "stopped", "left_out", "sign", "omitted", "closest"


@dataclass(frozen=True)
class Diagnosis:
    """Where a wrong answer parts from the worked steps.

    ``kind``: ``stopped`` (the answer is the running value of an earlier step: the steps after it were
    not done; ``step`` is the first one left), ``left_out`` (the answer is the result without step
    ``step``), ``sign`` (the result with step ``step``'s term subtracted instead of added), ``omitted``
    (the result without several steps, ``omitted``, not all at the end: e.g. only the bias, or the rest and
    the bias without the products shown; ``step`` is the first of them), or ``closest`` (none of these:
    ``step`` is the step whose running value is nearest the answer, the first of equals). ``learner`` is
    the learner's number at that step (stopped, closest: the answer; left out, sign, omitted: the running
    value the mistake gives there), ``right`` the right one.
    """

    kind: str
    step: int
    learner: float
    right: float
    omitted: tuple[int, ...] = ()  # the steps left out (left_out: one; omitted: several)

    def kept(self, n: int) -> tuple[int, ...]:
        """The steps the answer is made of (of ``n``), for ``left_out`` and ``omitted``."""
        return tuple(i for i in range(n) if i not in self.omitted)


@dataclass(frozen=True)
class Grade:
    answer: float
    correct: bool
    error: float  # |answer - expected|
    allowed: float
    diagnosis: Diagnosis | None  # None when correct


TERM_KEYS = ("exercises.step_term", "exercises.step_term_back")  # the products w·a (w·δ, K·a) shown one by one


def _omissions(steps: tuple[Step, ...]) -> list[frozenset[int]]:
    """Several steps a learner may have left out at once, simplest first: whole groups of steps (all the
    products shown, the rest, the bias, the slope…: steps of one kind form a group), then all steps but one
    (only the bias, only the rest). Sets of one step (``left_out``), every step, and the steps at the end
    (``stopped``) are not repeated here. Groups, not every subset: a ten-step sum has a thousand subsets,
    and some would match a random answer within the tolerance."""
    n = len(steps)
    groups: dict[str, set[int]] = {}
    for i, s in enumerate(steps):
        groups.setdefault("terms" if s.key in TERM_KEYS else f"{s.key}:{i}" if s.op == "apply" else s.key, set()).add(i)
    parts = list(groups.values())
    unions: list[frozenset[int]] = []
    for mask in range(1, 1 << len(parts)):
        unions.append(frozenset(i for b, part in enumerate(parts) if mask >> b & 1 for i in part))
    unions.sort(key=lambda o: (sum(1 for part in parts if part <= o), len(o), sorted(o)))
    keep_one = [frozenset(range(n)) - {i} for i in range(n)]
    out: list[frozenset[int]] = []
    for omit in unions + keep_one:
        tail = omit == frozenset(range(n - len(omit), n))
        if 2 <= len(omit) < n and not tail and omit not in out:
            out.append(omit)
    return out


def diagnose(ex: Exercise, answer: float) -> Diagnosis:
    """Place a wrong ``answer`` in the worked steps (see :class:`Diagnosis`).

    The candidate mistakes are each computed from the shown numbers; one that matches the answer within
    the exercise's tolerance explains it (the nearest, if several do; ties go to stopped, then left
    out, then sign, then the earlier step). Only when none of those matches, several steps left out at
    once are tried, fewest first (an answer that left out the four products shown was called "nearest the
    value after the last step": the result it missed).
    """
    steps = ex.steps
    n = len(steps)
    candidates: list[tuple[float, int, int, Diagnosis]] = []  # (distance, kind order, step, diagnosis)
    for i in range(n - 1):  # stopped after step i: the next step is where it parts
        d = Diagnosis(STOPPED, i + 1, answer, steps[i + 1].value, tuple(range(i + 1, n)))
        candidates.append((abs(answer - steps[i].value), 0, i + 1, d))
    for i in range(n):
        if n > 1:
            without = _replay(steps, ex.activation, skip=i)
            at = _replay(steps, ex.activation, skip=i, upto=i)
            candidates.append((abs(answer - without), 1, i, Diagnosis(LEFT_OUT, i, at, steps[i].value, (i,))))
        if steps[i].op != "apply" and steps[i].operand != 0:
            flipped = _replay(steps, ex.activation, flip=i)
            at = _replay(steps, ex.activation, flip=i, upto=i)
            candidates.append((abs(answer - flipped), 2, i, Diagnosis(SIGN, i, at, steps[i].value)))
    tol = ex.tolerance.allowed(answer)
    matching = [c for c in candidates if c[0] <= tol]
    if matching:
        return min(matching, key=lambda c: (c[0], c[1], c[2]))[3]
    for omit in _omissions(steps):
        if all(steps[i].operand == 0 and steps[i].op == "add" for i in omit):
            continue  # leaving out nothing but zeros changes nothing: no explanation
        if abs(answer - _replay(steps, ex.activation, omit=omit)) <= tol:
            first = min(omit)
            at = _replay(steps, ex.activation, omit=omit, upto=first)
            return Diagnosis(OMITTED, first, at, steps[first].value, tuple(sorted(omit)))
    best = min(range(n), key=lambda i: (abs(answer - steps[i].value), i))
    return Diagnosis(CLOSEST, best, answer, steps[best].value)


def grade(ex: Exercise, answer: float) -> Grade:
    """Right when within the tolerance of the exact value; a wrong answer gets its :class:`Diagnosis`."""
    error = abs(answer - ex.expected)
    allowed = ex.allowed
    correct = math.isfinite(answer) and error <= allowed
    return Grade(answer, correct, error, allowed, None if correct else diagnose(ex, answer))


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?")
_NOT_FINITE = re.compile(r"[+-]?(inf|infinity|nan|∞)")
MAX_ANSWER_CHARS = 40  # an answer asks for a few decimals; 5,000 digits read as infinity and were graded


def parse_answer(text: str) -> float:
    """The learner's typed number: ``-1.234``, ``−1,234`` (a decimal comma), ``1.2e-3``, full-width
    digits. UserError for anything else: ``exercises.answer_too_long`` (more than MAX_ANSWER_CHARS
    characters), ``exercises.answer_not_finite`` (infinity, NaN, or a number too large for a float: every
    spelling alike), ``exercises.bad_number`` (not a number)."""
    raw = str(text or "")
    shown = raw.strip()[:MAX_ANSWER_CHARS] + ("…" if len(raw.strip()) > MAX_ANSWER_CHARS else "")
    s = raw.strip().translate(str.maketrans("０１２３４５６７８９．，－＋　", "0123456789.,-+ "))  # noqa: RUF001 - full-width input
    s = s.replace("−", "-").replace("–", "-").replace(" ", "").lower()
    if len(s) > MAX_ANSWER_CHARS:
        raise UserError("exercises.answer_too_long", n=f"{len(s):,}", max=MAX_ANSWER_CHARS)
    if "," in s and "." not in s and s.count(",") == 1:
        s = s.replace(",", ".")
    if _NOT_FINITE.fullmatch(s):
        raise UserError("exercises.answer_not_finite", text=shown)
    if not _NUMBER.fullmatch(s):
        raise UserError("exercises.bad_number", text=shown)
    value = float(s)
    if not math.isfinite(value):
        raise UserError("exercises.answer_not_finite", text=shown)
    return value


@dataclass
class ExerciseProgress:
    """Which exercises the learner tried and got right (kept in the browser session)."""

    tries: dict[str, int] = field(default_factory=dict)
    right: set[str] = field(default_factory=set)

    def record(self, exercise_id: str, correct: bool) -> None:
        self.tries[exercise_id] = self.tries.get(exercise_id, 0) + 1
        if correct:
            self.right.add(exercise_id)

    def state(self, exercise_id: str) -> str:
        """``right``, ``tried`` (only wrong answers so far) or ``new``."""
        if exercise_id in self.right:
            return "right"
        return "tried" if exercise_id in self.tries else "new"

    def done(self, ids: list[str]) -> int:
        return sum(i in self.right for i in ids)


# --------------------------------------------------------------------------------- the exercises
def _sum_exercise(kind: str, layer: int, lt: LayerTrace, where: tuple[int, ...], answer_symbol: str, formula: str,
                  ws: np.ndarray, vs: np.ndarray, labels: list[str], w_syms: list[str], v_syms: list[str],
                  bias: float | None, b_sym: str, expected: float, k: int, note: str = "",
                  note_params: tuple[tuple[str, str], ...] = ()) -> Exercise:
    """z = Σ w·v + b with the k largest |w·v| shown, the rest as one number."""
    ws, vs = ws.astype(np.float64), vs.astype(np.float64)
    products = ws * vs
    n = len(products)
    shown = np.arange(n) if n <= SHOW_ALL else np.argsort(-np.abs(products), kind="stable")[:k]
    factors = tuple(Factor(labels[i], given(w_syms[i], ws[i]), given(v_syms[i], vs[i]))
                    for i in shown)
    mask = np.ones(n, dtype=bool)
    mask[shown] = False
    rest = given(r"\textstyle\sum_{\text{rest}}", float(products[mask].sum())) if mask.any() else None
    extras = (given(b_sym, bias),) if bias is not None else ()
    decimals = decimals_for(expected)
    chain = _Chain(decimals)
    for f in factors:
        chain.product(f, "exercises.step_term")
    if rest is not None:
        chain.add(rest, "exercises.step_rest", n=str(n - len(factors)))
    for g in extras:
        chain.add(g, "exercises.step_bias")
    numbers = 2 * len(factors) + (rest is not None) + len(extras)
    tol = Tolerance(chain.bound, 0.5 * 10.0 ** -decimals, RELATIVE, numbers)
    return Exercise(
        id=f"{kind}:{lt.name}:{','.join(map(str, where))}", kind=kind, layer=layer, layer_name=lt.name, where=where,
        activation=lt.activation, answer_symbol=answer_symbol, formula=formula, factors=factors, n_terms=n,
        rest=rest, extras=extras, steps=tuple(chain.steps), expected=float(expected), decimals=decimals,
        tolerance=tol, note=note, note_params=note_params,
    )


def _activation_exercise(kind: str, layer: int, lt: LayerTrace, where: tuple[int, ...], z: float, a: float,
                         z_sym: str, a_sym: str) -> Exercise:
    zg = given(z_sym, z)
    decimals = decimals_for(a)
    chain = _Chain(decimals)
    chain.start(zg, "exercises.step_start")
    chain.apply(lt.activation, "exercises.step_apply")
    f_tex = ACTIVATIONS[lt.activation].latex
    return Exercise(
        id=f"{kind}:{lt.name}:{','.join(map(str, where))}", kind=kind, layer=layer, layer_name=lt.name, where=where,
        activation=lt.activation, answer_symbol=a_sym, formula=rf"{a_sym} = {f_tex}({z_sym})", factors=(), n_terms=0,
        rest=None, extras=(zg,), steps=tuple(chain.steps), expected=float(a), decimals=decimals,
        tolerance=Tolerance(chain.bound, 0.5 * 10.0 ** -decimals, RELATIVE, 1),
    )


def _dense_unit(tr: Trace, h: int) -> int:
    """The neuron of block ``h`` the exercises follow: the largest |δ| (it has a gradient to compute),
    else the largest |a|."""
    lt = tr.layers[h]
    if np.any(lt.delta != 0):
        return int(np.argmax(np.abs(lt.delta)))
    return int(np.argmax(np.abs(lt.a)))


def _conv_exercises(tr: Trace, spec: ModelSpec, i: int, k: int) -> list[Exercise]:
    """One output position of the first convolutional block: z = Σ patch ⊙ kernel + b, then a = f(z)."""
    lt = tr.layers[i]
    layer = spec.layers[i]
    x = tr.layer_input(i)  # [C, H, W]
    weight = lt.weight
    assert weight is not None
    c, y, col = (int(v) for v in np.unravel_index(int(np.argmax(lt.z)), lt.z.shape))
    in_ch, kh, kw = weight.shape[1:]
    stride, pad = layer.stride, layer.padding
    vals, ws, labels, syms, ksyms = [], [], [], [], []
    for ci in range(in_ch):
        for dy in range(kh):
            for dx in range(kw):
                r, s = y * stride - pad + dy, col * stride - pad + dx
                inside = 0 <= r < x.shape[1] and 0 <= s < x.shape[2]
                vals.append(float(x[ci, r, s]) if inside else 0.0)
                ws.append(float(weight[c, ci, dy, dx]))
                label = f"{r},{s}" if in_ch == 1 else f"{ci},{r},{s}"
                labels.append(label)
                syms.append(f"a_{{{label}}}")
                ksyms.append(f"K_{{{dy},{dx}}}" if in_ch == 1 else f"K_{{{ci},{dy},{dx}}}")
    where = (c, y, col)
    z_sym = f"z_{{{c},{y},{col}}}"
    r0, s0 = y * stride - pad, col * stride - pad
    if in_ch == 1:
        formula = rf"{z_sym} = \sum_{{u,v}} K_{{u,v}}\, a_{{{r0}+u,\,{s0}+v}} + b_{{{c}}}"
    else:
        formula = rf"{z_sym} = \sum_{{c',u,v}} K_{{c',u,v}}\, a_{{c',\,{r0}+u,\,{s0}+v}} + b_{{{c}}}"
    bias = None if lt.bias is None else float(lt.bias[c])
    first = i == 0
    z_ex = _sum_exercise("conv_z", i, lt, where, z_sym, formula, np.array(ws), np.array(vals), labels,
                         ksyms, syms, bias, f"b_{{{c}}}", float(lt.z[c, y, col]), k,
                         note="exercises.note_pixels" if first else "")
    a_ex = _activation_exercise("conv_a", i, lt, where, float(lt.z[c, y, col]), float(lt.a[c, y, col]),
                                z_sym, f"a_{{{c},{y},{col}}}")
    return [z_ex, a_ex] if lt.activation != "identity" else [z_ex]


def _dense_forward(tr: Trace, h: int, j: int, k: int) -> list[Exercise]:
    lt = tr.layers[h]
    w = lt.weight
    assert w is not None
    a_prev = tr.layer_input(h)
    labels = [str(i) for i in range(len(a_prev))]
    z_sym = f"z_{{{j}}}"
    formula = rf"{z_sym} = \sum_{{i}} w_{{{j},i}}\, a_i + b_{{{j}}}"
    bias = None if lt.bias is None else float(lt.bias[j])
    note = "exercises.note_pixels" if h == 0 else "exercises.note_prev"
    z_ex = _sum_exercise("z", h, lt, (j,), z_sym, formula, w[j], a_prev, labels, [f"w_{{{j},{i}}}" for i in labels],
                         [f"a_{{{i}}}" for i in labels], bias, f"b_{{{j}}}", float(lt.z[j]), k, note=note,
                         note_params=(("prev", tr.layers[h - 1].name if h > 0 else ""),))
    out = [z_ex]
    if lt.activation != "identity":
        out.append(_activation_exercise("a", h, lt, (j,), float(lt.z[j]), float(lt.a[j]), z_sym, f"a_{{{j}}}"))
    return out


def _delta_exercise(tr: Trace, h: int, j: int, k: int) -> Exercise:
    """δ_j = (Σ_k w_kj δ_k) · f'(z_j) for neuron j of block h, whose next block (h + 1) is dense."""
    lt, nxt = tr.layers[h], tr.layers[h + 1]
    w = nxt.weight
    assert w is not None
    labels = [str(i) for i in range(nxt.units)]
    d_sym = rf"\delta_{{{j}}}"
    d_next = rf"\delta^{{\mathrm{{{nxt.name}}}}}"
    fprime = float(ACTIVATIONS[lt.activation].derivative(torch.tensor([float(lt.z[j])], dtype=torch.float64))[0])
    ws, ds = w[:, j].astype(np.float64), nxt.delta.astype(np.float64)
    products = ws * ds
    n = len(products)
    shown = np.arange(n) if n <= SHOW_ALL else np.argsort(-np.abs(products), kind="stable")[:k]
    factors = tuple(Factor(labels[i], given(f"w_{{{labels[i]},{j}}}", ws[i]), given(rf"{d_next}_{{{labels[i]}}}", ds[i]))
                    for i in shown)
    mask = np.ones(n, dtype=bool)
    mask[shown] = False
    rest = given(r"\textstyle\sum_{\text{rest}}", float(products[mask].sum())) if mask.any() else None
    fp = given(f"f'(z_{{{j}}})", fprime)
    decimals = decimals_for(float(lt.delta[j]))
    chain = _Chain(decimals)
    for f in factors:
        chain.product(f, "exercises.step_term_back")
    if rest is not None:
        chain.add(rest, "exercises.step_rest", n=str(n - len(factors)))
    chain.mul(fp, "exercises.step_fprime", z=fmt(float(lt.z[j]), decimals_for(float(lt.z[j]))))
    numbers = 2 * len(factors) + (rest is not None) + 1
    return Exercise(
        id=f"delta:{lt.name}:{j}", kind="delta", layer=h, layer_name=lt.name, where=(j,), activation=lt.activation,
        answer_symbol=d_sym,
        formula=rf"{d_sym} = \Big(\sum_{{k}} w_{{k,{j}}}\, {d_next}_k\Big)\, f'(z_{{{j}}})",
        factors=factors, n_terms=n, rest=rest, extras=(fp,), steps=tuple(chain.steps),
        expected=float(lt.delta[j]), decimals=decimals,
        tolerance=Tolerance(chain.bound, 0.5 * 10.0 ** -decimals, RELATIVE, numbers),
        note="exercises.note_next", note_params=(("next", nxt.name),),
    )


def _grad_exercise(tr: Trace, h: int, j: int) -> Exercise:
    """∂J/∂w_ji = δ_j · a_i for the input i of block h with the largest |a_i|."""
    lt = tr.layers[h]
    gw = lt.grad_weight
    assert gw is not None
    a_prev = tr.layer_input(h).astype(np.float64).reshape(-1)
    i = int(np.argmax(np.abs(a_prev)))
    dg, ag = given(rf"\delta_{{{j}}}", float(lt.delta[j])), given(f"a_{{{i}}}", float(a_prev[i]))
    expected = float(gw[j, i])
    decimals = decimals_for(expected)
    chain = _Chain(decimals)
    chain.start(dg, "exercises.step_start")
    chain.mul(ag, "exercises.step_times")
    sym = rf"\frac{{\partial J}}{{\partial w_{{{j},{i}}}}}"
    return Exercise(
        id=f"grad:{lt.name}:{j},{i}", kind="grad", layer=h, layer_name=lt.name, where=(j, i), activation=lt.activation,
        answer_symbol=sym, formula=rf"{sym} = \delta_{{{j}}}\, a_{{{i}}}", factors=(), n_terms=0, rest=None,
        extras=(dg, ag), steps=tuple(chain.steps), expected=expected, decimals=decimals,
        tolerance=Tolerance(chain.bound, 0.5 * 10.0 ** -decimals, RELATIVE, 2),
        note="exercises.note_pixels" if h == 0 else "exercises.note_prev",
        note_params=(("prev", tr.layers[h - 1].name if h > 0 else ""),),
    )


def exercises(tr: Trace, spec: ModelSpec, unit: int | None = None, k: int = TOP_K) -> list[Exercise]:
    """The exercises of one traced input, forward first, then backward.

    A convolutional network starts with one output position of its first convolutional block. Then
    one neuron of the last dense hidden layer (``unit``, default: the largest |δ|): its z, its a, its δ,
    and ∂J/∂w for its largest input. A network without a dense hidden layer gets the output layer's
    z of the target class and ∂J/∂w of that row instead. Recurrent blocks are not covered.
    """
    layers = tr.layers
    out: list[Exercise] = []
    convs = [i for i, lt in enumerate(layers[:-1]) if lt.weight is not None and lt.weight.ndim == 4]
    if convs:
        out += _conv_exercises(tr, spec, convs[0], k)
    h = len(layers) - 2
    if h >= 0 and layers[h].kind == DENSE and LAYER_KINDS[layers[h].kind].fully_connected:
        j = _dense_unit(tr, h) if unit is None else int(unit) % layers[h].units
        out += _dense_forward(tr, h, j, k)
        out.append(_delta_exercise(tr, h, j, k))
        out.append(_grad_exercise(tr, h, j))
    else:
        o = len(layers) - 1
        out += _dense_forward(tr, o, tr.target, k)
        out.append(_grad_exercise(tr, o, tr.target))
    return out
