"""Explore page, embeddings tab: a map of the test images as one layer sees them (PCA, live while the run
trains; t-SNE on demand within a time budget), the learner's drawing on it, a click opening an image on
the Inside page."""
from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from dlplay.classify.handle import RunHandle
from dlplay.classify.predict import probabilities
from dlplay.data.datasets import class_label
from dlplay.figures.embeddings import map_figure
from dlplay.i18n import LANGUAGES
from dlplay.learn.embeddings import (
    INPUT,
    MAX_POINTS,
    TsneJob,
    activation_of,
    activations,
    layer_names,
    pca_2d,
    place_by_neighbours,
    tsne_plan,
)
from dlplay.run.status import ACTIVE
from dlplay.ui.charts import chart
from dlplay.ui.i18n import current_language, t

PCA_KEY, TSNE_KEY = "emb_pca", "emb_tsne"
GO_INSIDE = "emb_go_inside"  # set by a click on the map: the page switches to Inside on its next run
INSIDE_PAGE = "views/inside.py"
DRAWING_KEY = "drawing28"
SIZES = (500, 1000, 2000, MAX_POINTS)
BUDGETS = (10, 20, 40, 60)
LIVE_S = 2.0  # the PCA map follows a training run at most this often


def layer_label(name: str) -> str:
    if name == INPUT:
        return t("embeddings.layer_input")
    if name == "output":
        return t("embeddings.layer_output")
    return name


def on_click(key: str) -> None:
    """The map's selection callback: the clicked test image opens on the Inside page."""
    event = st.session_state.get(key)
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "points", [])
    for point in points:
        index = point.get("customdata")
        if isinstance(index, list):
            index = index[0] if index else None
        if isinstance(index, (int, float)):
            st.session_state["inside_test_index"] = int(index)  # what the Inside page opens (dlplay/ui/inside.py)
            st.session_state["inside_source"] = "test"
            st.session_state[GO_INSIDE] = True
            return


def _drawing_point(session: RunHandle, model, layer: str, place, lang: str) -> tuple[np.ndarray | None, str]:
    """Where the Draw page's digit lands on the map (``place``: activations -> map position), and the guess."""
    drawing = st.session_state.get(DRAWING_KEY)
    if drawing is None:
        return None, ""
    info = session.dataset_info
    image = np.asarray(drawing, dtype=np.uint8)
    x = activation_of(model, image, info.mean, info.std, layer)
    guess = int(np.argmax(probabilities(model, image, info)))
    return place(x), class_label(info, guess, lang)


def embeddings_tab(session: RunHandle, lang: str) -> None:
    model = session.model_copy()
    names = layer_names(model)
    if st.session_state.get("emb_layer") not in names:
        st.session_state["emb_layer"] = names[-2] if len(names) > 2 else names[-1]  # the last hidden layer
    total = len(session.test_split()[1])
    sizes = [s for s in SIZES if s < total] + ([total] if total <= MAX_POINTS else [])
    st.session_state.setdefault("emb_n", 1000 if 1000 in sizes else sizes[-1])
    c_layer, c_n, c_method = st.columns([2, 1, 2], vertical_alignment="bottom")
    layer = c_layer.selectbox(t("embeddings.layer"), names, key="emb_layer", format_func=layer_label,
                              help=t("embeddings.layer_help"))
    n = int(c_n.selectbox(t("embeddings.n_images"), sizes, key="emb_n", format_func=lambda k: f"{k:,}"))
    method = c_method.radio(t("embeddings.method"), ["pca", "tsne"], key="emb_method", horizontal=True,
                            format_func=lambda m: t(f"embeddings.method_{m}"))
    if method == "pca":
        pca_view(session, layer, n, lang)
    else:
        tsne_view(session, layer, n, lang)


def _classes(session: RunHandle, lang: str) -> list[str]:
    info = session.dataset_info
    return [class_label(info, c, lang) for c in range(info.num_classes)]


