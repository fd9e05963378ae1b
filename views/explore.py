"""Explore: how robust the model is (accuracy under noise, rotation, shift, stroke thickness) and what its
layers make of the test images (PCA and t-SNE maps)."""
import streamlit as st

from dlplay.ui import embeddings as emb
from dlplay.ui import robustness as rob
from dlplay.ui.i18n import current_language, t
from dlplay.ui.nav import available_pages
from dlplay.ui.state import current_session, heartbeat, init_state

init_state()
heartbeat()
if st.session_state.pop(emb.GO_INSIDE, False):  # a point clicked on the map
    st.switch_page(emb.INSIDE_PAGE)
lang = current_language()
st.title(t("explore.title"))
st.caption(t("explore.intro"))

session = current_session()
if session is None or (session.snapshot().progress.global_step == 0 and not session.snapshot().epochs):
    st.info(t("explore.no_model"))
    if any(p[0] == "views/train.py" for p in available_pages()):
        st.page_link("views/train.py", label=t("explore.go_train"), icon=":material/model_training:")
    st.stop()
if session.status == "diverged":
    st.warning(t("explore.diverged"))
    st.stop()

tabs = st.tabs([t("explore.tab_robustness"), t("explore.tab_embeddings")])
with tabs[0]:
    rob.robustness_tab(session, lang)
with tabs[1]:
    emb.embeddings_tab(session, lang)
