"""The Explore page (robustness curves, embeddings maps) and the Train page's augmentation box (AppTest)."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from dlplay.data.augment import LEVELS, Augment
from dlplay.i18n import translate
from dlplay.nn.spec import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def open_page(page: str, session=None, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.session_state["train_session"] = session
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_explore_without_a_model_says_what_to_do() -> None:
    at = open_page("views/explore.py")
    assert at.title[0].value == translate("explore.title", "en")
    assert any(translate("explore.no_model", "en") in i.value for i in at.info)


def test_robustness_curves_of_the_current_model_and_the_drawing(trained_tutorial, mnist) -> None:
    drawing = mnist.test_images[0].numpy()  # a 7, as the Draw page would keep it
    at = open_page("views/explore.py", trained_tutorial, rob_n=1000, drawing28=drawing)
    assert any(translate("robustness.press_measure", "en") in i.value for i in at.info)
    at.button(key="rob_measure").click().run()
    assert not at.exception, [e.value for e in at.exception]
    kept = at.session_state["rob_curves"]
    (name, n, curves), = kept.values()
    assert n == 1000
    assert set(curves) == {"noise", "rotate", "shift", "thickness"}
    hits = (trained_tutorial.model_copy()(  # the plain accuracy on the same 1000 images
        (mnist.test_images[:1000].float() / 255 - mnist.info.mean) / mnist.info.std).argmax(1)
        == mnist.test_labels[:1000]).sum()
    assert curves["noise"].at(0.0) == int(hits) / 1000
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) >= 4
    captions = [c.value for c in at.caption]
    assert any(translate(name[0], "en", **name[1]) in c for c in captions)
    assert at.radio(key="rob_draw_kind").value == "noise"  # the drawing under each level of a change
    assert not any(translate("robustness.no_drawing", "en") in i.value for i in at.info)


def test_embeddings_pca_map_and_a_click_opens_inside(trained_tutorial) -> None:
    at = open_page("views/explore.py", trained_tutorial, emb_n=500)
    pca = at.session_state["emb_pca"]
    assert pca[1].coords.shape == (500, 2)
    assert pca[0][2] == "dense1"
    # a click on the map: the callback hands the test image to the Inside page, which opens it
    from dlplay.ui import embeddings as emb

    assert emb.GO_INSIDE not in at.session_state
    at.session_state["inside_test_index"] = 42
    at.session_state[emb.GO_INSIDE] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == translate("inside.title", "en")
    assert at.session_state["inside_index"] == 42


def test_embeddings_tsne_runs_in_the_background(trained_tutorial) -> None:
    at = open_page("views/explore.py", trained_tutorial, emb_n=500, emb_method="tsne", emb_budget=10)
    at.button(key="emb_tsne_start").click().run()
    job = at.session_state["emb_tsne"][0]
    assert job.n <= 500
    assert job.join(120)
    assert job.error is None
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("t-SNE" in c.value for c in at.caption)


def test_train_page_augmentation_level_preview_and_reset() -> None:
    at = open_page("views/train.py")
    assert at.selectbox(key="aug_level").value == "off"
    at.selectbox(key="aug_level").set_value("medium").run()
    assert not at.exception
    assert at.session_state["config"].augment == LEVELS["medium"]
    assert at.slider(key="aug_rotate").value == LEVELS["medium"].rotate
    first = at.session_state.get("aug_preview_seed", 0)
    at.button(key="aug_preview_new").click().run()
    assert at.session_state["aug_preview_seed"] == first + 1
    at.slider(key="aug_noise").set_value(0.3).run()
    config: TrainConfig = at.session_state["config"]
    assert config.augment == Augment(shift=2.5, rotate=12.0, scale=0.1, elastic=1.0, noise=0.3)
    assert at.selectbox(key="aug_level").value == "custom"
    at.selectbox(key="aug_level").set_value("off").run()
    assert at.session_state["config"].augment.is_off
