"""Guardrails: limits from the environment, the memory estimate, the messages a refused run shows."""
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlplay.classify.checkpoint import MAX_CHECKPOINT_BYTES
from dlplay.errors import UserError
from dlplay.nn.model import build_model, count_parameters
from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig, dense_spec
from dlplay.server.guardrails import (
    Limits,
    check_run,
    estimate_memory,
    free_memory_bytes,
    limit_train_size,
    memory_report,
    process_rss_bytes,
)

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = dense_spec([128])


def refusal(spec, config, limits, **kwargs):
    with pytest.raises(UserError) as info:
        check_run(spec, config, limits, **kwargs)
    return info.value


def test_limits_from_environment():
    assert Limits.from_env({}) == Limits()
    limits = Limits.from_env({"DLPLAY_MAX_PARAMS": "1000", "DLPLAY_MAX_EPOCHS": "5",
                              "DLPLAY_MAX_TRAIN_SIZE": "2000", "DLPLAY_MAX_SESSION_MB": "64.5"})
    assert limits == Limits(max_params=1000, max_epochs=5, max_train_size=2000, max_session_mb=64.5)
    for name, bad in (("DLPLAY_MAX_EPOCHS", "0"), ("DLPLAY_MAX_PARAMS", "lots"), ("DLPLAY_MAX_SESSION_MB", "-3")):
        with pytest.raises(ValueError, match=name):
            Limits.from_env({name: bad})


def test_memory_estimate_counts_parameters_optimiser_state_and_activations():
    est = estimate_memory(TUTORIAL, TrainConfig())
    assert est.params == count_parameters(build_model(TUTORIAL)) == 101_770
    sgd = estimate_memory(TUTORIAL, TrainConfig(optimizer="sgd"))
    assert est.weights - sgd.weights == 2 * 101_770 * 4  # Adam's two moments
    big_batch = estimate_memory(TUTORIAL, TrainConfig(batch_size=8192))
    assert big_batch.activations > 5 * est.activations  # at batch 32 the evaluation batch is the peak
    conv = ModelSpec(layers=(LayerSpec("conv2d", 64, "relu", kernel=3, padding=1),))
    assert estimate_memory(conv, TrainConfig()).total_mb > 500  # 2000 x 64 x 28 x 28 floats while evaluating
    assert 5 < est.total_mb < 50


def test_the_tutorial_run_passes_the_default_limits():
    est = check_run(TUTORIAL, TrainConfig(), Limits(), train_available=10_000, free_bytes=2**33)
    assert est.params == 101_770


def test_too_many_parameters_says_how_many_and_what_to_do():
    exc = refusal(dense_spec([1024, 1024]), TrainConfig(), Limits(max_params=1_000_000))
    assert exc.key == "admin.limit_params"
    assert exc.message("en") == ("This network has 1,863,690 parameters; this server allows at most 1,000,000 per "
                                 "model. Use fewer or smaller layers.")
    assert "1,863,690" in exc.message("zh")
    assert "隐藏层" in exc.message("zh")


def test_too_many_epochs():
    exc = refusal(TUTORIAL, TrainConfig(epochs=30), Limits(max_epochs=20))
    assert exc.message("en") == "You asked for 30 epochs; this server allows at most 20 per run. Choose fewer epochs."
    assert "训练轮数" in exc.message("zh")


def test_training_set_size_is_capped_or_refused():
    limits = Limits(max_train_size=5000)
    capped = limit_train_size(TrainConfig(), 10_000, limits)
    assert capped.train_size == 5000
    assert check_run(TUTORIAL, capped, limits, train_available=10_000)
    assert limit_train_size(TrainConfig(), 4000, limits).train_size is None
    exc = refusal(TUTORIAL, TrainConfig(train_size=8000), limits, train_available=10_000)
    assert exc.message("en") == "This run would train on 8,000 images; this server allows at most 5,000. Use a smaller training set."


def test_memory_over_the_per_session_limit_or_over_what_is_free():
    wide, config = dense_spec([1024, 1024]), TrainConfig(batch_size=8192)
    need = estimate_memory(wide, config).total_mb
    assert need > 300
    exc = refusal(wide, config, Limits(max_session_mb=100))
    assert exc.key == "admin.limit_memory"
    assert exc.message("en") == (f"This run would need about {need:,.0f} MB of memory; this server allows 100 MB per "
                                 "session. Use a smaller batch size or a smaller network.")
    assert "批大小" in exc.message("zh")
    exc = refusal(TUTORIAL, TrainConfig(), Limits(), free_bytes=3 * 2**20)
    assert exc.key == "admin.limit_memory_now"
    assert "only 3 MB free" in exc.message("en")


def test_memory_readings_on_this_machine():
    assert free_memory_bytes("cpu") > 0
    assert process_rss_bytes() > 10 * 2**20
    report = memory_report("cpu")
    assert report.system_total >= report.system_available > 0
    assert report.device_name == "cpu"


def test_train_page_shows_the_guardrail_message_and_starts_nothing(monkeypatch):
    from dlplay.ui import server

    monkeypatch.setenv("DLPLAY_MAX_EPOCHS", "5")
    server.limits.clear()
    try:
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
        at.session_state["lang"] = "en"
        at.run()
        at.switch_page("views/train.py")
        at.run()
        assert at.sidebar.number_input(key="tw_epochs").value == 10
        next(b for b in at.button if b.key == "train_start").click()
        at.run()
        assert not at.exception, at.exception
        assert at.session_state["train_session"] is None
        assert [e.value for e in at.error] == [
            "You asked for 10 epochs; this server allows at most 5 per run. Choose fewer epochs."]
        at.sidebar.number_input(key="tw_epochs").set_value(1)
        at.run()
        next(b for b in at.button if b.key == "train_start").click()
        at.run()
        session = at.session_state["train_session"]
        assert session is not None
        assert not at.error
        assert session.slot_pool is server.slot_pool()
        session.stop()
        assert session.join(30)
    finally:
        server.limits.clear()


def test_server_configuration_is_hardened():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["fileWatcherType"] == "none"
    # uploads take a checkpoint of the largest model the guardrails let anyone train, and no more
    # than the checkpoint loader itself accepts
    upload_bytes = config["server"]["maxUploadSize"] * 2**20
    assert Limits().max_params * 4 * 1.05 <= upload_bytes <= MAX_CHECKPOINT_BYTES
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] in ("none", "type", False)
    # a full garbage collection after every fragment rerun starves training threads (see the file)
    assert config["runner"]["postScriptGC"] is False
