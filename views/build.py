"""Build: design the network layer by layer, see it drawn and counted, or start from a preset."""
import streamlit as st

from dlplay.figures.network import draws_neurons, human_bytes, human_count, network_figure, summary_rows, totals
from dlplay.nn.presets import PRESETS
from dlplay.ui import layer_editor as editor
from dlplay.ui.charts import chart
from dlplay.ui.i18n import current_language, t
from dlplay.ui.state import current_session, get_spec, heartbeat, init_state, reset_session, set_config, set_spec

init_state()
heartbeat()
lang = current_language()


def _load_preset() -> None:
    preset = PRESETS[st.session_state["build_preset"]]
    set_spec(preset.spec)
    set_config(preset.config)
    editor.load_into_editor(preset.spec)
    st.session_state["build_preset_loaded"] = preset.key


st.title(t("build.title"))
st.caption(t("build.intro"))

spec = get_spec()
editor.sync_with_spec(spec)

with st.expander(t("build.presets"), expanded=False, icon=":material/auto_stories:"):
    choice = st.selectbox(t("build.preset_select"), list(PRESETS), key="build_preset",
                          format_func=lambda k: t(f"presets.{k}.name"))
    st.write(t(f"presets.{choice}.text"))
    cfg = PRESETS[choice].config
    st.caption(t("build.preset_config", optimizer=t(f"train.opt_{cfg.optimizer}"), lr=cfg.lr, schedule=t(f"train.sched_{cfg.schedule}"),
                 batch=cfg.batch_size, epochs=cfg.epochs))
    st.button(t("build.load_preset"), key="build_load_preset", on_click=_load_preset, icon=":material/download:")
    loaded = st.session_state.get("build_preset_loaded")
    if loaded in PRESETS and PRESETS[loaded].spec == spec:  # until the model is edited
        st.success(t("build.preset_loaded", name=t(f"presets.{loaded}.name")))

notices = st.container()
left, right = st.columns([2, 3], gap="large")

with left:
    st.subheader(t("build.layers"))
    editor.render_layer_list(spec)
    editor.render_add_controls()
    st.divider()
    editor.render_init_select(spec)
    editor.render_order_select(spec)

candidate, error = editor.try_draft_spec(spec)
if candidate is not None and candidate != spec:
    set_spec(candidate)
    spec = candidate
if candidate is not None:
    editor.mark_committed(spec)

with notices:
    if error is not None:
        st.error(error, icon=":material/error:")
        st.caption(t("build.kept_last_valid"))
    session = current_session()
    if session is not None and session.spec != spec:
        st.warning(t("build.run_mismatch"), icon=":material/restart_alt:")
        st.button(t("build.reset_run"), key="build_reset_run", on_click=reset_session)

with right:
    st.subheader(t("build.diagram"))
    session = current_session()
    model = None
    small_dense = draws_neurons(spec)
    if session is not None and session.spec == spec and small_dense:
        model = session.model_copy()
    chart(st, network_figure(spec, lang, model), width="stretch",
                    config={"displayModeBar": False}, key="build_diagram")
    if small_dense:
        st.caption(t("build.weights_colored") if model is not None else t("build.weights_hint"))
    total = totals(spec)
    c1, c2, c3 = st.columns(3)
    c1.metric(t("build.metric_params"), f"{total.params:,}")
    c2.metric(t("build.metric_macs"), human_count(total.macs), help=t("build.macs_help"))
    c3.metric(t("build.metric_memory"), human_bytes(total.weight_bytes), help=t("build.memory_help"))
    st.subheader(t("build.summary"))
    counts = {t(f"build.col_{k}"): st.column_config.NumberColumn(format="localized") for k in ("params", "macs")}
    st.dataframe(summary_rows(spec, lang), hide_index=True, width="stretch", column_config=counts)  # 1,234,567
    with st.expander(t("build.json")):
        st.code(spec.to_json(), language="json")
