"""dlplay: entry point. Sets up the session, the language switch and the navigation, then runs a page."""
import streamlit as st

from dlplay.ui.i18n import language_selector, t
from dlplay.ui.nav import HOME, available_pages, open_home_by_its_name
from dlplay.ui.share import apply_query_params_once
from dlplay.ui.state import init_state

st.set_page_config(page_title="dlplay", page_icon=":material/neurology:", layout="wide")
pages = [
    st.Page(path, title=t(key), icon=icon, url_path=url, default=(url == HOME))
    for path, url, key, icon in available_pages()
]
open_home_by_its_name()
page = st.navigation(pages, position="sidebar", expanded=True)  # every page listed; first: it also leaves Streamlit's pages/-folder mode
init_state()
apply_query_params_once()  # a shared link reopens its architecture and settings
language_selector()
page.run()
