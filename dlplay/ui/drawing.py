"""Draw page helpers: the canvas and upload inputs, the trained model (cached), the guess display."""
from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeGuard

import numpy as np
import streamlit as st
from PIL import Image

from dlplay.classify.handle import RunHandle
from dlplay.classify.predict import LayerActivation, Prediction, predict
from dlplay.data.canvas import MAX_UPLOAD_BYTES, load_upload, preprocess
from dlplay.data.datasets import DatasetInfo, class_label, get_info
from dlplay.errors import UserError
from dlplay.figures.draw import probability_text
from dlplay.i18n import Term
from dlplay.nn.model import Net
from dlplay.ui.canvas_widget import decode_png_data_url, draw_canvas
from dlplay.ui.data import PROBLEM, dataset_on, remember_problem, show_data_problem
from dlplay.ui.i18n import error_text, t
from dlplay.ui.nav import available_pages
from dlplay.ui.state import current_session, get_config, get_spec, is_active, replace_run
from dlplay.ui.uploads import server_limit_mb, upload_box

DRAWING_KEY = "drawing28"  # the current drawing as MNIST-style uint8 28x28 (or None); read by the Inside page
CANVAS_KEY = "draw_canvas"
MODEL_CACHE_KEY = "draw_model_cache"
PREDICTION_CACHE_KEY = "draw_prediction_cache"
ERROR_KEY = "draw_error"
CANVAS_PX = 280
STROKE_PX = 18  # at 280 px this gives MNIST-like stroke widths after scaling to 20 px
SEEN_PX = 168  # the 28x28 image enlarged 6x with hard pixel edges
POLL_S = 1.0
QUICK_EPOCHS = 1

CSS = """
<style>
.dl-guess {text-align: center; padding: 0.2rem 0 0.4rem 0;}
.dl-guess-label {font-size: 0.95rem; opacity: 0.75;}
.dl-guess-digit {font-size: 5.5rem; font-weight: 700; line-height: 1.05; color: #d62728;}
.dl-guess-conf {font-size: 1.15rem; font-weight: 600;}
.dl-guess-next {font-size: 0.9rem; opacity: 0.75;}
.dl-guess-empty {font-size: 1.3rem; opacity: 0.8; padding: 2.5rem 0.5rem;}
</style>
"""


# ---------------------------------------------------------------- the model
def is_trained(session: RunHandle | None) -> TypeGuard[RunHandle]:
    """True when the session's network has finished at least one epoch, or is a finished model (one
    loaded from a checkpoint on Evaluate has trained, though not in this session)."""
    return session is not None and (session.snapshot().progress.epoch >= 1 or session.status == "done")


def dataset_info(session: RunHandle | None) -> DatasetInfo:
    if session is not None:
        return session.dataset_info
    return get_info(get_config().dataset)


def current_model(session: RunHandle) -> tuple[tuple, Net]:
    """An eval-mode CPU copy of the session's network, copied again only when training has moved on."""
    progress = session.snapshot().progress
    # the session itself, not its id(): an id can be reused by a later session once the old one is freed
    key = (session, progress.global_step, progress.epoch, progress.status)
    cached = st.session_state.get(MODEL_CACHE_KEY)
    if cached is not None and cached[0] == key:
        return cached
    entry = (key, session.model_copy("cpu"))
    st.session_state[MODEL_CACHE_KEY] = entry
    return entry


def image_signature(image28: np.ndarray | None) -> str:
    if image28 is None:
        return "empty"
    return hashlib.blake2b(np.ascontiguousarray(image28).tobytes(), digest_size=6).hexdigest()


