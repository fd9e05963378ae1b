"""dlplay: entry point. Sets up the session, the language switch and the navigation, then runs a page."""
import streamlit as st

from dlplay.ui.a11y import page_styles
from dlplay.ui.cluster import cluster_notice
from dlplay.ui.i18n import language_selector, t
from dlplay.ui.nav import HOME, available_pages, open_home_by_its_name
from dlplay.ui.page_state import mark_script_run
from dlplay.ui.share import apply_query_params_once
from dlplay.ui.state import init_state

st.set_page_config(page_title="dlplay", page_icon=":material/neurology:", layout="wide")
pages = [
    st.Page(path, title=t(key), icon=icon, url_path=url, default=(url == HOME))
    for path, url, key, icon in available_pages()
]
open_home_by_its_name()
# expanded: every page is listed (collapsed, Streamlit hides all but 10 behind an untranslated "View N more");
# first: it also leaves Streamlit's pages/-folder mode
page = st.navigation(pages, position="sidebar", expanded=True)
init_state()
apply_query_params_once()  # a shared link reopens its architecture and settings
language_selector()
page_styles()  # text contrast, a visible keyboard focus (dlplay/ui/a11y.py)
cluster_notice()  # with DLPLAY_RAY_ADDRESS: says when runs cannot train on the Ray cluster
mark_script_run()  # browser tests wait for the next script run instead of sleeping
page.run()
