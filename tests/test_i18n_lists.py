"""Lists in running text use the language's separator (issue 33: the Chinese Sequences page joined its presets
with ", " where Chinese uses the enumeration comma "、"): dlplay.i18n.join_list, and Listed for a message's
parameter that is a list, joined when the message is shown in a language."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlplay.errors import UserError
from dlplay.gan.lab import real_sampler
from dlplay.i18n import Listed, join_list, translate
from dlplay.nn.presets import PRESETS

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_join_list_uses_the_languages_separator():
    assert join_list(["a", "b", "c"], "en") == "a, b, c"
    assert join_list(["a", "b", "c"], "zh") == "a、b、c"
    assert join_list([1, 2], "zh") == "1、2"
    assert join_list([], "zh") == ""
    assert join_list(["x"], "en") == "x"
    assert join_list(("a", "b")) == "a, b"  # English by default


def test_a_list_parameter_is_joined_in_the_messages_language():
    with pytest.raises(UserError) as err:
        real_sampler("spiral")
    assert isinstance(err.value.params["choices"], Listed)
    assert "line, mixture, ring" in err.value.message("en")
    assert "line、mixture、ring" in err.value.message("zh")
    assert ", " not in err.value.message("zh").split("spiral")[-1]
    assert translate("gan.bad_choice", "zh", name="x", value="y", choices=Listed(["p", "q"])).count("p、q") == 1


@pytest.mark.parametrize(("lang", "separator"), [("en", "”, “"), ("zh", "”、“")])
def test_the_sequences_info_box_joins_the_presets_in_the_pages_language(lang, separator):
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("views/sequences.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    info = at.info[0].value
    names = [k for k in PRESETS if translate(f"presets.{k}.name", lang) in info]
    assert len(names) >= 2, info
    assert separator in info, info
    if lang == "zh":
        assert "”, “" not in info
