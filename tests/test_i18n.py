"""English and Simplified Chinese: catalogs, keys used by the code, placeholders, terminology, and every
page rendered in Chinese (AppTest) with no English left except proper names and technical tokens."""
from __future__ import annotations

import ast
import json
import logging
import re
import string
import sys
import time
from pathlib import Path

import pytest

from dlplay import i18n
from dlplay.data.augment import LEVELS as AUGMENT_LEVELS
from dlplay.i18n import LANGUAGES, catalog, catalog_files, negotiate_language, normalize_language, translate
from dlplay.ui.nav import available_pages

REPO = Path(__file__).resolve().parents[1]
LOCALES = REPO / "dlplay" / "locales"
GLOSSARY = REPO / "docs" / "GLOSSARY.md"
CODE_FILES = sorted([REPO / "app.py", *(REPO / "views").glob("*.py"), *(REPO / "dlplay").rglob("*.py")])
EN, ZH = catalog("en"), catalog("zh")
NAMESPACES = sorted({key.split(".")[0] for key in EN})


# ============================================================================ what counts as English
# Proper names and technical tokens that stay in Latin letters in the Chinese UI (docs/GLOSSARY.md).
ALLOWED_WORDS = {w.lower() for w in """
    PyTorch torch MNIST Fashion-MNIST CUDA CPU GPU MPS ReLU Leaky_ReLU leaky relu elu gelu tanh sigmoid softplus
    identity softmax logits logit Adam AdamW SGD RMSprop ONNX TorchScript Keras NumPy Python JSON PNG JPEG JPG GIF
    BMP WebP gzip IDX npz uint8 dlplay torchvision Dropout BatchNorm Dense Conv2d MaxPool AvgPool He Kaiming Xavier
    Glorot ECE F1 L2 NaN inf MB GB KB KiB MiB GiB px CNN Wa ln log exp RNN LSTM GRU autograd Distill GAN DCGAN Lab
    MLP KL JS PCA t-SNE Ray zip CSV TIFF Fisher sin cos Tab Enter Esc Space Home End
""".split()}  # noqa: SIM905 - a word list is easier to read and edit as text
LANGUAGE_SELECTOR = ("Language / 语言", "English")  # bilingual on purpose

_STRIP = [
    re.compile(r"<(style|script)>.*?</\1>", re.S),  # CSS and scripts in st.markdown / st.html
    re.compile(r"\$\$.*?\$\$", re.S),  # display LaTeX
    re.compile(r"\$[^$\n]+\$"),  # inline LaTeX
    re.compile(r"`[^`]*`"),  # code spans
    re.compile(r"<[^>]+>"),  # HTML tags
    re.compile(r":material/[a-z_]+:"),  # icons
    re.compile(r"%\{[^}]*\}"),  # plotly hover placeholders
    re.compile(r"\{[^{}]*\}"),  # str.format placeholders (catalog texts)
    re.compile(r"https?://\S+"),  # links
    re.compile(r"(?<![\w.])[~/][\w./~\-]*"),  # file system paths
    re.compile(r"[\w\-]+\.(?:pt|onnx|json|npz|gz|py|png|jpe?g|ubyte)\b"),  # file names
    re.compile(r"\.(?:pt|onnx|json|npz)\b"),  # file extensions
    re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b"),  # environment variables
    re.compile(r"\b\d+(?:\.\d+)?(?:e[-+]?\d+|[kKMG])\b"),  # 1e-05, 12.6k
    re.compile(r"\b[0-9a-f]{8,}\b"),  # ids
]
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_'’]*(?:-[A-Za-z0-9_]+)*")


def english_words(text: str) -> list[str]:
    """The words of ``text`` that are English (or any Latin-script word not on the allow-list)."""
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    found = []
    for word in _WORD.findall(text):
        if len(word) == 1 or any(c.isdigit() or c == "_" for c in word):
            continue  # variables (z, a, W) and identifiers (dense1, x_train, W_after)
        if word.lower() in ALLOWED_WORDS or all(part.lower() in ALLOWED_WORDS for part in word.split("-")):
            continue
        found.append(word)
    return found


def test_english_word_detector():
    assert english_words("训练在 CPU (2 cores) 上运行") == ["cores"]
    assert english_words("用 $\\mathrm{relu}(z)$ 和 `784 → Dense 16 relu → 10`，dense1、x_train 与 Fashion-MNIST") == []
    assert english_words("神经元 %{x}：%{y:.3f}，共 {n} 个，12.6k 个参数，1e-05，/root/.cache/dlplay/runs") == []
    assert english_words("<div class=\"dl-guess\">请写一个数字</div><script>document.x = 1;</script>") == []
    assert english_words("Stop all runs") == ["Stop", "all", "runs"]
    assert english_words("output：权重") == ["output"]