def pca_view(session: RunHandle, layer: str, n: int, lang: str) -> None:
    live = session.status in ACTIVE

    @st.fragment(run_every=LIVE_S if live else None)
    def live_map() -> None:
        if st.session_state.get(GO_INSIDE):
            st.rerun()  # a click on the map: the page switches to Inside
        session.heartbeat()
        info = session.dataset_info
        step = session.snapshot().progress.global_step
        key = (session.run_id, step, layer, n)
        cached = st.session_state.get(PCA_KEY)
        if cached is None or cached[0] != key:
            model = session.model_copy()
            images, test_labels = session.test_split()
            x = activations(model, images[:n], info.mean, info.std, layer)
            previous = cached[1] if cached is not None and cached[0][2:] == key[2:] else None
            pca = pca_2d(x, previous)
            drawing, guess = _drawing_point(session, model, layer, lambda a: pca.project(a)[0], lang)
            cached = (key, pca, test_labels[:n].numpy(), drawing, guess)
            st.session_state[PCA_KEY] = cached
        _, pca, labels, drawing, guess = cached
        if live:
            st.caption(t("embeddings.live", step=step))
        title = t("embeddings.pca_title", layer=layer_label(layer), a=f"{pca.explained[0]:.0%}",
                  b=f"{pca.explained[1]:.0%}")
        axes = (t("embeddings.pc", k=1), t("embeddings.pc", k=2))
        fig = map_figure(pca.coords, labels, np.arange(len(labels)), _classes(session, lang), title, lang,
                         drawing=drawing, drawing_guess=guess, axis_titles=axes)
        show_map(fig)
        st.caption(t("embeddings.pca_help") + " " + t("embeddings.drawing_pca" if drawing is not None else
                                                       "embeddings.no_drawing"))

    live_map()


def show_map(fig) -> None:
    # one chart key per language: the language switch re-assigns option widgets' values, which a chart's
    # selection state does not allow (StreamlitValueAssignmentNotAllowedError); the other one is dropped
    lang = current_language()
    for other in LANGUAGES:
        if other != lang:
            st.session_state.pop(f"emb_map_{other}", None)
    key = f"emb_map_{lang}"
    with st.container(key="emb_map_box"):
        chart(st, fig, key=key, on_select=partial(on_click, key), selection_mode="points",
                        config={"displayModeBar": False, "scrollZoom": True})
    st.caption(t("embeddings.click_help"))


def start_tsne(session: RunHandle, want: tuple, budget: int) -> None:
    """Button callback: the chosen layer's activations of the first test images, mapped in a background thread."""
    _, _, layer, points = want
    info = session.dataset_info
    model = session.model_copy()
    images, labels = session.test_split()
    x = activations(model, images[:points], info.mean, info.std, layer).numpy()
    st.session_state[TSNE_KEY] = (TsneJob(x, budget, key=want), x, labels[:points].numpy(), model)


def tsne_view(session: RunHandle, layer: str, n: int, lang: str) -> None:
    c_budget, c_go = st.columns([1, 1], vertical_alignment="bottom")
    budget = int(c_budget.selectbox(t("embeddings.budget"), BUDGETS, index=1, key="emb_budget",
                                    format_func=lambda s: t("embeddings.seconds", s=s), help=t("embeddings.budget_help")))
    points = tsne_plan(n, budget)
    want = (session.run_id, session.snapshot().progress.global_step, layer, points)
    c_go.button(t("embeddings.tsne_start"), key="emb_tsne_start", type="primary", icon=":material/scatter_plot:",
                on_click=start_tsne, args=(session, want, budget))
    if points < n:
        st.caption(t("embeddings.tsne_points", points=points, n=n, budget=budget))
    job_entry = st.session_state.get(TSNE_KEY)
    if job_entry is None:
        st.info(t("embeddings.tsne_press"))
        return

    polling = not job_entry[0].done  # the interval is fixed when the fragment is defined

    @st.fragment(run_every=0.5 if polling else None)
    def tsne_progress() -> None:
        if st.session_state.get(GO_INSIDE):
            st.rerun()
        job, x, labels, model = st.session_state[TSNE_KEY]
        session.heartbeat()
        if polling and job.done:
            st.rerun()  # finished: a full rerun draws the map and stops the polling
        if not job.done:
            st.progress(job.progress(), text=t("embeddings.tsne_running", n=job.n, s=f"{job.elapsed():.0f}",
                                               expected=f"{job.expected_s:.0f}"))
            return
        if job.error:
            st.error(t("embeddings.tsne_failed", error=job.error))
            return
        if job.key != want:
            st.caption(t("embeddings.tsne_stale"))
        _, _, job_layer, _ = job.key
        drawing, guess = _drawing_point(session, model, job_layer,
                                        lambda a: place_by_neighbours(x, job.coords, a), lang)
        title = t("embeddings.tsne_title", layer=layer_label(job_layer), n=job.n, s=f"{job.seconds:.0f}")
        fig = map_figure(job.coords, labels, np.arange(len(labels)), _classes(session, lang), title, lang,
                         drawing=drawing, drawing_guess=guess)
        show_map(fig)
        st.caption(t("embeddings.tsne_help") + " " + t("embeddings.drawing_tsne" if drawing is not None else
                                                        "embeddings.no_drawing"))

    tsne_progress()
