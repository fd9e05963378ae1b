"""The One step page (AppTest): a paused run's next step in slow motion, the run taking it, a hand edit
given back to training, and the landscape with its progress."""
from __future__ import annotations

from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from dlplay.i18n import translate
from dlplay.learn import slowmo as sm
from helpers import click, wait_for

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def open_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.switch_page("views/step.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_step_page_replays_takes_the_step_edits_and_draws_the_landscape():
    at = open_page()
    click(at, "slowmo_start")  # the tutorial network, paused at step 0
    run = at.session_state["train_session"]
    try:
        assert run.status == "paused"
        assert run.spec.layers[0].units == 128
        record: sm.StepRecord = at.session_state["slowmo_record"]
        assert record.step == 1
        assert record.run_id == run.run_id
        n = len(record.phases)
        assert f"**Phase 1 of {n}:**" in markdown(at)
        click(at, "slowmo_next")
        click(at, "slowmo_next")
        assert f"**Phase 3 of {n}:**" in markdown(at)
        click(at, "slowmo_prev")
        assert f"**Phase 2 of {n}:**" in markdown(at)
        # neuron 5 of the output layer on the first image: its forward formula with the recorded z
        at.selectbox(key="slowmo_layer").set_value(1).run()
        at.number_input(key="slowmo_unit").set_value(5).run()
        z = record.layers[1].z[0, 5].item()
        from dlplay.learn.latex import num
        assert any(f"= {num(z)}" in x.value for x in at.latex), [x.value for x in at.latex]

        # the run takes the step itself and lands on the replay's weights; the next step is recorded
        click(at, "slowmo_take")
        assert run.snapshot().progress.global_step == 1
        assert any("took step 1 itself" in s.value for s in at.success), [s.value for s in at.success]
        assert at.session_state["slowmo_record"].step == 2

        # a hand edit of the selected neuron's bias: the loss moves; undo brings it back
        loss0 = next(m.value for m in at.metric if m.label == "Loss of the batch")
        at.number_input(key="slowmo_edit_value").set_value(5.0).run()
        assert not at.exception
        editor: sm.NeuronEditor = at.session_state["slowmo_editor"]
        assert editor.history
        assert editor.history[-1].new == 5.0
        assert editor.history[-1].index is None
        assert next(m.value for m in at.metric if m.label == "Loss of the batch") != loss0
        click(at, "slowmo_undo")
        assert next(m.value for m in at.metric if m.label == "Loss of the batch") == loss0
        at.number_input(key="slowmo_edit_value").set_value(5.0).run()
        before = run.state_dict()
        click(at, "slowmo_give_back")
        child = at.session_state["train_session"]
        assert child is not run
        assert child.forked_from[0] == run.run_id
        assert child.forked_from[2] == "edit"
        assert child.status == "paused"
        after = child.state_dict()
        changed = [(k, i) for k in before for i in torch.nonzero(after[k] != before[k]).tolist()]
        assert changed == [("blocks.1.op.bias", [5])]
        assert after["blocks.1.op.bias"][5].item() == 5.0
        assert any(translate("fork.change_edit", "en") in s.value for s in at.success)

        # the landscape of the fork, with its parent's path: small grid, progress, then the map
        at.select_slider(key="slowmo_land_n").set_value(11)
        at.select_slider(key="slowmo_land_images").set_value(250).run()
        click(at, "slowmo_land_go")
        job = at.session_state["slowmo_land_job"]
        assert wait_for(lambda: not job.running, 120)
        at.run()
        assert job.error is None
        assert job.result is not None
        assert job.result.done == 121
        assert [p.run_id for p in job.paths] == [child.run_id, run.run_id]
        assert any("121 points on 250 training images" in m for m in markdown(at).split("\n")), markdown(at)
    finally:
        for r in {run, at.session_state["train_session"]}:
            r.stop()
            r.join(10)
