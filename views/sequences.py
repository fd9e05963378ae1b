"""Sequences: a recurrent network reads the digit step by step; its memory, its gradient through time,
which rows mattered, and the formulas with real numbers."""
import streamlit as st

from dlplay.ui import sequences as sq
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import current_session, heartbeat, init_state, is_active

init_state()
lang = current_language()
st.title(t("sequences.title"))
st.caption(t("sequences.intro"))

handle = current_session()
if handle is None or not handle.spec.is_recurrent():
    sq.not_recurrent_notice(handle is not None)
    st.stop()
was_active = is_active(handle)
st.session_state["_seq_info"] = sq.dataset_info(handle)


@st.fragment(run_every=sq.POLL_S if was_active else None)
def gradient_through_time() -> None:
    handle = current_session()
    if handle is None:
        return
    heartbeat()
    st.subheader(t("sequences.sec_tgrad"))
    sq.time_gradient_section(handle, lang)
    if was_active and not is_active(handle):
        st.rerun()  # the run ended: a full rerun stops the polling


gradient_through_time()

net = sq.model(handle)
st.subheader(t("sequences.sec_reading"))
image, label, caption = sq.choose_input(handle)
if image is None:
    st.stop()
st.caption(caption)
sq.reading_section(net, image, label, lang)

st.subheader(t("sequences.sec_memory"))
sq.memory_section(net, image, lang)

st.subheader(t("sequences.sec_conn"))
sq.connectivity_section(net, image, lang)

st.subheader(t("sequences.sec_formula"))
st.caption(t("sequences.formula_intro"))
sq.formula_section(net, image, label, lang)
