"""CUDA graphs of the training step (dlplay.run.cudagraph), checked on the CPU through its backend seam.

No GPU here: a real TrainingSession trains on the MNIST sample with ``StandInGraphs``, the CPU stand-in
for CUDA graphs — capture remembers the step's closure without running it, replay calls it again,
outputs are overwritten by each replay, and every replay must touch the memory the first one did
(else ``StaleGraph``). Everything but CUDA itself runs: warm-up, capture, the static buffers, the
cloned outputs, the learning rate read from a tensor, the callbacks between the two graphs, eager
fallbacks (an epoch's smaller last batch, the probe's steps), a new capture when tensors move.

Same seed, same batches, same dropout masks (the stand-in draws them in the eager order, from the
same generator): a graphed run must equal the eager run exactly, weights, losses and probe readings.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch

from dlplay.classify.callbacks import TrainingCallback
from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from dlplay.run import cudagraph
from dlplay.run.cudagraph import GraphedStep, StandInGraphs

# 1000 images in batches of 32: 31 full batches and one of 8 per epoch, 6 epochs = 192 steps
CONFIG = TrainConfig(epochs=6, train_size=1000, batch_size=32, seed=3, schedule="cosine", val_share=0.0)
SPEC = dense_spec([32], "relu", dropout=0.2)


def run(mnist: Any, graphs: Any, *, spec: ModelSpec = SPEC, config: TrainConfig = CONFIG, engine: str = "auto",
        callbacks: tuple = (), probe: bool = True) -> TrainingSession:
    session = TrainingSession(spec, config, mnist, "cpu", engine=engine, cuda_graph=graphs,
                              callbacks=[*([Probe(every=20)] if probe else []), *callbacks])
    session.start()
    assert session.join(120)
    return session


def same_run(a: TrainingSession, b: TrainingSession) -> bool:
    """Bitwise the same weights and buffers, losses at every step and probe readings."""
    sa, sb = a.state_dict(), b.state_dict()
    weights = sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    losses = np.array_equal(a.snapshot().losses, b.snapshot().losses)
    pa, pb = a.probe_snapshot(), b.probe_snapshot()
    probes = (pa is None) == (pb is None) and (pa is None or np.array_equal(pa.values, pb.values, equal_nan=True))
    return weights and losses and probes


@pytest.mark.parametrize("engine", ["auto", "autograd"])
def test_a_graphed_run_trains_exactly_as_the_eager_run(mnist, engine):
    eager = run(mnist, "off", engine=engine)
    graphed = run(mnist, StandInGraphs(), engine=engine)
    assert eager.status == graphed.status == "done"
    assert eager.cuda_graph is None
    assert eager.snapshot().progress.cuda_graph == ""
    step = graphed.cuda_graph
    assert isinstance(step, GraphedStep)
    assert graphed.snapshot().progress.cuda_graph == cudagraph.ON
    assert graphed.engine_name == ("dense" if engine == "auto" else "autograd")
    # every step accounted for: 3 warm-ups, then replays, and eager steps for the six 8-image batches
    # and the probe's steps (1, every 20th, the last one: it reads the network through hooks)
    assert step.warmups == cudagraph.WARMUP_STEPS
    assert step.captures == 1
    assert step.warmups + step.replays + step.eager_steps == graphed.total_steps == 192
    probe_steps = set(graphed.probe_snapshot().steps.tolist())
    assert len(probe_steps) == 11
    assert step.eager_steps == len(probe_steps | {32, 64, 96, 128, 160, 192})
    assert same_run(eager, graphed)


def test_probe_steps_run_eagerly_and_the_probe_reads_them(mnist):
    seen: list[tuple[int, int]] = []

    class Watch(TrainingCallback):
        def after_backward(self, session, step):
            seen.append((step, session.cuda_graph.replays))

    graphed = run(mnist, StandInGraphs(), callbacks=(Watch(),), config=TrainConfig(
        epochs=2, train_size=1000, batch_size=32, seed=3, val_share=0.0))
    probe = graphed.probe_snapshot()
    assert list(probe.steps) == [1, 20, 40, 60, 64]
    done = dict(seen)  # replays done before each step
    for s in (20, 40, 60):  # the step before a probe step is a replay, the probe step is not
        assert done[s] == done[s - 1] + 1
        assert done[s + 1] == done[s]
    delta = probe.values[:, :, 6]  # δ: from the engine's own backward pass, on eager steps only
    assert np.isfinite(delta).all()
    assert (delta > 0).all()


def test_a_stale_static_buffer_is_caught(mnist, monkeypatch):
    """The comparison can fail: graphs that keep replaying the captured batch's images (a batch not
    copied into the static input) train differently."""
    filled: set[int] = set()

    def load_images_once(self, graphs, x, y):
        if id(graphs) not in filled:
            filled.add(id(graphs))
            graphs.x.copy_(x)
        graphs.y.copy_(y)

    monkeypatch.setattr(GraphedStep, "_load", load_images_once)
    config = TrainConfig(epochs=1, train_size=320, batch_size=32, seed=3, val_share=0.0)
    eager = run(mnist, "off", config=config, probe=False)
    stale = run(mnist, StandInGraphs(), config=config, probe=False)
    assert stale.status == "done"
    assert stale.cuda_graph.replays == 10 - cudagraph.WARMUP_STEPS
    assert not same_run(eager, stale)


class Rewind(TrainingCallback):
    """At step ``save`` keep the weights (and optimiser state); at ``load`` put them back and go on."""

    def __init__(self, save: int, load: int, optimizer: bool):
        self.save, self.load, self.optimizer = save, load, optimizer

    def after_step(self, session, step):
        if step == self.save:
            self.weights = copy.deepcopy(session.model.state_dict())
            self.opt_state = copy.deepcopy(session.optimizer.state_dict())
        elif step == self.load:
            session.model.load_state_dict(self.weights)  # in place, as early stopping restores
            if self.optimizer:
                session.optimizer.load_state_dict(self.opt_state)  # new state tensors


@pytest.mark.parametrize("engine", ["auto", "autograd"])
def test_restored_state_recaptures_and_training_goes_on(mnist, engine):
    eager = run(mnist, "off", engine=engine, callbacks=(Rewind(50, 100, optimizer=True),))
    graphed = run(mnist, StandInGraphs(), engine=engine, callbacks=(Rewind(50, 100, optimizer=True),))
    assert graphed.status == "done"
    step = graphed.cuda_graph
    assert step.captures == 2
    assert step.warmups == 2 * cudagraph.WARMUP_STEPS  # the moved optimiser state
    assert same_run(eager, graphed)


class Reallocate(TrainingCallback):
    """At step ``at``, copy the optimiser's state tensors to new memory (same values)."""

    def __init__(self, at: int):
        self.at = at

    def after_step(self, session, step):
        if step == self.at:
            for state in session.optimizer.state.values():
                for k, v in state.items():
                    state[k] = v.clone()


