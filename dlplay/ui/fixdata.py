"""Fix the data (Evaluate page): a confusion matrix of the test, validation or training images whose
cells open their images; images of the training set (validation or training split) can be marked as
mislabelled (with the right label) or dropped, and a new run trains with the same settings plus
those edits (``TrainConfig.label_edits``, listed in the run's settings).

Test images are shown but never edited: they are the exam every run is measured on, and a run whose
edits changed its own test labels could not be compared with the others.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from dlplay.classify.evaluation import EvalReport, build_report, predict_session
from dlplay.classify.handle import RunHandle
from dlplay.errors import UserError
from dlplay.figures.fixdata import cell_of, clickable_confusion_figure
from dlplay.nn.spec import DROP, MAX_LABEL_EDITS
from dlplay.ui import evaluate as ev
from dlplay.ui.charts import chart
from dlplay.ui.i18n import error_text, t
from dlplay.ui.state import is_active, replace_run, set_config, set_spec

SPLIT = "fx_split"  # which images the Results tab shows: test, val, train
CELL = "fx_cell"  # (split, true class, guessed class) of the chosen cell, or None
EDITS = "fx_edits"  # {training-set index: new label or DROP} waiting for the next run
REPORTS = "fx_reports"  # split -> (session, token, report, indices)
ERROR = "fx_error"
GO_TRAIN = "fx_go_train"  # set by the retrain callback: the page switches to Train on its next run
TRAIN_PAGE = "views/train.py"
PER_PAGE = 18
COLUMNS = 6
EDITABLE = ("val", "train")


def splits(session: RunHandle) -> list[str]:
    """The splits the learner can look at: test, the validation split when the run has one, training."""
    return ["test", *(["val"] if session.config.val_share else []), "train"]


def chosen_split(session: RunHandle) -> str:
    """The split the learner chose (test when the choice does not exist for this run). Only reads the state:
    the picker's widget may already exist in this run, and its state may not be written then."""
    split = st.session_state.get(SPLIT)
    return split if split in splits(session) else "test"


def report_for(session: RunHandle, split: str) -> tuple[EvalReport, np.ndarray]:
    """The evaluation of the current weights on ``split`` and the dataset index of each of its images
    (the test split's report is the page's own)."""
    if split == "test":
        report, _ = ev.report_for(session)
        return report, np.arange(len(report.preds.labels))
    token = "active" if is_active(session) else session.status
    cache = st.session_state.setdefault(REPORTS, {})
    cached = cache.get(split)
    if cached is not None and cached[0] is session and cached[1] == token:
        return cached[2], cached[3]
    with st.spinner(t(f"fixdata.computing_{split}")):
        report = build_report(predict_session(session, split))
        indices = session.split_data(split)[2].numpy()
    cache[split] = (session, token, report, indices)
    return report, indices


def forget_reports() -> None:
    st.session_state.pop(REPORTS, None)


def split_picker(session: RunHandle) -> str:
    """The segmented control above the Results tab: whose confusion matrix, and what it means.

    The choice is required (a second click on the chosen option keeps it), and a choice this run does not
    offer (a validation split of an earlier run) is put right before the widget is drawn: a widget's state
    may only be written before the widget exists in a run, or in a callback.
    """
    options = splits(session)
    if st.session_state.get(SPLIT) not in options:
        st.session_state[SPLIT] = "test"
    st.segmented_control(t("fixdata.split"), options, key=SPLIT, required=True,
                         format_func=lambda s: t(f"fixdata.split_{s}"))  # the chosen cell remembers its split
    split = chosen_split(session)
    st.caption(t(f"fixdata.split_{split}_help"))
    return split


def select_cell(split: str, true: int, predicted: int) -> None:
    """Button callback (a confused pair's Show button on a training-set split): open that cell."""
    st.session_state[CELL] = (split, true, predicted)


def confusion_chart(report: EvalReport, labels: list[str], split: str, normalized: bool, lang: str) -> None:
    """The confusion matrix; a click on a cell chooses it (kept in CELL across reruns)."""
    n = len(labels)
    cell = st.session_state.get(CELL)
    selected = cell[1:] if cell is not None and cell[0] == split else None
    fig = clickable_confusion_figure(report.confusion, labels, normalized, lang, selected)
    # no key of its own: the language switch rewrites keyed option widgets' values, and a keyed chart's
    # selection may not be assigned (StreamlitValueAssignmentNotAllowedError); CELL keeps the choice
    with st.container(key=f"eval_cm_{split}"):
        event = chart(st, fig, on_select="rerun", selection_mode="points")
    points = event.get("selection", {}).get("points", []) if event else []
    clicked = next((p for p in points if "point_index" in p), None)
    seen = st.session_state.get("fx_seen_click")
    if clicked is not None:
        click = (split, int(clicked["point_index"]))
        if click != seen:  # a new click (the chart keeps reporting its selection on every rerun)
            st.session_state["fx_seen_click"] = click
            st.session_state[CELL] = (split, *cell_of(click[1], n))
    st.caption(t("fixdata.click_help"))


