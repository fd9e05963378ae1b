"""The Guess page (AppTest): guess, run, the runs' own numbers answer; the tally; Chinese."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from dlplay.classify.probe import Probe
from dlplay.classify.train import TrainingSession
from dlplay.i18n import translate
from dlplay.learn.guesses import QUESTIONS, answer
from helpers import click

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 90


def open_page(**state) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page("views/guesses.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def finish(at: AppTest) -> list:
    runs = at.session_state["guess_active"]["runs"]
    for run in runs:
        assert run.join(120), run.status
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return runs


def test_guess_run_answer_and_tally(mnist):
    at = open_page()
    assert at.title[0].value == "Guess, then run"
    assert at.radio(key="guess_q").value == "lr"
    click(at, "guess_run")  # no guess yet
    assert translate("guesses.pick_first") in [e.value for e in at.error]
    assert "guess_active" not in at.session_state
    at.radio(key="guess_choice_lr").set_value("learns").run()
    click(at, "guess_run")
    current = at.session_state["train_session"]
    assert current is None  # a guess's runs leave the current run alone
    runs = finish(at)
    ans = answer(QUESTIONS["lr"], runs)  # what the page should say, from the same runs
    assert ans.choice == "blows_up"
    assert any(e.value.startswith("Not this time") and "It blows up" in e.value for e in at.error)
    assert any(m.value == translate(ans.key, **ans.params) for m in at.markdown)
    assert "Your intuition so far: 0 of 1 guesses right." in [c.value for c in at.caption]
    assert len(at.get("plotly_chart")) == 1  # the run's loss curve
    # the run is in the session's run history
    history = at.session_state["run_history"]
    assert history.get(runs[0].run_id) is not None
    # guess again, right this time
    click(at, "guess_again")
    at.radio(key="guess_choice_lr").set_value("blows_up").run()
    click(at, "guess_run")
    finish(at)
    assert any(s.value.startswith("Right!") for s in at.success)
    assert "Your intuition so far: 1 of 2 guesses right." in [c.value for c in at.caption]


def test_two_runs_and_chinese(mnist):
    q = QUESTIONS["race"]
    runs = []
    for plan in q.plans:
        run = TrainingSession(plan.spec, plan.config, mnist, "cpu", callbacks=[Probe()])
        run.start()
        runs.append(run)
    for run in runs:
        assert run.join(120)
    ans = answer(q, runs)
    at = open_page(lang="zh", guess_q="race",
                   guess_active={"q": "race", "guess": "deep", "runs": runs, "answer": None, "right": None})
    assert at.title[0].value == "猜一猜"
    said = [e.value for e in at.error] + [s.value for s in at.success]
    assert any(translate(f"guesses.race.choice_{ans.choice}", "zh") in s for s in said)
    assert any(m.value == translate(ans.key, "zh", **ans.params) for m in at.markdown)
    assert len(at.get("plotly_chart")) == 2
    assert at.session_state["guess_tally"].total == 1
