"""The 2-D playground's hand editor in Streamlit's AppTest, in English and Chinese: a stepped, paused run;
the editor's switch; one weight typed, the loss and the pictures recomputed from the edited copy (the run
untouched); a non-number, inf and a huge value refused with a message and nothing lost; Undo; Give back
to training: the run goes on from the edited weights and its history lists the edit."""
from __future__ import annotations

import pytest
import torch

from dlplay.i18n import translate
from helpers import wait_for
from test_page_plane import metric, open_page, run_of, stop, texts


def paused_after_a_step(lang: str, monkeypatch):
    # AppTest formats a select box's value with the page's format_func outside the script, where the session's
    # language cannot be read (it falls back to English); the page's language it is, in and out of the script
    import dlplay.ui.i18n

    monkeypatch.setattr(dlplay.ui.i18n, "current_language", lambda: lang)
    at = open_page(lang)
    at.button(key="plane_step").click().run()
    run = run_of(at)
    assert wait_for(lambda: run.snapshot().progress.global_step >= 1 and run.status == "paused", 60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at, run


def images(at) -> list[str]:
    """The sources (data URIs) of the page's plain images, in page order."""
    return [img.url for element in at.get("image") for img in element.proto.imgs]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_edit_undo_and_give_back_from_the_page(lang, monkeypatch):
    at, run = paused_after_a_step(lang, monkeypatch)
    try:
        toggle = at.toggle(key="plane_edit_on")
        assert toggle.label == translate("plane_edit.toggle", lang)
        before_loss = metric(at, "plane.m_train_loss", lang)
        weights = run.state_dict()
        toggle.set_value(True).run()
        assert not at.exception, [e.value for e in at.exception]
        at.selectbox(key="plane_neuron").set_value((1, 0)).run()  # layer 1, neuron 1
        pictures = images(at)
        assert len(pictures) == 4, "while editing: the network, the neuron, the plane and the loss as plain images"
        which = at.selectbox(key="plane_edit_which")
        assert which.options[0] == translate("plane_edit.bias", lang)
        assert len(which.options) == 3
        which.set_value(0).run()  # the weight from x₁
        assert at.text_input(key="plane_edit_value").value == f"{float(weights['0.weight'][0, 0]):.4g}"
        at.text_input(key="plane_edit_value").set_value("4").run()
        assert not at.exception, at.exception
        assert not at.error, [e.value for e in at.error]
        editor = at.session_state["plane_editor"]
        assert editor.changed() == [("0.weight", (0, 0))]
        assert metric(at, "plane.m_train_loss", lang) != before_loss  # recomputed from the edited copy
        edited_pictures = images(at)
        assert all(a != b for a, b in zip(pictures[:3], edited_pictures[:3]))  # redrawn from the edited copy
        assert edited_pictures[3] == pictures[3]  # the loss per epoch so far is the run's: unchanged
        assert torch.equal(run.state_dict()["0.weight"], weights["0.weight"])  # the run is untouched
        state = at.get("caption")
        assert any(translate("plane_edit.state", lang, n=1, ms="")[:6] in str(c.value) for c in state)
        # bad input: a message in the page's language, nothing lost
        for text, key in (("zwei", "plane_edit.not_a_number"), ("inf", "plane_edit.not_finite"),
                          ("1e9", "plane_edit.too_big")):
            at.text_input(key="plane_edit_value").set_value(text).run()
            assert [e.value for e in at.error] == [translate(key, lang, value=text, limit="100")]
            assert editor.changed() == [("0.weight", (0, 0))]
            assert float(editor.state()["0.weight"][0, 0]) == 4.0
            assert at.text_input(key="plane_edit_value").value == text  # the learner's text stays to fix
        # undo, edit again, give back
        at.button(key="plane_edit_undo").click().run()
        assert editor.changed() == []
        assert metric(at, "plane.m_train_loss", lang) == before_loss
        assert images(at) == pictures
        assert at.text_input(key="plane_edit_value").value == f"{float(weights['0.weight'][0, 0]):.4g}"
        at.text_input(key="plane_edit_value").set_value("-3").run()
        edited = editor.state()
        epoch = run.snapshot().progress.global_step
        at.button(key="plane_edit_give_back").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert [(e.epoch, e.layer, e.unit, e.index, e.new) for e in run.edits] == [(epoch, 0, 0, 0, -3.0)]
        assert wait_for(lambda: run.snapshot().progress.global_step > epoch, 60)  # it trains on
        run.pause()
        assert wait_for(lambda: run.status == "paused", 30)
        at.run()
        history = texts(at)
        assert translate("plane_edit.history", lang, n=1) in [e.label for e in at.expander]
        assert "-3" in history
        assert "→" in history
        assert abs(float(run.state_dict()["0.weight"][0, 0]) - float(edited["0.weight"][0, 0])) < 1.0
    finally:
        stop(at)


def test_inputs_have_no_weights_and_a_running_run_has_no_editor(monkeypatch):
    at, run = paused_after_a_step("en", monkeypatch)
    try:
        at.toggle(key="plane_edit_on").set_value(True).run()
        at.selectbox(key="plane_neuron").set_value((0, 1)).run()  # the feature x₂
        assert translate("plane_edit.pick_neuron", "en") in [str(e.value) for e in at.info]
        assert at.button(key="plane_edit_give_back").disabled
        at.button(key="plane_play").click().run()
        assert wait_for(lambda: run.status == "running", 30)
        assert not at.exception
        assert not [w for w in at.toggle if w.key == "plane_edit_on"]
    finally:
        stop(at)
