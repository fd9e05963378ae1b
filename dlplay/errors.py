"""Errors meant for the learner: a translation key plus parameters, English by default."""
from __future__ import annotations

from dlplay.i18n import translate


class UserError(ValueError):
    """A problem the user can fix (bad input, missing data); ``message(lang)`` explains it."""

    def __init__(self, key: str, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(translate(key, "en", **params))

    def message(self, lang: str = "en") -> str:
        return translate(self.key, lang, **self.params)