def predict_current(session: RunHandle | None, image28: np.ndarray | None) -> Prediction | None:
    """The network's prediction for ``image28`` (None without a model or a drawing); cached per model and image."""
    if session is None or image28 is None:
        return None
    model_key, model = current_model(session)
    key = (model_key, image_signature(image28))
    cached = st.session_state.get(PREDICTION_CACHE_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    info = session.dataset_info
    prediction = predict(model, image28, info.mean, info.std)
    st.session_state[PREDICTION_CACHE_KEY] = (key, prediction)
    return prediction


def class_name(info: DatasetInfo, index: int, lang: str) -> str:
    return class_label(info, index, lang)


def start_quick_train() -> None:
    """Train the designed network for one epoch (the user's settings stay as they are)."""
    st.session_state[ERROR_KEY] = None
    st.session_state.pop(PROBLEM, None)
    try:
        # the server's rules apply (guardrails, slot pool, heartbeat); a refusal leaves the old run alone
        # one epoch on every training image (no validation share to hold out, no early stopping to watch)
        replace_run(get_spec(), get_config().with_changes(epochs=QUICK_EPOCHS, val_share=0.0, patience=0)).start()
    except UserError as exc:
        if not remember_problem(exc):  # a missing dataset: show_data_problem says where to put it
            st.session_state[ERROR_KEY] = error_text(exc)


def _train_page_link() -> None:
    if any(path == "views/train.py" for path, *_ in available_pages()):
        st.page_link("views/train.py", label=t("draw.go_train"), icon=":material/model_training:")


def model_panel(session: RunHandle | None, trained: bool, active: bool) -> None:
    """Which network guesses; without a trained one: a quick-train button, or the first epoch's progress."""
    problem = st.session_state.get(ERROR_KEY)
    if problem:
        st.error(problem)
    show_data_problem("draw")
    if trained and session is not None:  # trained: is_trained(session) on the page
        records = session.snapshot().epochs
        acc = f"{records[-1].test_acc * 100:.1f}%" if records else "–"
        text = t("draw.model_info", model=model_text(session), epochs=len(records), acc=acc)
        if active:
            text += " " + t("draw.model_still_training")
        with st.container(key="draw_model_ready"):
            st.success(text, icon=":material/neurology:")
        return
    status = session.status if session is not None else "none"
    if status in ("running", "queued"):
        _first_epoch_progress()
        return
    if status == "paused":
        st.info(t("draw.paused_untrained"), icon=":material/pause_circle:")
        _train_page_link()
        return
    st.info(t("draw.no_model"), icon=":material/school:")
    st.button(t("draw.quick_train"), key="draw_quick_train", type="primary", icon=":material/bolt:",
              on_click=start_quick_train, help=t("draw.quick_train_help"))


def _first_epoch_progress() -> None:
    @st.fragment(run_every=0.5)
    def progress() -> None:
        session = current_session()
        if session is None or not is_active(session) or is_trained(session):
            st.rerun()  # trained (or stopped): redraw the whole page once
        session.heartbeat()
        p = session.snapshot().progress
        if p.status == "queued":  # the server runs a limited number of trainings at once
            st.info(t("draw.queued", position=p.queue_position or 1), icon=":material/hourglass_top:")
            return
        done = p.step_in_epoch / p.steps_per_epoch if p.steps_per_epoch else 0.0
        st.progress(min(1.0, done), text=t("draw.training_first_epoch", pct=f"{done * 100:.0f}"))

    progress()


def model_text(session: RunHandle) -> str:
    return session.spec.describe()


# ---------------------------------------------------------------- inputs
@dataclass(frozen=True)
class Drawn:
    """What the input area gives: the 28x28 digit (None when there is none), an error, and what to ask for."""

    image28: np.ndarray | None
    error: str | None = None  # a bad upload, in the user's language
    prompt_key: str = "draw.empty_canvas"  # shown instead of a guess when image28 is None


def canvas_input() -> Drawn:
    """The drawing canvas and the MNIST-style 28x28 of what is drawn."""
    st.markdown(f"**{t('draw.canvas_title')}**")
    png = draw_canvas(CANVAS_KEY, size=CANVAS_PX, stroke=STROKE_PX, undo=t("draw.undo"), clear=t("draw.clear"),
                      label=t("draw.canvas_title"))
    st.caption(t("draw.canvas_help"))
    return Drawn(digit_from_png(png))


@lru_cache(maxsize=64)
def digit_from_png(png: str | None) -> np.ndarray | None:
    """The canvas's PNG data URL -> MNIST-style 28x28 (None when empty); cached, so reruns that did
    not change the drawing (polling, other widgets) skip decoding and preprocessing. Read-only result."""
    rgba = decode_png_data_url(png)
    if rgba is None:
        return None
    image28 = preprocess(rgba).image28
    if image28 is not None:
        image28.setflags(write=False)
    return image28


MODEL_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".onnx", ".safetensors", ".bin")


def upload_input() -> Drawn:
    """An uploaded picture of a digit (any image format PIL reads, size-limited) and its 28x28; a bad file
    gives an error in words. The uploader lists no types: the browser would refuse other files with a
    hidden chip and keep showing the previous picture's guess (dlplay/ui/uploads.py)."""
    limit_mb = f"{min(MAX_UPLOAD_BYTES / 1e6, server_limit_mb()):.0f}"
    with upload_box("draw_upload_box", t("draw.upload_refused", limit_mb=server_limit_mb()),
                    stale=("draw_guess", "draw_upload_preview", "draw_probs_box")):
        file = st.file_uploader(t("draw.upload_label"), key="draw_upload", help=t("draw.upload_help", limit_mb=limit_mb))
    st.caption(t("draw.upload_types", limit_mb=limit_mb))
    if file is None:
        return Drawn(None, prompt_key="draw.upload_prompt")
    try:
        if file.name.lower().endswith(MODEL_FILE_SUFFIXES):  # a model, not a picture: say where it goes
            raise UserError("draw.upload_checkpoint", evaluate=Term("nav.evaluate"))
        rgba = load_upload(file.getvalue())
    except UserError as exc:
        return Drawn(None, error=error_text(exc), prompt_key="draw.upload_other")
    preview = Image.fromarray(rgba)
    preview.thumbnail((CANVAS_PX, CANVAS_PX))
    with st.container(key="draw_upload_preview"):
        st.image(preview, caption=file.name)
    return Drawn(preprocess(rgba).image28, prompt_key="draw.empty_upload")


