"""Your digit, through training: pin drawings (Draw page) or test images (Train page), then watch
their ten probabilities change while a run trains. The core is dlplay/classify/pins.py (a training callback)."""
from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from dlplay.classify.handle import RunHandle
from dlplay.classify.pins import MAX_PINS, PinsSnapshot
from dlplay.data.datasets import DatasetInfo, class_label, get_info
from dlplay.errors import UserError
from dlplay.ui.data import dataset_on
from dlplay.ui.i18n import current_language, error_text, t
from dlplay.ui.state import get_config, pinned, set_pinned

ERROR = "pins_error"
THUMB_PX = 84
UNKNOWN = -1


def pins() -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [n, H, W], labels [n]) pinned now (n may be 0)."""
    current = pinned()
    if current is None:
        return np.zeros((0, 28, 28), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    return current


def _set(images: np.ndarray, labels: np.ndarray) -> None:
    st.session_state[ERROR] = None
    try:
        set_pinned(images if len(images) else None, labels if len(images) else None)
    except UserError as exc:
        st.session_state[ERROR] = error_text(exc)


def add_pin(image: np.ndarray, label: int) -> None:
    """Pin one more image (at most MAX_PINS: the oldest goes)."""
    images, labels = pins()
    if len(images) and images.shape[1:] != image.shape:
        images, labels = images[:0].reshape(0, *image.shape), labels[:0]  # another dataset's pins go
    images = np.concatenate([images, image[None].astype(np.uint8)])[-MAX_PINS:]
    labels = np.concatenate([labels, np.array([label], dtype=np.int64)])[-MAX_PINS:]
    _set(images, labels)


def remove_pin(index: int) -> None:
    images, labels = pins()
    keep = [i for i in range(len(images)) if i != index]
    _set(images[keep], labels[keep])


def clear_pins() -> None:
    _set(np.zeros((0, 28, 28), dtype=np.uint8), np.zeros(0, dtype=np.int64))


def dataset_info(session: RunHandle | None) -> DatasetInfo:
    return session.dataset_info if session is not None else get_info(get_config().dataset)


def class_names(info: DatasetInfo) -> list[str]:
    lang = current_language()
    return [class_label(info, i, lang) for i in range(len(info.classes))]


def thumbnail(image: np.ndarray, px: int = THUMB_PX) -> Image.Image:
    return Image.fromarray(image).resize((px, px), Image.Resampling.NEAREST)


def _show_error() -> None:
    problem = st.session_state.get(ERROR)
    if problem:
        st.error(problem)


# ----------------------------------------------------------------------------- Draw page
def _pin_drawing(image28: np.ndarray) -> None:
    label = st.session_state.get("pins_draw_label", UNKNOWN)
    add_pin(image28, int(label))


def pin_drawing(image28: np.ndarray | None, info: DatasetInfo) -> None:
    """Under the drawing: which digit it is, and a button that pins it for the next steps of training."""
    names = class_names(info)
    with st.container(key="pins_draw", horizontal=True, vertical_alignment="bottom"):
        shown = {UNKNOWN: t("pins.unknown"), **dict(enumerate(names))}  # texts fixed now (AppTest formats later)
        st.selectbox(t("pins.draw_label"), list(shown), key="pins_draw_label", format_func=shown.__getitem__,
                     width=160, help=t("pins.draw_label_help"))
        st.button(t("pins.pin_drawing"), key="pins_draw_add", icon=":material/push_pin:", disabled=image28 is None,
                  on_click=_pin_drawing, args=(image28,) if image28 is not None else ())
    count = len(pins()[0])
    if count:
        st.caption(t("pins.pinned_count", n=count, max=MAX_PINS))
    _show_error()


# ----------------------------------------------------------------------------- Train page
def _test_images(session: RunHandle | None) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        if session is not None:
            images, labels = session.test_split()
        else:
            ds = dataset_on(get_config().dataset, "cpu")
            images, labels = ds.test_images, ds.test_labels
    except UserError:
        return None
    return images.numpy(), labels.numpy()


def _pin_test(index_key: str, session: RunHandle | None) -> None:
    split = _test_images(session)
    if split is None:
        return
    i = int(st.session_state.get(index_key, 0))
    images, labels = split
    if 0 <= i < len(images):
        add_pin(images[i], int(labels[i]))


def pins_manager(session: RunHandle | None) -> None:
    """The pinned images (each with a button to unpin it), and a picker that pins a test image."""
    images, labels = pins()
    info = dataset_info(session)
    names = class_names(info)
    with st.expander(t("pins.title"), icon=":material/push_pin:", expanded=bool(len(images))):
        st.caption(t("pins.intro"))
        if len(images):
            row = st.container(horizontal=True, key="pins_row")
            for i, (image, label) in enumerate(zip(images, labels)):
                with row.container(width=THUMB_PX + 24):
                    st.image(thumbnail(image), caption=names[label] if label >= 0 else "?", width=THUMB_PX)
                    st.button(t("pins.unpin"), key=f"pins_remove_{i}", on_click=remove_pin, args=(i,),
                              icon=":material/close:")
        split = _test_images(session)
        if split is not None:
            test_images, test_labels = split
            with st.container(horizontal=True, vertical_alignment="bottom", key="pins_pick"):
                st.number_input(t("pins.test_index"), 0, len(test_images) - 1, key="pins_test_index", width=180,
                                help=t("pins.test_index_help"))
                i = int(st.session_state.get("pins_test_index", 0))
                st.image(thumbnail(test_images[i], 56), caption=names[int(test_labels[i])], width=56)
                st.button(t("pins.pin_test"), key="pins_test_add", icon=":material/push_pin:", on_click=_pin_test,
                          args=("pins_test_index", session))
        if len(images):
            st.button(t("pins.clear"), key="pins_clear", on_click=clear_pins)
        _show_error()


def live_pins(session: RunHandle) -> PinsSnapshot | None:
    """The current run's pinned images and their probabilities so far (None: nothing pinned)."""
    snap = session.pins_snapshot()
    return snap if snap is not None and len(snap) else None
