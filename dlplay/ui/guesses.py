"""The Guess page's widgets: pick a question, guess, start its runs (state.start_side_run), poll them,
and when they end say whether the guess was right from the runs' own measurements; a tally per session."""
from __future__ import annotations

from typing import Any

import streamlit as st

from dlplay.classify.handle import RunHandle
from dlplay.errors import UserError
from dlplay.figures.training import loss_figure
from dlplay.learn.guesses import QUESTIONS, Question, RunPlan, Tally, answer
from dlplay.run.status import FINISHED, Status
from dlplay.ui.charts import chart
from dlplay.ui.i18n import current_language, error_text, t
from dlplay.ui.state import start_side_run

ACTIVE, TALLY, ERROR, QUESTION = "guess_active", "guess_tally", "guess_error", "guess_q"
POLL_S = 0.5


def tally() -> Tally:
    tl = st.session_state.get(TALLY)
    if tl is None:
        tl = st.session_state[TALLY] = Tally()
    return tl


def _choice_text(q: Question, choice: str) -> str:
    return t(f"guesses.{q.key}.choice_{choice}")


def _stop_active() -> None:
    active = st.session_state.get(ACTIVE)
    if active is not None:
        for run in active["runs"]:
            run.stop()


def _start(q_key: str, guess: str | None) -> None:
    """Button callback: the question's runs start (side runs: the current run is left alone)."""
    st.session_state.pop(ERROR, None)
    if guess is None:
        st.session_state[ERROR] = t("guesses.pick_first")
        return
    _stop_active()
    q = QUESTIONS[q_key]
    runs: list[RunHandle] = []
    try:
        for plan in q.plans:
            runs.append(start_side_run(plan.spec, plan.config, plan.probe_every))
    except UserError as exc:
        for run in runs:
            run.stop()
        st.session_state[ERROR] = error_text(exc)
        return
    st.session_state[ACTIVE] = {"q": q_key, "guess": guess, "runs": runs, "answer": None, "right": None}


def _again() -> None:
    _stop_active()
    st.session_state.pop(ACTIVE, None)


def run_line(plan: RunPlan) -> str:
    c = plan.config
    return t("guesses.run_line", name=t(plan.name), model=plan.spec.describe(), optimizer=t(f"train.opt_{c.optimizer}"),
             lr=f"{c.lr:g}", batch=c.batch_size, epochs=c.epochs, train=c.train_size)


def tally_line() -> None:
    tl = tally()
    st.caption(t("guesses.tally", right=tl.right, total=tl.total) if tl.total else t("guesses.tally_none"))


def question_view() -> None:
    """The question, its runs, and either the guess form or the guess in progress / answered."""
    keys = list(QUESTIONS)
    q_key = st.radio(t("guesses.pick_question"), keys, key=QUESTION, format_func=lambda k: t(f"guesses.{k}.question"))
    q = QUESTIONS[q_key]
    st.markdown(f"**{t('guesses.runs_title')}**")
    st.markdown("\n".join(f"- {run_line(plan)}" for plan in q.plans))
    active = st.session_state.get(ACTIVE)
    if active is not None and active["q"] == q_key:
        running = any(run.status not in FINISHED for run in active["runs"])
        result_view(q, running)
        return
    guess = st.radio(t("guesses.your_guess"), q.choices, index=None, key=f"guess_choice_{q_key}",
                     format_func=lambda c: _choice_text(q, c))
    st.button(t("guesses.run"), key="guess_run", type="primary", help=t("guesses.run_help"), on_click=_start,
              args=(q_key, guess), icon=":material/play_arrow:")
    if st.session_state.get(ERROR):
        st.error(st.session_state[ERROR])


def result_view(q: Question, running: bool) -> None:
    @st.fragment(run_every=POLL_S if running else None)
    def poll() -> None:
        active: dict[str, Any] | None = st.session_state.get(ACTIVE)
        if active is None or active["q"] != q.key:
            return
        runs: list[RunHandle] = active["runs"]
        st.markdown(t("guesses.you_guessed", guess=_choice_text(q, active["guess"])))
        lang = current_language()
        cols = st.columns(len(runs))
        for col, run, plan in zip(cols, runs, q.plans):
            run.heartbeat()
            snap = run.snapshot()
            p = snap.progress
            loss = f"{snap.losses[-1]:.3g}" if len(snap.losses) else "–"
            with col:
                st.progress(min(1.0, p.fraction), text=t("guesses.progress", name=t(plan.name),
                                                          status=t(f"train.status_{run.status}"), step=p.global_step,
                                                          total=p.total_steps, loss=loss))
                if len(snap.losses):
                    chart(st, loss_figure(snap, lang, log_y=True), key=f"guess_loss_{run.run_id}",
                                    config={"displayModeBar": False})
        if any(run.status not in FINISHED for run in runs):
            st.info(t("guesses.waiting"))
            return
        if active["answer"] is None:
            bad = [run.status for run in runs if run.status in (Status.STOPPED, Status.FAILED)]
            if bad:
                st.warning(t("guesses.stopped", status=t(f"train.status_{bad[0]}")))
                st.button(t("guesses.again"), key="guess_again", on_click=_again)
                return
            ans = answer(q, runs)
            active["answer"], active["right"] = ans, ans.choice == active["guess"]
            tally().record(q.key, active["guess"], active["right"])
            if running:
                st.rerun()  # a full rerun: the polling stops, the tally above updates
        ans = active["answer"]
        text = _choice_text(q, ans.choice)
        if active["right"]:
            st.success(t("guesses.right", answer=text), icon=":material/check_circle:")
        else:
            st.error(t("guesses.wrong", answer=text), icon=":material/cancel:")
        st.markdown(t(ans.key, **ans.params))
        st.caption(t("guesses.dynamics_hint"))
        st.button(t("guesses.again"), key="guess_again", on_click=_again, icon=":material/replay:")

    poll()