# ============================================================================ catalog files
def _placeholders(text: str) -> set[tuple[str, str]]:
    """(name, format spec) of the str.format fields (not plotly's %{...} hover fields)."""
    fields = set()
    for literal, name, spec, _conversion in string.Formatter().parse(text):
        if name is not None and not literal.endswith("%"):
            fields.add((name, spec or ""))
    return fields


def test_every_namespace_has_both_languages_with_the_same_keys():
    files = {lang: {p.name for p in catalog_files(lang)} for lang in LANGUAGES}
    assert set(LANGUAGES) == {"en", "zh"}
    assert files["en"] == files["zh"], "a namespace file exists in one language only"
    problems = []
    for name in sorted(files["en"]):
        keys = {lang: set(json.loads((LOCALES / lang / name).read_text(encoding="utf-8"))) for lang in LANGUAGES}
        for lang, other in (("en", "zh"), ("zh", "en")):
            missing = sorted(keys[lang] - keys[other])
            if missing:
                problems.append(f"{other}/{name} lacks {missing}")
    assert not problems, "\n".join(problems)
    assert set(EN) == set(ZH)


def test_catalog_values_are_nonempty_strings_and_keys_are_namespaced():
    for lang, texts in (("en", EN), ("zh", ZH)):
        for key, text in texts.items():
            assert isinstance(text, str), f"{lang}: {key} is empty or not a string"
            assert text.strip(), f"{lang}: {key} is empty or not a string"
            assert re.fullmatch(r"[a-z][a-z0-9_]*(\.[A-Za-z0-9_\-]+)+", key), f"{lang}: badly formed key {key!r}"


def test_placeholders_are_the_same_in_both_languages():
    problems = []
    for key in sorted(EN):
        try:
            en, zh = _placeholders(EN[key]), _placeholders(ZH[key])
        except ValueError as exc:  # unbalanced braces
            problems.append(f"{key}: malformed template ({exc})")
            continue
        if en != zh:
            problems.append(f"{key}: en {sorted(en)} != zh {sorted(zh)}")
        hover_en = set(re.findall(r"%\{[^}]*\}", EN[key]))
        hover_zh = set(re.findall(r"%\{[^}]*\}", ZH[key]))
        if hover_en != hover_zh:
            problems.append(f"{key}: plotly fields en {sorted(hover_en)} != zh {sorted(hover_zh)}")
    assert not problems, "\n".join(problems)


def test_chinese_catalog_has_no_english_words():
    leaks = {key: english_words(text) for key, text in ZH.items()}
    leaks = {key: words for key, words in leaks.items() if words}
    assert not leaks, "\n".join(f"{key}: {words}  ({ZH[key]})" for key, words in sorted(leaks.items()))


def _pages_named(key: str) -> tuple[set[str], set[str]]:
    """Navigation keys of the pages a text sends the learner to: English "the Train page", Chinese “训练”页面."""
    nav_en = {EN[k]: k for k in EN if k.startswith("nav.")}
    nav_zh = {ZH[k]: k for k in ZH if k.startswith("nav.")}
    en = {nav_en.get(name, name) for name in
          re.findall(r"\b(?:the|on) ([A-Z][\w&]*(?: [A-Z][\w&]*)?) page\b", EN[key])}
    zh = set()
    for run in re.findall(r"((?:[“*]{1,2}[^”*]{1,8}[”*]{1,2}(?:、|和|与|或)?)+)\s*(?:页面|页)", ZH[key]):
        zh |= {nav_zh.get(name, name) for name in re.findall(r"[“*]{1,2}([^”*]+)[”*]{1,2}", run)}
    zh |= {nav for title, nav in nav_zh.items() if re.search(f"(?<![“*]){re.escape(title)}页面", ZH[key])}
    return en, zh


def test_texts_name_pages_by_their_navigation_titles():
    """“训练”页面 / the Train page: the name in the sidebar; a page the English text names, the Chinese names too
    (by its title: “网络内部”页面, not “内部”页面)."""
    problems = []
    for key in EN:
        en, zh = _pages_named(key)
        if not en and not zh:
            continue
        strays = sorted(n for n in en | zh if not n.startswith("nav."))
        if strays:
            problems.append(f"{key}: {strays} are not page titles")
        elif en - zh:
            problems.append(f"{key}: en names {sorted(en)}, zh names {sorted(zh)}: {ZH[key]}")
    assert not problems, "\n".join(problems)


