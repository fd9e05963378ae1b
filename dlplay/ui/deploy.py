"""The Deploy page: the current model as a local inference server (dlplay/export/serve.py) on 127.0.0.1.

One server per browser session, kept in its session state with the model copy it serves (so the
in-app answer beside the server's comes from the same weights). The server stops on Stop, when a new
one starts, and when the browser session is gone: its watchdog asks :func:`owner_check` (the session's
registry record: connected, or seen within the heartbeat timeout) every second.
"""
from __future__ import annotations

import json
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from dlplay.classify.checkpoint import export_onnx, file_stem
from dlplay.classify.handle import RunHandle
from dlplay.classify.predict import predict
from dlplay.data.datasets import class_label
from dlplay.errors import UserError
from dlplay.export import serve
from dlplay.figures.deploy import load_figure
from dlplay.nn.model import Net
from dlplay.server.admin import heartbeat_timeout
from dlplay.server.registry import BrowserSession
from dlplay.ui import server as srv
from dlplay.ui.charts import chart
from dlplay.ui.drawing import DRAWING_KEY
from dlplay.ui.i18n import current_language, error_text, t

SERVER = "deploy_server_state"  # the session's Deployed (or absent)
ANSWER = "deploy_answer_state"  # (image source text, server answer dict, in-app probabilities)
LOAD = "deploy_load_state"  # list[LoadResult] of the last load test
MESSAGE = "deploy_message"
LOAD_SECONDS = 1.5  # each level of the load test at most this long (three levels: a few seconds in all)
LOAD_MAX_REQUESTS = 3000


@dataclass
class Deployed:
    """A running server and what it serves: the model copy and the training step it was taken at."""

    server: serve.LocalServer
    model: Net
    step: int
    epoch: int
    run: Any  # the run handle, weakly: which run it came from
    onnx: bytes
    meta: dict[str, Any]
    example: Any = None  # the server's answer to the curl example's request (an all-black image)


def owner_check(record: BrowserSession) -> Callable[[], bool]:
    """True while the browser session lives: its tab is connected, or (where the web server cannot
    tell) it was seen within the heartbeat timeout; False once its record is gone."""
    ref = weakref.ref(record)
    grace = heartbeat_timeout()

    def alive() -> bool:
        rec = ref()
        if rec is None:
            return False
        if srv.is_connected(rec):
            return True
        return time.time() - rec.last_seen < grace

    return alive


def deployed() -> Deployed | None:
    entry = st.session_state.get(SERVER)
    if isinstance(entry, Deployed) and entry.server.running:
        return entry
    return None


def _meta(session: RunHandle) -> dict[str, Any]:
    info = session.dataset_info
    return {"title": file_stem(session.spec, session.config), "dataset": info.name, "classes": list(info.classes),
            "model": session.spec.describe()}


def start_server(session: RunHandle) -> None:
    """Button callback: serve the session's current weights (stops this session's previous server)."""
    stop_server()
    st.session_state.pop(ANSWER, None)
    st.session_state.pop(LOAD, None)
    progress = session.snapshot().progress
    model = session.model_copy("cpu")
    info = session.dataset_info
    try:
        onnx = export_onnx(model, info.mean, info.std)
        meta = _meta(session)
        server = serve.LocalServer(onnx, meta, owner_alive=owner_check(srv.browser_session())).start()
    except UserError as exc:
        st.session_state[MESSAGE] = ("error", error_text(exc))
        return
    except Exception as exc:  # noqa: BLE001 - the export or the server failed: say so, keep the page
        st.session_state[MESSAGE] = ("error", t("deploy.start_failed", reason=f"{type(exc).__name__}: {exc}"))
        return
    try:
        example = serve.request(server.url, serve.image_body(np.zeros((28, 28), dtype=np.uint8)))[1]
    except OSError as exc:
        example = {"error": str(exc)}
    st.session_state[SERVER] = Deployed(server, model, progress.global_step, progress.epoch, weakref.ref(session),
                                        onnx, meta, example)
    st.session_state[MESSAGE] = None


