"""Guess, then run: questions about training that a short real run answers from its own measurements.

Each :class:`Question` has its answer choices, the run(s) that decide it (:class:`RunPlan`: a model, its
training settings, how often the probe measures) and a function that reads the finished runs'
numbers (:class:`Outcome`: status, losses, epoch accuracies, probe statistics) and returns the
:class:`Answer`: the choice the runs bear out and an explanation with the measured numbers. No
answer is stored anywhere: change a run's settings and the answer follows the measurements.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlplay.nn.presets import PRESETS
from dlplay.nn.spec import ModelSpec, TrainConfig, dense_spec
from dlplay.run.status import Status

if TYPE_CHECKING:
    from dlplay.classify.handle import RunHandle
    from dlplay.classify.probe import ProbeSnapshot
    from dlplay.run.metrics import EpochRecord

BLOW_UP = 10.0  # the loss rose above this many times its first value: it blew up
CHANCE_MARGIN = 0.05  # test accuracy within this of 1/classes: the network learned nothing
EVEN = 3.0  # per-layer gradient norms within this factor of each other: about the same everywhere
TIE = 0.01  # test accuracies closer than this (one percentage point) count as the same


@dataclass(frozen=True)
class RunPlan:
    """One run a question starts."""

    name: str  # translation key of the run's name (guesses.run_*)
    spec: ModelSpec
    config: TrainConfig
    probe_every: int | None = None  # steps between probe measurements (None: the session's setting)


@dataclass(frozen=True)
class Outcome:
    """What a finished run measured (read through its handle)."""

    status: str
    losses: np.ndarray
    steps: np.ndarray
    epochs: tuple[EpochRecord, ...]
    probe: ProbeSnapshot | None
    num_classes: int
    layer_names: tuple[str, ...] = ()

    @property
    def test_acc(self) -> float:
        return self.epochs[-1].test_acc if self.epochs else float("nan")


def outcome_of(run: RunHandle) -> Outcome:
    snap = run.snapshot()
    probe = run.probe_snapshot()
    names = tuple(layer.name for layer in probe.layers) if probe is not None else ()
    return Outcome(status=str(run.status), losses=np.asarray(snap.losses, dtype=np.float64),
                   steps=np.asarray(snap.steps), epochs=tuple(snap.epochs), probe=probe,
                   num_classes=run.spec.num_classes, layer_names=names)


@dataclass(frozen=True)
class Answer:
    """The choice the runs bear out, and why: ``key`` is the explanation's translation key."""

    choice: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Question:
    key: str  # guesses.<key>.question, guesses.<key>.choice_<choice>, guesses.<key>.setup
    choices: tuple[str, ...]
    plans: tuple[RunPlan, ...]
    answer: Callable[[Sequence[Outcome]], Answer]


# --------------------------------------------------------------------------------- answers
def loss_answer(outcomes: Sequence[Outcome]) -> Answer:
    """blows_up: NaN (the run diverged) or a loss above BLOW_UP × its start; stuck: no better than
    chance on the test set; learns: otherwise."""
    (o,) = outcomes
    losses = o.losses
    start = float(losses[0]) if len(losses) else float("nan")
    finite = losses[np.isfinite(losses)]
    peak = float(finite.max()) if len(finite) else float("nan")
    peak_step = int(o.steps[int(np.argmax(np.where(np.isfinite(losses), losses, -np.inf)))]) if len(finite) else 0
    chance = 1.0 / o.num_classes
    params: dict[str, Any] = {"start": f"{start:.3g}", "peak": f"{peak:.3g}", "peak_step": peak_step,
                              "factor": f"{peak / start:.3g}" if start > 0 else "?", "blow_up": f"{BLOW_UP:g}",
                              "acc": f"{o.test_acc:.1%}", "chance": f"{chance:.0%}"}
    if o.status == Status.DIVERGED or not np.all(np.isfinite(losses)):
        return Answer("blows_up", "guesses.lr.why_nan", params)
    if peak > BLOW_UP * start:
        return Answer("blows_up", "guesses.lr.why_peak", params)
    if not o.test_acc > chance + CHANCE_MARGIN:
        return Answer("stuck", "guesses.lr.why_stuck", params)
    return Answer("learns", "guesses.lr.why_learns", params)


