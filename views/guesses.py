"""Guess, then run: a question about training, the learner's guess, short real runs that answer it."""
from __future__ import annotations

import streamlit as st

from dlplay.ui import guesses as gu
from dlplay.ui.i18n import t
from dlplay.ui.state import heartbeat, init_state

init_state()
heartbeat()
st.title(t("guesses.title"))
st.caption(t("guesses.intro"))
gu.question_view()
st.divider()
gu.tally_line()
