"""A model and its training settings as URL query parameters (short keys), and back.

Like TensorFlow Playground's link: ``?v=1&net=c8-k5-p2,mp2,d128-do0.2&o=adam&lr=0.001&bs=32&ep=10&s=0&ds=mnist``.

``net`` lists the hidden layers, comma-separated; each is a kind code with the units (``d128``
dense, ``c8`` conv filters; ``mp2``/``ap2`` max/avg pooling with its kernel; ``bn`` batch norm),
then ``-``-separated fields that differ from the defaults: an activation name, ``k<kernel>``,
``s<stride>``, ``p<padding>``, ``do<dropout>``; recurrent layers (``r128`` plain RNN, ``lstm128``,
``gru128``) add ``l<stacked layers>`` and ``all`` (the classifier reads every hidden state). An
empty ``net`` is logistic regression. Other keys: ``init``, ``nc`` (classes), ``ord`` (reading
order of a recurrent model: columns or pixels; absent: rows), ``o`` optimizer, ``lr``, ``bs`` batch size, ``ep`` epochs, ``wd`` weight
decay, ``s`` seed, ``ds`` dataset, ``n`` training examples, ``dev`` device, ``sch`` learning-rate
schedule (absent: constant, so older links still load), ``val`` validation share (absent: none, as
links had before validation existed), ``pat`` early stopping's patience in epochs, ``le`` label edits
(``index:label`` pairs, comma-separated, ``index:d`` drops the image), ``aug`` augmentation
(``s2_r12_z0.1_e1_n0.05``: shift px, rotation degrees, zoom, elastic px, noise; absent: none). Floats use Python's
shortest round-trip form, so a link reproduces the settings exactly. A link without ``net`` keeps the
current layers and applies its other settings.

Every value is checked as the widgets check it (same messages, naming the widget's label): the
number of classes must be the dataset's, and the server's guardrails are applied by the caller.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, overload

from dlplay.data.augment import Augment
from dlplay.data.datasets import get_info
from dlplay.errors import UserError
from dlplay.i18n import Term
from dlplay.nn.layers import DEFAULT_ORDER, LAYER_KINDS
from dlplay.nn.optimizers import CONSTANT
from dlplay.nn.spec import ACTIVATIONS, DROP, MAX_LABEL_EDITS, LayerSpec, ModelSpec, TrainConfig

VERSION = "1"
NET, VER = "net", "v"
KEYS = ("v", "net", "init", "nc", "ord", "o", "lr", "bs", "ep", "wd", "s", "ds", "n", "dev", "sch", "val", "pat", "le",
        "aug")
KIND_CODES = {name: kind.code for name, kind in LAYER_KINDS.items()}  # the codes are in the kinds' entries
CODE_KINDS = {v: k for k, v in KIND_CODES.items()}
_DEFAULT_LAYER = LayerSpec()
# the page's words for each parameter, in messages about a bad link
PARAM_LABELS = {
    "v": "eval.share_version", "net": "build.layers", "init": "build.init", "nc": "spec.field_num_classes",
    "o": "train.optimizer", "lr": "train.lr", "bs": "train.batch", "ep": "train.epochs",
    "wd": "runs.field_weight_decay", "s": "train.seed", "ds": "train.dataset", "n": "spec.field_train_size",
    "dev": "runs.field_device", "sch": "train.schedule", "ord": "build.order",
    "val": "validation.share", "pat": "validation.patience", "le": "fixdata.edits", "aug": "augment.title",
}
_HEAD = re.compile(r"^({})(\d{{0,9}})$".format("|".join(map(re.escape, KIND_CODES.values()))))  # any size reads: "too many neurons"
_SETTINGS = (("kernel", "k"), ("stride", "s"), ("padding", "p"), ("stack", "l"))  # ``k5`` unless in the head
_FIELD = re.compile(r"^(k|s|p|l)(\d{1,3})$|^do(\d*\.?\d+(?:e-?\d+)?)$")
MAX_VALUE_LENGTH = 600
MAX_LENGTHS = {"le": 12 * MAX_LABEL_EDITS}  # label edits: up to MAX_LABEL_EDITS "1234567:d," pairs
_EDIT = re.compile(r"^(\d{1,7}):(\d{1,3}|d)$")


def _num(value: float) -> str:
    """Shortest text that reads back as the same float (``0.001``, ``1e-05``), ints without ``.0``."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def layer_token(layer: LayerSpec) -> str:
    """One layer as text, e.g. ``d128``, ``c8-k5-p2``, ``mp2``, ``d64-tanh-do0.5``."""
    kind = LAYER_KINDS[layer.kind]
    # the head carries the kind's main number (dense/conv: units; pooling: its window), if it has one
    parts = [kind.code + (str(getattr(layer, kind.head)) if kind.head else "")]
    fixed = kind.sequence and not kind.activation  # an LSTM's, a GRU's activation is the cell's own: not written
    if not fixed and layer.activation != _DEFAULT_LAYER.activation:
        parts.append(layer.activation)
    for name, prefix in _SETTINGS:
        value = getattr(layer, name)
        if name != kind.head and value != getattr(_DEFAULT_LAYER, name):
            parts.append(f"{prefix}{value}")
    for choice in kind.choices:
        if getattr(layer, choice.name) != getattr(_DEFAULT_LAYER, choice.name):
            parts.append(getattr(layer, choice.name))
    if layer.dropout:
        parts.append(f"do{_num(layer.dropout)}")
    if kind.head != "units" and layer.units != _DEFAULT_LAYER.units:
        parts.append(f"u{layer.units}")
    return "-".join(parts)