# ============================================================================ glossary
# English patterns of the core concepts marked **core** in docs/GLOSSARY.md.
CORE_PATTERNS = {
    "neural network": r"\bneural networks?\b",
    "hidden layer": r"\bhidden layers?\b",
    "dense (fully connected) layer": r"\bdense layers?\b|\bfully connected\b",
    "filter, kernel (convolution)": r"\bfilters\b|\b(?:one|per|each) filter\b",
    "batch normalization": r"\bbatch ?norm",
    "forward pass, forward propagation": r"\bforward (?:pass|propagation)\b|on the way forward",
    "backpropagation, backward pass": r"\bback-?propagation\b|\bbackward pass\b|on the way back\b",
    "activation function": r"\bactivation functions?\b",
    "loss function": r"\bloss functions?\b",
    "loss": r"\bloss(?:es)?\b",
    "gradient": r"\bgradients?\b",
    "weight": r"\bweights?\b",
    "bias": r"\bbias(?:es)?\b",
    "learning rate": r"\blearning[- ]rates?\b",
    "optimizer": r"\boptimi[sz]ers?\b",
    "batch size": r"\bbatch sizes?\b",
    "epoch": r"\bepochs?\b",
    "dataset": r"\bdatasets?\b",
    "accuracy": r"\baccuracy\b",
    "precision": r"\bprecision\b",
    "dead unit (ReLU)": r"\bdead\b",
    "checkpoint": r"\bcheckpoints?\b",
}


def glossary() -> list[dict[str, object]]:
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("English", "") or set(cells[0]) <= set("-"):
            continue
        split = lambda cell: [x.strip() for x in re.split(r"[、；]", cell) if x.strip()]  # noqa: E731
        rows.append({"en": cells[0], "zh": split(cells[1]), "avoid": split(cells[2]), "core": "**core**" in cells[3]})
    return rows


def test_glossary_lists_the_tutorial_terms():
    rows = {row["en"]: row for row in glossary()}
    assert len(rows) >= 40
    expected = {"neural network": "神经网络", "forward pass, forward propagation": "前向传播",
                "backpropagation, backward pass": "反向传播", "activation function": "激活函数",
                "loss function": "损失函数", "gradient": "梯度", "hidden layer": "隐藏层", "learning rate": "学习率",
                "batch size": "批大小", "epoch": "训练轮数", "accuracy": "准确率"}
    for en, zh in expected.items():
        assert zh in rows[en]["zh"], en
    core = {en for en, row in rows.items() if row["core"]}
    assert core == set(CORE_PATTERNS), "mark the same core concepts in GLOSSARY.md and CORE_PATTERNS"


def test_chinese_catalog_avoids_the_glossary_variants():
    problems = []
    for row in glossary():
        for variant in row["avoid"]:
            for key, text in ZH.items():
                if variant in text:
                    problems.append(f"{key}: “{variant}” instead of {row['zh']} ({text})")
    assert not problems, "\n".join(problems)


def test_core_concepts_use_the_glossary_terms():
    rows = {row["en"]: row for row in glossary()}
    problems = []
    for concept, pattern in CORE_PATTERNS.items():
        terms = rows[concept]["zh"]
        if concept == "epoch":
            terms = [*terms, "轮"]
        for key, text in EN.items():
            if re.search(pattern, text, re.I) and not any(term in ZH[key] for term in terms):
                problems.append(f"{key}: “{concept}” should be {terms}: {ZH[key]}")
    assert not problems, "\n".join(problems)


# ============================================================================ keys used by the code
KEY_CALLS = {"t", "translate", "UserError", "Hint"}
FILE_SUFFIXES = (".py", ".json", ".pt", ".onnx", ".toml", ".md", ".png", ".txt", ".gz", ".npz", ".csv", ".pkl")
KEY_SHAPE = i18n.KEY_SHAPE


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _parsed() -> list[tuple[Path, ast.AST]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))) for path in CODE_FILES]


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{node.lineno}"


def _looks_like_key(text: str) -> bool:
    head = text.partition(".")[0]
    return head in NAMESPACES and bool(KEY_SHAPE.fullmatch(text)) and not text.endswith(FILE_SUFFIXES)


def test_key_literals_in_the_code_exist():
    """Every string literal that is a translation key (or the fixed start of a composed one) is in the catalogs."""
    problems = []
    for path, tree in _parsed():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _looks_like_key(node.value):
                if node.value not in EN and not any(key.startswith(node.value) for key in EN):
                    problems.append(f"{_where(path, node)}: {node.value!r}")
            elif isinstance(node, ast.Call) and _call_name(node) in KEY_CALLS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value not in EN:
                    problems.append(f"{_where(path, node)}: {_call_name(node)}({first.value!r}) is not a key")
    assert not problems, "keys missing from the catalogs:\n" + "\n".join(problems)


