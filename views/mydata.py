"""My data page: upload a zip of image folders or a CSV (or try an example), see it as the network will,
and make it the session's dataset for Train, Evaluate and Inside."""
import streamlit as st

from dlplay.ui import owndata as od
from dlplay.ui.i18n import t
from dlplay.ui.state import init_state

init_state()
st.title(t("mydata.title"))
st.caption(t("owndata.intro"))
od.session_id()  # the session's own data folder goes when the session goes
od.limits_box()
od.upload_area()
own = st.session_state.get(od.READ)
if own is not None:
    od.preview(own)
    od.use_area(own)
