"""The 2-D playground's hand editor (dlplay/plane/edit.py): an edit changes exactly the edited entry; the
recomputed grid, loss and accuracy equal a fresh forward pass of a network with those weights; undo
restores; bad values are refused with nothing changed; giving the edits back makes the run go on from
exactly the edited weights and records the edits in its history."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlplay.errors import UserError
from dlplay.i18n import translate
from dlplay.plane.edit import MAX_VALUE, PlaneEditor, parse_value
from dlplay.plane.session import PlaneConfig, PlaneSession, build_network, plane_loss
from helpers import wait_for

CONFIG = PlaneConfig(dataset="xor", hidden=(4, 4), epochs=1000, seed=3)


def paused_run(config: PlaneConfig = CONFIG, epochs: int = 3) -> PlaneSession:
    run = PlaneSession(config)
    run.start(paused=True)
    assert wait_for(lambda: run.status == "paused", 30)
    for _ in range(epochs):
        done = run.snapshot().progress.global_step
        run.step(1)
        assert wait_for(lambda done=done: run.snapshot().progress.global_step > done and run.status == "paused", 30)
    return run


def fresh_forward(run: PlaneSession, state: dict[str, torch.Tensor]) -> tuple[float, float, float, float]:
    """Train/test loss and accuracy of a network built anew and given ``state`` (not the editor's code path)."""
    cfg = run.config
    net = build_network(len(run.features), cfg.hidden, run.data.outputs, cfg.activation, 99)  # other init: loaded over
    net.load_state_dict(state)
    with torch.no_grad():
        out_tr, out_te = net(run.x_train), net(run.x_test)
        return (float(plane_loss(out_tr, run.y_train, False)), float(plane_loss(out_te, run.y_test, False)),
                float((out_tr.argmax(1) == run.y_train).float().mean()),
                float((out_te.argmax(1) == run.y_test).float().mean()))


def test_an_edit_changes_exactly_the_edited_entry_and_the_view_equals_a_fresh_forward_pass():
    run = paused_run()
    try:
        editor = PlaneEditor(run)
        before = run.state_dict()
        assert editor.epoch == 3
        assert editor.changed() == []
        view = editor.set(1, 2, 3, 2.5)  # layer 2, neuron 3, the weight from layer 1's neuron 4
        assert editor.changed() == [("2.weight", (2, 3))]
        state = editor.state()
        assert float(state["2.weight"][2, 3]) == 2.5
        for key in before:
            mask = torch.ones_like(before[key], dtype=torch.bool)
            if key == "2.weight":
                mask[2, 3] = False
            assert torch.equal(state[key][mask], before[key][mask]), key
        assert torch.equal(run.state_dict()["2.weight"], before["2.weight"])  # the run itself is untouched
        train_loss, test_loss, train_acc, test_acc = fresh_forward(run, state)
        assert view.train_loss == pytest.approx(train_loss, abs=1e-6)
        assert view.test_loss == pytest.approx(test_loss, abs=1e-6)
        assert (view.train_acc, view.test_acc) == (pytest.approx(train_acc), pytest.approx(test_acc))
        # the grid is the edited network over the plane: the output equals softmax of a fresh forward pass there
        net = build_network(2, (4, 4), 2, "tanh", 0)
        net.load_state_dict(state)
        g = view.grid
        gx, gy = np.meshgrid(g.xs, g.ys)
        with torch.no_grad():
            probs = torch.softmax(net(torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1))), 1).numpy()
        np.testing.assert_allclose(g.output[1].ravel(), probs[:, 1], atol=1e-6)
        assert float(g.weights[1][2, 3]) == 2.5
        # the neuron's z and a at the point: W a_prev + b of layer 2
        with torch.no_grad():
            a1 = torch.tanh(net[0](run.x_train[:1]))
            z = float(net[2](a1)[0, 2])
        editor_z = editor.view(1, 2)
        assert editor_z.z == pytest.approx(z, abs=1e-6)
        assert editor_z.a == pytest.approx(math.tanh(z), abs=1e-6)
        assert view.seconds > 0
    finally:
        run.stop()
        run.join(10)


def test_undo_restores_the_previous_value_edit_by_edit():
    run = paused_run(epochs=1)
    try:
        editor = PlaneEditor(run)
        start = editor.value(0, 1, None)
        first = editor.set(0, 1, None, 1.0)
        editor.set(0, 1, None, -2.0)
        editor.set(2, 0, 1, 4.0)
        assert len(editor.history) == 3
        assert len(editor.changed()) == 2
        assert editor.undo().new == 4.0
        assert editor.changed() == [("0.bias", (1,))]
        assert editor.value(0, 1, None) == -2.0
        editor.undo()
        assert editor.value(0, 1, None) == 1.0
        assert editor.view(0, 1).train_loss == pytest.approx(first.train_loss, abs=1e-7)
        editor.undo()
        assert editor.value(0, 1, None) == start
        assert editor.changed() == []
        assert editor.undo() is None
    finally:
        run.stop()
        run.join(10)