def cell_images(session: RunHandle, report: EvalReport, indices: np.ndarray, labels: list[str], split: str) -> None:
    """The images of the chosen cell, with their edit controls on a training-set split."""
    cell = st.session_state.get(CELL)
    if cell is None or cell[0] != split:
        return
    _, true, predicted = cell
    preds = report.preds
    mask = (preds.labels == true) & (preds.predicted == predicted)
    positions = np.flatnonzero(mask)
    # a mistake: the most confident first (likely a wrong label); a right answer: the least confident first
    order = np.argsort(-preds.confidence[positions] if true != predicted else preds.confidence[positions], kind="stable")
    positions = positions[order]
    with st.container(key="fx_cell_images", border=True):
        st.subheader(t("fixdata.cell_title", true=labels[true], pred=labels[predicted], n=len(positions),
                       split=t(f"fixdata.split_{split}")))
        if not len(positions):
            st.info(t("fixdata.cell_empty"))
            return
        pages = max(1, -(-len(positions) // PER_PAGE))
        page = 1
        if pages > 1:
            page = int(st.number_input(t("eval.gallery_page", pages=pages), 1, pages, 1, key="fx_page"))
        shown = positions[(page - 1) * PER_PAGE : page * PER_PAGE]
        images = session.split_data(split)[0][shown].numpy() if split != "test" else ev.test_images(session, shown)
        editable = split in EDITABLE
        if not editable:
            st.caption(t("fixdata.test_read_only"))
        edits = st.session_state.setdefault(EDITS, {})
        options = ["keep", *range(len(labels)), DROP]
        cols = st.columns(COLUMNS)
        for k, (pos, image) in enumerate(zip(shown.tolist(), images)):
            index = int(indices[pos])
            with cols[k % COLUMNS]:
                st.image(np.kron(image, np.ones((3, 3), dtype=np.uint8)),
                         caption=t("fixdata.caption", index=index, label=labels[preds.labels[pos]],
                                   pred=labels[preds.predicted[pos]], conf=float(preds.confidence[pos])))
                if editable:
                    key = f"fx_edit_{index}"
                    st.session_state[key] = edits.get(index, "keep")
                    st.selectbox(t("fixdata.mark"), options, key=key, on_change=_on_edit, args=(index, int(preds.labels[pos])),
                                 format_func=lambda o: _option_text(o, labels), label_visibility="collapsed")


def _option_text(option, labels: list[str]) -> str:
    if option == "keep":
        return t("fixdata.keep")
    if option == DROP:
        return t("fixdata.drop")
    return t("fixdata.relabel", label=labels[option])


def _on_edit(index: int, current: int) -> None:
    """Selectbox callback: remember (or forget) the learner's edit of training-set image ``index``."""
    value = st.session_state[f"fx_edit_{index}"]
    edits = st.session_state.setdefault(EDITS, {})
    if value == "keep" or value == current:
        edits.pop(index, None)
    else:
        edits[index] = int(value)


def merged_edits(session: RunHandle) -> tuple[tuple[int, int], ...]:
    """The current run's edits with the learner's new ones on top (a new edit of an image replaces its old one)."""
    merged = dict(session.config.label_edits)
    merged.update(st.session_state.get(EDITS, {}))
    return tuple(sorted(merged.items()))


def edits_panel(session: RunHandle, labels: list[str]) -> None:
    """The edits waiting for the next run, and the button that trains it."""
    edits = st.session_state.get(EDITS, {})
    earlier = session.config.label_edits
    if not edits and not earlier:
        return
    with st.container(key="fx_edits_panel", border=True):
        st.subheader(t("fixdata.edits_title"))
        if earlier:
            st.caption(t("fixdata.edits_earlier", n=len(earlier)))
        if edits:
            st.write(t("fixdata.edits_pending", n=len(edits)))
            st.markdown("\n".join(f"- {_edit_text(i, label, labels)}" for i, label in sorted(edits.items())))
        a, b, _ = st.columns([2, 1, 2])
        a.button(t("fixdata.retrain"), key="fx_retrain", type="primary", icon=":material/replay:",
                 on_click=retrain, args=(session,), disabled=not edits, help=t("fixdata.retrain_help"))
        b.button(t("fixdata.clear"), key="fx_clear", on_click=clear_edits, disabled=not edits)
        error = st.session_state.pop(ERROR, None)
        if error:
            st.error(error)
        if len(merged_edits(session)) > MAX_LABEL_EDITS:
            st.warning(t("fixdata.too_many", count=len(merged_edits(session)), limit=MAX_LABEL_EDITS))


def _edit_text(index: int, label: int, labels: list[str]) -> str:
    return t("fixdata.edit_drop", index=index) if label == DROP else t("fixdata.edit_relabel", index=index, label=labels[label])


def clear_edits() -> None:
    st.session_state[EDITS] = {}


def retrain(session: RunHandle) -> None:
    """Button callback: a new run with the same model and settings plus the edits; it starts at once
    and the page moves to Train, where it can be watched."""
    try:
        config = session.config.with_changes(label_edits=merged_edits(session))
        run = replace_run(session.spec, config)
    except UserError as exc:
        st.session_state[ERROR] = error_text(exc)
        return
    set_spec(run.spec)
    set_config(run.config)
    run.start()
    clear_edits()
    forget_reports()
    ev.forget_report()
    st.session_state[CELL] = None
    st.session_state[GO_TRAIN] = True