def test_composed_keys_match_some_key():
    """``t(f"presets.{k}.name")``: the f-string's shape matches at least one catalog key."""
    problems, checked = [], 0
    for path, tree in _parsed():
        for node in ast.walk(tree):
            if not isinstance(node, ast.JoinedStr) or not node.values:
                continue
            head = node.values[0]
            if not (isinstance(head, ast.Constant) and _looks_like_key(str(head.value).rstrip(".") + ".x")):
                continue
            pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else r"[^\s]+" for v in node.values)
            checked += 1
            if not any(re.fullmatch(pattern, key) for key in EN):
                problems.append(f"{_where(path, node)}: no key matches {pattern!r}")
    assert checked >= 10
    assert not problems, "\n".join(problems)


def test_literal_keys_get_the_parameters_their_texts_need():
    """``t("k", a=1)``: every ``{placeholder}`` of the text is passed (else the learner sees ``{n}``)."""
    problems = []
    for path, tree in _parsed():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _call_name(node) in {"t", "translate", "UserError"} and node.args):
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and first.value in EN):
                continue
            if any(kw.arg is None for kw in node.keywords):
                continue  # **params: not checkable here
            given = {kw.arg for kw in node.keywords}
            needed = {name for name, _ in _placeholders(EN[first.value])}
            if "%{" in EN[first.value] and not given:
                continue  # a plotly hover template, used as is
            if needed - given:
                problems.append(f"{_where(path, node)}: {first.value} needs {sorted(needed - given)}")
    assert not problems, "\n".join(problems)


def test_composed_keys_exist_for_every_value():
    """The families of keys built from values (statuses, presets, options, fields)."""
    from dlplay.data.datasets import DATASETS
    from dlplay.nn.presets import PRESETS
    from dlplay.nn.spec import INITS, LAYER_KINDS, OPTIMIZERS
    from dlplay.run.status import ACTIVE, FINISHED
    from dlplay.ui.nav import PAGES

    expected = []
    for status in ("ready", *ACTIVE, *FINISHED):
        expected += [f"train.status_{status}", f"inside.status_{status}"]
    expected += [f"runs.status_{status}" for status in FINISHED]
    for key in PRESETS:
        expected += [f"presets.{key}.name", f"presets.{key}.text"]
    expected += [f"train.opt_{name}" for name in OPTIMIZERS]
    expected += [f"build.kind_{kind}" for kind in LAYER_KINDS]
    for init in INITS:
        expected += [f"build.init_{init}", f"build.init_{init}_text"]
    for _, url, key, _ in PAGES:
        expected.append(key)
        if url not in ("home", "admin"):
            expected.append(f"home.about_{url}")
    for name, ds in DATASETS.items():
        expected.append(f"data.description.{name}")
        if any(not label.isdigit() for label in ds.classes):  # named classes (Fashion-MNIST) are translated
            expected += [f"data.class.{name}.{i}" for i in range(len(ds.classes))]
    expected += [f"runs.field_{k}" for k in ("architecture", "layers", "init", "params", "optimizer", "lr",
                                              "lr_changes", "batch_size", "epochs", "weight_decay", "seed",
                                              "dataset", "train_size", "device", "engine")]
    expected += [f"runs.result_{k}" for k in ("status", "test_acc", "test_loss", "train_acc", "epochs_done",
                                               "steps", "duration")]
    for metric in ("test_acc", "test_loss", "train_acc", "train_loss", "step_loss"):
        expected += [f"runs.metric_{metric}", f"runs.fig_{metric}", f"runs.axis_{metric}"]
    missing = [key for key in expected if key not in EN]
    assert not missing, missing


# ============================================================================ literal UI strings
DISPLAY_CALLS = {
    "title", "header", "subheader", "markdown", "caption", "write", "text", "info", "warning", "error", "success",
    "toast", "button", "download_button", "link_button", "page_link", "metric", "selectbox", "radio", "multiselect",
    "select_slider", "slider", "number_input", "text_input", "text_area", "checkbox", "toggle", "file_uploader",
    "expander", "popover", "tabs", "segmented_control", "pills", "spinner", "progress", "status",
    "form_submit_button", "set_page_config", "exception", "dialog",
}
TEXT_KEYWORDS = {"label", "help", "text", "placeholder", "caption", "body", "page_title"}


def _literal_parts(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):  # formatted values become {} (stripped like placeholders)
        return ["".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [part for elt in node.elts for part in _literal_parts(elt)]
    return []


def ui_literal_leaks() -> list[str]:
    leaks = []
    for path, tree in _parsed():
        rel = path.relative_to(REPO).as_posix()
        if not (rel == "app.py" or rel.startswith(("pages/", "dlplay/ui/"))):
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _call_name(node) in DISPLAY_CALLS):
                continue
            first = [] if _call_name(node) == "page_link" else list(node.args[:1])  # page_link's first: a path
            args = first + [kw.value for kw in node.keywords if kw.arg in TEXT_KEYWORDS]
            if _call_name(node) == "tabs" and node.args:
                args = [node.args[0]]
            for arg in args:
                for part in _literal_parts(arg):
                    if part in LANGUAGE_SELECTOR or part == "dlplay":
                        continue
                    words = english_words(part)
                    if words:
                        leaks.append(f"{_where(path, node)}: {part!r} {words}")
    return leaks


