"""Share a configuration as a link: read it from the URL once per browser session, and make one."""
from __future__ import annotations

import streamlit as st

from dlplay.errors import UserError
from dlplay.runs import architecture_label
from dlplay.server.guardrails import check_run
from dlplay.share import KEYS, from_params, has_config, share_url
from dlplay.spec import ModelSpec, TrainConfig
from dlplay.ui import server
from dlplay.ui.i18n import LANG_KEY, error_text, t
from dlplay.ui.state import get_spec, set_config, set_spec

APPLIED = "share_link_applied"
SHARE_PAGE = "build"  # where a shared link lands


def apply_query_params_once() -> None:
    """On a browser session's first run: if the URL carries a configuration, make it the current one.

    Call it from app.py after init_state() and before the page runs. The configuration's keys are
    then removed from the URL (so later edits are not contradicted by a stale address); a bad link
    shows a message and changes nothing.
    """
    if st.session_state.get(APPLIED):
        return
    st.session_state[APPLIED] = True
    params = st.query_params.to_dict()
    if not has_config(params):
        return
    try:
        parsed = from_params(params, current=get_spec())
        if parsed is not None:
            check_run(*parsed, server.limits())
    except UserError as exc:
        st.toast(t("eval.share_rejected", reason=error_text(exc)), icon=":material/link_off:")
        parsed = None
    for key in KEYS:
        if key in st.query_params:
            del st.query_params[key]
    if parsed is not None:
        spec, config = parsed
        set_spec(spec)
        set_config(config)
        st.toast(t("eval.share_loaded", arch=architecture_label(spec)), icon=":material/link:")


def _base_url() -> str:
    url = getattr(st.context, "url", None) or "http://localhost:8501/"
    base = url.split("?", 1)[0].split("#", 1)[0]
    root = base[: base.index("/", base.index("//") + 2) + 1] if base.count("/") >= 3 else base.rstrip("/") + "/"
    return root + SHARE_PAGE


def share_link(spec: ModelSpec, config: TrainConfig) -> str:
    """The full link for ``spec`` and ``config`` on this server (with the current language)."""
    lang = st.session_state.get(LANG_KEY)
    return share_url(_base_url(), spec, config, {"lang": lang} if lang else None)


def share_link_button(spec: ModelSpec, config: TrainConfig, key: str = "share_link") -> str:
    """A popover button that shows the link (with a copy button) for ``spec`` and ``config``."""
    url = share_link(spec, config)
    with st.popover(t("eval.share_button"), icon=":material/share:", key=key):
        st.caption(t("eval.share_copy"))
        st.code(url, language=None, wrap_lines=True)
    return url