@pytest.mark.parametrize(("text", "key"), [("abc", "plane_edit.not_a_number"), ("inf", "plane_edit.not_finite"),
                                       ("nan", "plane_edit.not_finite"), ("1e30", "plane_edit.too_big"),
                                       (str(MAX_VALUE * 1.5), "plane_edit.too_big"), ("", "plane_edit.not_a_number")])
def test_bad_values_are_refused_in_both_languages_and_nothing_changes(text, key):
    with pytest.raises(UserError) as caught:
        parse_value(text)
    assert caught.value.key == key
    for lang in ("en", "zh"):
        message = caught.value.message(lang)
        assert message
        assert "{" not in message
        assert message != key
    run = PlaneSession(CONFIG)
    editor = PlaneEditor(run)
    before = editor.state()
    with pytest.raises(UserError):
        editor.set(0, 0, 0, text)  # type: ignore[arg-type]
    with pytest.raises(UserError):
        editor.set(5, 0, 0, 1.0)  # no such layer
    assert editor.history == []
    assert all(torch.equal(before[k], v) for k, v in editor.state().items())
    assert parse_value(" -1,5 ") == -1.5
    assert parse_value("−0.25") == -0.25
    assert translate("plane_edit.too_big", "zh", value="1e30", limit="100").startswith("1e30")


def test_giving_back_continues_the_run_from_exactly_the_edited_weights_and_records_the_edit():
    run = paused_run()
    try:
        before = run.state_dict()
        editor = PlaneEditor(run)
        editor.set(0, 0, 1, 5.0)
        edited = editor.state()
        with pytest.raises(UserError) as caught:
            PlaneEditor(run).give_back(run)
        assert caught.value.key == "plane_edit.no_edits"
        edits = editor.give_back(run)
        assert [(e.epoch, e.layer, e.unit, e.index, e.new) for e in edits] == [(3, 0, 0, 1, 5.0)]
        assert edits[0].old == float(before["0.weight"][0, 1])
        after = run.state_dict()
        assert all(torch.equal(after[k], edited[k]) for k in edited)  # exactly the edited weights
        changed = [(k, tuple(i)) for k in after for i in torch.nonzero(after[k] != before[k]).tolist()]
        assert changed == [("0.weight", (0, 1))]  # and only the edited entry changed
        assert run.edits == edits
        assert editor.history == []
        # the run's own measure of its loss is the editor's recomputed loss
        with torch.no_grad(), run.model_lock:
            measured = run._measure().tolist()
        view = editor.view()
        assert measured[0] == pytest.approx(view.train_loss, abs=1e-6)
        assert measured[1] == pytest.approx(view.test_loss, abs=1e-6)
        # the run goes on from there: one more epoch trains from the edited weights
        run.step(1)
        assert wait_for(lambda: run.snapshot().progress.global_step == 4 and run.status == "paused", 30)
        moved = run.state_dict()
        assert not torch.equal(moved["0.weight"], edited["0.weight"])
        assert abs(float(moved["0.weight"][0, 1]) - 5.0) < 1.0  # trained on from 5, not from the old value
        assert abs(float(before["0.weight"][0, 1]) - 5.0) > 3.0
        # an editor made before the run moved on can no longer give back
        stale = PlaneEditor.__new__(PlaneEditor)
        stale.__dict__.update(editor.__dict__)
        stale.history = list(edits)
        with pytest.raises(UserError) as caught:
            stale.give_back(run)
        assert caught.value.key == "plane_edit.moved_on"
    finally:
        run.stop()
        run.join(10)


def test_a_running_run_refuses_edits():
    run = PlaneSession(CONFIG.with_changes(epochs=1_000_000))
    run.start()
    try:
        assert wait_for(lambda: run.status == "running", 30)
        editor = PlaneEditor(run)
        editor.set(0, 0, None, 1.0)
        with pytest.raises(UserError) as caught:
            editor.give_back(run)
        assert caught.value.key == "plane_edit.pause_first"
        assert run.edits == []
    finally:
        run.stop()
        run.join(10)


def test_regression_runs_edit_too():
    run = PlaneSession(PlaneConfig(dataset="reg_plane", hidden=(3,), activation="identity", epochs=5))
    editor = PlaneEditor(run)
    view = editor.set(1, 0, None, 0.7)
    assert view.train_acc is None
    assert view.prediction.shape == (1,)
    with torch.no_grad():
        net = build_network(2, (3,), 1, "identity", 0)
        net.load_state_dict(editor.state())
        expected = float(plane_loss(net(run.x_train), run.y_train, True))
    assert view.train_loss == pytest.approx(expected, abs=1e-6)
