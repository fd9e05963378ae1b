"""The settings table in the browser session: typed accessors and widgets drawn from dlplay/settings.py.

The one place that keeps settings in ``st.session_state``. Pages and lessons use the verbs:
:func:`get`, :func:`set_value` (validated), :func:`lock` / :func:`unlock` (shown, disabled, with the
reason), :func:`hide` / :func:`show`, :func:`values`; :func:`widget` draws a setting's widget from its
entry (label and help in the page's language) and writes the learner's change back through
:func:`set_value`.

Where each value lives: the classifier's model and training settings in the session's ModelSpec and
TrainConfig (dlplay/ui/state.py, which runs and the other pages read); the preset the learner picked,
the pace and every other setting under one key per setting here. A setting's widget shows the setting
(it is set before the widget is drawn), so nothing but the learner and the code that calls
:func:`set_value` changes what the sidebar shows.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from dlplay import settings as core
from dlplay.errors import UserError
from dlplay.i18n import LANGUAGES, lookup
from dlplay.nn.presets import PRESETS
from dlplay.settings import CUSTOM, SETTINGS, SPEC_AND_CONFIG, Setting
from dlplay.ui.data import guarded_by
from dlplay.ui.i18n import current_language, set_language, t
from dlplay.ui.state import get_config, get_spec, probe_every, set_config, set_probe_every, set_spec

LOCKED = "settings_locked"  # name -> translation key of the reason
HIDDEN = "settings_hidden"  # names not drawn
PICKED_PRESET = "settings_preset"  # the preset the learner picked (it sticks while the settings are its own)
CLAMPED = "settings_clamped"  # widget key -> the message for a number brought back to its limit
ERROR = "settings_error"
PACE_KEY = "train_pace_choice"  # (kept from dlplay/ui/training.py: the pace for the next runs)
# the widget keys the pages (and their tests) have always used; any other setting: set_<name>
WIDGET_KEYS = {
    "dataset": "tw_dataset", "preset": "tw_preset", "hidden_layers": "tw_layers", "units": "tw_units",
    "activation": "tw_act", "optimizer": "tw_opt", "lr": "tw_lr", "schedule": "tw_sched", "batch_size": "tw_batch",
    "epochs": "tw_epochs", "seed": "tw_seed", "val_share": "tw_val", "patience": "tw_patience",
    "augment_level": "aug_level", "pace": "train_pace",
    **{f"augment_{field}": f"aug_{field}" for field in ("shift", "rotate", "scale", "elastic", "noise")},
}


def _key(name: str) -> str:
    return f"settings_value_{name}"


def widget_key(name: str) -> str:
    """The key of ``name``'s widget (tests and browser tests find it by ``.st-key-<key>``)."""
    return WIDGET_KEYS.get(name, f"set_{name}")


# ------------------------------------------------------------------ reading
def _classify_values() -> dict[str, Any]:
    return core.from_spec_and_config(get_spec(), get_config())


def _preset(values: dict[str, Any]) -> str:
    """The learner's pick while the settings are still that preset's; else the preset they match."""
    picked = st.session_state.get(PICKED_PRESET)
    if picked == CUSTOM:
        return CUSTOM
    if picked in PRESETS:
        preset = PRESETS[picked]
        if preset.spec == get_spec() and preset.config.with_changes(dataset=get_config().dataset) == get_config():
            return picked
    return str(values["preset"])


def get(name: str) -> Any:
    """The current value of setting ``name`` in this browser session."""
    entry = core.setting(name)
    if name in SPEC_AND_CONFIG or name in ("preset", "augment_level"):
        values = _classify_values()
        return _preset(values) if name == "preset" else values[name]
    if name == "pace":
        return st.session_state.get(PACE_KEY, entry.default)
    if name == "probe_every":
        return probe_every()
    if name == "language":
        return current_language()
    return st.session_state.get(_key(name), entry.default)


def values(task: str) -> dict[str, Any]:
    """Every setting of ``task`` (``classify``, ``gan``, ``plane``, ``app``) as it is now."""
    return {name: get(name) for name in core.defaults(task)}


# ------------------------------------------------------------------ writing
def set_value(name: str, value: Any) -> Any:
    """Set ``name`` (validated: UserError in the page's language, and nothing changes); returns the value set.

    The classifier's settings go into the session's ModelSpec/TrainConfig together with what follows
    (a preset brings its settings; no validation share, no early stopping)."""
    entry = core.setting(name)
    clean = entry.validate(value)
    if name in SPEC_AND_CONFIG or name in ("preset", "augment_level"):
        current = _classify_values()
        changed = core.with_setting(current, name, clean)
        spec, config = core.to_spec_and_config(changed, base=get_config())
        set_spec(spec)
        set_config(config)
        if name == "preset":
            st.session_state[PICKED_PRESET] = clean
        elif st.session_state.get(PICKED_PRESET) == CUSTOM and core.matching_preset(spec, config) != CUSTOM:
            st.session_state.pop(PICKED_PRESET)  # back on a preset's settings: it shows again
    elif name == "pace":
        st.session_state[PACE_KEY] = clean
    elif name == "probe_every":
        set_probe_every(clean)
    elif name == "language":
        set_language(clean)
    else:
        st.session_state[_key(name)] = clean
    return clean


def lock(name: str, reason_key: str) -> None:
    """Show ``name`` disabled, with the reason (a translation key) beside it."""
    core.setting(name)
    st.session_state.setdefault(LOCKED, {})[name] = reason_key


def unlock(name: str) -> None:
    st.session_state.get(LOCKED, {}).pop(name, None)


