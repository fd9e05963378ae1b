"""Train page: the augmentation settings (a level, or each transform's strength) and a preview grid of
augmented training digits, regenerated on demand."""
from __future__ import annotations

import streamlit as st

from dlplay.data.augment import LEVELS, Augment, level_of, preview_grid
from dlplay.errors import UserError
from dlplay.ui import settings as ui_settings
from dlplay.ui.data import dataset_on
from dlplay.ui.i18n import error_text, t
from dlplay.ui.state import get_config

FIELDS = ("shift", "rotate", "scale", "elastic", "noise")  # each a setting augment_<name> (dlplay/settings.py)
SEED_KEY, ERROR_KEY = "aug_preview_seed", "aug_error"
PREVIEW_CLASSES = (2, 4, 5, 7)  # one training digit of each, in a row with its augmented copies
COPIES = 6
GAP_GREY = 90


def new_examples() -> None:
    st.session_state[SEED_KEY] = int(st.session_state.get(SEED_KEY, 0)) + 1


def augment_panel() -> None:
    """The sidebar's augmentation box (the Train page calls it once)."""
    augment = get_config().augment
    # the level's list offers "custom" only while the settings are custom (it is no level to pick)
    ui_settings.widget("augment_level", error_key=ERROR_KEY,
                       format_func=lambda k: t(f"augment.level_{k}"),
                       options=[*LEVELS, "custom"] if level_of(augment) == "custom" else list(LEVELS))
    with st.expander(t("augment.details"), expanded=not augment.is_off):
        for name in FIELDS:
            ui_settings.widget(f"augment_{name}", error_key=ERROR_KEY)
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
