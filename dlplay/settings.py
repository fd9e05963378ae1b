"""One table of every value a learner can set: name, type, range or choices, default, share-link code,
label and help keys, and the task it belongs to (like TensorFlow Playground's ``State.PROPS``, typed).

The pages draw their widgets from it (``dlplay/ui/settings.py``), and everything that lists, checks or
carries settings reads it: :func:`validate_all` (one message per bad value, in the page's language),
:func:`differences` ("what differed from the defaults"), :meth:`Setting.parse` / :meth:`Setting.text`
(share links, lesson files, a class experiment), :func:`to_spec_and_config` /
:func:`from_spec_and_config` (the classifier's :class:`~dlplay.nn.spec.ModelSpec` and
:class:`~dlplay.nn.spec.TrainConfig`, which run records and checkpoints store).

Adding a setting is one :func:`_add` call below plus its label (and help) in both languages.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any

from dlplay.data import augment as _augment
from dlplay.data.datasets import DATASETS, get_info
from dlplay.errors import UserError
from dlplay.i18n import LANGUAGES, Term
from dlplay.nn.layers import DEFAULT_ORDER, DENSE, MAX_UNITS, ORDERS
from dlplay.nn.presets import DEFAULT_PRESET, PRESETS
from dlplay.nn.spec import (
    ACTIVATIONS,
    DEVICES,
    DROP,
    INITS,
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_VAL_SHARE,
    MAX_WEIGHT_LAYERS,
    OPTIMIZERS,
    SCHEDULES,
    LayerSpec,
    ModelSpec,
    TrainConfig,
)

KINDS = ("float", "int", "bool", "choice", "str")
TASKS = ("classify", "gan", "plane", "app")
CUSTOM = "custom"  # the preset (and augmentation level) of settings that are no preset's
MAX_TEXT = 4000  # the longest text a setting may hold (the layer list as JSON, label edits)
_INT_TEXT = re.compile(r"^[+-]?\d{1,19}$")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d{1,20}(\.\d{0,20})?|\.\d{1,20})([eE][+-]?\d{1,3})?$")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def number_text(value: float) -> str:
    """Shortest text that reads back as the same number (``0.001``, ``1e-05``), whole numbers without ``.0``."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True)
