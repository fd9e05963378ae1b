"""Pinned images through training (dlplay/classify/pins.py): their ten probabilities are recorded at the probe's
steps, and each reading is the network's softmax at that step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlplay.classify.callbacks import TrainingCallback
from dlplay.classify.pins import MAX_PINS, Pins, PinsSnapshot
from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.errors import UserError
from dlplay.nn.model import Net
from dlplay.nn.spec import TrainConfig, dense_spec

CONFIG = TrainConfig(epochs=1, batch_size=50, train_size=1000, seed=1)  # 20 steps


class WeightsAt(TrainingCallback):
    """Keeps the weights after every step (to recompute what the pins should read)."""

    def __init__(self):
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def after_step(self, session, step):
        self.weights[step] = {k: v.detach().clone() for k, v in session.model.state_dict().items()}


def softmax_at(session: TrainingSession, weights: dict[str, torch.Tensor], images: torch.Tensor) -> np.ndarray:
    net = Net(session.spec)
    net.load_state_dict(weights)
    net.eval()
    with torch.no_grad():
        return torch.softmax(net(session.normalize(images)), dim=1).double().numpy()


def test_readings_are_the_softmax_at_the_probe_steps(mnist):
    images, labels = mnist.test_images[:4], mnist.test_labels[:4]
    weights = WeightsAt()
    pins = Pins(images, labels)
    session = TrainingSession(dense_spec([32], "relu", dropout=0.3), CONFIG, mnist, "cpu", sync_every=3,
                              callbacks=[Probe(every=6), pins, weights])
    session.start()
    assert session.join(60)
    assert session.status == "done"
    snap = session.pins_snapshot()
    # the pins arrive before step 1: read at every step the probe measures (step 1, every 6th, the last),
    # and at the powers of two below the interval (the first steps, where a network learns the most)
    probed = session.probe_snapshot().steps.tolist()
    assert probed == [1, 6, 12, 18, 20]
    assert snap.steps.tolist() == [1, 2, 4, 6, 12, 18, 20]
    assert snap.probs.shape == (7, 4, 10)
    for t, step in enumerate(snap.steps):
        np.testing.assert_allclose(snap.probs[t], softmax_at(session, weights.weights[int(step)], images),
                                   rtol=1e-6, atol=1e-7)
    assert np.array_equal(snap.images, images.numpy())
    assert snap.labels.tolist() == labels.tolist()
    assert session.snapshot().extras["pins"] is snap


def test_new_pins_are_read_from_the_next_step_and_start_a_new_history(mnist):
    pins = Pins(every=5)  # no probe: its own interval
    session = TrainingSession(dense_spec([16]), CONFIG, mnist, "cpu", sync_every=1, callbacks=[pins])
    session.step(7)
    assert _wait(lambda: session.snapshot().progress.global_step == 7 and session.status == "paused")
    assert len(session.pins_snapshot()) == 0
    drawn = mnist.test_images[10:11].numpy()  # what the Draw page hands over: numpy uint8
    session.set_pins(drawn, np.array([int(mnist.test_labels[10])]))
    snap = session.pins_snapshot()
    assert len(snap) == 1
    assert len(snap.steps) == 0  # shown at once, read from the next step
    session.resume()
    assert session.join(60)
    assert session.pins_snapshot().steps.tolist() == [8, 10, 15, 20]  # (steps 1, 2, 4 passed without pins)
    session.set_pins(None)
    assert len(session.pins_snapshot()) == 0


def test_bad_pins_get_clear_messages(mnist):
    session = TrainingSession(dense_spec([16]), CONFIG, mnist, "cpu", callbacks=[Pins()])
    cases = [(torch.zeros(1, 28, 28), None, "pins.bad_images"),
             (torch.zeros(1, 14, 14, dtype=torch.uint8), None, "pins.bad_shape"),
             (torch.zeros(MAX_PINS + 1, 28, 28, dtype=torch.uint8), None, "pins.too_many"),
             (torch.zeros(2, 28, 28, dtype=torch.uint8), torch.tensor([1]), "pins.bad_labels"),
             (torch.zeros(1, 28, 28, dtype=torch.uint8), torch.tensor([10]), "pins.bad_labels")]
    for images, labels, key in cases:
        with pytest.raises(UserError) as err:
            session.set_pins(images, labels)
        assert err.value.key == key
    with pytest.raises(UserError) as err:
        TrainingSession(dense_spec([16]), CONFIG, mnist, "cpu").set_pins(torch.zeros(1, 28, 28, dtype=torch.uint8))
    assert err.value.key == "pins.no_pins"


def test_the_history_is_bounded_and_keeps_exact_readings(mnist):
    pins = Pins(mnist.test_images[:2], every=1, capacity=6)
    weights = WeightsAt()
    session = TrainingSession(dense_spec([16]), CONFIG, mnist, "cpu", sync_every=1, callbacks=[pins, weights])
    session.start()
    assert session.join(60)
    snap = session.pins_snapshot()
    assert len(snap.steps) <= 7
    assert snap.steps[-1] == 20
    assert snap.steps[0] == 1
    for t, step in enumerate(snap.steps):  # thinned, never averaged
        np.testing.assert_allclose(snap.probs[t], softmax_at(session, weights.weights[int(step)], mnist.test_images[:2]),
                                   rtol=1e-6, atol=1e-7)


def _snap(guesses: list[int], label: int) -> PinsSnapshot:
    probs = np.full((len(guesses), 1, 10), 0.01)
    for t, g in enumerate(guesses):
        probs[t, 0, g] = 0.91
    return PinsSnapshot(np.zeros((1, 28, 28), np.uint8), np.array([label]), np.arange(len(guesses)) * 10 + 1, probs, 1)


def test_the_moment_the_network_gets_it_is_the_start_of_its_last_right_streak():
    assert _snap([3, 7, 7], 7).turned_right(0) == 11
    assert _snap([7, 3, 7, 7], 7).turned_right(0) == 21  # right, wrong again, then right for good
    assert _snap([7, 7, 3], 7).turned_right(0) is None  # wrong now
    assert _snap([7, 7], -1).turned_right(0) is None  # no label
    assert _snap([7], 7).turned_right(0) == 1


def _wait(predicate, timeout: float = 30.0) -> bool:
    from helpers import wait_for

    return wait_for(predicate, timeout)
