"""Translation catalogs: every user-visible string is looked up by key.

Catalogs are JSON files in ``dlplay/locales/<lang>/<namespace>.json`` (flat ``{"key": "text"}``),
one file per namespace so that pages own their strings. Keys are ``<namespace>.<name>``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LANGUAGE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "zh": "简体中文"}


@lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    """All strings of one language, merged from its namespace files."""
    merged: dict[str, str] = {}
    folder = LOCALES_DIR / lang
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, text in data.items():
            if key in merged:
                raise ValueError(f"duplicate translation key {key!r} in {path}")
            merged[key] = text
    return merged


def normalize_language(lang: str | None) -> str:
    """Map a browser/URL language tag (``zh-CN``, ``en_US``) to a supported language code."""
    if not lang:
        return DEFAULT_LANGUAGE
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def translate(key: str, lang: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text for ``key`` in ``lang`` (falling back to English, then to the key itself)."""
    text = catalog(lang).get(key)
    if text is None:
        text = catalog(DEFAULT_LANGUAGE).get(key, key)
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text
