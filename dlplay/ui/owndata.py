"""The My data page's state and widgets: upload (or an example), a preview per class, the notes of what
changed, the limits, and "Use this dataset" (the session's dataset: Train, Evaluate and Inside work on it).

The data itself is read and checked by dlplay/owndata.py; this module keeps what was read in the session
and draws it. The session's own data folder is removed when the session ends (its state is collected).
"""
from __future__ import annotations

import uuid
import weakref

import numpy as np
import streamlit as st

from dlplay import owndata as core
from dlplay import settings as table
from dlplay.data import datasets as data
from dlplay.errors import UserError
from dlplay.ui import server
from dlplay.ui import settings as ui_settings
from dlplay.ui.data import dataset_on, guarded_by
from dlplay.ui.i18n import error_text, t
from dlplay.ui.uploads import server_limit_mb, upload_box

READ = "own_data"  # the OwnData read from the last upload or example
ERROR = "own_error"  # the last refusal, in the page's language
USED = "own_used"  # names of the datasets this session registered (newest last)
SESSION = "own_session"  # a holder whose collection (the session ended) removes the session's folder
UPLOAD_KEY = "own_upload"
TO_PLANE = "own_to_plane"  # set by the button: open the 2-D playground on this run
PREVIEW = 8  # images shown per class
ZOOM = 3  # preview pixels per image pixel


