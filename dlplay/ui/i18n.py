"""The UI's translation function: the current session's language, from the URL, the session or the browser."""
from __future__ import annotations

import streamlit as st

from dlplay.errors import UserError
from dlplay.i18n import DEFAULT_LANGUAGE, LANGUAGES, normalize_language, translate

LANG_KEY = "lang"


def current_language() -> str:
    """The session's language; first visit: ``?lang=`` in the URL, else the browser's language, else English."""
    lang = st.session_state.get(LANG_KEY)
    if lang in LANGUAGES:
        return lang
    requested = st.query_params.get("lang")
    if requested:
        lang = normalize_language(requested)
    else:
        browser = getattr(st.context, "locale", None)
        if not browser:
            browser = (st.context.headers.get("Accept-Language") or "").split(",")[0]
        lang = normalize_language(browser) if browser else DEFAULT_LANGUAGE
    st.session_state[LANG_KEY] = lang
    return lang


def set_language(lang: str) -> None:
    lang = normalize_language(lang)
    st.session_state[LANG_KEY] = lang
    st.query_params["lang"] = lang


def t(key: str, **params: object) -> str:
    """Translate ``key`` into the session's language."""
    return translate(key, current_language(), **params)


def error_text(exc: UserError) -> str:
    return exc.message(current_language())


def language_selector() -> None:
    """A sidebar switch between the catalog languages, kept in the session and the URL."""
    lang = current_language()
    codes = list(LANGUAGES)
    choice = st.sidebar.selectbox(
        "Language / 语言", codes, index=codes.index(lang), format_func=LANGUAGES.get, key="lang_select"
    )
    if choice != lang:
        set_language(choice)
        st.rerun()
    elif st.query_params.get("lang") != lang:
        st.query_params["lang"] = lang
