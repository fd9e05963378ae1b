"""Plain-language hints from the probe's statistics: dead units, saturation, vanishing or exploding
gradients, update sizes. Pure functions over a ProbeSnapshot; thresholds are module constants.

Every hint looks at the median of the last ``window`` recorded probes, so one odd batch does not
raise (or clear) a hint.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlplay.classify.probe import M, ProbeSnapshot
from dlplay.i18n import layer_name, translate
from dlplay.nn.activations import ACTIVATIONS
from dlplay.nn.optimizers import lr_factor
from dlplay.nn.sequences import gradient_factor
from dlplay.run.metrics import EpochRecord

LAYER_PARAMS = ("layer", "first", "last")  # parameters that name a block ("output" is translated)

WINDOW = 5  # recent probes whose median a hint looks at
DEAD_FRACTION = 0.5  # a ReLU-family layer with at least this share of dead units
SATURATED_FRACTION = 0.5  # a sigmoid/tanh layer with at least this share of saturated activations
VANISHING_FACTOR = 100.0  # δ at the output layer / δ at the first layer
EXPLODING_FACTOR = 100.0  # δ at the first layer / δ at the output layer
UPDATE_RATIO_HIGH = 0.1  # any layer: each step moves the weights by 10% of their norm or more
UPDATE_RATIO_LOW = 1e-4  # every layer below this: the weights hardly move
HEALTHY_UPDATE_RATIO = 1e-3  # the usual rule of thumb for ‖ΔW‖ / ‖W‖ per step
HEALTHY_UPDATE_BAND = (1e-4, 1e-2)  # drawn around it in the update-ratio chart
ANNEALED_SHARE = 0.1  # a schedule that has lowered the rate below this share of the chosen one: small steps are planned

@dataclass(frozen=True)
class Hint:
    """One observation: a translation key with parameters; ``level`` is "warning" or "info"."""

    key: str
    params: tuple[tuple[str, Any], ...] = ()
    level: str = "warning"
    layer: str | None = None

    def text(self, lang: str = "en") -> str:
        params = {k: layer_name(v, lang) if k in LAYER_PARAMS else v for k, v in self.params}
        return translate(self.key, lang, **params)


def activation_text(name: str) -> str:
    """The display name of an activation ("ReLU", "Leaky ReLU"): the same words in every language."""
    return translate(ACTIVATIONS[name].key)


def format_factor(x: float) -> str:
    """A ratio for people: two significant digits, thousands separated (81712 -> "82,000")."""
    if not math.isfinite(x):
        return "∞"
    return f"{float(f'{x:.2g}'):,.0f}" if x >= 10 else f"{x:.1f}"


def dead_unit_hints(snap: ProbeSnapshot, window: int = WINDOW) -> list[Hint]:
    """ReLU-family layers where at least DEAD_FRACTION of the units never fire on the probe images."""
    dead = snap.recent("dead", window)
    hints = []
    for meta, frac in zip(snap.layers, dead):
        if meta.relu_family and np.isfinite(frac) and frac >= DEAD_FRACTION:
            hints.append(Hint("dynamics.hint_dead", (("layer", meta.name), ("pct", round(100 * frac)),
                                                     ("activation", activation_text(meta.activation))),
                              layer=meta.name))
    return hints


def saturation_hints(snap: ProbeSnapshot, window: int = WINDOW) -> list[Hint]:
    """Sigmoid/tanh layers where at least SATURATED_FRACTION of the activations sit near the limits."""
    sat = snap.recent("saturated", window)
    hints = []
    for meta, frac in zip(snap.layers, sat):
        if meta.saturating and np.isfinite(frac) and frac >= SATURATED_FRACTION:
            hints.append(Hint("dynamics.hint_saturated", (("layer", meta.name), ("pct", round(100 * frac)),
                                                          ("activation", activation_text(meta.activation))),
                              layer=meta.name))
    return hints


def share_notes(snap: ProbeSnapshot | None, window: int = WINDOW) -> list[Hint]:
    """When no dead-unit or saturation hint fires: the largest share in any layer, and the share from
    which a hint appears (the dashed line of the dead-units chart), so the text and the chart agree."""
    if snap is None or len(snap.steps) == 0:
        return []
    notes = []
    for metric, family, key, limit in (("dead", "relu_family", "dynamics.note_dead", DEAD_FRACTION),
                                       ("saturated", "saturating", "dynamics.note_saturated", SATURATED_FRACTION)):
        shares = [(frac, meta.name) for meta, frac in zip(snap.layers, snap.recent(metric, window))
                  if getattr(meta, family) and np.isfinite(frac)]
        if shares:
            frac, name = max(shares)
            if frac < limit:
                notes.append(Hint(key, (("layer", name), ("pct", round(100 * frac)), ("limit", round(100 * limit))),
                                  level="info", layer=name))
    return notes


def gradient_flow_hint(snap: ProbeSnapshot, window: int = WINDOW) -> Hint | None:
    """Vanishing or exploding gradients: δ = ∂L/∂z at the output layer vs at the first layer."""
    if len(snap.layers) < 2:
        return None
    delta = snap.recent("delta", window)
    first, last = delta[0], delta[-1]
    if not (np.isfinite(first) and np.isfinite(last)):
        return None
    names = (("first", snap.layers[0].name), ("last", snap.layers[-1].name))
    if first <= 0 or last / first >= VANISHING_FACTOR:
        factor = last / first if first > 0 else math.inf
        return Hint("dynamics.hint_vanishing", (("factor", format_factor(factor)), *names))
    if last <= 0 or first / last >= EXPLODING_FACTOR:
        factor = first / last if last > 0 else math.inf
        return Hint("dynamics.hint_exploding", (("factor", format_factor(factor)), *names))
    return None


def time_gradient_hint(grads: np.ndarray | None) -> Hint | None:
    """Vanishing gradient through time: ‖∂L/∂h_t‖ at the last step vs at the first (a recurrent network's
    probe); an info hint when the gradient reaches the first step within VANISHING_FACTOR."""
    if grads is None or len(grads) < 2 or not np.all(np.isfinite(grads)):
        return None
    factor = gradient_factor(grads)
    params = (("factor", format_factor(factor)), ("steps", len(grads)))
    if factor >= VANISHING_FACTOR:
        return Hint("dynamics.hint_vanishing_time", params)
    return Hint("dynamics.hint_time_ok", params, level="info")


def non_finite_hint(snap: ProbeSnapshot, window: int = WINDOW) -> Hint | None:
    """Any gradient or weight norm that is NaN or infinite in the recent probes."""
    if len(snap.steps) == 0:
        return None
    tail = snap.values[-window:]
    for metric in ("grad_w", "weight_norm"):
        if not np.all(np.isfinite(tail[:, :, M[metric]])):
            return Hint("dynamics.hint_not_finite")
    return None


def update_ratio_hints(snap: ProbeSnapshot, window: int = WINDOW, lr_share: float | None = None) -> list[Hint]:
    """Steps that are too large for a layer's weights, or so small that no layer really moves.

    ``lr_share``: the learning-rate schedule's factor at the probe's step (``optimizers.lr_factor``: the
    planned rate as a share of the chosen one). Below ANNEALED_SHARE small steps are the schedule's plan
    (the end of a cosine schedule), so they are an observation, not "the learning rate is too low" --
    unless they would be too small at the chosen rate as well."""
    ratio = snap.recent("update_ratio", window)
    finite = np.isfinite(ratio)
    if not finite.any():
        return []
    hints = []
    for meta, r in zip(snap.layers, ratio):
        if np.isfinite(r) and r >= UPDATE_RATIO_HIGH:
            hints.append(Hint("dynamics.hint_update_high", (("layer", meta.name), ("ratio", f"{r:.2g}")),
                              layer=meta.name))
    if np.all(ratio[finite] < UPDATE_RATIO_LOW):
        top = ("ratio", f"{float(np.max(ratio[finite])):.1e}")
        if lr_share is not None and 0 < lr_share < ANNEALED_SHARE and float(np.max(ratio[finite])) / lr_share >= UPDATE_RATIO_LOW:
            hints.append(Hint("dynamics.hint_update_annealed", (top, ("share", f"{lr_share:.1%}")), level="info"))
        else:
            hints.append(Hint("dynamics.hint_update_low", (top,)))
    return hints


def find_hints(snap: ProbeSnapshot | None, window: int = WINDOW, lr_share: float | None = None) -> list[Hint]:
    """All hints for the latest probes, most fundamental first (an empty list: nothing stands out).

    Dead units explain a missing gradient and tiny steps by themselves, so while a dead-unit hint
    is shown, "vanishing gradients" and "steps too small" (both would point to the wrong remedy)
    are not. ``lr_share``: see :func:`update_ratio_hints`.
    """
    if snap is None or len(snap.steps) == 0:
        return []
    bad = non_finite_hint(snap, window)
    if bad is not None:
        return [bad]
    dead = dead_unit_hints(snap, window)
    saturated = saturation_hints(snap, window)
    hints: list[Hint] = []
    flow = gradient_flow_hint(snap, window)
    if flow is not None and not (dead and flow.key == "dynamics.hint_vanishing"):
        hints.append(flow)
    hints += dead + saturated
    through_time = time_gradient_hint(snap.time_grad)
    if through_time is not None and through_time.level == "warning":
        hints.append(through_time)
    for hint in update_ratio_hints(snap, window, lr_share):
        if hint.key not in ("dynamics.hint_update_low", "dynamics.hint_update_annealed") or not (dead or saturated):
            hints.append(hint)
    return hints


def schedule_share(schedule: str, snap: ProbeSnapshot | None, total_steps: int, window: int = WINDOW) -> float:
    """The planned learning rate as a share of the chosen one (1.0 for a constant rate) at the median step of
    the probes the hints look at (see ProbeSnapshot.recent)."""
    if snap is None or len(snap.steps) == 0:
        return 1.0
    return lr_factor(schedule, max(1, int(np.median(snap.steps[-window:]))), total_steps)


# ------------------------------------------------------------------ overfitting (per-epoch records)
OVERFIT_RISE = 0.02  # the latest validation loss this share above its lowest value
OVERFIT_EPOCHS = 2  # at least this many epochs since the lowest validation loss


def overfitting_since(epochs: Sequence[EpochRecord], rise: float = OVERFIT_RISE,
                      wait: int = OVERFIT_EPOCHS) -> int | None:
    """The first epoch after the validation loss's lowest point, when at least ``wait`` epochs have
    passed since, the validation loss rose (the latest is more than ``rise`` above the lowest) and the
    training loss kept falling (the latest is below its value at that point); None otherwise, or
    without a validation split. One noisy epoch neither raises nor clears it."""
    rows = [(e, e.val_loss) for e in epochs if e.val_loss is not None and math.isfinite(e.val_loss)]
    if len(rows) < 2:
        return None
    best, lowest = min(rows, key=lambda row: row[1])
    last, latest = rows[-1]
    if last.epoch - best.epoch < wait or latest <= lowest * (1 + rise) or last.train_loss >= best.train_loss:
        return None
    return best.epoch + 1


def overfitting_hint(epochs: Sequence[EpochRecord]) -> Hint | None:
    """"Overfitting since epoch N": the validation loss rises while the training loss falls."""
    since = overfitting_since(epochs)
    if since is None:
        return None
    rows = [e for e in epochs if e.val_loss is not None]
    last = rows[-1]
    gap = last.train_acc - (last.val_acc if last.val_acc is not None else last.train_acc)
    return Hint("validation.hint_overfitting", (("epoch", since), ("gap", gap)))
