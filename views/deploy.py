"""Deploy: the current model as a web service on this machine: call it, load-test it, take it away as a zip."""
import streamlit as st

from dlplay.ui import deploy as dp
from dlplay.ui.i18n import t
from dlplay.ui.state import current_session, heartbeat, init_state

init_state()
heartbeat()
st.title(t("deploy.title"))
st.caption(t("deploy.intro"))
dp.page(current_session())