def test_pages_show_no_literal_english():
    """Text passed straight to Streamlit (not through t()) has no English words."""
    leaks = ui_literal_leaks()
    assert not leaks, "literal English in the UI code:\n" + "\n".join(leaks)


# ============================================================================ translate / languages
def test_translate_formats_and_falls_back(caplog):
    assert translate("nav.train", "zh") == "训练"
    assert translate("nav.train", "en") == "Train"
    assert translate("nav.train", "fr") == "Train"  # unknown language: English
    key = next(k for k, text in EN.items() if "{" in text and "%{" not in text and len(_placeholders(text)) == 1)
    with caplog.at_level(logging.WARNING, logger="dlplay.i18n"):
        assert translate("no.such_key", "zh") == "no.such_key"
        assert "missing translation key 'no.such_key'" in caplog.text
        caplog.clear()
        assert translate(key, "zh", wrong_name=1) == ZH[key]  # unformatted, not a crash
        assert "could not be formatted" in caplog.text


def test_translate_falls_back_to_english_for_a_key_missing_in_chinese(monkeypatch, caplog):
    zh = dict(ZH)
    del zh["nav.train"]
    monkeypatch.setattr(i18n, "catalog", lambda lang: zh if lang == "zh" else EN)
    with caplog.at_level(logging.WARNING, logger="dlplay.i18n"):
        assert translate("nav.train", "zh") == "Train"
    assert "missing in 'zh'" in caplog.text


def test_layer_names_for_display():
    from dlplay.i18n import layer_name

    assert layer_name("output", "zh") == "输出层"
    assert layer_name("output", "en") == "output"
    assert layer_name("dense1", "zh") == "dense1"
    assert layer_name("conv2", "zh") == "conv2"
    assert not english_words(layer_name("output", "zh"))


@pytest.mark.parametrize(("tag", "lang"), [
    ("zh", "zh"), ("zh-CN", "zh"), ("zh_CN.UTF-8", "zh"), ("zh-Hans-CN", "zh"), ("ZH-tw", "zh"), ("en-US", "en"),
    ("fr-FR", "en"), ("", "en"), (None, "en"), ("zh;q=0.8", "zh"),
])
def test_normalize_language(tag, lang):
    assert normalize_language(tag) == lang


def test_negotiate_language_takes_the_first_supported_one():
    assert negotiate_language("zh-CN") == "zh"
    assert negotiate_language(None, "fr-FR,fr;q=0.9,zh-CN;q=0.8,en;q=0.7") == "zh"
    assert negotiate_language("fr-FR", "de;q=0.9, en;q=0.5, zh;q=0.6") == "zh"
    assert negotiate_language("en-GB", "zh-CN") == "en"  # navigator.language first
    assert negotiate_language(None, "") == "en"
    assert negotiate_language("fr", "de, zh;q=0") == "en"  # q=0: not acceptable


# ============================================================================ AppTest: language choice
def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(REPO / "app.py"), default_timeout=120)


def test_language_comes_from_session_then_url_then_browser_then_english():
    at = _app()
    at.run()
    assert at.title[0].value == EN["home.title"]
    assert at.session_state["lang"] == "en"
    assert at.query_params.get("lang") == "en"

    at = _app()
    at.context["locale"] = "zh-CN"
    at.run()
    assert at.title[0].value == ZH["home.title"]
    assert at.query_params.get("lang") == "zh"

    at = _app()
    at.context["locale"] = "zh-CN"
    at.query_params["lang"] = "en"
    at.run()
    assert at.title[0].value == EN["home.title"]  # the URL wins over the browser

    at = _app()
    at.query_params["lang"] = "zh"
    at.session_state["lang"] = "en"
    at.run()
    assert at.title[0].value == EN["home.title"]  # the session wins over the URL


def test_sidebar_selector_switches_and_keeps_the_language_across_pages():
    # (switch on Home: AppTest re-formats other pages' options outside a script run, in the default language)
    at = _app()
    at.run()
    selector = at.sidebar.selectbox(key="lang_select")
    assert selector.label == "Language / 语言"
    assert selector.options == ["English", "简体中文"]
    selector.set_value("zh").run()
    assert at.title[0].value == ZH["home.title"]
    assert at.session_state["lang"] == "zh"
    assert at.query_params["lang"] == "zh"
    assert at.sidebar.selectbox(key="lang_select").value == "zh"
    at.switch_page("views/train.py")
    at.run()
    assert at.title[0].value == ZH["train.title"]
    assert at.query_params["lang"] == "zh"

    at = _app()
    at.query_params["lang"] = "zh"
    at.run()
    assert at.title[0].value == ZH["home.title"]
    at.sidebar.selectbox(key="lang_select").set_value("en").run()
    assert at.title[0].value == EN["home.title"]
    assert at.query_params["lang"] == "en"
    assert at.session_state["lang"] == "en"