class _Holder:
    """Lives in the session state; when the session is gone, so is the session's own data folder."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:12]
        weakref.finalize(self, core.forget, self.id)


def session_id() -> str:
    holder = st.session_state.get(SESSION)
    if not isinstance(holder, _Holder):
        holder = st.session_state[SESSION] = _Holder()
    return holder.id


def limits() -> core.OwnLimits:
    return core.OwnLimits.from_limits(server.limits())


def dataset_choices() -> list[str]:
    """What Train's dataset list offers this session: the built-in datasets and the session's own."""
    own = [name for name in st.session_state.get(USED, []) if name in data.OWN]
    return [*data.DATASETS, *own]


# ------------------------------------------------------------------ callbacks
def _keep(own: core.OwnData) -> None:
    st.session_state[READ] = own


@guarded_by(ERROR)
def on_upload() -> None:
    file = st.session_state.get(UPLOAD_KEY)
    if file is None:
        return
    _keep(core.read_upload(file.getvalue(), file.name, limits()))


@guarded_by(ERROR)
def on_example(kind: str) -> None:
    if kind == "zip":
        _keep(core.read_upload(core.example_zip(), "mnist-0-1-7.zip", limits()))
    else:
        _keep(core.read_upload(core.example_csv(), "iris.csv", limits()))


@guarded_by(ERROR)
def on_use() -> None:
    own = st.session_state.get(READ)
    if own is None:
        return
    info = core.register(own, session_id())
    table.add_choice("dataset", info.name)
    used = [n for n in st.session_state.get(USED, []) if n != info.name]
    st.session_state[USED] = [*used, info.name]
    ui_settings.set_value("dataset", info.name)


@guarded_by(ERROR)
def on_to_plane() -> None:
    """The table's points become the 2-D playground's drawn points (its dataset "drawn")."""
    from dlplay.plane import datasets as ds
    from dlplay.ui import plane as pl

    own = st.session_state.get(READ)
    if own is None:
        return
    st.session_state[pl.POINTS_KEY] = core.plane_points(own)
    st.session_state[pl.WIDGETS["dataset"]] = ds.DRAWN
    st.session_state[TO_PLANE] = True


# ------------------------------------------------------------------ drawing
def limits_box() -> None:
    lim = limits()
    st.info(t("owndata.limits", mb=f"{min(lim.max_upload_mb, server_limit_mb()):g}", images=f"{lim.max_images:,}",
              classes=lim.max_classes, rows=f"{lim.max_rows:,}", min=core.MIN_PER_CLASS),
            icon=":material/rule:")
    with st.expander(t("owndata.how_title")):
        st.markdown(t("owndata.how", test=round(100 * core.TEST_SHARE)))


def upload_area() -> None:
    lim = limits()
    mb = f"{min(lim.max_upload_mb, server_limit_mb()):g}"
    with upload_box("own_upload_box", t("owndata.refused", mb=server_limit_mb()), stale=("own_preview",)):
        st.file_uploader(t("owndata.upload"), key=UPLOAD_KEY, on_change=on_upload, help=t("owndata.upload_help", mb=mb))
    row = st.container(horizontal=True)
    row.button(t("owndata.example_zip"), key="own_example_zip", on_click=on_example, args=("zip",),
               icon=":material/photo_library:",
               help=t("owndata.example_zip_help", n=core.EXAMPLE_PER_CLASS * len(core.EXAMPLE_CLASSES)))
    row.button(t("owndata.example_csv"), key="own_example_csv", on_click=on_example, args=("csv",),
               icon=":material/table:", help=t("owndata.example_csv_help"))
    if st.session_state.get(ERROR):
        st.error(st.session_state[ERROR], icon=":material/block:")


def strip(images: np.ndarray) -> np.ndarray:
    """Images side by side (2 px apart), each pixel ZOOM x ZOOM: crisp at any screen size."""
    gap = np.full((images.shape[1], 2), 128, np.uint8)
    parts: list[np.ndarray] = []
    for image in images:
        parts += [image, gap]
    row = np.hstack(parts[:-1])
    return np.kron(row, np.ones((ZOOM, ZOOM), np.uint8))


def notes_text(own: core.OwnData) -> list[str]:
    return [t(n.key, **n.params) for n in own.notes]


def preview(own: core.OwnData) -> None:
    with st.container(key="own_preview"):
        counts = own.counts
        if own.images is not None and own.kind == "images":
            st.markdown(t("owndata.loaded_images", title=own.title, n=f"{len(own.labels):,}", k=len(own.classes),
                          side=core.FRAME))
        else:
            st.markdown(t("owndata.loaded_table", title=own.title, n=f"{len(own.labels):,}", f=len(own.columns),
                          k=len(own.classes)))
        if own.images is not None:
            for i, name in enumerate(own.classes):
                st.markdown(f"**{t('owndata.class_count', name=name, n=counts[i])}**")
                st.image(strip(own.images[own.labels == i][:PREVIEW]), clamp=True)
        if own.features is not None and own.images is None:
            label = t("owndata.label_column")
            rows = {col: own.features[:10, j].tolist() for j, col in enumerate(own.columns)}
            rows[label] = [own.classes[k] for k in own.labels[:10]]
            st.caption(t("owndata.preview"))
            st.dataframe(rows, hide_index=True)
            st.caption(t("owndata.counts"))
            st.dataframe({label: list(own.classes), "n": counts}, hide_index=True)
        with st.container(key="own_notes"):
            st.subheader(t("owndata.changes"))
            lines = notes_text(own)
            if lines:
                st.markdown("\n".join(f"- {line}" for line in lines))
            elif own.kind == "images":
                st.caption(t("owndata.no_changes", side=core.FRAME))


def use_area(own: core.OwnData) -> None:
    if own.trainable:
        st.button(t("owndata.use"), key="own_use", type="primary", on_click=on_use, icon=":material/check:",
                  help=t("owndata.use_help"))
    elif own.plane_ready:
        st.info(t("owndata.plane_ready"), icon=":material/scatter_plot:")
        st.button(t("owndata.go_plane"), key="own_plane", on_click=on_to_plane, icon=":material/scatter_plot:")
        if st.session_state.pop(TO_PLANE, False):
            st.switch_page("views/plane.py")
    else:
        st.warning(t("owndata.table_only", n=len(own.columns)))
    name = ui_settings.get("dataset")
    if name in data.OWN and name in st.session_state.get(USED, []):
        info = data.get_info(name)
        try:
            sizes = dataset_on(name, "cpu").sizes
        except UserError as exc:
            st.error(error_text(exc), icon=":material/folder_off:")
            return
        with st.container(key="own_in_use"):
            st.success(t("owndata.in_use", title=info.title, train=sizes["train"], test=sizes["test"],
                         k=info.num_classes), icon=":material/check_circle:")
            st.page_link("views/train.py", label=t("owndata.go_train"), icon=":material/model_training:")