def stop_server() -> None:
    entry = st.session_state.pop(SERVER, None)
    if isinstance(entry, Deployed):
        entry.server.stop()
    st.session_state.pop(ANSWER, None)


def test_image(session: RunHandle, index: int) -> np.ndarray:
    images, _ = session.test_split()
    return images[index].numpy()


def image_to_send(session: RunHandle) -> tuple[np.ndarray | None, str]:
    """(uint8 28×28 image, what it is) from the chosen source: the Draw canvas or a test image."""
    if st.session_state.get("deploy_source", "drawing") == "drawing":
        drawing = st.session_state.get(DRAWING_KEY)
        return (None if drawing is None else np.asarray(drawing, dtype=np.uint8)), t("deploy.source_drawing")
    index = int(st.session_state.get("deploy_test_index", 0))
    return test_image(session, index), t("deploy.test_image_n", index=index)


def send(session: RunHandle) -> None:
    """Button callback: send the image to the server; keep its answer and the in-app one side by side."""
    entry = deployed()
    image, what = image_to_send(session)
    if entry is None:
        st.session_state[MESSAGE] = ("warning", t("deploy.not_running"))
        return
    if image is None:
        st.session_state[MESSAGE] = ("info", t("deploy.no_drawing"))
        return
    try:
        answer = serve.predict(entry.server.url, image)
    except UserError as exc:
        st.session_state[MESSAGE] = ("error", error_text(exc))
        return
    info = session.dataset_info
    ours = predict(entry.model, image, info.mean, info.std).probabilities
    st.session_state[ANSWER] = (what, image, answer, ours)
    st.session_state[MESSAGE] = None


def run_load_test() -> None:
    """Button callback: the bounded load test (loopback only) at 1, 4 and 16 clients."""
    entry = deployed()
    if entry is None:
        st.session_state[MESSAGE] = ("warning", t("deploy.not_running"))
        return
    body = serve.image_body(np.zeros((28, 28), dtype=np.uint8))
    st.session_state[LOAD] = serve.load_test(entry.server.url, body, seconds=LOAD_SECONDS,
                                             max_requests=LOAD_MAX_REQUESTS)


def show_message() -> None:
    message = st.session_state.get(MESSAGE)
    if message:
        kind, text = message
        getattr(st, kind)(text)


def server_section(session: RunHandle) -> None:
    entry = deployed()
    st.subheader(t("deploy.server_title"), anchor=False)
    if entry is None:
        if isinstance(st.session_state.get(SERVER), Deployed):  # it stopped by itself
            st.session_state.pop(SERVER, None)
        st.caption(t("deploy.server_help"))
        st.button(t("deploy.start"), key="deploy_start", type="primary", icon=":material/rocket_launch:",
                  on_click=start_server, args=(session,))
        show_message()
        st.markdown(f'<span class="dl-deploy-status">{t("deploy.status_stopped")}</span>', unsafe_allow_html=True)
        return
    progress = session.snapshot().progress
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.markdown(f':material/check_circle: <span class="dl-deploy-status">{t("deploy.status_running")}</span> '
                f'<code class="dl-deploy-url">{entry.server.url}</code> · '
                f'{t("deploy.running", step=entry.step, epoch=entry.epoch)}', unsafe_allow_html=True)
    c2.button(t("deploy.stop"), key="deploy_stop", icon=":material/stop_circle:", on_click=stop_server)
    if entry.run() is not session or progress.global_step != entry.step:
        st.info(t("deploy.stale", step=entry.step))
        st.button(t("deploy.restart"), key="deploy_restart", on_click=start_server, args=(session,))
    st.caption(t("deploy.curl_help"))
    st.code(serve.curl_example(entry.server.url), language="bash", wrap_lines=True)
    st.caption(t("deploy.answer_shape"))
    st.code(json.dumps(entry.example, ensure_ascii=False), language="json", wrap_lines=True)