# ============================================================================ AppTest: every page in Chinese
VISIBLE_FIELDS = {"label", "body", "help", "caption", "placeholder", "options", "text", "title", "value", "delta",
                  "content", "default_tab_label", "name"}
SKIPPED_ELEMENTS = {"code", "latex", "json"}  # code and formulas are not prose
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
RAW_KEY = re.compile(r"\b(?:{})\.[a-z0-9_]+(?:\.[a-z0-9_\-]+)*\b".format("|".join(map(re.escape, NAMESPACES))))


def _proto_strings(message, out: list[str]) -> None:
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        if field.type == field.TYPE_MESSAGE:
            for item in values:
                _proto_strings(item, out)
        elif field.type == field.TYPE_STRING and field.name in VISIBLE_FIELDS:
            out.extend(values)


def _title_text(obj) -> str | None:
    title = obj.get("title") if isinstance(obj, dict) else None
    return title.get("text") if isinstance(title, dict) else title


def plotly_texts(spec: dict) -> list[str]:
    """Titles, axis titles, annotations, legend names and hover templates of a plotly figure's JSON."""
    texts = []
    layout = spec.get("layout", {})
    for key, value in layout.items():
        if key == "title" or key.startswith(("xaxis", "yaxis", "legend", "coloraxis")):
            texts.append(_title_text(layout) if key == "title" else _title_text(value))
            if isinstance(value, dict) and isinstance(value.get("colorbar"), dict):
                texts.append(_title_text(value["colorbar"]))
    texts += [a.get("text") for a in layout.get("annotations", [])]
    for trace in spec.get("data", []):
        texts += [trace.get("name"), trace.get("hovertemplate"), _title_text(trace.get("colorbar") or {})]
        for field in ("text", "hovertext"):
            value = trace.get(field)
            texts += value[:200] if isinstance(value, list) else [value]
    return [t for t in texts if isinstance(t, str) and t]


def visible_texts(at) -> list[tuple[str, str]]:
    """(element type, text) for everything a learner can read on the page AppTest rendered."""
    import pandas as pd
    from google.protobuf.message import Message

    found = []

    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    for node in walk(at._tree):
        kind = getattr(node, "type", "")
        proto = getattr(node, "proto", None)
        if kind in SKIPPED_ELEMENTS or not isinstance(proto, Message):
            continue
        if getattr(node, "key", None) == "lang_select":
            continue  # "Language / 语言", "English", "简体中文": bilingual on purpose
        if kind == "plotly_chart":
            found += [(kind, text) for text in plotly_texts(json.loads(proto.spec))]
            continue
        if kind in ("arrow_data_frame", "dataframe"):
            frame = node.value
            found += [(kind, str(c)) for c in frame.columns]
            if not isinstance(frame.index, pd.RangeIndex):
                found += [(kind, str(i)) for i in frame.index]
            found += [(kind, v) for v in frame.to_numpy().ravel().tolist() if isinstance(v, str)]
            continue
        strings: list[str] = []
        _proto_strings(proto, strings)
        found += [(kind, s) for s in strings if s]
    return found


def _leaks(texts: list[tuple[str, str]]) -> list[str]:
    leaks = []
    for kind, text in texts:
        words = english_words(text)
        if words:
            leaks.append(f"{kind}: {words} in {text[:160]!r}")
    return leaks


def _chinese(texts: list[tuple[str, str]]) -> list[str]:
    return [f"{kind}: {text[:160]!r}" for kind, text in texts if CJK.search(re.sub(r"<style>.*?</style>", "", text, flags=re.S))]


def _raw_keys(texts: list[tuple[str, str]]) -> list[str]:
    return [f"{kind}: {text[:120]!r}" for kind, text in texts if RAW_KEY.search(text) and RAW_KEY.search(text).group(0) in EN]


@pytest.fixture(scope="module")
def trained(mnist):
    """A small network after one short epoch, with the probe that the Dynamics page shows."""
    from dlplay.classify.probe import Probe
    from dlplay.classify.train import TrainingSession
    from dlplay.nn.spec import TrainConfig, dense_spec

    session = TrainingSession(dense_spec([16]), TrainConfig(epochs=1, train_size=2000, batch_size=32, seed=0),
                              mnist, "cpu", callbacks=[Probe(every=10)])
    session.start()
    assert session.join(120)
    assert session.status == "done"
    return session