TEST_KEY = "draw_test_index"
TEST_CHOICES = 100  # the first test images: enough to find each digit several times, a short list to arrow through


def test_split(session: RunHandle | None) -> tuple[np.ndarray, np.ndarray]:
    """The first test images and their labels: the session's run's test split, or its dataset's (UserError:
    the dataset is missing)."""
    if session is not None:
        images, labels = session.test_split()
    else:
        ds = dataset_on(get_config().dataset, "cpu")
        images, labels = ds.test_images, ds.test_labels
    return images[:TEST_CHOICES].numpy(), labels[:TEST_CHOICES].numpy()


def test_input(session: RunHandle | None, info: DatasetInfo, lang: str) -> Drawn:
    """A test image chosen from a list instead of a drawing: the keyboard's way in (Tab to the list, the arrow
    keys to choose, Enter), and a digit drawn by someone else to compare with one's own."""
    try:
        images, labels = test_split(session)
    except UserError as exc:
        remember_problem(exc)
        return Drawn(None, error=error_text(exc), prompt_key="drawtest.prompt")
    st.markdown(f"**{t('drawtest.title')}**")
    options = list(range(len(images)))
    index = st.selectbox(t("drawtest.label"), options, key=TEST_KEY, help=t("drawtest.help"),
                         format_func=lambda i: t("drawtest.option", n=i + 1, label=class_name(info, int(labels[i]), lang)))
    if index is None or not 0 <= int(index) < len(images):
        return Drawn(None, prompt_key="drawtest.prompt")
    image28 = np.array(images[int(index)], dtype=np.uint8)
    image28.setflags(write=False)
    label = class_name(info, int(labels[int(index)]), lang)
    with st.container(key="draw_test_label"):  # the picture itself: "what the network sees", beside it
        st.caption(t("drawtest.caption", n=int(index) + 1, label=label))
    return Drawn(image28, prompt_key="drawtest.prompt")


# ---------------------------------------------------------------- outputs
def show_seen(image28: np.ndarray | None) -> None:
    """What the network sees: the 28x28 input, enlarged with hard pixel edges."""
    shown = np.zeros((28, 28), dtype=np.uint8) if image28 is None else image28
    big = Image.fromarray(shown).resize((SEEN_PX, SEEN_PX), Image.Resampling.NEAREST)
    st.image(big, width=SEEN_PX, alt=t("a11y.alt_seen"))
    st.caption(t("draw.seen_help"))


def show_guess(prediction: Prediction | None, info: DatasetInfo, drawn: Drawn, trained: bool, lang: str) -> None:
    """The top guess, large, with its confidence; or why there is none."""
    if drawn.error:
        st.error(drawn.error)
    sig = image_signature(drawn.image28)
    with st.container(key="draw_guess"):
        if drawn.image28 is None:
            _guess_html(sig, f'<div class="dl-guess-empty">{html.escape(t(drawn.prompt_key))}</div>')
        elif not trained or prediction is None:
            _guess_html(sig, f'<div class="dl-guess-empty">{html.escape(t("draw.no_model_guess"))}</div>')
        elif not prediction.is_finite:
            _guess_html(sig, f'<div class="dl-guess-empty">{html.escape(t("draw.broken_model"))}</div>')
        else:
            (top, p_top), (second, p_second) = prediction.ranked(2)
            runner_up = t("draw.runner_up", name=class_name(info, second, lang), pct=probability_text(p_second))
            body = (
                f'<div class="dl-guess-label">{html.escape(t("draw.guess_label"))}</div>'
                f'<div class="dl-guess-digit">{html.escape(class_name(info, top, lang))}</div>'
                f'<div class="dl-guess-conf">{html.escape(t("draw.confidence", pct=probability_text(p_top)))}</div>'
                f'<div class="dl-guess-next">{html.escape(runner_up)}</div>'
            )
            _guess_html(sig, body)


def confidence_note() -> None:
    """What "sure" means, and where to see whether the network's sureness can be trusted."""
    with st.container(key="draw_confidence_note"):
        st.caption(t("draw.confidence_help"))
        if any(path == "views/evaluate.py" for path, *_ in available_pages()):
            st.page_link("views/evaluate.py", label=t("draw.confidence_link"), icon=":material/fact_check:")


def _guess_html(sig: str, body: str) -> None:
    st.markdown(f'<div class="dl-guess" data-sig="{sig}">{body}</div>', unsafe_allow_html=True)


def layer_heading(layer: LayerActivation, lang: str) -> str:
    """A line naming the layer and what its numbers are (neurons, feature maps or output scores)."""
    if layer.name == "output":
        return t("draw.layer_output", name=f"**{t('draw.output_name')}**", units=layer.units)
    name = f"**{layer.name}**"
    pct = f"{layer.active_fraction() * 100:.0f}%"
    if layer.is_spatial:
        _, h, w = layer.values.shape
        return t("draw.layer_maps", name=name, maps=layer.units, h=h, w=w, act=layer.activation, pct=pct)
    active = int((layer.values > 0).sum())
    return t("draw.layer_dense", name=name, units=layer.units, act=layer.activation, active=active, pct=pct)