def send_section(session: RunHandle, lang: str) -> None:
    entry = deployed()
    if entry is None:
        return
    st.subheader(t("deploy.send_title"), anchor=False)
    sources = {"drawing": t("deploy.source_drawing"), "test": t("deploy.source_test")}
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    source = c1.segmented_control(t("deploy.source"), list(sources), default="drawing", key="deploy_source",
                                  format_func=sources.__getitem__)
    n_test = len(session.test_split()[1])
    if source == "test":
        c2.number_input(t("deploy.test_index"), 0, n_test - 1, 0, key="deploy_test_index")
    c3.button(t("deploy.send"), key="deploy_send", icon=":material/send:", on_click=send, args=(session,))
    show_message()
    answer = st.session_state.get(ANSWER)
    if answer is None:
        if source != "test" and st.session_state.get(DRAWING_KEY) is None:
            st.caption(t("deploy.no_drawing"))
        return
    what, image, theirs, ours = answer
    info = session.dataset_info
    left, mid, right = st.columns([1, 2, 2])
    left.image(np.kron(image, np.ones((4, 4), dtype=np.uint8)), caption=what)
    server_class = int(theirs["class"])
    app_class = int(np.argmax(ours))
    diff = float(np.max(np.abs(np.asarray(theirs["probabilities"]) - ours)))
    with mid:
        st.markdown(t("deploy.server_answer"))
        st.markdown(f'<div class="dl-deploy-server-answer">{t("deploy.answer_line", label=class_label(info, server_class, lang), p=theirs["probabilities"][server_class])}</div>',
                    unsafe_allow_html=True)
        st.code(json.dumps(theirs, ensure_ascii=False), language="json", wrap_lines=True)
    with right:
        st.markdown(t("deploy.app_answer"))
        st.markdown(f'<div class="dl-deploy-app-answer">{t("deploy.answer_line", label=class_label(info, app_class, lang), p=float(ours[app_class]))}</div>',
                    unsafe_allow_html=True)
        if server_class == app_class:
            st.caption(t("deploy.same", diff=diff))
        else:
            st.warning(t("deploy.differ", diff=diff))


def load_section(lang: str) -> None:
    if deployed() is None:
        return
    st.subheader(t("deploy.load_title"), anchor=False)
    st.caption(t("deploy.load_help", seconds=LOAD_SECONDS, limit=LOAD_MAX_REQUESTS))
    st.button(t("deploy.load_run"), key="deploy_load", icon=":material/speed:", on_click=run_load_test)
    results = st.session_state.get(LOAD)
    if results:
        chart(st, load_figure(results, lang), key="deploy_load_fig")
        rows = [{t("deploy.col_clients"): r.clients, t("deploy.col_requests"): r.requests,
                 t("deploy.col_rps"): round(r.rps, 1), "p50 (ms)": round(r.p50_ms, 2), "p95 (ms)": round(r.p95_ms, 2),
                 "p99 (ms)": round(r.p99_ms, 2), t("deploy.col_errors"): r.errors} for r in results]
        st.dataframe(rows, hide_index=True, key="deploy_load_table")


def zip_section() -> None:
    entry = deployed()
    if entry is None:
        return
    st.subheader(t("deploy.zip_title"), anchor=False)
    st.caption(t("deploy.zip_help"))
    st.download_button(t("deploy.zip_download"), lambda: serve.bundle_zip(entry.onnx, entry.meta),
                       f"{entry.meta['title']}-server.zip", "application/zip", key="deploy_zip", on_click="ignore",
                       icon=":material/folder_zip:")
    st.code("unzip *-server.zip -d server && cd server\ndocker build -t dlplay-model .\n"
            "docker run --rm -p 8000:8000 dlplay-model", language="bash")


def page(session: RunHandle | None) -> None:
    """The whole page below its title (views/deploy.py is layout only)."""
    lang = current_language()
    if session is None or session.snapshot().progress.epoch < 1:
        st.info(t("deploy.no_model"))
        return
    server_section(session)
    send_section(session, lang)
    load_section(lang)
    zip_section()
