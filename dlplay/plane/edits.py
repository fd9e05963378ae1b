"""One hand edit of a plane run's weights, as the run's history of edits keeps it (a plain record: the run
and the editor, dlplay/plane/edit.py, both name it, so it lives apart from both)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlaneEdit:
    """One hand edit at ``epoch``: dense layer ``layer`` (0 = the first hidden layer; the last one is the
    output), neuron ``unit``, input ``index`` (None: the bias), ``old`` → ``new``."""

    epoch: int
    layer: int
    unit: int
    index: int | None
    old: float
    new: float

    @property
    def key(self) -> str:
        """The entry's state-dict key (build_network's Sequential: dense layers at even positions)."""
        return f"{2 * self.layer}.{'bias' if self.index is None else 'weight'}"
