"""Train page: the augmentation settings (a level, or each transform's strength) and a preview grid of
augmented training digits, regenerated on demand."""
from __future__ import annotations

import streamlit as st

from dlplay.augment import LEVELS, Augment, level_of, preview_grid
from dlplay.errors import UserError
from dlplay.ui.data import dataset_on
from dlplay.ui.i18n import error_text, t
from dlplay.ui.state import get_config, set_config

FIELDS = ("shift", "rotate", "scale", "elastic", "noise")
# slider (low, high, step) per setting, within dlplay.augment.LIMITS
SLIDERS = {"shift": (0.0, 8.0, 0.5), "rotate": (0.0, 90.0, 1.0), "scale": (0.0, 0.5, 0.05),
           "elastic": (0.0, 4.0, 0.25), "noise": (0.0, 1.0, 0.05)}
LEVEL_KEY, SEED_KEY, ERROR_KEY = "aug_level", "aug_preview_seed", "aug_error"
PREVIEW_CLASSES = (2, 4, 5, 7)  # one training digit of each, in a row with its augmented copies
COPIES = 6
GAP_GREY = 90


def _sync(augment: Augment) -> None:
    """The widgets show the current settings (a preset or a shared link may have changed them)."""
    state = st.session_state
    wanted = {LEVEL_KEY: level_of(augment), **{f"aug_{name}": getattr(augment, name) for name in FIELDS}}
    for key, value in wanted.items():
        if state.get(key) != value:
            state[key] = value


def _set(augment: Augment) -> None:
    set_config(get_config().with_changes(augment=augment))


def on_level() -> None:
    level = st.session_state.get(LEVEL_KEY)
    if level in LEVELS:
        _set(LEVELS[level])


def on_slider() -> None:
    st.session_state[ERROR_KEY] = None
    try:
        _set(Augment(**{name: float(st.session_state[f"aug_{name}"]) for name in FIELDS}))
    except UserError as exc:
        st.session_state[ERROR_KEY] = error_text(exc)


def new_examples() -> None:
    st.session_state[SEED_KEY] = int(st.session_state.get(SEED_KEY, 0)) + 1


def augment_panel() -> None:
    """The sidebar's augmentation box (the Train page calls it once)."""
    augment = get_config().augment
    _sync(augment)
    options = [*LEVELS, "custom"] if level_of(augment) == "custom" else list(LEVELS)
    st.selectbox(t("augment.title"), options, key=LEVEL_KEY, on_change=on_level,
                 format_func=lambda k: t(f"augment.level_{k}"), help=t("augment.help"))
    with st.expander(t("augment.details"), expanded=not augment.is_off):
        for name in FIELDS:
            low, high, step = SLIDERS[name]
            st.slider(t(f"augment.{name}"), low, high, step=step, key=f"aug_{name}", on_change=on_slider,
                      help=t(f"augment.{name}_help"))
        if st.session_state.get(ERROR_KEY):
            st.error(st.session_state[ERROR_KEY])
        preview_box(augment)


def preview_box(augment: Augment) -> None:
    """The preview grid of a few training digits and the button that draws new random versions."""
    try:
        data = dataset_on(get_config().dataset, "cpu")
    except UserError as exc:
        st.caption(error_text(exc))
        return
    seed = int(st.session_state.get(SEED_KEY, 0))
    grid = preview_grid(data.train_images, data.train_labels, augment, PREVIEW_CLASSES, COPIES, seed, gap_grey=GAP_GREY)
    with st.container(key="aug_preview"):
        st.image(grid, width="stretch",
                 caption=t("augment.preview_caption") if not augment.is_off else t("augment.preview_off"))
    st.button(t("augment.new_examples"), key="aug_preview_new", on_click=new_examples, icon=":material/casino:",
              disabled=augment.is_off)
