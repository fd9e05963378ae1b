"""Draw page: draw a digit (or upload one), see what the network sees, its guess, and its forward pass."""
import streamlit as st

from dlplay.figures.draw import layer_figure, probability_figure
from dlplay.ui import drawing as dr
from dlplay.ui import pins as pn
from dlplay.ui.charts import chart
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import current_session, init_state, is_active

init_state()
lang = current_language()
st.markdown(dr.CSS, unsafe_allow_html=True)

st.title(t("draw.title"))
st.caption(t("draw.intro"))

# ---------------------------------------------------------------- which network guesses
session = current_session()
trained = dr.is_trained(session)
active = is_active(session)
dr.model_panel(session, trained, active)


# ---------------------------------------------------------------- canvas, guess, forward pass
# Only this fragment reruns when a stroke ends. While a trained network keeps training, it polls so
# the guess follows the learning (and keeps the run's heartbeat alive).
@st.fragment(run_every=dr.POLL_S if trained and active else None)
def drawing_area() -> None:
    session = current_session()
    if trained and active:
        if session is not None:
            session.heartbeat()
        if not is_active(session):
            st.rerun()  # the run ended: stop polling, refresh the model panel
    sources = {"draw": t("draw.source_draw"), "upload": t("draw.source_upload"), "test": t("drawtest.source")}
    source = st.radio(t("draw.source"), list(sources), key="draw_source", horizontal=True,
                      format_func=sources.get, label_visibility="collapsed")
    # A wrapping row: fixed-width canvas and 28x28 view, the guess takes the rest (or the next line).
    row = st.container(horizontal=True, gap="medium")
    with row.container(width=dr.CANVAS_PX + 4):
        if source == "test":
            drawn = dr.test_input(session, dr.dataset_info(session), lang)
        else:
            drawn = dr.canvas_input() if source == "draw" else dr.upload_input()
    image28 = drawn.image28
    st.session_state[dr.DRAWING_KEY] = image28
    with row.container(width=dr.SEEN_PX + 4):
        st.markdown(f"**{t('draw.seen_title')}**")
        dr.show_seen(image28)
        pn.pin_drawing(image28, dr.dataset_info(session))
    info = dr.dataset_info(session)
    labels = [dr.class_name(info, i, lang) for i in range(len(info.classes))]
    prediction = dr.predict_current(session if trained else None, image28)
    with row.container(width="stretch"):
        dr.show_guess(prediction, info, drawn, trained, lang)
        if prediction is not None and prediction.is_finite:
            with st.container(key="draw_probs_box"):
                chart(st, probability_figure(prediction.probabilities.tolist(), labels, lang), key="draw_probs",
                                config={"displayModeBar": False})
            dr.confidence_note()  # what "sure" means, and where its trust is measured
    if prediction is not None and prediction.is_finite:
        st.subheader(t("draw.forward_title"))
        st.caption(t("draw.forward_intro"))
        for layer in prediction.layers:
            st.markdown(dr.layer_heading(layer, lang))
            chart(st, layer_figure(layer, lang, labels), key=f"draw_layer_{layer.name}",
                            config={"displayModeBar": False})


drawing_area()
