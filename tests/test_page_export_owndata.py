"""The Code tab of a run on a learner's own dataset (AppTest): one zip of code and data in both languages;
on the Runs page, a run whose own dataset is gone from the session gets a message instead of code."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlplay import owndata
from dlplay.classify.runs import RunHistory, record_from_session
from dlplay.data import datasets as data
from dlplay.i18n import translate
from dlplay.nn.spec import TrainConfig, dense_spec
from helpers import train_to_end
from test_owndata import LIMITS, digit_members, make_zip

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(scope="module")
def own_run(mnist, tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    own = owndata.read_upload(make_zip(digit_members(mnist, digits=(1, 4, 9), per_class=30)), "mine.zip", LIMITS)
    info = owndata.register(own, "page-export", root)
    session = train_to_end(data.load_dataset(info.name, download=False),
                           dataclasses.replace(dense_spec([16]), num_classes=3),
                           TrainConfig(dataset=info.name, epochs=1, batch_size=16, seed=3))
    yield info, session, root
    owndata.forget("page-export", root)


def open_page(page: str, lang: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["lang"] = lang
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_evaluate_s_code_tab_offers_code_and_data_as_one_zip(own_run, lang):
    info, session, _ = own_run
    at = open_page("views/evaluate.py", lang, train_session=session, eval_tabs=translate("export.title", lang))
    keys = {b.key for b in at.download_button}
    assert "eval_code_download_zip" in keys
    assert "eval_code_download_pytorch" not in keys
    button = next(b for b in at.download_button if b.key == "eval_code_download_zip")
    assert button.label == translate("ownexport.download_zip", lang)
    assert any(translate("ownexport.intro", lang, title=info.title) in i.value for i in at.info)
    code = "\n".join(c.value for c in at.code)
    assert "DATA_DIR = HERE / \"data\"" in code
    assert translate("ownexport.c_data_where", lang) in code


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_runs_page_says_when_the_run_s_own_dataset_is_gone(mnist, own_run, lang):
    info, session, _root = own_run
    history = RunHistory()
    history.add(record_from_session(session))
    at = open_page("views/runs.py", lang, run_history=history)
    assert "runs_code_download_zip" in {b.key for b in at.download_button}
    entry = data.OWN.pop(info.name)  # the session's own data is gone (as when the session restarted)
    try:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert "runs_code_download_zip" not in {b.key for b in at.download_button}
        shown = " ".join(w.value for w in at.warning)
        assert translate("ownexport.gone", lang, title=info.name) in shown
    finally:
        data.OWN[info.name] = entry