def parse_layer(token: str, index: int) -> LayerSpec:
    """The inverse of :func:`layer_token`; raises UserError("eval.share_bad_layer") on anything else."""
    bad = UserError("eval.share_bad_layer", layer=index + 1, token=token[:40])
    parts = token.split("-")
    head = _HEAD.match(parts[0])
    if head is None:
        raise bad
    kind = LAYER_KINDS[CODE_KINDS[head.group(1)]]
    number = head.group(2)
    values: dict[str, Any] = {"kind": kind.name}
    if kind.head is not None:
        if not number:
            raise bad
        values[kind.head] = int(number)
    elif number:
        raise bad
    seen = set()
    value: str | int | float
    for part in parts[1:]:
        choice = next((c for c in kind.choices if part in c.options), None)
        if part in ACTIVATIONS:
            name, value = "activation", part
        elif choice is not None:
            name, value = choice.name, part
        elif part.startswith("u") and part[1:].isdigit() and len(part) <= 10:
            name, value = "units", int(part[1:])
        else:
            match = _FIELD.match(part)
            if match is None:
                raise bad
            if match.group(1):
                name = next(field for field, prefix in _SETTINGS if prefix == match.group(1))
                value = int(match.group(2))
            else:
                name, value = "dropout", float(match.group(3))
        if name in seen or name == kind.head:
            raise bad
        seen.add(name)
        values[name] = value
    if kind.sequence and not kind.activation and "activation" not in values:  # (older links: ``lstm128-identity``)
        values["activation"] = kind.defaults.get("activation", _DEFAULT_LAYER.activation)
    return LayerSpec(**values)


def spec_to_params(spec: ModelSpec) -> dict[str, str]:
    params = {NET: ",".join(layer_token(layer) for layer in spec.layers)}
    if spec.init != "default":
        params["init"] = spec.init
    if spec.num_classes != 10:
        params["nc"] = str(spec.num_classes)
    if spec.order != DEFAULT_ORDER:
        params["ord"] = spec.order
    return params


def config_to_params(config: TrainConfig) -> dict[str, str]:
    params = {
        "o": config.optimizer,
        "lr": _num(config.lr),
        "bs": str(config.batch_size),
        "ep": str(config.epochs),
        "s": str(config.seed),
        "ds": config.dataset,
    }
    if config.weight_decay:
        params["wd"] = _num(config.weight_decay)
    if config.train_size is not None:
        params["n"] = str(config.train_size)
    if config.device != "auto":
        params["dev"] = config.device
    if config.schedule != CONSTANT:
        params["sch"] = config.schedule
    if config.val_share:
        params["val"] = _num(config.val_share)
    if config.patience:
        params["pat"] = str(config.patience)
    if config.label_edits:
        params["le"] = edits_text(config.label_edits)
    if not config.augment.is_off:
        params["aug"] = augment_token(config.augment)
    return params


def edits_text(edits: tuple[tuple[int, int], ...]) -> str:
    """Label edits as ``12:3,40:d`` (image 12 is a 3, image 40 is dropped)."""
    return ",".join(f"{i}:{'d' if label == DROP else label}" for i, label in edits)


def parse_edits(text: str) -> tuple[tuple[int, int], ...]:
    """The inverse of :func:`edits_text`; UserError naming the link's parameter on anything else."""
    edits = []
    for part in (p for p in text.split(",") if p):
        match = _EDIT.match(part)
        if match is None:
            raise _bad("le", part)
        edits.append((int(match.group(1)), DROP if match.group(2) == "d" else int(match.group(2))))
    return tuple(edits)