class Setting:
    """One learner-settable value. ``low``/``high`` are inclusive (``low_open``: ``low`` itself is not
    allowed, e.g. a learning rate of 0); ``stops`` are the values a slider offers (a value between them
    is still valid: the widget adds it); ``optional``: None is allowed too (e.g. "the whole training
    set"); ``check``: a further check that returns the cleaned value or raises UserError."""

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    log_scale: bool = False
    code: str | None = None  # the share-link query parameter that already carries it, if any
    label_key: str = ""
    help_key: str | None = None
    task: str = "classify"
    stops: tuple[Any, ...] = ()
    step: float | None = None  # a float slider's step
    low_open: bool = False
    optional: bool = False
    option_key: str | None = None  # "train.opt_{}": the translation key of each choice's label
    number_format: str | None = None  # "{:g}", "{:.0%}": how a number is shown
    check: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        assert self.kind in KINDS, (self.name, self.kind, self.task)
        assert self.task in TASKS, (self.name, self.kind, self.task)

    # ------------------------------------------------------------------ checking
    def _error(self, key: str, value: Any, **params: Any) -> UserError:
        shown = value if isinstance(value, (int, float, bool)) or value is None else str(value)[:60]
        return UserError(key, name=Term(self.label_key), value=shown, **params)

    def validate(self, value: Any) -> Any:
        """The value, cleaned (an int stays int, a float becomes float), or UserError naming the setting
        by its label, in the page's language."""
        if value is None and self.optional:
            return None
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise self._error("settings.not_bool", value)
        elif self.kind == "int":
            if isinstance(value, bool) or (not isinstance(value, int)
                    and not (isinstance(value, float) and value.is_integer())):
                raise self._error("settings.int_range", value, low=self._bound(self.low), high=self._bound(self.high))
            value = int(value)
            self._in_range(value, "settings.int_range")
        elif self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self._error(self._float_key(), value, low=self._bound(self.low), high=self._bound(self.high))
            value = float(value)
            self._in_range(value, self._float_key())
        elif self.kind == "choice":
            if (isinstance(value, bool) and not any(isinstance(c, bool) for c in self.choices)) \
                    or value not in self.choices:
                raise self._error("settings.not_a_choice", value, choices=", ".join(map(str, self.choices)))
            value = next(c for c in self.choices if c == value)
        else:
            if not isinstance(value, str):
                raise self._error("settings.not_text", value, high=MAX_TEXT)
            if len(value) > MAX_TEXT:
                raise self._error("settings.not_text", value[:20] + "…", high=MAX_TEXT)
        return self.check(value) if self.check is not None else value

    def _float_key(self) -> str:
        return "settings.float_above" if self.low_open else "settings.float_range"

    def _bound(self, bound: float | None) -> str:
        return "–" if bound is None else number_text(bound)

    def _in_range(self, value: float, key: str) -> None:
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        if not low_ok or (self.high is not None and value > self.high):
            raise self._error(key, value, low=self._bound(self.low), high=self._bound(self.high))

    # ------------------------------------------------------------------ text (links, lesson files)
    def parse(self, text: str) -> Any:
        """The value written as ``text`` (as :meth:`text` writes it), validated; UserError otherwise."""
        if not isinstance(text, str):
            raise self._error("settings.bad_text", text)
        raw = text.strip()
        if self.optional and raw.lower() in ("", "none"):
            return None
        if self.kind == "int":
            if not _INT_TEXT.match(raw):
                raise self._error("settings.bad_text", raw)
            return self.validate(int(raw))
        if self.kind == "float":
            if not _FLOAT_TEXT.match(raw):
                raise self._error("settings.bad_text", raw)
            return self.validate(float(raw))
        if self.kind == "bool":
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise self._error("settings.bad_text", raw)
        if self.kind == "choice":
            for choice in self.choices:
                if raw == self.text(choice):
                    return choice
            raise self._error("settings.not_a_choice", raw, choices=", ".join(map(self.text, self.choices)))
        return self.validate(text)

    def text(self, value: Any) -> str:
        """``value`` as a share link, a lesson file or a table writes it (:meth:`parse` reads it back)."""
        if value is None:
            return "none"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return number_text(value)
        return str(value)

    def options(self, current: Any = None) -> list[Any]:
        """What a slider or a list offers: the stops or choices, plus ``current`` where it is none of
        them (so the widget shows exactly the value in use, never a neighbour)."""
        base = list(self.stops or self.choices)
        if current is not None and current not in base:
            try:
                base = sorted([*base, current])
            except TypeError:
                base = [*base, current]
        return base


# ---------------------------------------------------------------------------------- the table
_TABLE: dict[str, Setting] = {}
SETTINGS: Mapping[str, Setting] = MappingProxyType(_TABLE)


def _add(name: str, kind: str, default: Any, **info: Any) -> Setting:
    """Declare a setting (its label key defaults to ``settings.<name>``)."""
    assert name not in _TABLE, name
    info.setdefault("label_key", f"settings.{name}")
    setting = Setting(name, kind, default, **info)
    _TABLE[name] = setting
    return setting


def add_choice(name: str, value: Any) -> Setting:
    """One more choice for setting ``name`` (e.g. a learner's own dataset, dlplay/owndata.py); the entry with it."""
    entry = _TABLE[name]
    if value not in entry.choices:
        _TABLE[name] = replace(entry, choices=(*entry.choices, value))
    return _TABLE[name]


def add_setting(setting: Setting) -> Setting:
    """For a task's own settings (e.g. the 2-D playground): one more entry in the table."""
    assert setting.name not in _TABLE, setting.name
    _TABLE[setting.name] = setting
    return setting


def _layers_check(text: str) -> str:
    """The layer list as JSON (a model that is not N equal dense layers), or "" (it is)."""
    if text:
        ModelSpec.from_dict({"layers": _json_list(text)})
    return text


