"""My data page with AppTest: the limits before any upload, the example zip previewed, "Use this dataset"
makes it the session's dataset (Train's list offers it, the model gets one output per class), a refusal
in the page's language, the example CSV sent to the 2-D playground."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from dlplay.data import datasets as data

REPO = Path(__file__).resolve().parents[1]


def my_data_page(lang: str = "en") -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("views/mydata.py")
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.markdown, *at.info, *at.success, *at.error, *at.warning, *at.caption])


def test_limits_shown_before_upload_and_example_zip_used(tmp_path, monkeypatch):
    monkeypatch.setenv("DLPLAY_CACHE_DIR", str(tmp_path))
    at = my_data_page()
    assert "a file up to 24 MB" in texts(at)
    assert "20,000 images" in texts(at)  # the server's upload limit (.streamlit)
    at.button(key="own_example_zip").click().run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "180 images in 3 classes" in shown
    assert "0 · 60" in shown
    assert "7 · 60" in shown
    assert len(at.get("image")) == 3  # one preview strip per class
    at.button(key="own_use").click().run()
    assert not at.exception, at.exception
    name = at.session_state["own_used"][-1]
    assert name in data.OWN
    assert data.get_info(name).classes == ("0", "1", "7")
    assert "144 training and 36 test images" in texts(at)
    assert list(tmp_path.glob("own/*/*.npz"))  # in the session's folder under the cache
    at.switch_page("views/train.py")
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="tw_dataset").value == name
    assert {"MNIST", "Fashion-MNIST", "mnist-0-1-7"} <= set(at.selectbox(key="tw_dataset").options)


def test_refusal_in_chinese_and_csv_to_the_playground(tmp_path, monkeypatch):
    monkeypatch.setenv("DLPLAY_CACHE_DIR", str(tmp_path))
    at = my_data_page("zh")
    assert "每个类别至少需要 5 个样本" in texts(at)
    at.button(key="own_example_csv").click().run()
    assert not at.exception, at.exception
    assert "150 行" in texts(at)
    assert "二维游乐场" in texts(at)
    assert all(b.key != "own_use" for b in at.button)  # a 2-column table is not images: no "Use" for Train


def test_a_two_column_csv_opens_in_the_2d_playground(tmp_path, monkeypatch):
    monkeypatch.setenv("DLPLAY_CACHE_DIR", str(tmp_path))
    at = my_data_page()
    at.button(key="own_example_csv").click().run()
    at.button(key="own_plane").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "2-D playground"
    points = at.session_state["plane_points"]
    assert len(points) == 150
    assert {p[2] for p in points} == {0, 1, 2}
    assert at.selectbox(key="plane_dataset").value == "drawn"