def is_locked(name: str) -> bool:
    return name in st.session_state.get(LOCKED, {})


def lock_reason(name: str) -> str | None:
    """The reason ``name`` is locked, in the page's language (None: it is not)."""
    key = st.session_state.get(LOCKED, {}).get(name)
    return None if key is None else t(key)


def hide(name: str) -> None:
    """Do not draw ``name``'s widget (its value still applies)."""
    core.setting(name)
    st.session_state.setdefault(HIDDEN, set()).add(name)


def show(name: str) -> None:
    st.session_state.get(HIDDEN, set()).discard(name)


def is_hidden(name: str) -> bool:
    return name in st.session_state.get(HIDDEN, set())


# ------------------------------------------------------------------ widgets
def option_label(entry: Setting, value: Any) -> str:
    """How a choice or a number is shown in the page's language."""
    if entry.option_key is not None:
        key = entry.option_key.format(value)
        if lookup(key) is None and value == CUSTOM:
            return t("train.preset_custom")
        return t(key)
    if entry.name == "language":
        return LANGUAGES.get(value, str(value))  # each language in its own words
    if entry.name == "preset":
        return t("train.preset_custom") if value == CUSTOM else t(f"presets.{value}.name")
    if entry.number_format is not None and isinstance(value, (int, float)):
        return entry.number_format.format(value)
    return str(value)


def clamped_message(key: str) -> str | None:
    """Why the number typed in widget ``key`` was brought back to its limit (None: it was not)."""
    return st.session_state.get(CLAMPED, {}).get(key)


def _on_change(name: str, key: str, high: float | None, then: Callable[[], None] | None) -> None:
    value = st.session_state[key]
    entry = SETTINGS[name]
    clamped = st.session_state.setdefault(CLAMPED, {})
    clamped.pop(key, None)
    if high is not None and isinstance(value, (int, float)) and value > high:
        clamped[key] = t("train.clamped", value=value, name=t(entry.label_key), high=number_text(high))
        value = int(high) if entry.kind == "int" else high
    try:
        set_value(name, value)
    finally:
        st.session_state[key] = get(name)  # the widget shows the setting (also when the value was refused)
    if then is not None:
        then()


def number_text(value: float) -> str:
    return core.number_text(value)


def widget(name: str, *, key: str | None = None, on_change: Callable[[], None] | None = None,
           error_key: str = ERROR, high: float | None = None, format_func: Callable[[Any], str] | None = None,
           label: str | None = None, help: str | None = None, disabled: bool = False,
           options: list[Any] | None = None, container: Any = None) -> Any:
    """Draw ``name``'s widget from its entry and return the value it shows (None when hidden).

    A choice is a select box (a slider when its choices are numbers); a number with stops a select
    slider whose options include the current value; a whole number without stops a number field whose
    value above ``high`` (default: the entry's) is brought back with a message; another number a
    slider; a switch a toggle. ``on_change`` runs after the value is set (e.g. a live learning rate);
    a refused value leaves a message in ``st.session_state[error_key]``; ``options``: what a list or
    slider offers instead of the entry's (the current value is added). Locked: shown disabled, with the reason."""
    if is_hidden(name):
        return None
    entry = core.setting(name)
    key = key or widget_key(name)
    value = get(name)
    if st.session_state.get(key) != value:
        st.session_state[key] = value  # the widget shows the setting: it has no default of its own
    reason = lock_reason(name)
    shown_help = help if help is not None else (t(entry.help_key) if entry.help_key else None)
    if reason is not None:
        shown_help = t("settings.locked", name=t(entry.label_key), reason=reason)
    limit = high if high is not None else entry.high
    if shown_help is None and entry.kind == "int" and not entry.stops and limit is not None:
        shown_help = t("train.range_help", low=number_text(entry.low or 0), high=number_text(limit))
    callback = guarded_by(error_key)(_on_change)
    common: dict[str, Any] = dict(
        label=label if label is not None else t(entry.label_key), key=key, on_change=callback,
        args=(name, key, limit if entry.kind == "int" and not entry.stops else None, on_change),
        help=shown_help, disabled=disabled or reason is not None)
    fmt = format_func or (lambda v: option_label(entry, v))
    offered = entry.options(value) if options is None else \
        (list(options) if value in options or value is None else [*options, value])
    box = container if container is not None else st
    if entry.kind == "bool":
        shown = box.toggle(**common)
    elif entry.kind == "choice":
        if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in entry.choices):
            shown = box.select_slider(options=offered, format_func=fmt, **common)
        else:
            shown = box.selectbox(options=offered, format_func=fmt, **common)
    elif entry.stops:
        shown = box.select_slider(options=offered, format_func=fmt, **common)
    elif entry.kind == "int":
        shown = box.number_input(min_value=int(entry.low) if entry.low is not None else None, max_value=None,
                                 step=1, **common)
        message = clamped_message(key)
        if message:
            box.warning(message, icon=":material/block:")
    elif entry.kind == "float":
        shown = box.slider(min_value=float(entry.low or 0.0), max_value=float(entry.high or 1.0),
                           step=entry.step, **common)
    else:
        shown = box.text_input(**common)
    if reason is not None:
        box.caption(t("settings.locked_caption", reason=reason))
    return shown


__all__ = [
    "CLAMPED",
    "ERROR",
    "HIDDEN",
    "LOCKED",
    "WIDGET_KEYS",
    "UserError",
    "clamped_message",
    "get",
    "hide",
    "is_hidden",
    "is_locked",
    "lock",
    "lock_reason",
    "option_label",
    "set_value",
    "show",
    "unlock",
    "values",
    "widget",
    "widget_key",
]
