"""Training callbacks (dlplay.classify.callbacks): the no-op base class, the callbacks that subclass it, and a
session calling every hook in order (an object with only some hooks still works: the hooks are looked
up by name). Plus the habit of issue 14: the core type-checks with no module excused."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from dlplay.classify.callbacks import TrainingCallback
from dlplay.classify.probe import Probe
from dlplay.classify.runs import RunHistory, RunRecorder
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import train_to_end

REPO = Path(__file__).resolve().parents[1]
HOOKS = ("on_start", "after_backward", "after_step", "on_sync", "on_epoch_end", "on_end")


class Counting(TrainingCallback):
    """Counts each hook's calls (overrides all six) and remembers the order of the first calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.order: list[str] = []
        self.steps: list[int] = []

    def _seen(self, hook: str) -> None:
        if hook not in self.calls:
            self.order.append(hook)
        self.calls[hook] += 1

    def on_start(self, session):
        self._seen("on_start")

    def after_backward(self, session, step):
        self._seen("after_backward")

    def after_step(self, session, step):
        self._seen("after_step")
        self.steps.append(step)

    def on_sync(self, session):
        self._seen("on_sync")

    def on_epoch_end(self, session, record):
        self._seen("on_epoch_end")
        assert record.epoch == self.calls["on_epoch_end"]

    def on_end(self, session):
        self._seen("on_end")


class OnlyEnd:
    """A duck-typed callback with one hook (not a TrainingCallback)."""

    def __init__(self) -> None:
        self.ended = 0

    def on_end(self, session):
        self.ended += 1


def test_the_base_class_hooks_do_nothing_and_the_callbacks_subclass_it():
    base = TrainingCallback()
    assert all(callable(getattr(base, hook)) for hook in HOOKS)
    assert base.on_start(None) is None
    assert base.after_step(None, 1) is None
    assert base.on_end(None) is None
    assert isinstance(Probe(), TrainingCallback)
    assert isinstance(RunRecorder(RunHistory(limit=5)), TrainingCallback)


def test_a_run_calls_every_hook_in_order_and_a_partial_callback_still_works(mnist):
    config = TrainConfig(epochs=2, batch_size=100, train_size=500, seed=0)
    counting, only_end, bare = Counting(), OnlyEnd(), TrainingCallback()
    session = train_to_end(mnist, dense_spec([8]), config, callbacks=[counting, only_end, bare], engine="autograd",
                           sync_every=2, timeout=120)
    total = session.total_steps
    assert total == 10
    assert counting.order == ["on_start", "after_backward", "after_step", "on_sync", "on_epoch_end", "on_end"]
    assert counting.calls["on_start"] == counting.calls["on_end"] == 1
    assert counting.calls["after_backward"] == counting.calls["after_step"] == total
    assert counting.steps == list(range(1, total + 1))
    assert counting.calls["on_epoch_end"] == 2
    assert 5 <= counting.calls["on_sync"] <= total  # a sync every 2 steps (and at each epoch's end)
    assert only_end.ended == 1


def test_no_core_module_is_excused_from_mypy():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert "[tool.mypy]" in text
    assert "ignore_errors" not in text
