"""Home's dataset status and the Train page's box for a dataset this machine lacks (AppTest, real files)."""
from __future__ import annotations

import dataclasses
import shutil
import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlplay.data import datasets as data

REPO = Path(__file__).resolve().parents[1]
NAMES = data.DATASETS["mnist"].file_names


@pytest.fixture
def sample_dir():
    from conftest import SAMPLE_DIR

    return SAMPLE_DIR


@pytest.fixture
def only_here(tmp_path, monkeypatch):
    """dlplay looks only under tmp_path (its data folder, its cache, an empty home) and never downloads."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = (f"http://127.0.0.1:{port}/a/", f"http://127.0.0.1:{port}/b/")
    for name, info in list(data.DATASETS.items()):
        monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(info, mirrors=unreachable, system_dirs=()))
    monkeypatch.setenv("DLPLAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DLPLAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("DLPLAY_TORCHVISION_ROOT", raising=False)
    from dlplay.ui.data import dataset_on

    dataset_on.clear()  # datasets loaded by earlier tests of this process
    yield tmp_path
    dataset_on.clear()


def open_page(page: str, lang: str = "en") -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_home_shows_a_damaged_dataset_as_unusable_and_says_how_to_fix_it(only_here, sample_dir):
    folder = only_here / "data"
    folder.mkdir()
    for name in NAMES:
        shutil.copyfile(sample_dir / name, folder / name)
    at = open_page("views/home.py")
    assert any(s.value == "MNIST: available" for s in at.success)
    blob = (folder / NAMES[0]).read_bytes()
    (folder / NAMES[0]).write_bytes(blob[: len(blob) // 3])  # a download cut short
    at = open_page("views/home.py")
    assert not any(s.value.startswith("MNIST") for s in at.success)  # was green while Train refused it
    errors = [e.value for e in at.error]
    assert any("MNIST" in e and "not a valid gzip file" in e and "fresh copy" in e for e in errors), errors
    assert not any(str(folder) in e for e in errors)  # the file's name, not the server's folders
    at = open_page("views/home.py", "zh")
    assert any("MNIST" in e.value and "已损坏" in e.value for e in at.error)


def test_offline_first_run_says_where_to_put_the_files_and_checks_again(only_here, sample_dir):
    at = open_page("views/train.py")
    at.button(key="train_start").click().run()
    assert at.session_state["train_session"] is None
    box = at.error[0].value
    cache = str(only_here / "cache" / "mnist")
    assert box.startswith("MNIST is not on this computer")
    assert cache in box
    assert "DLPLAY_DATA_DIR" in box
    assert "http" not in box  # the failed URLs are folded away below
    # no mirror answers: it fails after asking each once (issue #33: not every file on every mirror, minutes)
    assert [e.label for e in at.expander if e.label.startswith("Download")] == ["Download attempts that failed (2)"]
    assert at.expander[0].markdown[0].value.count("http://127.0.0.1") == 2
    at.button(key="train_check_again").click().run()
    assert any("still not in any of the places" in w.value for w in at.warning)
    Path(cache).mkdir(parents=True, exist_ok=True)
    for name in NAMES:  # the learner copies the four files there; no restart
        shutil.copyfile(sample_dir / name, Path(cache) / name)
    at.button(key="train_check_again").click().run()
    assert not at.error
    assert any("MNIST is there now" in s.value for s in at.success)
    at.button(key="train_start").click().run()
    session = at.session_state["train_session"]
    assert session is not None
    assert session.dataset.source == cache
    session.stop()
    session.join(30)
