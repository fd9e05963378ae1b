"""Translation catalogs: every user-visible string is looked up by key.

Catalogs are JSON files in ``dlplay/locales/<lang>/<namespace>.json`` (flat ``{"key": "text"}``),
one file per namespace so that pages own their strings; every language has the same files with the
same keys (tests/test_i18n.py checks it). Keys are ``<namespace>.<name>``; texts are
``str.format`` templates. Terminology for Simplified Chinese: docs/GLOSSARY.md.
"""
from __future__ import annotations

import json
import logging
import numbers
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LANGUAGE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "zh": "简体中文"}

log = logging.getLogger(__name__)
KEY_SHAPE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_][a-z0-9_\-]*)+")  # ns.name, ns.group.name-2, ...


def catalog_files(lang: str) -> list[Path]:
    """The namespace files of one language, in a stable order."""
    return sorted((LOCALES_DIR / lang).glob("*.json"))


@cache
def catalog(lang: str) -> dict[str, str]:
    """All strings of one language, merged from its namespace files."""
    merged: dict[str, str] = {}
    for path in catalog_files(lang):
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, text in data.items():
            if key in merged:
                raise ValueError(f"duplicate translation key {key!r} in {path}")
            merged[key] = text
    return merged


def supported_language(tag: str | None) -> str | None:
    """The supported language of one tag (``zh-CN``, ``zh_TW.UTF-8``, ``en-US`` -> ``zh``/``en``), else None."""
    if not tag:
        return None
    code = tag.strip().lower().replace("_", "-").split(";")[0].split("-")[0].split(".")[0]
    return code if code in LANGUAGES else None


def normalize_language(lang: str | None) -> str:
    """Map a browser/URL language tag (``zh-CN``, ``en_US``, ``zh-Hans``) to a supported language code."""
    return supported_language(lang) or DEFAULT_LANGUAGE


def negotiate_language(*candidates: str | None) -> str:
    """The first supported language among browser tags and ``Accept-Language`` headers, else English.

    Each candidate may be a single tag (``navigator.language``) or a whole header such as
    ``fr-FR,fr;q=0.9,zh-CN;q=0.8`` (entries are tried by decreasing ``q``, in order for equal ``q``).
    """
    for candidate in candidates:
        entries = []
        for position, part in enumerate((candidate or "").split(",")):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            params = params.strip()
            if params.startswith("q="):
                try:
                    quality = float(params[2:])
                except ValueError:
                    quality = 0.0
            if tag and quality > 0:
                entries.append((-quality, position, tag))
        for _, _, tag in sorted(entries):
            lang = supported_language(tag)
            if lang is not None:
                return lang
    return DEFAULT_LANGUAGE


class Term(str):
    """A message parameter that is itself a translation key (a field's label, a unit): a message shows it
    in its own language, e.g. ``UserError("spec.int_range", name=Term("train.batch"), ...)``."""


class Listed(tuple):
    """A message parameter that is a list of items: a message joins them with its own language's separator
    (:func:`join_list`), e.g. ``UserError("gan.bad_choice", choices=Listed(SHAPES), ...)``."""


def join_list(items: Iterable[object], lang: str = DEFAULT_LANGUAGE) -> str:
    """Items in running text with the language's list separator: ``a, b, c`` in English, ``a、b、c`` in Chinese
    (the enumeration comma, key ``i18n.list_separator``)."""
    separator = catalog(lang).get("i18n.list_separator") or catalog(DEFAULT_LANGUAGE).get("i18n.list_separator", ", ")
    return separator.join(str(item) for item in items)


def lookup(key: str, lang: str = DEFAULT_LANGUAGE) -> str | None:
    """The unformatted text of ``key`` in ``lang`` (else English), or None: for optional keys, without a warning."""
    text = catalog(lang).get(key)
    return text if text is not None else catalog(DEFAULT_LANGUAGE).get(key)


PLURAL_PARAMS = ("n", "count")  # the parameters that count something


def plural_key(key: str, params: dict[str, object]) -> str:
    """``<key>_one`` when the text counts exactly one thing (``n`` or ``count`` is 1) and that key exists
    ("1 new edit" but "2 new edits"); otherwise ``key``. A language without plural forms (Chinese) gives
    its ``_one`` key the same text."""
    for name in PLURAL_PARAMS:
        value = params.get(name)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) == 1:
            one = f"{key}_one"
            return one if one in catalog(DEFAULT_LANGUAGE) else key
    return key


def translate(key: str, lang: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text for ``key`` in ``lang`` (falling back to English, then to the key itself); the singular
    form ``<key>_one`` when the text counts one thing (:func:`plural_key`).

    A missing key or a template that cannot take ``params`` is logged as a warning (never raised):
    the learner sees the best text there is, the tests see the warning. Text that is not shaped like a
    key (it has spaces, capitals or CJK: already translated) passes through as it is, unlogged.
    """
    if params:
        key = plural_key(key, params)
    text = catalog(lang).get(key)
    if text is None:
        text = catalog(DEFAULT_LANGUAGE).get(key)
        if text is None:
            if KEY_SHAPE.fullmatch(key):
                log.warning("missing translation key %r", key)
            return key
        log.warning("translation key %r missing in %r", key, lang)
    if params:
        params = {k: translate(v, lang) if isinstance(v, Term) else join_list(v, lang) if isinstance(v, Listed) else v
                  for k, v in params.items()}
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            log.warning("translation %r (%s) could not be formatted with %s: %r", key, lang, sorted(params), exc)
            return text
    return text


def layer_name(name: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A network block's name for display: ``dense1``/``conv2`` stay identifiers, ``output`` is translated."""
    return translate("i18n.layer_output", lang) if name == "output" else name