def _drawn_digit(mnist):
    """A setup that makes the Draw page's canvas hand over a real test digit, as the browser's canvas
    does: a PNG data URL of a white-on-black drawing (whatever the canvas widget looks like)."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    digit = mnist.test_images[0].cpu().numpy()
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[28:252, 28:252, :3] = np.asarray(Image.fromarray(digit).resize((224, 224)))[..., None]
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    def setup(monkeypatch) -> None:  # after a first run: the canvas component registers inside the runtime
        monkeypatch.setattr(sys.modules["dlplay.ui.drawing"], "draw_canvas", lambda *args, **kwargs: data_url)

    return setup


_RECURRENT: dict = {}


def _recurrent_session(mnist):
    """A small LSTM after one short epoch with the probe (the Sequences page's scenarios), made once."""
    if "run" not in _RECURRENT:
        from dlplay.classify.probe import Probe
        from dlplay.classify.train import TrainingSession
        from dlplay.nn.spec import LayerSpec, ModelSpec, TrainConfig

        spec = ModelSpec(layers=(LayerSpec("lstm", 16, "identity"),))
        session = TrainingSession(spec, TrainConfig(epochs=1, train_size=640, batch_size=32, seed=0), mnist, "cpu",
                                  callbacks=[Probe(every=5)])
        session.start()
        assert session.join(120)
        assert session.status == "done"
        _RECURRENT["run"] = session
    return _RECURRENT["run"]


def _paused_dense(mnist) -> dict:
    """A small dense run paused at step 0 with its snapshots (the One step page replays its next step)."""
    from dlplay.classify.fork import SnapshotKeeper
    from dlplay.classify.train import TrainingSession
    from dlplay.nn.spec import TrainConfig, dense_spec

    session = TrainingSession(dense_spec([16], "relu"), TrainConfig(epochs=1, train_size=640, batch_size=32, seed=0),
                              mnist, "cpu", callbacks=[SnapshotKeeper()])
    session.start(paused=True)
    end = time.monotonic() + 60
    while session.status != "paused" and time.monotonic() < end:
        time.sleep(0.02)
    return {"train_session": session, "spec": session.spec, "config": session.config}


def _own_example(kind: str = "zip"):
    from dlplay import owndata
    from dlplay.server.guardrails import Limits

    limits = owndata.OwnLimits.from_limits(Limits())
    if kind == "zip":
        return owndata.read_upload(owndata.example_zip(), "mnist-0-1-7.zip", limits)
    rows = [f"{i % 7},{i % 5},{i % 3}" for i in range(30)]  # a learner's table: its words are its own, not the page's
    return owndata.read_upload(("x_1,x_2,label_id\n" + "\n".join(rows)).encode(), "2d.csv", limits)


def scenarios(lang: str, session, mnist) -> list[tuple[str, str, dict, object]]:
    """(name, page, session state, setup(monkeypatch) or None) for every page, fresh and trained, with every
    tab and mode that has text of its own."""
    trained_state = {"train_session": session, "spec": session.spec, "config": session.config, "_admin_ok": True}
    drawing = mnist.test_images[1].cpu().numpy()
    out = [(f"{name}-fresh", f"views/{name}.py", {}, None) for name in
           ("home", "build", "train", "dynamics", "draw", "inside", "evaluate", "runs", "sequences", "guesses", "explore",
            "deploy", "step", "mydata")]
    out += [(name, f"views/{name}.py", dict(trained_state), None) for name in
            ("home", "build", "train", "dynamics", "admin", "deploy")]
    out += [
        ("draw-drawn", "views/draw.py", dict(trained_state), _drawn_digit(mnist)),
        ("draw-upload", "views/draw.py", {**trained_state, "draw_source": "upload"}, None),
        ("inside-index", "views/inside.py", dict(trained_state), None),
        ("inside-wrong", "views/inside.py", {**trained_state, "inside_pick": "wrong"}, None),
        ("inside-digit", "views/inside.py", {**trained_state, "inside_pick": "digit"}, None),
        ("inside-drawing", "views/inside.py", {**trained_state, "inside_source": "drawing", "drawing28": drawing}, None),
        ("runs", "views/runs.py", {**trained_state, "runs_show_all": True}, None),
        ("sequences-dense", "views/sequences.py", dict(trained_state), None),
        ("explore", "views/explore.py", {**trained_state, "drawing28": drawing, "emb_n": 500, "rob_n": 1000}, None),
        ("explore-tsne", "views/explore.py", {**trained_state, "emb_method": "tsne", "emb_n": 500}, None),
        ("train-augment", "views/train.py", {**trained_state, "config": session.config.with_changes(
            augment=AUGMENT_LEVELS["medium"])}, None),
    ]
    rec = _recurrent_session(mnist)
    rec_state = {"train_session": rec, "spec": rec.spec, "config": rec.config}
    out += [
        ("sequences-lstm", "views/sequences.py", rec_state, None),
        ("sequences-drawing", "views/sequences.py", {**rec_state, "seq_source": "drawing", "drawing28": drawing}, None),
        ("sequences-no-drawing", "views/sequences.py", {**rec_state, "seq_source": "drawing"}, None),
        ("sequences-gates", "views/sequences.py", {**rec_state, "seq_memory_show": "f"}, None),
        ("build-lstm", "views/build.py", rec_state, None),
        ("step-over", "views/step.py", dict(trained_state), None),  # a finished run: its landscape
        ("step-paused", "views/step.py", _paused_dense(mnist), None),  # the replay, the editor, the landscape
        ("generate-lab", "views/generate.py", {}, None),
        ("mydata-example", "views/mydata.py", {"own_data": _own_example()}, None),
        ("mydata-csv", "views/mydata.py", {"own_data": _own_example("csv")}, None),
        ("generate-drawn", "views/generate.py", {"gen_shape": "drawn"}, None),
        ("generate-digits", "views/generate.py", {"gen_mode": "digits", "gen_conditional": True}, None),
        ("plane", "views/plane.py", {}, None),
        ("plane-spiral3", "views/plane.py", {"plane_dataset": "spiral3", "plane_reg": "l2"}, None),
        ("plane-regression", "views/plane.py", {"plane_dataset": "reg_gauss"}, None),
        ("plane-drawn", "views/plane.py", {"plane_dataset": "drawn", "plane_points": [(1.0, 1.0, 0)]}, None),
    ]
    for tab in ("tab_results", "tab_mistakes", "tab_calibration", "tab_keep"):
        out.append((f"evaluate-{tab}", "views/evaluate.py",
                    {**trained_state, "eval_tabs": translate(f"eval.{tab}", lang)}, None))
    out.append(("evaluate-code", "views/evaluate.py", {**trained_state, "eval_tabs": translate("export.title", lang)}, None))
    return out


def render_all(lang: str, session, mnist, monkeypatch, caplog) -> tuple[dict[str, list[str]], list[str], set[str]]:
    """Render every scenario in ``lang``; returns (texts in the other language per scenario, raw keys shown,
    i18n warnings logged)."""
    monkeypatch.setenv("DLPLAY_ADMIN_TOKEN", "i18n-test-token")
    leaks, raw, pages = {}, [], set()
    with caplog.at_level(logging.WARNING, logger="dlplay.i18n"):
        for name, page, state, setup in scenarios(lang, session, mnist):
            if not (REPO / page).exists():
                continue
            pages.add(page)
            at = _app()
            at.session_state["lang"] = lang
            for key, value in state.items():
                at.session_state[key] = value
            at.switch_page(page)
            at.run()
            if setup is not None:
                with pytest.MonkeyPatch.context() as patch:
                    setup(patch)
                    at.run()
            assert not at.exception, (name, [e.value for e in at.exception])
            stem = Path(page).stem
            title_key = {"evaluate": "eval.title", "step": "slowmo.title"}.get(stem, f"{stem}.title")
            assert at.title[0].value == translate(title_key, lang), name
            texts = visible_texts(at)
            found = _leaks(texts) if lang == "zh" else _chinese(texts)
            if found:
                leaks[name] = found
            raw += [f"{name}: {r}" for r in _raw_keys(texts)]
    assert pages == {path for path, *_ in available_pages()}, "a page has no scenario here"
    warnings = {r.getMessage() for r in caplog.records if r.name == "dlplay.i18n"}
    return leaks, raw, warnings


def test_every_page_in_chinese_shows_no_english(trained, mnist, monkeypatch, caplog):
    leaks, raw, warnings = render_all("zh", trained, mnist, monkeypatch, caplog)
    assert not warnings, sorted(warnings)
    assert not raw, "translation keys shown instead of text:\n" + "\n".join(raw)
    assert not leaks, "English on Chinese pages:\n" + "\n".join(
        f"[{name}] {leak}" for name, found in leaks.items() for leak in found)


def test_every_page_in_english_shows_english(trained, mnist, monkeypatch, caplog):
    chinese, raw, warnings = render_all("en", trained, mnist, monkeypatch, caplog)
    assert not warnings, sorted(warnings)
    assert not raw, "translation keys shown instead of text:\n" + "\n".join(raw)
    assert not chinese, "Chinese on English pages:\n" + "\n".join(
        f"[{name}] {leak}" for name, found in chinese.items() for leak in found)
