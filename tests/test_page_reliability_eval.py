"""Issue 33 section 2, in AppTest: what Evaluate, Draw, Home and Explore tell a learner (English and Chinese).
The image-set choice of Evaluate, the names of the images every number is measured on, the checkpoint
upload's messages, Draw's confidence, Home's datasets, plurals. Browser checks: test_e2e_reliability_eval.py."""
from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dlplay.classify.checkpoint import checkpoint_from_session
from dlplay.classify.runs import RunHistory, RunRecorder
from dlplay.data.datasets import check_dataset
from dlplay.gan.mnist import GanConfig, GanSpec, build_gan, save_gan_checkpoint
from dlplay.i18n import translate
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import train_to_end
from test_page_draw import canvas_rgba, draw, guess_html

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_page(page: str, lang: str = "en", **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["lang"] = lang
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def finished(mnist):
    history = RunHistory()
    config = TrainConfig(epochs=1, batch_size=100, train_size=1000, val_share=0.1, seed=0)
    session = train_to_end(mnist, dense_spec([16]), config, callbacks=[RunRecorder(history)], timeout=120)
    return session, history


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


# ------------------------------------------------------------------ Evaluate: the image-set choice
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_label_names_the_images_measured(finished, lang):
    session, history = finished
    at = open_page("views/evaluate.py", lang, train_session=session, run_history=history)
    n_train = len(session.split_data("train")[2])
    for split, n in (("test", 10_000), ("val", len(session.split_data("val")[2])), ("train", n_train)):
        if lang == "en":
            at.segmented_control(key="fx_split").set_value(split).run()
        else:  # AppTest formats a chosen option outside the session (in English): open the page with it
            at = open_page("views/evaluate.py", lang, train_session=session, run_history=history, fx_split=split)
        assert not at.exception, [e.value for e in at.exception]
        labels = [m.label for m in at.metric]
        assert translate(f"fixdata.accuracy_{split}", lang) in labels, labels
        others = {s for s in ("test", "val", "train") if s != split}
        assert not any(translate(f"fixdata.accuracy_{o}", lang) in labels for o in others), labels
        columns = list(at.dataframe[0].value.columns)
        assert translate(f"fixdata.support_{split}", lang) in columns, columns
        assert at.dataframe[0].value[translate(f"fixdata.support_{split}", lang)].sum() == n
        assert translate(f"fixdata.measured_{split}", lang, n=n) in texts(at)
    # the page's intro does not claim the training images are test images
    intro = translate("eval.intro", lang, n=10_000)
    assert intro in texts(at)
    if lang == "en":
        assert "Test accuracy" not in labels
        assert "Test images" not in columns
        assert "Everything below is measured on the 10,000 test images" not in texts(at)


def test_a_second_click_on_the_chosen_image_set_keeps_it(finished):
    """The browser sends "nothing chosen" when the chosen option is clicked again (a segmented control
    deselects): the page keeps the choice instead of crashing (StreamlitWidgetAlreadyInstantiatedError)."""
    session, history = finished
    at = open_page("views/evaluate.py", train_session=session, run_history=history)
    at.segmented_control(key="fx_split").set_value("train").run()
    assert not at.exception
    at.segmented_control(key="fx_split").set_value(None).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.segmented_control(key="fx_split").value in ("train", "test")
    assert any(m.label in ("Training accuracy", "Test accuracy") for m in at.metric)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_without_a_model_the_page_points_to_what_is_on_it(lang):
    at = open_page("views/evaluate.py", lang, train_session=None)
    info = " ".join(i.value for i in at.info)
    assert translate("eval.tab_keep", lang) not in info  # that tab is not on this screen
    headings = [h.value for h in at.subheader]
    assert translate("eval.keep_upload", lang) in headings
    assert translate("eval.keep_upload", lang) in info  # it names the section that is there


# ------------------------------------------------------------------ Evaluate: uploads
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_gan_checkpoint_on_evaluate_says_where_to_open_it(lang):
    g, d = build_gan(GanSpec(), seed=0)
    data = save_gan_checkpoint(g, d, GanConfig(), steps=0)
    at = open_page("views/evaluate.py", lang, train_session=None)
    at.file_uploader(key="eval_upload").set_value(("gan.pt", data, "application/octet-stream")).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    for named in ("nav.generate", "generate.mode_digits", "generate.upload_ckpt"):  # where to open it, precisely
        assert translate(named, lang) in errors[0], errors
    assert translate("eval.ckpt_not_checkpoint", lang) not in errors[0]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_upload_limit_is_stated_before_any_upload(lang):
    at = open_page("views/evaluate.py", lang, train_session=None)
    captions = [c.value for c in at.caption]
    limit = translate("eval.upload_limit", lang, limit_mb=upload_limit_mb())
    assert limit in captions, captions


def upload_limit_mb() -> float:
    import tomllib

    from dlplay.classify.checkpoint import MAX_CHECKPOINT_BYTES

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    return min(MAX_CHECKPOINT_BYTES / 2**20, config["server"]["maxUploadSize"])


def test_a_too_large_file_is_refused_with_a_message_and_replaces_the_previous_one(finished):
    session, _ = finished
    at = open_page("views/evaluate.py", train_session=None)
    good = checkpoint_from_session(session)
    at.file_uploader(key="eval_upload").set_value(("good.pt", good, "application/octet-stream")).run()
    assert any("Checkpoint OK" in s.value for s in at.success)
    big = b"PK\x03\x04" + os.urandom(1024) * int(upload_limit_mb() * 1024 + 1024)  # over the limit
    at.file_uploader(key="eval_upload").set_value(("big.pt", big, "application/octet-stream")).run()
    assert not at.success  # the box no longer describes good.pt
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert "MB" in errors[0], errors
    assert f"{upload_limit_mb():.0f}" in errors[0], errors


# ------------------------------------------------------------------ Draw
@pytest.mark.parametrize(("p", "text"), [
    (1.0, ">99.9%"), (0.99996, ">99.9%"), (0.9994, ">99.9%"), (0.9986, "99.9%"), (0.995, "99.5%"), (0.97, "97%"), (0.5, "50%"),
    (0.034, "3%"), (0.0042, "0.4%"), (0.0004, "<0.1%"), (0.0, "<0.1%"), (float("nan"), "–"),
])
def test_a_probability_never_reads_100_or_0_percent_unless_it_is(p, text):
    from dlplay.figures.draw import probability_text

    assert probability_text(p) == text


def test_draw_shows_a_sure_network_as_not_quite_100_percent_and_says_what_sure_means(mnist):
    config = TrainConfig(epochs=2, batch_size=64, seed=0)
    session = train_to_end(mnist, dense_spec([128]), config, timeout=180)
    images = mnist.test_images[:200]
    with torch.no_grad():
        probs = torch.softmax(session.model_copy()(session.normalize(images)), dim=1).max(dim=1).values
    sure = int(probs.argmax())
    assert float(probs[sure]) > 0.9995  # what read "100% sure"
    for lang, word in (("en", " sure"), ("zh", "把握")):
        at = open_page("views/draw.py", lang, train_session=session)
        draw(at, canvas_rgba(images[sure].numpy()))
        html = guess_html(at)
        assert word in html, html
        assert "100%" not in html, html
        assert ">99.9%" in html or "&gt;99.9%" in html, html
        assert translate("draw.confidence_help", lang) in [c.value for c in at.caption]


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_checkpoint_dropped_on_draw_says_what_draw_accepts(finished, lang):
    session, _ = finished
    at = open_page("views/draw.py", lang, train_session=session)
    at.radio(key="draw_source").set_value("upload").run()
    uploader = at.file_uploader(key="draw_upload")
    assert not uploader.proto.type, list(uploader.proto.type)  # refused by the page, in words, not by a hidden chip
    assert translate("draw.upload_types", lang, limit_mb="5") in [c.value for c in at.caption]
    at.file_uploader(key="draw_upload").set_value(("model.pt", checkpoint_from_session(session),
                                                   "application/octet-stream")).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors == [translate("draw.upload_checkpoint", lang, evaluate=translate("nav.evaluate", lang))], errors


# ------------------------------------------------------------------ Home
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_home_says_whether_each_dataset_is_there_without_the_servers_folders(lang):
    at = open_page("views/home.py", lang)
    shown = texts(at)
    where = str(check_dataset("mnist").where)
    assert where
    assert where not in shown
    assert str(Path(os.environ["DLPLAY_DATA_DIR"])) not in shown
    assert translate("home.dataset_found", lang, name="MNIST") in shown


# ------------------------------------------------------------------ plurals
@pytest.mark.parametrize(("n", "text"), [(1, "1 new edit for the next run:"), (2, "2 new edits for the next run:")])
def test_counts_take_the_right_plural(n, text):
    assert translate("fixdata.edits_pending", "en", n=n) == text
    assert translate("fixdata.edits_pending", "zh", n=n) == f"下一次运行的 {n} 处新修改："
    settings = translate("fixdata.settings_edits", "en", n=n)  # the Train page's "1 label edits"
    assert settings.startswith(f"This run's data has {n} label edit{'s' if n != 1 else ''} (")
    assert translate("eval.pair_text", "en", true="4", pred="9", count=n, share=0.1).startswith(
        f"4 taken for 9: {n} time{'s' if n != 1 else ''} (")


def test_plural_forms_exist_in_both_languages():
    from dlplay.i18n import catalog

    for lang in ("en", "zh"):
        ones = [k for k in catalog(lang) if k.endswith("_one")]
        assert "fixdata.edits_pending_one" in ones
        assert all(k.removesuffix("_one") in catalog(lang) for k in ones)


# ------------------------------------------------------------------ README
def test_the_readme_says_how_to_start_next_time_and_what_the_first_install_downloads():
    readme = (Path(APP).parent / "README.md").read_text(encoding="utf-8")
    run_it = readme.split("## Run it", 1)[1].split("\n## ", 1)[0]
    prose = re.sub(r"```bash\n.+?\n```", "", run_it, flags=re.S)  # the text around the two commands
    assert "Next time" in prose
    assert "`.venv/bin/streamlit run app.py`" in prose
    assert "CUDA" in prose
    assert "several GB" in prose
    assert "download.pytorch.org/whl/cpu" in prose  # the smaller build, for a machine without an NVIDIA GPU
    assert len(re.findall(r"```bash\n", readme)) == 2  # tests/test_project.py: exactly two commands


# ------------------------------------------------------------------ Explore
def test_explore_names_the_button_that_saves_a_checkpoint(finished):
    """Its checkpoint box used Evaluate's message, which pointed to "the Download button of this page".
    (English in AppTest: its widgets' options are formatted outside the session, so a Chinese page's
    selectboxes do not survive a rerun there; the Chinese text is checked in the catalog.)"""
    session, _ = finished
    at = open_page("views/explore.py", train_session=session)
    at.file_uploader(key="rob_ckpt").set_value(("notes.pt", pickle.dumps({"hello": 1}), "application/octet-stream")).run()
    at.button(key="rob_measure_ckpt").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors == [translate("eval.ckpt_not_checkpoint", "en")], errors
    for lang in ("en", "zh"):
        text = translate("eval.ckpt_not_checkpoint", lang)
        assert translate("eval.download_ckpt", lang) in text
        assert translate("eval.tab_keep", lang) in text
        assert "this page" not in text
        assert "本页" not in text