def _json_list(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UserError("spec.bad_json") from exc


def _edits_check(text: str) -> str:
    parse_edits(text)
    return text


def parse_edits(text: str) -> tuple[tuple[int, int], ...]:
    """``12:3,40:d`` (image 12 is a 3, image 40 is dropped) as label edits, checked as a TrainConfig checks them."""
    edits = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        index, sep, label = part.partition(":")
        if not sep or not index.isdigit() or not (label == "d" or label.isdigit()) or len(part) > 12:
            raise UserError("fixdata.bad_edits")
        edits.append((int(index), DROP if label == "d" else int(label)))
    return TrainConfig(label_edits=tuple(edits)).label_edits


def edits_text(edits: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{i}:{'d' if label == DROP else label}" for i, label in edits)


_PRESET_OPTIONS = (CUSTOM, *PRESETS)
_TUTORIAL_SPEC, _TUTORIAL_CONFIG = PRESETS[DEFAULT_PRESET].spec, PRESETS[DEFAULT_PRESET].config
_first = _TUTORIAL_SPEC.layers[0]

# --- the classifier (Train page; the Build page edits the layers one by one)
_add("dataset", "choice", _TUTORIAL_CONFIG.dataset, choices=tuple(DATASETS), code="ds", label_key="train.dataset")
_add("preset", "choice", DEFAULT_PRESET, choices=_PRESET_OPTIONS, label_key="train.preset")
_add("layers", "str", "", check=_layers_check, help_key="settings.layers_help")
_add("hidden_layers", "int", len(_TUTORIAL_SPEC.layers), low=0, high=MAX_WEIGHT_LAYERS,
     label_key="train.hidden_layers")
_add("units", "int", _first.units, low=1, high=MAX_UNITS, stops=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
     log_scale=True, label_key="train.units")
_add("activation", "choice", _first.activation, choices=ACTIVATIONS, label_key="train.activation")
_add("dropout", "float", _first.dropout, low=0.0, high=0.95, stops=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
     label_key="build.dropout", number_format="{:g}")
_add("init", "choice", _TUTORIAL_SPEC.init, choices=INITS, code="init", label_key="build.init")
_add("order", "choice", DEFAULT_ORDER, choices=ORDERS, code="ord", label_key="build.order")
_add("optimizer", "choice", _TUTORIAL_CONFIG.optimizer, choices=OPTIMIZERS, code="o", label_key="train.optimizer",
     option_key="train.opt_{}")
# every preset's rate is a stop (2e-3: the recurrent presets), so the slider shows the rate a run uses
_add("lr", "float", _TUTORIAL_CONFIG.lr, low=0.0, high=10.0, low_open=True, log_scale=True, code="lr",
     stops=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
     label_key="train.lr", help_key="train.lr_help", number_format="{:g}")
_add("schedule", "choice", _TUTORIAL_CONFIG.schedule, choices=SCHEDULES, code="sch", label_key="train.schedule",
     help_key="train.schedule_help", option_key="train.sched_{}")
_add("batch_size", "int", _TUTORIAL_CONFIG.batch_size, low=1, high=MAX_BATCH, log_scale=True, code="bs",
     stops=(1, 8, 16, 32, 64, 128, 256, 512, 1024), label_key="train.batch")
_add("epochs", "int", _TUTORIAL_CONFIG.epochs, low=1, high=MAX_EPOCHS, code="ep", label_key="train.epochs")
_add("seed", "int", _TUTORIAL_CONFIG.seed, low=0, high=2**31 - 1, code="s", label_key="train.seed")
_add("weight_decay", "float", _TUTORIAL_CONFIG.weight_decay, low=0.0, high=0.99, code="wd",
     label_key="runs.field_weight_decay", number_format="{:g}")
_add("device", "choice", _TUTORIAL_CONFIG.device, choices=DEVICES, code="dev", label_key="runs.field_device")
_add("train_size", "int", _TUTORIAL_CONFIG.train_size, low=1, high=10_000_000, optional=True, code="n",
     label_key="spec.field_train_size")
_add("val_share", "float", _TUTORIAL_CONFIG.val_share, low=0.0, high=MAX_VAL_SHARE, code="val",
     stops=(0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5), label_key="validation.share", help_key="validation.share_help",
     number_format="{:.0%}")
_add("patience", "int", _TUTORIAL_CONFIG.patience, low=0, high=MAX_EPOCHS, code="pat",
     label_key="validation.patience", help_key="validation.patience_help")
_add("label_edits", "str", "", check=_edits_check, code="le", label_key="fixdata.edits")
_add("augment_level", "choice", "off", choices=(*_augment.LEVELS, CUSTOM), label_key="augment.title",
     help_key="augment.help", option_key="augment.level_{}")
_AUGMENT_STEPS = {"shift": 0.5, "rotate": 1.0, "scale": 0.05, "elastic": 0.25, "noise": 0.05}
for _field, _high in _augment.LIMITS.items():  # the link writes all five in one ``aug`` parameter
    _add(f"augment_{_field}", "float", 0.0, low=0.0, high=_high, step=_AUGMENT_STEPS[_field],
         label_key=f"augment.{_field}", help_key=f"augment.{_field}_help")
FULL_SPEED = 0  # the pace's value for "as fast as it goes"
_add("pace", "choice", FULL_SPEED, choices=(1, 2, 3, 5, 10, 20, 50, 100, 200, FULL_SPEED), label_key="train.pace",
     help_key="train.pace_help")
_add("probe_every", "int", 100, low=1, high=100_000, stops=(10, 20, 50, 100, 200, 500, 1000),
     label_key="dynamics.every", help_key="dynamics.every_help")

# --- the app
_add("language", "choice", "en", choices=tuple(LANGUAGES), code="lang", task="app")  # shown by its own name

# --- the GAN: the 2-D lab (dlplay/gan/session.py) and MNIST digits (dlplay/gan/mnist.py)
_add("gan_noise_dim", "int", 2, low=1, high=1024, task="gan", label_key="gan.setting_noise_dim")
_add("gan_noise", "choice", "gaussian", choices=("gaussian", "uniform"), task="gan", label_key="gan.setting_noise")
_add("gan_batch_size", "int", 150, low=1, high=4096, task="gan", label_key="gan.setting_batch_size")
_add("gan_d_steps", "int", 2, low=1, high=10, task="gan", label_key="gan.setting_d_steps")
_add("gan_optimizer_d", "choice", "sgd", choices=OPTIMIZERS, task="gan", option_key="train.opt_{}")
_add("gan_optimizer_g", "choice", "sgd", choices=OPTIMIZERS, task="gan", option_key="train.opt_{}")
_add("gan_lr_d", "float", 0.1, low=0.0, high=10.0, low_open=True, log_scale=True, task="gan", number_format="{:g}")
_add("gan_lr_g", "float", 0.1, low=0.0, high=10.0, low_open=True, log_scale=True, task="gan", number_format="{:g}")
_add("gan_total_steps", "int", 3000, low=1, high=1_000_000, task="gan", label_key="gan.setting_total_steps")
_add("gan_seed", "int", 0, low=0, high=2**31 - 1, task="gan", label_key="gan.setting_seed")
_add("gan_r1", "float", 0.0, low=0.0, high=1000.0, task="gan", number_format="{:g}")
_add("mgan_arch", "choice", "mlp", choices=("mlp", "dcgan"), task="gan")
_add("mgan_noise_dim", "int", 64, low=2, high=512, task="gan")
_add("mgan_width", "int", 256, low=8, high=1024, task="gan")
_add("mgan_conditional", "bool", False, task="gan")
_add("mgan_d_dropout", "float", 0.3, low=0.0, high=0.95, task="gan", number_format="{:g}")
_add("mgan_batch_size", "int", 64, low=1, high=4096, task="gan")
_add("mgan_lr_g", "float", 2e-4, low=0.0, high=1.0, low_open=True, log_scale=True, task="gan", number_format="{:g}")
_add("mgan_lr_d", "float", 2e-4, low=0.0, high=1.0, low_open=True, log_scale=True, task="gan", number_format="{:g}")
_add("mgan_d_steps", "int", 1, low=1, high=10, task="gan")
_add("mgan_label_smoothing", "float", 0.1, low=0.0, high=0.45, task="gan", number_format="{:g}")
_add("mgan_seed", "int", 0, low=0, high=2**31 - 1, task="gan")


# ---------------------------------------------------------------------------------- the four verbs' core
def setting(name: str) -> Setting:
    """The entry called ``name``; UserError for a name the table does not have (a lesson's typo)."""
    entry = _TABLE.get(name)
    if entry is None:
        raise UserError("settings.unknown", name=str(name)[:60])
    return entry


def defaults(task: str) -> dict[str, Any]:
    """Every setting of ``task`` at its default, in the table's order."""
    return {name: s.default for name, s in _TABLE.items() if s.task == task}


def differences(values: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, default, value)`` for each value that is not its setting's default, in the table's order
    ("what differed": a run's record, a class experiment, exported code)."""
    for name in values:
        setting(name)
    return [(name, s.default, values[name]) for name, s in _TABLE.items()
            if name in values and values[name] != s.default]


def validate_all(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[UserError]]:
    """(the values, each checked and cleaned, a bad one replaced by its default; one UserError per
    problem). Also the rules between settings (early stopping needs a validation share)."""
    clean: dict[str, Any] = {}
    errors: list[UserError] = []
    for name, value in values.items():
        try:
            entry = setting(name)
        except UserError as exc:
            errors.append(exc)
            continue
        try:
            clean[name] = entry.validate(value)
        except UserError as exc:
            errors.append(exc)
            clean[name] = entry.default
    if clean.get("patience") and "val_share" in clean and not clean["val_share"]:
        errors.append(UserError("validation.patience_needs_val"))
        clean["patience"] = 0
    return clean, errors


# ---------------------------------------------------------------------------------- the classifier's settings
_UNIFORM = ("hidden_layers", "units", "activation", "dropout")


def uniform_layers(spec: ModelSpec) -> tuple[int, int, str, float] | None:
    """(count, units, activation, dropout) when every hidden layer is the same dense layer, else None."""
    layers = spec.layers
    if any(layer.kind != DENSE for layer in layers):
        return None
    if len({(layer.units, layer.activation, layer.dropout) for layer in layers}) > 1:
        return None
    if any(layer != LayerSpec(DENSE, layer.units, layer.activation, layer.dropout) for layer in layers):
        return None  # a field a dense layer does not use was set: keep the layer list as it is
    if not layers:
        base = _TABLE
        return 0, base["units"].default, base["activation"].default, base["dropout"].default
    return len(layers), layers[0].units, layers[0].activation, layers[0].dropout


def matching_preset(spec: ModelSpec, config: TrainConfig) -> str:
    """The preset whose model and settings these are (on any dataset), else ``custom``."""
    for key, preset in PRESETS.items():
        if preset.spec == spec and preset.config.with_changes(dataset=config.dataset) == config:
            return key
    return CUSTOM


def from_spec_and_config(spec: ModelSpec, config: TrainConfig) -> dict[str, Any]:
    """The classifier's settings (task ``classify``, all of them) that make this model and config.

    A model of N equal dense layers is ``hidden_layers``/``units``/``activation``/``dropout`` (and
    ``layers`` is ""); any other is its layer list in ``layers`` (JSON), those four at their defaults."""
    values = defaults("classify")
    uniform = uniform_layers(spec)
    if uniform is not None:
        values.update(zip(_UNIFORM, uniform), layers="")
    else:
        values["layers"] = json.dumps(spec.to_dict()["layers"], sort_keys=True, separators=(",", ":"))
    values.update(init=spec.init, order=spec.order, dataset=config.dataset, optimizer=config.optimizer, lr=config.lr,
                  schedule=config.schedule, batch_size=config.batch_size, epochs=config.epochs, seed=config.seed,
                  weight_decay=config.weight_decay, device=config.device, train_size=config.train_size,
                  val_share=config.val_share, patience=config.patience, label_edits=edits_text(config.label_edits),
                  augment_level=_augment.level_of(config.augment), preset=matching_preset(spec, config))
    for field in _augment.LIMITS:
        values[f"augment_{field}"] = getattr(config.augment, field)
    return values


def to_spec_and_config(values: Mapping[str, Any], *, base: TrainConfig | None = None) -> tuple[ModelSpec, TrainConfig]:
    """The model and training config these settings make (missing ones: their defaults; ``base``: a
    config whose fields the table does not hold, e.g. a run's own). UserError when they do not fit
    together. ``preset``, ``augment_level``, ``pace``, ``probe_every`` choose nothing here: the
    preset's and level's values are in the other settings (see :func:`preset_values`)."""
    v = {**defaults("classify"), **values}
    if v["layers"]:
        layers = ModelSpec.from_dict({"layers": _json_list(v["layers"])}).layers
    else:
        layers = tuple(LayerSpec(DENSE, int(v["units"]), v["activation"], float(v["dropout"]))
                       for _ in range(int(v["hidden_layers"])))
    spec = ModelSpec(layers=layers, init=v["init"], order=v["order"],
                     num_classes=get_info(v["dataset"]).num_classes)  # one output per class of the dataset
    augment = _augment.Augment(**{field: float(v[f"augment_{field}"]) for field in _augment.LIMITS})
    config = (base or TrainConfig()).with_changes(
        dataset=v["dataset"], optimizer=v["optimizer"], lr=float(v["lr"]), schedule=v["schedule"],
        batch_size=int(v["batch_size"]), epochs=int(v["epochs"]), seed=int(v["seed"]),
        weight_decay=float(v["weight_decay"]), device=v["device"], train_size=v["train_size"],
        val_share=float(v["val_share"]), patience=int(v["patience"]), label_edits=parse_edits(v["label_edits"]),
        augment=augment)
    return spec, config


SPEC_AND_CONFIG = frozenset(
    ("layers", *_UNIFORM, "init", "order", "dataset", "optimizer", "lr", "schedule", "batch_size", "epochs", "seed",
     "weight_decay", "device", "train_size", "val_share", "patience", "label_edits",
     *(f"augment_{field}" for field in _augment.LIMITS)))  # the settings that make the ModelSpec/TrainConfig


def preset_values(key: str, dataset: str | None = None) -> dict[str, Any]:
    """The classifier's settings of preset ``key`` (on ``dataset``: a preset keeps the chosen dataset)."""
    preset = PRESETS[setting("preset").validate(key)] if key != CUSTOM else None
    if preset is None:
        raise UserError("settings.not_a_choice", name=Term("train.preset"), value=key,
                        choices=", ".join(PRESETS))
    config = preset.config if dataset is None else preset.config.with_changes(dataset=dataset)
    values = from_spec_and_config(preset.spec, config)
    values["preset"] = key
    return values


def augment_level_values(level: str) -> dict[str, float]:
    """The five augmentation settings of a level (``light``...)."""
    augment = _augment.LEVELS[setting("augment_level").validate(level)] if level != CUSTOM else None
    if augment is None:
        raise UserError("settings.not_a_choice", name=Term("augment.title"), value=level,
                        choices=", ".join(_augment.LEVELS))
    return {f"augment_{field}": getattr(augment, field) for field in _augment.LIMITS}


def with_setting(values: Mapping[str, Any], name: str, value: Any) -> dict[str, Any]:
    """``values`` (the classifier's) with one setting changed and what follows from it: a preset or an
    augmentation level brings its values; a uniform-layer setting makes the model N equal dense layers;
    no validation share turns early stopping off. UserError for a bad value (nothing changes)."""
    clean = setting(name).validate(value)
    out = dict(values)
    if name == "preset":
        if clean != CUSTOM:
            out.update(preset_values(clean, out.get("dataset")))
        out["preset"] = clean
        return out
    if name == "augment_level":
        if clean != CUSTOM:
            out.update(augment_level_values(clean))
        out["augment_level"] = clean
        return out
    out[name] = clean
    if name in _UNIFORM:
        out["layers"] = ""
    if name == "val_share" and not clean:
        out["patience"] = 0
    return out


def config_fields() -> tuple[str, ...]:
    """TrainConfig's fields (for a test that the table covers every one a learner can set)."""
    return tuple(f.name for f in fields(TrainConfig))
