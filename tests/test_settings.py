"""The settings table (dlplay/settings.py) and its accessors in the browser session (dlplay/ui/settings.py)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlplay import settings as table
from dlplay.data.augment import LEVELS
from dlplay.errors import UserError
from dlplay.i18n import catalog, translate
from dlplay.nn.presets import PRESETS
from dlplay.nn.spec import TrainConfig, dense_spec
from dlplay.settings import CUSTOM, SETTINGS, TASKS

APP = str(Path(__file__).resolve().parents[1] / "app.py")
EN, ZH = catalog("en"), catalog("zh")


def both_languages(exc: UserError) -> tuple[str, str]:
    """The message in English and Chinese; its key is in both catalogs and takes its parameters."""
    assert exc.key in EN, exc.key
    assert exc.key in ZH, exc.key
    en, zh = exc.message("en"), exc.message("zh")
    assert "{" not in en, (en, zh)
    assert "{" not in zh, (en, zh)
    return en, zh


# ------------------------------------------------------------------ the table itself
def test_every_default_validates_and_reads_back_from_its_text():
    for name, entry in SETTINGS.items():
        assert entry.name == name
        assert entry.task in TASKS
        assert entry.validate(entry.default) == entry.default, name
        assert entry.parse(entry.text(entry.default)) == entry.default, name


def test_every_label_help_and_option_key_exists_in_english_and_chinese():
    for name, entry in SETTINGS.items():
        keys = [entry.label_key] + ([entry.help_key] if entry.help_key else [])
        if entry.option_key:
            keys += [entry.option_key.format(c) for c in entry.choices if c != CUSTOM or name != "preset"]
        for key in keys:
            assert key in EN, (name, key)
            assert key in ZH, (name, key)
    assert all(f"presets.{key}.name" in ZH for key in PRESETS)


def test_the_table_declares_what_a_learner_sets():
    wanted = {"dataset", "preset", "hidden_layers", "units", "activation", "dropout", "init", "optimizer", "lr",
              "schedule", "batch_size", "epochs", "seed", "val_share", "patience", "augment_level", "augment_shift",
              "augment_rotate", "augment_scale", "augment_elastic", "augment_noise", "pace", "probe_every",
              "language", "gan_lr_d", "gan_lr_g", "mgan_lr_g", "mgan_conditional"}
    assert wanted <= set(SETTINGS)
    # every TrainConfig field a learner can change has its setting (the run's own fields are not settings)
    assert set(table.config_fields()) - set(SETTINGS) == {"augment"}  # augment: its five augment_* settings
    codes = [s.code for s in SETTINGS.values() if s.code]
    assert len(codes) == len(set(codes))  # one setting per share-link code
    assert {"o", "lr", "bs", "ep", "s", "ds", "sch", "val", "pat", "init", "n", "le"} <= set(codes)


@pytest.mark.parametrize(("name", "value", "key"), [
    ("lr", 0.0, "settings.float_above"), ("lr", 11.0, "settings.float_above"), ("lr", math.nan, "settings.float_above"),
    ("lr", "0.1", "settings.float_above"), ("lr", True, "settings.float_above"),
    ("epochs", 0, "settings.int_range"), ("epochs", 10_000, "settings.int_range"), ("epochs", 2.5, "settings.int_range"),
    ("epochs", "3", "settings.int_range"), ("seed", -1, "settings.int_range"), ("hidden_layers", 9, "settings.int_range"),
    ("val_share", 0.9, "settings.float_range"), ("augment_rotate", 91.0, "settings.float_range"),
    ("optimizer", "lion", "settings.not_a_choice"), ("dataset", 3, "settings.not_a_choice"),
    ("pace", True, "settings.not_a_choice"), ("mgan_conditional", 1, "settings.not_bool"),
    ("layers", 5, "settings.not_text"), ("train_size", 0, "settings.int_range"),
])
def test_a_bad_value_is_a_message_in_both_languages_naming_the_setting(name, value, key):
    entry = SETTINGS[name]
    with pytest.raises(UserError) as info:
        entry.validate(value)
    assert info.value.key == key
    en, zh = both_languages(info.value)
    assert translate(entry.label_key, "en") in en
    assert translate(entry.label_key, "zh") in zh


def test_parse_reads_what_text_writes_and_refuses_the_rest():
    samples = {"lr": [1e-5, 0.002, 3.0, 10.0], "epochs": [1, 200], "seed": [0, 2**31 - 1], "optimizer": ["sgd"],
               "val_share": [0.0, 0.15], "train_size": [None, 500], "pace": [0, 5, 200], "mgan_conditional": [True, False],
               "label_edits": ["", "3:d,12:7"], "augment_scale": [0.05], "preset": [CUSTOM, "small_cnn"]}
    for name, values in samples.items():
        entry = SETTINGS[name]
        for value in values:
            assert entry.parse(entry.text(value)) == value, (name, value)
    assert SETTINGS["lr"].text(0.001) == "0.001"
    assert SETTINGS["lr"].text(1e-5) == "1e-05"
    for name, text in [("lr", "abc"), ("lr", "1e999"), ("epochs", "1.5"), ("epochs", "9" * 30), ("lr", "-0.1"),
                       ("mgan_conditional", "maybe"), ("optimizer", "Adam"), ("label_edits", "3:x")]:
        with pytest.raises(UserError) as info:
            SETTINGS[name].parse(text)
        both_languages(info.value)


def test_defaults_and_what_differs_from_them():
    classify = table.defaults("classify")
    assert classify["lr"] == 0.001
    assert classify["preset"] == "tutorial"
    assert "gan_lr_d" not in classify
    assert table.defaults("gan")["gan_lr_d"] == 0.1
    assert table.differences(classify) == []
    changed = {**classify, "lr": 0.1, "epochs": 3}
    assert table.differences(changed) == [("lr", 0.001, 0.1), ("epochs", 10, 3)]
    assert [name for name, _, _ in table.differences(table.preset_values("deep_sigmoid"))] == [
        "preset", "hidden_layers", "units", "activation", "optimizer", "lr"]
    with pytest.raises(UserError) as info:
        table.differences({"learning_rate": 0.1})  # a lesson's typo: said, not ignored
    assert info.value.key == "settings.unknown"


def test_validate_all_keeps_the_good_values_and_lists_every_problem():
    clean, errors = table.validate_all({"lr": 0.01, "epochs": 0, "optimizer": "lion", "bogus": 1,
                                        "val_share": 0.0, "patience": 3})
    assert clean["lr"] == 0.01
    assert clean["epochs"] == 10
    assert clean["optimizer"] == "adam"
    assert "bogus" not in clean
    assert sorted(e.key for e in errors) == ["settings.int_range", "settings.not_a_choice", "settings.unknown",
                                              "validation.patience_needs_val"]
    assert clean["patience"] == 0
    for error in errors:
        both_languages(error)
    assert table.validate_all({"epochs": 3.0})[0]["epochs"] == 3  # a whole float from a file is the int


def test_every_preset_is_its_settings_and_back():
    for key, preset in PRESETS.items():
        values = table.from_spec_and_config(preset.spec, preset.config)
        assert values["preset"] == key
        assert table.to_spec_and_config(values) == (preset.spec, preset.config), key
        assert values["lr"] in SETTINGS["lr"].stops, key  # issue 33: the slider has a stop at every preset's rate
        assert values["batch_size"] in SETTINGS["batch_size"].stops, key
    config = TrainConfig(lr=0.005, train_size=700, label_edits=((4, -1), (9, 2)), augment=LEVELS["strong"])
    assert table.to_spec_and_config(table.from_spec_and_config(dense_spec([]), config)) == (dense_spec([]), config)


def test_one_change_and_what_follows_from_it():
    values = table.defaults("classify")
    cnn = table.with_setting(values, "preset", "small_cnn")
    assert cnn["layers"]
    assert cnn["lr"] == 0.003
    assert cnn["preset"] == "small_cnn"
    dense = table.with_setting(cnn, "hidden_layers", 2)  # the Train page's layer count: N equal dense layers
    spec, _ = table.to_spec_and_config(dense)
    assert [layer.kind for layer in spec.layers] == ["dense", "dense"]
    off = table.with_setting({**values, "val_share": 0.1, "patience": 3}, "val_share", 0.0)
    assert off["patience"] == 0
    assert table.to_spec_and_config(off)[1].patience == 0
    medium = table.with_setting(values, "augment_level", "medium")
    assert table.to_spec_and_config(medium)[1].augment == LEVELS["medium"]
    with pytest.raises(UserError):
        table.with_setting(values, "lr", -1)


def test_the_options_of_a_slider_include_the_value_in_use():
    lr = SETTINGS["lr"]
    assert 0.002 in lr.options()
    assert lr.options(0.005)[lr.options(0.005).index(0.005) - 1] == 0.003
    assert lr.options(0.001) == list(lr.stops)


# ------------------------------------------------------------------ the accessors in a page
def _settings_page() -> None:
    import streamlit as st

    from dlplay.ui import settings as s
    from dlplay.ui.state import init_state

    init_state()
    for name, reason in st.session_state.get("lock", {}).items():
        s.lock(name, reason)
    for name in st.session_state.get("unlock", ()):
        s.unlock(name)
    for name in st.session_state.get("hide", ()):
        s.hide(name)
    for name in st.session_state.get("show", ()):
        s.show(name)
    for name in ("lr", "epochs", "optimizer", "mgan_conditional", "augment_noise", "language"):
        s.widget(name)
    st.markdown(f"locked={s.is_locked('lr')} hidden={s.is_hidden('epochs')} lr={s.get('lr')}")


def open_settings_page(**state) -> AppTest:
    at = AppTest.from_function(_settings_page, default_timeout=60)
    at.session_state["lang"] = "en"
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_widgets_are_drawn_from_the_table_and_write_through_set_value():
    at = open_settings_page()
    assert at.select_slider(key="tw_lr").value == 0.001
    assert at.select_slider(key="tw_lr").label == "Learning rate"
    assert at.number_input(key="tw_epochs").value == 10
    assert at.selectbox(key="tw_opt").value == "adam"
    assert at.toggle(key="set_mgan_conditional").value is False
    assert at.slider(key="aug_noise").value == 0.0
    at.select_slider(key="tw_lr").set_value(0.002).run()
    assert at.session_state["config"].lr == 0.002
    at.toggle(key="set_mgan_conditional").set_value(True).run()
    assert at.session_state["settings_value_mgan_conditional"] is True
    at.number_input(key="tw_epochs").set_value(500).run()  # above the table's 200: brought back, and said
    assert at.session_state["config"].epochs == 200
    assert at.number_input(key="tw_epochs").value == 200
    assert any("500 is more than the 200 allowed for “Epochs”" in w.value for w in at.warning)


def test_a_locked_setting_is_shown_disabled_with_its_reason_and_a_hidden_one_is_not_drawn():
    at = open_settings_page(lock={"lr": "validation.patience_needs_val"}, hide=["epochs"])
    reason = translate("validation.patience_needs_val", "en")
    lr = at.select_slider(key="tw_lr")
    assert lr.disabled
    assert reason in lr.help
    assert any(reason in c.value for c in at.caption)
    assert not any(w.key == "tw_epochs" for w in at.number_input)
    assert "locked=True hidden=True lr=0.001" in at.markdown[-1].value
    assert not at.selectbox(key="tw_opt").disabled
    at.session_state["unlock"], at.session_state["show"] = ["lr"], ["epochs"]
    at.session_state["lock"], at.session_state["hide"] = {}, []
    at.run()
    assert not at.select_slider(key="tw_lr").disabled
    assert at.number_input(key="tw_epochs").value == 10
    assert "locked=False hidden=False" in at.markdown[-1].value


def test_set_value_refuses_a_bad_value_and_changes_nothing():
    def page() -> None:
        import streamlit as st

        from dlplay.errors import UserError
        from dlplay.ui import settings as s

        try:
            s.set_value("lr", 50.0)
        except UserError as exc:
            st.error(exc.message("zh"))
        s.set_value("preset", "deep_sigmoid")
        s.set_value("pace", 5)
        st.markdown(f"{s.get('lr')} {s.get('preset')} {s.get('pace')} {s.values('classify')['optimizer']}")

    at = AppTest.from_function(page, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "学习率" in at.error[0].value
    assert at.markdown[0].value == "0.1 deep_sigmoid 5 sgd"


def test_the_train_page_shows_a_lock_set_by_a_lesson():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = "zh"
    at.run()
    at.session_state["settings_locked"] = {"lr": "validation.patience_needs_val"}
    at.switch_page("views/train.py")
    at.run()
    assert not at.exception, at.exception
    lr = at.sidebar.select_slider(key="tw_lr")
    assert lr.disabled
    assert translate("validation.patience_needs_val", "zh") in lr.help
    assert not at.sidebar.number_input(key="tw_epochs").disabled