def test_a_state_tensor_moved_in_place_recaptures(mnist):
    """(the update, autograd's or the dense engine's, optimizers.make_update, keeps the state tensors it
    started with, with or without graphs: the values agree; the graphs are captured again all the same)"""
    eager = run(mnist, "off", engine="autograd", callbacks=(Reallocate(70),))
    graphed = run(mnist, StandInGraphs(), engine="autograd", callbacks=(Reallocate(70),))
    assert graphed.status == "done"
    assert graphed.cuda_graph.captures == 2
    assert same_run(eager, graphed)


def test_weights_loaded_in_place_need_no_new_capture(mnist):
    """Early stopping's restore loads weights in place: the captured graphs read the same memory."""
    config = TrainConfig(epochs=6, train_size=1000, batch_size=32, seed=3, schedule="cosine", patience=1)
    eager = run(mnist, "off", config=config, callbacks=(Rewind(50, 100, optimizer=False),))
    graphed = run(mnist, StandInGraphs(), config=config, callbacks=(Rewind(50, 100, optimizer=False),))
    assert graphed.status == "done"
    assert graphed.cuda_graph.captures == 1
    assert same_run(eager, graphed)


def test_replaying_after_memory_moved_fails_in_the_stand_in(mnist, monkeypatch):
    """Without the new capture, a replay would update the old optimiser state: the stand-in refuses."""
    monkeypatch.setattr(GraphedStep, "_still_valid", lambda self, graphs: True)
    graphed = run(mnist, StandInGraphs(), callbacks=(Rewind(50, 100, optimizer=True),))
    assert graphed.status == "failed"
    assert "StaleGraph" in dict(graphed.snapshot().progress.message_params)["error"]


