"""The Inside page's "Try it" tab: the exercises of dlplay/learn/exercises.py as widgets, progress kept in the session.

The exercise set is made from the traced input once and kept (``tryit_set``) until the input, the
run, the target or the followed neuron changes, or the learner asks for new ones: while a run trains,
the numbers stay put under the learner's pencil.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from dlplay.classify.handle import RunHandle
from dlplay.errors import UserError
from dlplay.i18n import join_list
from dlplay.learn.exercises import (
    CLOSEST,
    LEFT_OUT,
    OMITTED,
    TERM_KEYS,
    Diagnosis,
    Exercise,
    ExerciseProgress,
    diagnose,
    exercises,
    fmt,
    grade,
    parse_answer,
)
from dlplay.nn.activations import ACTIVATIONS
from dlplay.ui.i18n import current_language, error_text, t

SET, PROGRESS, UNIT, RESULTS, PICK = "tryit_set", "tryit_progress", "tryit_unit", "tryit_results", "tryit_pick"


def progress() -> ExerciseProgress:
    p = st.session_state.get(PROGRESS)
    if p is None:
        p = st.session_state[PROGRESS] = ExerciseProgress()
    return p


def _exercise_set(tr: Any, session: RunHandle, input_key: str) -> tuple[str, list[Exercise], int]:
    """(signature, exercises, step of the weights) for this input, kept while the signature holds."""
    unit = st.session_state.get(UNIT)
    sig = f"{session.run_id}|{input_key}|{tr.target}|{unit}"
    kept = st.session_state.get(SET)
    if kept is None or kept[0] != sig:
        if kept is not None:
            st.session_state[PICK] = 0  # another input or neuron: start again from the first exercise
        kept = (sig, exercises(tr, session.spec, unit=unit), session.snapshot().progress.global_step)
        st.session_state[SET] = kept
    return kept


def _refresh() -> None:
    st.session_state.pop(SET, None)


def _another(units: list[int]) -> None:
    if units:
        st.session_state[UNIT] = int(np.random.default_rng().choice(units))
        _refresh()


def _next(n: int) -> None:
    st.session_state[PICK] = min(int(st.session_state.get(PICK, 0)) + 1, n - 1)


def _mark(state: str) -> str:
    return {"right": " ✓", "tried": " ✗"}.get(state, "")


def tryit_tab(tr: Any, session: RunHandle, input_key: str, live: bool) -> None:
    """The Try-it tab: the sequence of exercises, the chosen one, its check and its worked steps."""
    st.caption(t("exercises.intro"))
    sig, exs, step = _exercise_set(tr, session, input_key)
    if not exs:
        st.info(t("exercises.no_exercises"))
        return
    p = progress()
    ids = [f"{sig}|{ex.id}" for ex in exs]
    hidden = tr.layers[-2] if len(tr.layers) > 1 else None
    units = [int(u) for u in np.flatnonzero(hidden.delta != 0)] if hidden is not None and hidden.is_dense else []
    c_pick, c_buttons = st.columns([3, 1], vertical_alignment="bottom")
    with c_buttons:
        st.button(t("exercises.another"), key="tryit_another", help=t("exercises.another_help"), on_click=_another,
                  args=(units,), disabled=not units, icon=":material/casino:")
    if live:
        st.info(t("exercises.frozen", step=step))
        st.button(t("exercises.refresh"), key="tryit_refresh", on_click=_refresh)
    st.session_state[PICK] = min(int(st.session_state.get(PICK, 0)), len(exs) - 1)
    with c_pick:
        pick = st.radio(t("exercises.pick"), range(len(exs)), horizontal=True, key=PICK,
                        format_func=lambda i: f"{i + 1} · {t('exercises.short_' + exs[i].kind)}{_mark(p.state(ids[i]))}")
    st.caption(t("exercises.progress", right=p.done(ids), total=len(exs), session_right=len(p.right),
                 session_tried=len(p.tries)))
    exercise_card(exs[pick], ids[pick], tr, p, pick, len(exs))


def _task(ex: Exercise, tr: Any) -> str:
    shown, rest = len(ex.factors), ex.n_terms - len(ex.factors)
    if ex.kind in ("conv_z", "conv_a"):
        c, row, col = ex.where
        return t(f"exercises.task_{ex.kind}", c=c, row=row, col=col, layer=ex.layer_name, f=ex.activation)
    if ex.kind == "z":
        key = "exercises.task_z" if rest else "exercises.task_z_all"
        return t(key, j=ex.where[0], layer=ex.layer_name, n=ex.n_terms, k=shown, rest=rest)
    if ex.kind == "a":
        return t("exercises.task_a", j=ex.where[0], f=ex.activation)
    if ex.kind == "delta":
        key = "exercises.task_delta" if rest else "exercises.task_delta_all"
        return t(key, j=ex.where[0], f=ex.activation, k=shown, rest=rest)
    j, i = ex.where
    return t("exercises.task_grad", i=i, j=j, layer=ex.layer_name)


def _givens_markdown(ex: Exercise) -> str:
    lines = []
    if ex.factors:
        col = {"conv_z": "exercises.col_position", "delta": "exercises.col_neuron"}.get(ex.kind, "exercises.col_input")
        first = ex.factors[0]
        lines += [f"| {t(col)} | ${_strip_index(first.w.symbol)}$ | ${_strip_index(first.v.symbol)}$ |",
                  "|---|---:|---:|"]
        lines += [f"| {f.label} | {f.w.text} | {f.v.text} |" for f in ex.factors]
        lines.append("")
    if ex.rest is not None:
        lines.append(f"- ${ex.rest.symbol} = {ex.rest.text}$ ({t('exercises.rest_line', n=ex.n_terms - len(ex.factors))})")
    lines += [f"- ${g.symbol} = {g.text}$" for g in ex.extras]
    return "\n".join(lines)


def _strip_index(symbol: str) -> str:
    """A column header: the symbol without its index (``w_{3,406}`` -> ``w``, ``\\delta^{x}_{7}`` -> ``\\delta^{x}``)."""
    return symbol[: symbol.rfind("_")] if "_" in symbol else symbol


def _check(ex: Exercise, pid: str, key: str) -> None:
    """Button callback: grade the typed answer and record it (a bad number records nothing)."""
    results: dict[str, Any] = st.session_state.setdefault(RESULTS, {})
    try:
        answer = parse_answer(st.session_state.get(key, ""))
    except UserError as exc:
        results[pid] = ("error", error_text(exc))
        return
    progress().record(pid, grade(ex, answer).correct)
    results[pid] = ("graded", answer)


def exercise_card(ex: Exercise, pid: str, tr: Any, p: ExerciseProgress, index: int, n: int) -> None:
    st.subheader(t(f"exercises.kind_{ex.kind}"))
    st.markdown(_task(ex, tr))
    if ex.note:
        st.caption(t(ex.note, **dict(ex.note_params)))
    st.latex(ex.formula)
    if ex.kind in ("a", "conv_a", "delta"):
        f_def, d_def = ex.definition
        st.markdown(t("exercises.definition"))
        st.latex(rf"f(z) = {ACTIVATIONS[ex.activation].latex}(z) = {f_def}, \qquad f'(z) = {d_def}")
    st.markdown(_givens_markdown(ex))

    results: dict[str, Any] = st.session_state.setdefault(RESULTS, {})
    st.markdown(t("exercises.question", symbol=ex.answer_symbol, decimals=ex.decimals))
    c_in, c_btn = st.columns([2, 1], vertical_alignment="bottom")
    key = f"tryit_answer_{index}"
    c_in.text_input(t("exercises.answer"), key=key, placeholder=t("exercises.answer_placeholder"),
                    label_visibility="collapsed")
    c_btn.button(t("exercises.check"), type="primary", key=f"tryit_check_{index}", on_click=_check,
                 args=(ex, pid, key))
    result = results.get(pid)
    if result is None:
        return
    if result[0] == "error":
        st.error(result[1])
        return
    show_grade(ex, float(result[1]), index, n)


def show_grade(ex: Exercise, answer: float, index: int, n: int) -> None:
    g = grade(ex, answer)
    d = ex.decimals + 2
    params = dict(answer=f"{answer:g}", expected=fmt(ex.expected, d), error=f"{g.error:.2g}", allowed=f"{g.allowed:.2g}")
    tol = ex.tolerance
    if g.correct:
        st.success(t("exercises.right", **params))
        if index < n - 1:
            st.button(t("exercises.next"), key="tryit_next", on_click=_next, args=(n,), icon=":material/arrow_forward:")
    else:
        st.error(t("exercises.wrong", **params))
    st.caption(t("exercises.tolerance", allowed=f"{g.allowed:.2g}", numbers=tol.numbers, rounding=f"{tol.rounding:.2g}",
                 decimals=ex.decimals, answer=f"{tol.answer:g}", relative=f"{tol.relative:g}"))
    if not g.correct:
        worked_steps(ex, answer)


def _what(ex: Exercise, i: int) -> str:
    s = ex.steps[i]
    return t(s.key, **s.text_params())


def step_numbers(indices: Any) -> str:
    """Step numbers (0-based indices in) as the learner reads them: runs as ranges, ``1–4, 6`` (``1–4、6``)."""
    numbers = sorted(int(i) + 1 for i in indices)
    runs: list[list[int]] = []
    for k in numbers:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    parts = [str(r[0]) if len(r) == 1 else t("exercises.steps_range", first=r[0], last=r[-1]) for r in runs]
    return join_list(parts, current_language())


def diagnosis_text(ex: Exercise, diag: Diagnosis) -> str:
    """What the learner's wrong answer did, in words: the one slip it matches, or where it is nearest."""
    n = len(ex.steps)
    if diag.kind == OMITTED:
        kept = diag.kept(n)
        if len(kept) == 1:
            return t("exercises.diag_only", step=kept[0] + 1, what=_what(ex, kept[0]), steps=step_numbers(diag.omitted))
        terms = tuple(i for i, s in enumerate(ex.steps) if s.key in TERM_KEYS)
        if terms and diag.omitted == terms:
            listed = join_list([t("exercises.kept_step", step=i + 1, what=_what(ex, i)) for i in kept], current_language())
            return t("exercises.diag_no_terms", k=len(terms), steps=step_numbers(terms), kept=listed)
        return t("exercises.diag_omitted", steps=step_numbers(diag.omitted),
                 whats=join_list([_what(ex, i) for i in diag.omitted], current_language()))
    if diag.kind == CLOSEST and diag.step == n - 1:
        return t("exercises.diag_closest_end")
    return t(f"exercises.diag_{diag.kind}", step=diag.step + 1, prev=diag.step, what=_what(ex, diag.step))


