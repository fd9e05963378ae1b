"""Admin page: who is using the server, which runs train or wait, memory; stop any run (token-protected)."""
import time

import streamlit as st

from dlplay.run.device import choose_device
from dlplay.server.admin import admin_token, heartbeat_timeout, token_matches
from dlplay.server.guardrails import MB, memory_report
from dlplay.server.registry import run_row, training_threads
from dlplay.ui import server
from dlplay.ui.cluster import show_workers
from dlplay.ui.i18n import t
from dlplay.ui.state import init_state

AUTH = "_admin_ok"
TOKEN_INPUT = "admin_token_input"
WRONG = "_admin_wrong"

init_state()
st.title(t("admin.title"))
expected = admin_token()
if expected is None:
    st.info(t("admin.disabled"))
    st.stop()


def _sign_in() -> None:
    given = st.session_state.get(TOKEN_INPUT) or ""
    ok = expected is not None and token_matches(given, expected)  # None: the page stopped above
    st.session_state[AUTH] = ok
    st.session_state[WRONG] = not ok
    st.session_state[TOKEN_INPUT] = ""  # the token does not stay in the session
    if not ok:
        time.sleep(0.5)  # slows down guessing


def _sign_out() -> None:
    st.session_state[AUTH] = False


if not st.session_state.get(AUTH):
    st.text_input(t("admin.token"), type="password", key=TOKEN_INPUT)
    st.button(t("admin.sign_in"), key="admin_sign_in", on_click=_sign_in, type="primary")
    if st.session_state.get(WRONG):
        st.error(t("admin.token_wrong"))
    st.stop()

pool = server.slot_pool()
registry = server.registry()
limits = server.limits()
device = choose_device()


def _stop(run_id: str) -> None:
    registry.stop_run(run_id)


def _stop_all() -> None:
    st.session_state["_admin_stopped"] = registry.stop_all()


def _set_limit() -> None:
    pool.set_limit(int(st.session_state["admin_limit"]))


st.caption(t("admin.intro"))
c1, c2 = st.columns([3, 1])
c1.number_input(t("admin.set_limit"), 1, 64, pool.limit, key="admin_limit", on_change=_set_limit,
                help=t("admin.set_limit_help"))
c2.button(t("admin.sign_out"), key="admin_sign_out", on_click=_sign_out)
st.caption(t("admin.device", device=memory_report(device).device_name, threads=pool.threads_per_run or 1,
             heartbeat=heartbeat_timeout()))
st.caption(t("admin.limits", params=f"{limits.max_params:,}", epochs=limits.max_epochs,
             train_size=f"{limits.max_train_size:,}", memory=f"{limits.max_session_mb:,.0f}"))


def _mb(value: int | None) -> str:
    return "–" if value is None else f"{value / MB:,.0f}"


@st.fragment(run_every=2.0)
def overview() -> None:
    state = pool.state()
    browsers = registry.browsers()
    rows = [run_row(entry) for entry in registry.runs()]
    memory = memory_report(device)
    m = st.columns(6)
    m[0].metric(t("admin.m_sessions"), len(browsers))
    m[1].metric(t("admin.m_running"), len(state.running))
    m[2].metric(t("admin.m_queued"), len(state.queued))
    m[3].metric(t("admin.m_limit"), state.limit)
    m[4].metric(t("admin.m_threads"), len(training_threads()))
    m[5].metric(t("admin.m_total_speed"), f"{sum(r.samples_per_s for r in rows):,.0f}")
    m2 = st.columns(4)
    m2[0].metric(t("admin.m_runs_alive"), len(rows))
    m2[1].metric(t("admin.m_rss"), _mb(memory.process_rss))
    m2[2].metric(t("admin.m_available"), _mb(memory.system_available))
    m2[3].metric(t("admin.m_device"), _mb(memory.device_allocated))

    show_workers()  # with the Ray backend: its worker actors
    st.subheader(t("admin.runs"))
    if not rows:
        st.info(t("admin.no_runs"))
    else:
        st.dataframe([{
            t("admin.col_run"): r.run_id,
            t("admin.col_session"): r.browser_id,
            t("admin.col_status"): t(f"train.status_{r.status}"),
            t("admin.col_model"): r.model,
            t("admin.col_params"): r.params,
            t("admin.col_epoch"): r.epoch,
            t("admin.col_speed"): round(r.samples_per_s),
            t("admin.col_queue"): r.queue_position,
            t("admin.col_idle"): None if r.idle_s is None else round(r.idle_s, 1),
            t("admin.col_age"): round(r.age_s),
        } for r in rows], hide_index=True, key="admin_runs_table")
        active = [r for r in rows if r.status in ("queued", "running", "paused")]
        if active:
            buttons = st.columns(min(6, len(active) + 1))
            for i, r in enumerate(active):
                buttons[i % (len(buttons) - 1)].button(t("admin.stop_run", run=r.run_id), key=f"admin_stop_{r.run_id}",
                                                      on_click=_stop, args=(r.run_id,), icon=":material/stop:")
            buttons[-1].button(t("admin.stop_all"), key="admin_stop_all", on_click=_stop_all, type="primary")
    stopped = st.session_state.pop("_admin_stopped", None)
    if stopped is not None:
        st.success(t("admin.stopped", count=stopped))

    st.subheader(t("admin.sessions"))
    if not browsers:
        st.info(t("admin.no_sessions"))
    else:
        now = time.time()
        runs_per: dict[str, int] = {}
        for r in rows:
            runs_per[r.browser_id] = runs_per.get(r.browser_id, 0) + 1
        st.dataframe([{
            t("admin.col_session"): b.id,
            t("admin.col_connected"): server.is_connected(b),
            t("admin.col_seen"): round(now - b.last_seen),
            t("admin.col_runs"): runs_per.get(b.id, 0),
        } for b in browsers], hide_index=True, key="admin_sessions_table")


overview()
