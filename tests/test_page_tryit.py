"""The Inside page's Try-it tab (AppTest): a right answer, a wrong one with its worked steps, bad input,
progress kept in the session, frozen numbers while a run trains, Chinese."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlplay.classify.train import TrainingSession
from dlplay.i18n import translate
from dlplay.learn.exercises import exercises, fmt, grade
from dlplay.learn.trace import trace
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import train_to_end

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 90


@pytest.fixture(scope="module")
def session(mnist) -> TrainingSession:
    return train_to_end(mnist, dense_spec([24], "sigmoid"), TrainConfig(epochs=1, batch_size=128, train_size=2000,
                                                                        seed=0), timeout=120)


def open_page(session: TrainingSession, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.session_state["train_session"] = session
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page("views/inside.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def expected_exercises(mnist, session, index: int):
    tr = trace(session.model_copy(), mnist.test_images[index], mnist.info, label=int(mnist.test_labels[index]))
    return exercises(tr, session.spec)


def answer(at: AppTest, index: int, text: str) -> None:
    at.text_input(key=f"tryit_answer_{index}").input(text)
    at.button(key=f"tryit_check_{index}").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_right_wrong_and_bad_answers(mnist, session):
    exs = expected_exercises(mnist, session, 5)
    at = open_page(session, inside_index=5)
    assert at.radio(key="tryit_pick").value == 0
    z = exs[0]
    assert z.kind == "z"
    # the numbers shown are the trace's
    page_md = "\n".join(m.value for m in at.markdown)
    assert all(f"| {f.label} | {f.w.text} | {f.v.text} |" in page_md for f in z.factors)
    # a bad number: a message, nothing recorded
    answer(at, 0, "abc")
    assert translate("exercises.bad_number", text="abc") in [e.value for e in at.error]
    assert not at.session_state["tryit_progress"].tries
    # wrong: forgot the bias -> the worked steps, the parting step marked with the learner's number
    wrong = round(z.steps[-2].value, z.decimals)
    assert not grade(z, wrong).correct
    answer(at, 0, str(wrong))
    assert any(e.value.startswith("Not quite") for e in at.error)
    steps_md = next(m.value for m in at.markdown if "| ➜" in m.value)
    assert f"| ➜ {len(z.steps)} |" in steps_md
    assert f"**{fmt(wrong, z.decimals + 1)}**" in steps_md
    assert any("add the bias" in w.value for w in at.warning)
    # right (worked out from the shown numbers, rounded as asked); the tolerance says why
    answer(at, 0, f"{z.from_shown:.{z.decimals}f}")
    assert any(s.value.startswith("Right") for s in at.success)
    assert any(c.value.startswith("Why ±") and f"({z.tolerance.numbers} of them)" in c.value for c in at.caption)
    progress = at.session_state["tryit_progress"]
    assert len(progress.right) == 1
    assert sum(progress.tries.values()) == 2
    # next exercise: a = f(z)
    at.button(key="tryit_next").click().run()
    assert at.radio(key="tryit_pick").value == 1
    a = exs[1]
    answer(at, 1, f"{a.from_shown:.{a.decimals}f}")
    assert any(s.value.startswith("Right") for s in at.success)
    assert "✓" in at.radio(key="tryit_pick").options[0]
    assert "✓" in at.radio(key="tryit_pick").options[1]


def test_backward_exercise_and_chinese(mnist, session):
    exs = expected_exercises(mnist, session, 2)
    at = open_page(session, inside_index=2, tryit_pick=2)
    delta = exs[2]
    assert delta.kind == "delta"
    assert at.subheader[-1].value == translate("exercises.kind_delta")
    forgot = round(delta.steps[-2].value, delta.decimals + 1)  # forgot f'(z)
    answer(at, 2, str(forgot))
    assert any(e.value.startswith("Not quite") for e in at.error)
    assert any("times the slope" in w.value for w in at.warning)
    # the same wrong answer, shown in Chinese (AppTest formats radio labels outside the session, in
    # English, so the Chinese page is opened with the answer already given rather than clicked)
    pid = f"{session.run_id}|test:2|{int(mnist.test_labels[2])}|None|{delta.id}"
    at = open_page(session, inside_index=2, tryit_pick=2, lang="zh", tryit_results={pid: ("graded", forgot)})
    assert at.subheader[-1].value == translate("exercises.kind_delta", "zh")
    assert any(e.value.startswith("还不对") for e in at.error)
    assert any("乘以 z =" in w.value for w in at.warning)
    assert any(c.value.startswith("为什么允许") for c in at.caption)


def test_numbers_stay_put_while_a_run_trains(mnist):
    run = TrainingSession(dense_spec([16]), TrainConfig(epochs=200, batch_size=64, train_size=2000, seed=1), mnist, "cpu")
    run.start()
    try:
        at = open_page(run, inside_index=3)
        assert any(i.value.startswith("The exercises use the weights of step") for i in at.info)
        first = at.session_state["tryit_set"][1][0]
        at.run()
        assert at.session_state["tryit_set"][1][0] is first  # the same exercise, though the weights moved
        at.button(key="tryit_refresh").click().run()
        assert at.session_state["tryit_set"][1][0] is not first
    finally:
        run.stop()
        assert run.join(30)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_diagnosis_names_the_products_left_out(mnist, trained_tutorial, lang):
    """Issue 33: an answer that left out the four products shown (the rest plus the bias) was told it was
    "nearest the value after step 6 (add the bias)". The page names the slip, in both languages, and marks
    the steps left out."""
    from dlplay.i18n import join_list

    exs = expected_exercises(mnist, trained_tutorial, 3)
    z = exs[0]
    assert z.kind == "z"
    assert len(z.steps) == 6
    wrong = round(z.steps[4].operand + z.steps[5].operand, z.decimals)  # the rest plus the bias
    pid = f"{trained_tutorial.run_id}|test:3|{int(mnist.test_labels[3])}|None|{z.id}"
    at = open_page(trained_tutorial, inside_index=3, tryit_pick=0, lang=lang, tryit_results={pid: ("graded", wrong)})
    kept = join_list([translate("exercises.kept_step", lang, step=i + 1,
                                what=translate(z.steps[i].key, lang, **z.steps[i].text_params())) for i in (4, 5)], lang)
    expected = translate("exercises.diag_no_terms", lang, k=4, steps="1–4", kept=kept)
    assert [w.value for w in at.warning] == [expected]  # the one diagnosis, and it names the slip
    steps_md = next(m.value for m in at.markdown if "| ➜" in m.value)
    assert steps_md.count(translate("exercises.you_left_out", lang)) == 4


def test_an_absurdly_long_or_infinite_answer_is_refused_with_a_message(mnist, session):
    at = open_page(session, inside_index=5)
    answer(at, 0, "9" * 5000)  # read as inf and graded before
    assert translate("exercises.answer_too_long", n="5,000", max=40) in [e.value for e in at.error]
    answer(at, 0, "-inf")  # refused before as "not a number", while inf was graded
    assert translate("exercises.answer_not_finite", text="-inf") in [e.value for e in at.error]
    answer(at, 0, "inf")
    assert translate("exercises.answer_not_finite", text="inf") in [e.value for e in at.error]
    assert not at.session_state["tryit_progress"].tries  # nothing graded, nothing recorded
