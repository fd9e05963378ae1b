"""The "Code" tab (Runs and Evaluate): a run as a PyTorch script, a Keras script and a notebook.

A run on a learner's own dataset offers them in one zip with the dataset's files (dlplay/export/owncode.py),
or says that the dataset is no longer in the session.

Three downloads and a preview; the comments in the code follow the page's language (English or
简体中文) unless the learner picks the other one. The code comes from dlplay/export (no streamlit).
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from dlplay.data.datasets import get_info
from dlplay.errors import UserError
from dlplay.export.keras import keras_script
from dlplay.export.notebook import notebook
from dlplay.export.owncode import ZIP_NAME, check_exportable, own_zip
from dlplay.export.script import is_own, pytorch_script
from dlplay.i18n import LANGUAGES
from dlplay.ui.i18n import current_language, error_text, t

KINDS = ("pytorch", "keras", "notebook")
FILES = {"pytorch": "dlplay_run.py", "keras": "dlplay_run_keras.py", "notebook": "dlplay_run.ipynb"}


@st.cache_data(show_spinner=False, max_entries=32)
def _code(kind: str, spec_json: str, config_json: str, lang: str) -> str:
    from dlplay.nn.spec import ModelSpec, TrainConfig

    spec, config = ModelSpec.from_json(spec_json), TrainConfig.from_json(config_json)
    if kind == "pytorch":
        return pytorch_script(spec, config, lang)
    if kind == "keras":
        return keras_script(spec, config, lang)
    return notebook(spec, config, lang)


def _own_zip(spec_json: str, config_json: str, lang: str) -> bytes:
    """The zip of code and data (built when the button is clicked: the data may be megabytes)."""
    from dlplay.nn.spec import ModelSpec, TrainConfig

    return own_zip(ModelSpec.from_json(spec_json), TrainConfig.from_json(config_json), lang)


def code_tab(run: Any, key: str) -> None:
    """The Code tab for ``run`` (a RunRecord or a run handle: anything with ``spec`` and ``config``);
    ``key`` prefixes the widgets' keys (``runs``, ``eval``)."""
    if run is None:
        st.info(t("export.no_run"))
        return
    spec, config = run.spec, run.config
    own = is_own(config.dataset)
    if own:  # a learner's own dataset: the code comes with its files, while the session still has them
        try:
            check_exportable(config)
        except UserError as exc:
            st.warning(error_text(exc), icon=":material/folder_off:")
            return
    st.caption(t("export.intro"))
    page_lang = current_language()
    langs = list(LANGUAGES)
    lang = st.segmented_control(t("export.comments"), langs, default=page_lang, key=f"{key}_code_lang",
                                format_func=lambda code: t(f"export.lang_{code}")) or page_lang
    codes = {kind: _code(kind, spec.to_json(), config.to_json(), lang) for kind in KINDS}
    if own:
        st.info(t("ownexport.intro", title=get_info(config.dataset).title), icon=":material/folder_zip:")
        spec_json, config_json = spec.to_json(), config.to_json()
        st.download_button(t("ownexport.download_zip"), lambda: _own_zip(spec_json, config_json, lang), ZIP_NAME,
                           "application/zip", key=f"{key}_code_download_zip", on_click="ignore",
                           icon=":material/download:", help=t("ownexport.zip_help"), type="primary")
    else:
        cols = st.columns(3)
        mime = {"pytorch": "text/x-python", "keras": "text/x-python", "notebook": "application/x-ipynb+json"}
        for col, kind in zip(cols, KINDS):
            col.download_button(t(f"export.download_{kind}"), codes[kind], FILES[kind], mime[kind],
                                key=f"{key}_code_download_{kind}", on_click="ignore", icon=":material/download:")
    if not own:  # (an own dataset's zip carries its data: the intro above says so)
        st.caption(t("export.reproduces"))
    if not config.augment.is_off:
        st.warning(t("export.augment_note"))
    shown = st.segmented_control(t("export.preview"), ["pytorch", "keras"], default="pytorch",
                                 key=f"{key}_code_preview", format_func=lambda k: t(f"export.kind_{k}")) or "pytorch"
    if shown == "keras":
        st.caption(t("export.keras_note"))
    st.code(codes[shown], language="python", line_numbers=True, height=520, wrap_lines=True)


def runs_code(history: Any) -> None:
    """The Runs page's Code section: the code of the run chosen under "Manage a run"."""
    run_id = st.session_state.get("runs_manage")
    record = history.get(run_id) if run_id is not None else None
    st.subheader(t("export.title"), anchor=False)
    code_tab(record, key="runs")