def worked_steps(ex: Exercise, answer: float) -> None:
    """The steps with the shown numbers; the learner's number beside the right one where they part (and the
    steps a learner left out marked so)."""
    diag = diagnose(ex, answer)
    left_out = set(diag.omitted) if diag.kind in (OMITTED, LEFT_OUT) else set()
    st.markdown(f"**{t('exercises.steps_title')}**")
    rows = [f"| {t('exercises.col_step')} | {t('exercises.col_what')} | {t('exercises.col_calc')} | "
            f"{t('exercises.col_value')} | {t('exercises.col_you')} |", "|---:|---|---|---:|---:|"]
    for i, s in enumerate(ex.steps):
        here = i == diag.step
        you = f"**{fmt(diag.learner, ex.decimals + 1)}**" if here else ""
        if i in left_out:
            you = f"{you} ({t('exercises.you_left_out')})" if you else f"*{t('exercises.you_left_out')}*"
        mark = "➜ " if here else ""
        value = fmt(s.value, ex.decimals + 1)
        rows.append(f"| {mark}{i + 1} | {_what(ex, i)} | `{s.expr}` | {f'**{value}**' if here else value} | {you} |")
    st.markdown("\n".join(rows))
    with st.container(key="tryit_diagnosis"):
        st.warning(diagnosis_text(ex, diag))