AUGMENT_CODES = (("shift", "s"), ("rotate", "r"), ("scale", "z"), ("elastic", "e"), ("noise", "n"))
_AUGMENT_PART = re.compile(r"^([srzen])(\d{1,3}(?:\.\d{1,17})?(?:e-?\d{1,3})?)$")


def augment_token(augment: Augment) -> str:
    """``s2.5_r12_z0.1_e1_n0.05``: the settings that are not 0, each a letter and its number."""
    return "_".join(f"{code}{_num(getattr(augment, name))}" for name, code in AUGMENT_CODES if getattr(augment, name))


def parse_augment(token: str) -> Augment:
    """The inverse of :func:`augment_token` (``0``: none); UserError on anything else."""
    if token in ("", "0"):
        return Augment()
    values: dict[str, float] = {}
    names = dict((code, name) for name, code in AUGMENT_CODES)
    for part in token.split("_"):
        match = _AUGMENT_PART.match(part)
        if match is None or names[match.group(1)] in values:
            raise _bad("aug", token)
        values[names[match.group(1)]] = float(match.group(2))
    return Augment(**values)


def to_params(spec: ModelSpec, config: TrainConfig) -> dict[str, str]:
    """Query parameters that describe ``spec`` and ``config`` exactly."""
    return {VER: VERSION, **spec_to_params(spec), **config_to_params(config)}


def has_config(params: Mapping[str, Any]) -> bool:
    """Does a URL's query carry a shared configuration (any of its settings)?"""
    return any(key in params for key in KEYS if key != VER)


def _bad(key: str, value: Any = "") -> UserError:
    return UserError("eval.share_bad_link", param=Term(PARAM_LABELS[key]), value=str(value)[:40])


