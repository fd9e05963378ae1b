"""One step: a real training step in slow motion, a neuron's weights by hand, the loss landscape."""
from __future__ import annotations

import streamlit as st

from dlplay.ui import slowmo as ui
from dlplay.ui.i18n import t
from dlplay.ui.state import current_session, init_state

init_state()
st.title(t("slowmo.title"))
st.caption(t("slowmo.intro"))

session = current_session()
mode = ui.no_run_panel(session)
if not mode:
    st.stop()
assert session is not None

if mode == "over":
    ui.landscape_tab(session)
    st.stop()

record = ui.current_record(session)
if record is None:
    st.stop()
ui.apply_chart_click()
ui.check_line()
ui.batch_line(record)
step_tab, edit_tab, land_tab = st.tabs([t("slowmo.tab_step"), t("slowmo.tab_edit"), t("slowmo.tab_landscape")])
with step_tab:
    ui.controls()
    layer, unit, example = ui.neuron_picker(record)
    ui.player_view(layer, unit, example)
with edit_tab:
    ui.editor_tab(record, session, layer, unit, example)
with land_tab:
    ui.landscape_tab(session)
