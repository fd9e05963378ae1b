"""The Code tab (Evaluate, Runs) and the Deploy page in AppTest, on a briefly trained real run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dlplay.classify.predict import predict_batch
from dlplay.classify.runs import RunHistory, record_from_session
from dlplay.i18n import translate
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.ui import deploy as dp
from helpers import train_to_end

APP = str(Path(__file__).resolve().parents[1] / "app.py")
DOWNLOADS = ("pytorch", "keras", "notebook")


@pytest.fixture(scope="module")
def session(mnist):
    return train_to_end(mnist, dense_spec([24]), TrainConfig(epochs=1, batch_size=64, train_size=1500, seed=7))


def open_page(page: str, session, lang: str = "en", **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["train_session"] = session
    at.session_state["lang"] = lang
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_evaluate_s_code_tab_offers_the_three_files_with_comments_in_the_page_s_language(session, lang):
    at = open_page("views/evaluate.py", session, lang, eval_tabs=translate("export.title", lang))
    assert {f"eval_code_download_{k}" for k in DOWNLOADS} <= {b.key for b in at.download_button}
    code = "\n".join(c.value for c in at.code)
    assert "def forward_backward(x, y):" in code
    assert "SEED = 7" in code
    assert "TRAIN_SIZE = 1500" in code
    assert translate("export.c_init_seed", lang) in code


def test_the_runs_page_shows_the_chosen_run_s_code(session):
    history = RunHistory()
    history.add(record_from_session(session))
    at = open_page("views/runs.py", None, run_history=history)
    assert {f"runs_code_download_{k}" for k in DOWNLOADS} <= {b.key for b in at.download_button}
    assert any("BATCH_SIZE = 64" in c.value for c in at.code)


def test_deploy_serves_the_model_and_answers_as_the_app(session, mnist):
    at = open_page("views/deploy.py", session, deploy_source="test", deploy_test_index=11)
    at.button(key="deploy_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    entry = at.session_state[dp.SERVER]
    try:
        assert entry.server.running
        assert any(entry.server.url in c.value and "curl" in c.value for c in at.code)
        at.button(key="deploy_send").click().run()
        _what, _image, theirs, ours = at.session_state[dp.ANSWER]
        expected = predict_batch(session.model_copy(), mnist.test_images[11:12].numpy(), mnist.info.mean, mnist.info.std)[0]
        assert theirs["class"] == int(np.argmax(expected)) == int(np.argmax(ours))
        assert np.allclose(theirs["probabilities"], ours, atol=2e-5)
        shown = " ".join(m.value for m in at.markdown)
        assert "deploy-server-answer" in shown
        assert "deploy-app-answer" in shown
        assert {"deploy_load", "deploy_zip", "deploy_stop"} <= {b.key for b in [*at.button, *at.download_button]}
        at.button(key="deploy_stop").click().run()
        assert not entry.server.running
        assert dp.SERVER not in at.session_state
    finally:
        entry.server.stop()


def test_deploy_without_a_trained_model_says_what_to_do():
    at = open_page("views/deploy.py", None)
    assert any(translate("deploy.no_model", "en") in i.value for i in at.info)


def test_the_server_s_owner_is_the_browser_session(monkeypatch):
    """Deploy ties its server to the browser session's registry record: alive while seen within the
    heartbeat timeout (the web server cannot tell connections here), gone when it is stale or forgotten."""
    import gc
    import time

    from dlplay.server.registry import BrowserSession

    monkeypatch.setenv("DLPLAY_HEARTBEAT_S", "30")
    record = BrowserSession()
    alive = dp.owner_check(record)
    assert alive()
    record.last_seen = time.time() - 31
    assert not alive()
    record.touch()
    assert alive()
    del record
    gc.collect()
    assert not alive()