def grad_norms(o: Outcome) -> np.ndarray:
    """Per layer, the median ‖∂J/∂W‖ over every probe of the run."""
    if o.probe is None or not len(o.probe.steps):
        raise ValueError("the run has no probe measurements")
    return o.probe.recent("grad_w", window=len(o.probe.steps))


def smallest_grad_answer(outcomes: Sequence[Outcome]) -> Answer:
    """Where the smallest ‖∂J/∂W‖ (the probe's, median over the run, as the Dynamics page shows it) is:
    on the input side (the first half of the layers), on the output side, or nowhere much (the largest
    is less than EVEN times the smallest)."""
    (o,) = outcomes
    norms = grad_norms(o)
    n = len(norms)
    smallest, largest = int(np.nanargmin(norms)), int(np.nanargmax(norms))
    ratio = norms[largest] / norms[smallest] if norms[smallest] > 0 else math.inf
    if ratio < EVEN:  # noqa: SIM108 - a nested conditional expression would read worse
        choice = "even"
    else:
        choice = "input_side" if smallest <= (n - 1) / 2 else "output_side"
    names = o.layer_names or tuple(f"{i + 1}" for i in range(n))
    listing = ", ".join(f"{name} {v:.2g}" for name, v in zip(names, norms))
    params = {"norms": listing, "smallest": names[smallest], "largest": names[largest], "ratio": f"{ratio:.3g}",
              "even": f"{EVEN:g}", "probes": int(o.probe.probes) if o.probe is not None else 0}
    return Answer(choice, f"guesses.grad.why_{choice}", params)


def race_answer(outcomes: Sequence[Outcome]) -> Answer:
    """The wide run (first) against the deep one (second): the higher test accuracy after the last
    epoch wins; closer than TIE is a tie."""
    wide, deep = outcomes
    a, b = wide.test_acc, deep.test_acc
    params = {"wide": f"{a:.1%}", "deep": f"{b:.1%}", "diff": f"{abs(a - b) * 100:.1f}", "tie": f"{TIE * 100:g}",
              "epochs": len(wide.epochs)}
    if not (math.isfinite(a) and math.isfinite(b)):
        return Answer("tie", "guesses.race.why_failed", params)
    if abs(a - b) < TIE:
        return Answer("tie", "guesses.race.why_tie", params)
    return Answer("wide" if a > b else "deep", "guesses.race.why_win", params)


# --------------------------------------------------------------------------------- the questions
LR_RUN = TrainConfig(optimizer="adam", lr=3.0, batch_size=64, epochs=1, train_size=2000)
GRAD_RUN = TrainConfig(optimizer="sgd", lr=0.1, batch_size=32, epochs=1, train_size=1000)
RACE_RUN = TrainConfig(optimizer="adam", lr=1e-3, batch_size=32, epochs=2, train_size=2000)

QUESTIONS: dict[str, Question] = {
    q.key: q for q in (
        Question("lr", ("blows_up", "stuck", "learns"),
                 (RunPlan("guesses.run_lr", PRESETS["tutorial"].spec, LR_RUN),), loss_answer),
        Question("grad", ("input_side", "output_side", "even"),
                 (RunPlan("guesses.run_grad", dense_spec([64] * 6, "sigmoid"), GRAD_RUN, probe_every=5),),
                 smallest_grad_answer),
        Question("race", ("wide", "deep", "tie"),
                 (RunPlan("guesses.run_wide", PRESETS["wide_shallow"].spec, RACE_RUN),
                  RunPlan("guesses.run_deep", PRESETS["narrow_deep"].spec, RACE_RUN)), race_answer),
    )
}


def answer(question: Question, runs: Sequence[RunHandle]) -> Answer:
    """The question's answer from the finished runs' own measurements."""
    return question.answer([outcome_of(r) for r in runs])


@dataclass
class Tally:
    """The learner's guesses in this session: question key -> list of (guess, right)."""

    guesses: list[tuple[str, str, bool]] = field(default_factory=list)  # (question, guess, right)

    def record(self, question: str, guess: str, right: bool) -> None:
        self.guesses.append((question, guess, right))

    @property
    def right(self) -> int:
        return sum(r for _, _, r in self.guesses)

    @property
    def total(self) -> int:
        return len(self.guesses)
