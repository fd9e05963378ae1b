"""The UI's translation function: the current session's language, from the session, the URL or the browser."""
from __future__ import annotations

import streamlit as st

from dlplay.errors import UserError
from dlplay.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    negotiate_language,
    normalize_language,
    supported_language,
    translate,
)

LANG_KEY = "lang"
SELECT_KEY = "lang_select"
HTML_LANG = {"en": "en", "zh": "zh-CN"}  # BCP 47 tags for <html lang>
SELECT_LABEL = "Language / 语言"  # in both languages on purpose: findable whichever one is shown


def browser_language() -> str:
    """The browser's language where Streamlit exposes it (``navigator.language``, then ``Accept-Language``)."""
    locale = getattr(st.context, "locale", None)
    try:
        header = st.context.headers.get("Accept-Language")
    except Exception:  # no client (bare mode)
        header = None
    return negotiate_language(locale, header)


def current_language() -> str:
    """The session's language; first run of a session: ``?lang=`` in the URL, else the browser's language, else English."""
    lang = st.session_state.get(LANG_KEY)
    if lang in LANGUAGES:
        return lang
    requested = st.query_params.get("lang")
    lang = supported_language(requested) if requested else None
    if lang is None:
        lang = browser_language()
    st.session_state[LANG_KEY] = lang
    return lang


def set_language(lang: str) -> None:
    """Switch the session to ``lang`` and show it in the URL (so a reload or a shared link keeps it)."""
    lang = normalize_language(lang)
    st.session_state[LANG_KEY] = lang
    st.query_params["lang"] = lang


def t(key: str, **params: object) -> str:
    """Translate ``key`` into the session's language."""
    return translate(key, current_language(), **params)


def error_text(exc: UserError) -> str:
    """A UserError's message in the session's language."""
    return exc.message(current_language())


# Widgets whose browser-side value is the *label* of the chosen option (selectbox, radio, multiselect,
# select_slider, segmented_control, pills); text inputs too, which is harmless.
_LABEL_VALUED = ("string_value", "string_array_value")


def _relabel_option_widgets() -> None:
    """Make the browser show the options of keyed widgets in the new language.

    A keyed widget keeps its identity when its labels change, so the browser would go on showing
    (and later sending back) the old language's label of the chosen option: Streamlit then no longer
    finds it among the options and resets the widget or passes the stale label to its callback.
    Writing each such widget's value back into ``st.session_state`` makes the next run send the
    option's new label to the browser. (Uses Streamlit's widget metadata; skipped if that changes.)
    """
    try:
        from streamlit.runtime.state import get_session_state

        state = get_session_state()._state
        # widget keys are strings (Streamlit turns an int key into one); other keys name no widget
        keys = [key for key in list(st.session_state.keys()) if isinstance(key, str) and key != SELECT_KEY]
        for key in keys:
            widget_id = state.get_widget_id_from_key(key)
            meta = state.get_widget_metadata(widget_id) if widget_id else None
            if meta is not None and meta.value_type in _LABEL_VALUED:
                st.session_state[key] = st.session_state[key]
    except Exception:  # pragma: no cover - a Streamlit without these internals: labels refresh on next use
        return


def _on_select() -> None:
    _relabel_option_widgets()
    set_language(st.session_state[SELECT_KEY])


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ") + '"'


def streamlit_texts_css(lang: str) -> str:
    """CSS that shows Streamlit's own always-visible widget texts (the file uploader's) in ``lang``.

    Streamlit's frontend has no translations; these texts are hidden and drawn again from the catalog.
    """
    mb = st.get_option("server.maxUploadSize")
    button = _css_string(translate("i18n.upload_button", lang))
    limit = _css_string(translate("i18n.upload_limit", lang, mb=mb))
    zone = "[data-testid=stFileUploaderDropzone]"
    return f"""<style>
{zone} [data-testid^=stBaseButton] [data-testid=stMarkdownContainer] p {{font-size: 0;}}
{zone} [data-testid^=stBaseButton] [data-testid=stMarkdownContainer] p::after {{content: {button}; font-size: 0.875rem;}}
[data-testid=stFileUploaderDropzoneInstructions] span {{font-size: 0;}}
[data-testid=stFileUploaderDropzoneInstructions] span::after {{content: {limit}; font-size: 0.875rem;}}
</style>"""


def language_selector() -> None:
    """A sidebar switch between the catalog languages, kept in the session and the URL.

    The switch applies in its callback, before the script reruns, so the whole rerun (the
    navigation's page titles included) is in the new language.
    """
    lang = current_language()
    st.session_state[SELECT_KEY] = lang  # follows the session's language, whoever set it
    st.sidebar.selectbox(SELECT_LABEL, list(LANGUAGES), format_func=LANGUAGES.__getitem__, key=SELECT_KEY,
                         on_change=_on_select)
    if st.query_params.get("lang") != lang:
        st.query_params["lang"] = lang
    with st.sidebar:
        # <html lang>: the browser then draws Chinese with Simplified Chinese glyphs (not Japanese ones)
        st.html(f"<script>document.documentElement.lang = '{HTML_LANG[lang]}';</script>", unsafe_allow_javascript=True)
        if lang != DEFAULT_LANGUAGE:
            st.html(streamlit_texts_css(lang))