def _value(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    if value is None:
        return None
    value = str(value)
    if len(value) > MAX_LENGTHS.get(key, MAX_VALUE_LENGTH):
        raise _bad(key, value[:20] + "…")
    return value


@overload
def _int(params: Mapping[str, Any], key: str, default: int) -> int: ...
@overload
def _int(params: Mapping[str, Any], key: str, default: None) -> int | None: ...
def _int(params: Mapping[str, Any], key: str, default: int | None) -> int | None:
    text = _value(params, key)
    if text is None:
        return default
    if not re.fullmatch(r"\d{1,10}", text):
        raise _bad(key, text)
    return int(text)


def _float(params: Mapping[str, Any], key: str, default: float) -> float:
    text = _value(params, key)
    if text is None:
        return default
    try:
        if len(text) > 40:
            raise ValueError
        return float(text)
    except ValueError as exc:
        raise _bad(key, text) from exc


def from_params(params: Mapping[str, Any], current: ModelSpec | None = None) -> tuple[ModelSpec, TrainConfig] | None:
    """The spec and config a link describes, None when it describes none; UserError when it is malformed.

    Missing config keys take TrainConfig's defaults; without ``net`` the layers (and initialisation)
    are those of ``current`` (default: the tutorial's). The spec and config are validated as usual,
    and the number of classes must be the dataset's.
    """
    if not has_config(params):
        return None
    version = _value(params, VER)
    if version not in (None, VERSION):
        raise _bad(VER, version)
    base = current if current is not None else ModelSpec()
    if NET in params:
        net = _value(params, NET) or ""
        tokens = [t for t in net.split(",") if t]
        if len(tokens) > 32:
            raise _bad(NET, f"{len(tokens)} × …")
        layers = tuple(parse_layer(token.strip(), i) for i, token in enumerate(tokens))
        init = _value(params, "init") or "default"
    else:
        layers, init = base.layers, _value(params, "init") or base.init
    defaults = TrainConfig()
    spec = ModelSpec(
        layers=layers,
        num_classes=_int(params, "nc", 10),
        init=init,
        order=_value(params, "ord") or (DEFAULT_ORDER if NET in params else base.order),
    )
    config = TrainConfig(
        optimizer=_value(params, "o") or defaults.optimizer,
        lr=_float(params, "lr", defaults.lr),
        batch_size=_int(params, "bs", defaults.batch_size),
        epochs=_int(params, "ep", defaults.epochs),
        weight_decay=_float(params, "wd", defaults.weight_decay),
        seed=_int(params, "s", defaults.seed),
        device=_value(params, "dev") or defaults.device,
        dataset=_value(params, "ds") or defaults.dataset,
        train_size=_int(params, "n", None),
        schedule=_value(params, "sch") or defaults.schedule,
        val_share=_float(params, "val", 0.0),
        patience=_int(params, "pat", 0),
        label_edits=parse_edits(_value(params, "le") or ""),
        augment=parse_augment(_value(params, "aug") or ""),
    )
    info = get_info(config.dataset)  # an unknown dataset name is an error now, not at training time
    if spec.num_classes != info.num_classes:
        raise UserError("eval.share_bad_classes", value=spec.num_classes, name=info.title, n=info.num_classes)
    return spec, config


@dataclass(frozen=True)
class LinkProblem:
    """One value of a shared link that could not be used: the link's parameter, what it said, and why."""

    key: str
    value: str
    error: UserError

    @property
    def label(self) -> Term:
        """The page's words for the parameter (the widget's label)."""
        return Term(PARAM_LABELS[self.key])


# a value checked alone is checked with the values it depends on (which come first in CHECK_ORDER)
DEPENDS = {"nc": ("ds",), "n": ("ds",), "le": ("ds", "nc"), "pat": ("val",), "init": ("net",), "ord": ("net",)}
CHECK_ORDER = ("ds", "net", "val", *(k for k in KEYS if k not in (VER, "ds", "net", "val")))


def read_link(params: Mapping[str, Any], current: ModelSpec | None = None,
              check: Callable[[ModelSpec, TrainConfig], object] | None = None
              ) -> tuple[tuple[ModelSpec, TrainConfig] | None, list[LinkProblem]]:
    """Like :func:`from_params`, value by value: a value that is malformed, out of its range, or refused by
    ``check`` (the server's limits, the dataset's size: raises UserError) is left out -- the default, or the
    current layers, is used instead -- and named in the problems. A value is checked alone (with those it
    depends on), then the rest together; if they still do not fit, the last value whose removal makes them
    fit is left out. UserError when no part of the link can be used (e.g. an unknown link version)."""
    if not has_config(params):
        return None, []

    def attempt(values: Mapping[str, Any]) -> tuple[ModelSpec, TrainConfig]:
        parsed = from_params(values, current) or from_params({"ds": TrainConfig().dataset}, current)
        assert parsed is not None
        if check is not None:
            check(*parsed)
        return parsed

    version = _value(params, VER)
    if version not in (None, VERSION):
        raise _bad(VER, version)
    keys = [k for k in CHECK_ORDER if k in params]
    kept = {k: params[k] for k in keys}
    problems: list[LinkProblem] = []

    def shown(key: str) -> str:
        value = params[key]
        text = str(value[-1] if isinstance(value, (list, tuple)) and value else value)
        text = text.replace("`", "")
        return text if len(text) <= 40 else text[:39] + "…"

    for key in keys:
        alone = {VER: VERSION, key: params[key], **{d: kept[d] for d in DEPENDS.get(key, ()) if d in kept}}
        try:
            attempt(alone)
        except UserError as exc:
            problems.append(LinkProblem(key, shown(key), exc))
            del kept[key]
    if problems and not kept:
        return None, problems  # nothing of it can be used: nothing changes
    while True:
        try:
            return attempt({VER: VERSION, **kept}), problems
        except UserError as exc:
            for key in reversed(list(kept)):
                try:
                    attempt({VER: VERSION, **{k: v for k, v in kept.items() if k != key}})
                except UserError:
                    continue
                problems.append(LinkProblem(key, shown(key), exc))
                del kept[key]
                break
            else:
                raise


def all_values(spec: ModelSpec, config: TrainConfig) -> dict[str, str]:
    """Every link value of ``spec`` and ``config``, also those a link leaves out at their defaults (what a
    page uses instead of a value it could not use); label edits, a training-set limit and augmentation only
    when there are some."""
    values = to_params(spec, config)
    for key, value in (("init", spec.init), ("nc", str(spec.num_classes)), ("ord", spec.order),
                       ("wd", _num(config.weight_decay)), ("dev", config.device), ("sch", config.schedule),
                       ("val", _num(config.val_share)), ("pat", str(config.patience))):
        values.setdefault(key, value)
    return values


def share_url(base_url: str, spec: ModelSpec, config: TrainConfig, extra: Mapping[str, str] | None = None) -> str:
    """``base_url`` (without its query) with the parameters of ``spec`` and ``config`` appended."""
    from urllib.parse import urlencode

    base = base_url.split("?", 1)[0].split("#", 1)[0]
    query = {**(extra or {}), **to_params(spec, config)}
    return f"{base}?{urlencode(query, safe=',')}"