def test_a_network_with_batch_norm_keeps_its_buffers(mnist):
    spec = ModelSpec(layers=(LayerSpec("conv2d", 4, "relu", kernel=3, stride=1, padding=1),
                             LayerSpec("batchnorm", 1, "identity"),
                             LayerSpec("maxpool", 1, "identity", kernel=2, stride=2)))
    config = TrainConfig(epochs=1, train_size=400, batch_size=32, seed=3, val_share=0.0)  # 12 steps of 32, one of 16
    eager = run(mnist, "off", spec=spec, config=config, probe=False)
    graphed = run(mnist, StandInGraphs(), spec=spec, config=config, probe=False)
    assert graphed.engine_name == "autograd"
    assert graphed.cuda_graph.replays == 13 - 1 - cudagraph.WARMUP_STEPS
    assert same_run(eager, graphed)  # running mean and variance and the batch counter included


def test_a_failed_capture_leaves_the_run_eager(mnist):
    class Failing(StandInGraphs):
        def capture(self, fn, pool=None):
            raise RuntimeError("operation not permitted when stream is capturing")

    config = TrainConfig(epochs=1, train_size=320, batch_size=32, seed=3, val_share=0.0)
    eager = run(mnist, "off", config=config)
    graphed = run(mnist, Failing(), config=config)
    assert graphed.status == "done"
    assert graphed.cuda_graph.state == cudagraph.OFF_FAILED
    assert "not permitted" in graphed.cuda_graph.error
    assert graphed.snapshot().progress.cuda_graph == cudagraph.OFF_FAILED
    assert graphed.cuda_graph.replays == 0
    assert same_run(eager, graphed)


def test_unsupported_runs_say_why(mnist):
    session = TrainingSession(SPEC, TrainConfig(optimizer="rmsprop"), mnist, "cpu", cuda_graph=StandInGraphs())
    assert session.cuda_graph is None
    assert session.snapshot().progress.cuda_graph == cudagraph.OFF_OPTIMIZER
    lstm = ModelSpec(layers=(LayerSpec("lstm", 8, "identity"),))
    session = TrainingSession(lstm, TrainConfig(), mnist, "cpu", cuda_graph=StandInGraphs())
    assert session.cuda_graph is None
    assert session.snapshot().progress.cuda_graph == cudagraph.OFF_NETWORK


def test_the_cpu_default_is_off(mnist):
    session = TrainingSession(SPEC, TrainConfig(), mnist, "cpu")
    assert session.cuda_graph is None
    assert session.snapshot().progress.cuda_graph == ""
    assert session._train_step == session._engine_step  # the CPU step is the plain one, nothing wrapped
    assert cudagraph.backend_for("auto", torch.device("cpu")) is None
    assert cudagraph.backend_for("off", torch.device("cuda")) is None
    with pytest.raises(ValueError, match="cuda_graph must be"):
        TrainingSession(SPEC, TrainConfig(), mnist, "cpu", cuda_graph="on")


def test_every_state_has_its_line_on_the_train_page():
    from dlplay.i18n import catalog

    for lang in ("en", "zh"):
        texts = catalog(lang)
        for state in (cudagraph.ON, cudagraph.OFF_OPTIMIZER, cudagraph.OFF_NETWORK, cudagraph.OFF_FAILED):
            assert texts.get(f"cudagraph.{state}"), (lang, state)


def train_page_captions(session: TrainingSession, lang: str) -> list[str]:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    at.session_state["lang"] = lang
    at.session_state["train_session"] = session
    at.run()
    at.switch_page("views/train.py")
    at.run()
    assert not at.exception, at.exception
    return [c.value for c in at.caption]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_train_page_says_the_steps_replay_graphs(mnist, lang):
    """The Train page's line under the engine's (AppTest; a stand-in run, as no GPU is here)."""
    from dlplay.i18n import catalog

    config = TrainConfig(epochs=1, train_size=320, batch_size=32, seed=3, val_share=0.0)
    graphed = run(mnist, StandInGraphs(), config=config, probe=False)
    assert catalog(lang)["cudagraph.on"] in train_page_captions(graphed, lang)
    plain = run(mnist, "off", config=config, probe=False)
    assert not set(train_page_captions(plain, lang)) & {v for k, v in catalog(lang).items() if k.startswith("cudagraph.")}
