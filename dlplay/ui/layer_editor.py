"""The Build page's layer list: add, remove, move and edit layers; every change is validated.

The editor keeps a *draft* (a list of plain dicts, one per layer, each with a stable ``id`` that
names its widgets) in ``st.session_state``. A draft that forms a valid ModelSpec becomes the
session's spec at once; an invalid one is kept for the learner to fix while the last valid spec stays
in place, so nothing is lost.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import streamlit as st

from dlplay.errors import UserError
from dlplay.nn.layers import LAYER_KINDS as KINDS
from dlplay.nn.layers import ORDERS, WEIGHT_KINDS, Choice, Field, LayerKind, shape_text
from dlplay.nn.spec import (
    ACTIVATIONS,
    INITS,
    LAYER_KINDS,
    MAX_LAYERS,
    MAX_WEIGHT_LAYERS,
    LayerSpec,
    ModelSpec,
    layer_output_shape,
    validate_layer,
)
from dlplay.ui.i18n import error_text, t

DRAFT, SOURCE, NEXT_ID, INIT_KEY = "build_draft", "build_draft_source", "build_next_id", "build_init"
ORDER_KEY = "build_order"
FIELDS = ("kind", "units", "activation", "dropout", "kernel", "stride", "padding", "stack", "read")
DEFAULTS: dict[str, dict[str, Any]] = {name: dict(kind.defaults) for name, kind in KINDS.items()}


def _key(layer_id: int, field: str) -> str:
    return f"build_l{layer_id}_{field}"


def _new_layer(kind: str, **fields: Any) -> dict[str, Any]:
    layer_id = st.session_state.get(NEXT_ID, 0)
    st.session_state[NEXT_ID] = layer_id + 1
    return {"id": layer_id, "kind": kind, **DEFAULTS[kind], **fields}


def load_into_editor(spec: ModelSpec) -> None:
    """Replace the draft by ``spec`` (new ids, so no stale widget state carries over)."""
    draft = []
    for layer in spec.layers:
        fields = asdict(layer)
        draft.append(_new_layer(fields.pop("kind"), **fields))
    st.session_state[DRAFT] = draft
    st.session_state[SOURCE] = spec
    st.session_state[INIT_KEY] = spec.init
    st.session_state[ORDER_KEY] = spec.order


def sync_with_spec(spec: ModelSpec) -> None:
    """Rebuild the draft when the session's spec changed elsewhere (a preset, another page)."""
    if st.session_state.get(SOURCE) != spec or DRAFT not in st.session_state:
        load_into_editor(spec)


def draft() -> list[dict[str, Any]]:
    return st.session_state[DRAFT]


def draft_spec(base: ModelSpec) -> ModelSpec:
    """The draft as a ModelSpec (raises UserError when it is not a valid network)."""
    layers = tuple(LayerSpec(**{f: layer[f] for f in FIELDS}) for layer in draft())
    return ModelSpec(layers=layers, input_shape=base.input_shape, num_classes=base.num_classes,
                     init=st.session_state.get(INIT_KEY, base.init), order=st.session_state.get(ORDER_KEY, base.order))


def mark_committed(spec: ModelSpec) -> None:
    """The draft now is ``spec`` (so the editor does not rebuild it on the next run)."""
    st.session_state[SOURCE] = spec


# ----- actions (button callbacks: they run before the page script) ------------------------------
def _index(layer_id: int) -> int:
    return next(i for i, layer in enumerate(draft()) if layer["id"] == layer_id)


def add_layer(kind: str) -> None:
    """Spatial layers go before the first dense layer (where they make sense); others go last."""
    if add_refusal(kind) is not None:  # the button is disabled then; a stale click changes nothing
        return
    layers = draft()
    new = _new_layer(kind)
    position = len(layers)
    if KINDS[kind].spatial:
        position = next((i for i, layer in enumerate(layers) if KINDS[layer["kind"]].fully_connected), len(layers))
    layers.insert(position, new)


def remove_layer(layer_id: int) -> None:
    draft().pop(_index(layer_id))


def move_layer(layer_id: int, offset: int) -> None:
    layers = draft()
    i = _index(layer_id)
    j = i + offset
    if 0 <= j < len(layers):
        layers[i], layers[j] = layers[j], layers[i]


def change_kind(layer_id: int) -> None:
    """A new layer type gets that type's defaults (a pool window of 2 with stride 2, ...); switching
    between two kinds that both have neurons/filters (dense, convolution) keeps their number."""
    layer = draft()[_index(layer_id)]
    old_kind, units = layer["kind"], int(layer["units"])
    kind = st.session_state[_key(layer_id, "kind")]
    layer.update(kind=kind, **DEFAULTS[kind])
    old_units, new_units = _units_field(KINDS[old_kind]), _units_field(KINDS[kind])
    if old_units is not None and new_units is not None:
        layer["units"] = min(units, new_units.high)
    for field in FIELDS[1:]:
        st.session_state[_key(layer_id, field)] = layer[field]


# ----- rendering ---------------------------------------------------------------------------------
Shape = tuple[int, ...]


def _shapes(base: ModelSpec) -> tuple[list[Shape | None], list[Shape | None], int | None, UserError | None]:
    """Input and output shape per draft layer as far as they can be inferred; the first bad layer and why."""
    shape: tuple[int, ...] | None = base.input_shape
    ins: list[Shape | None] = []
    outs: list[Shape | None] = []
    bad: int | None = None
    problem: UserError | None = None
    for i, layer in enumerate(draft()):
        ins.append(shape)
        if shape is not None:
            try:
                spec_layer = LayerSpec(**{f: layer[f] for f in FIELDS})
                validate_layer(spec_layer, i)
                shape = layer_output_shape(spec_layer, shape, i, st.session_state.get(ORDER_KEY, base.order))
            except UserError as exc:
                bad, problem, shape = i, exc, None
            except TypeError:
                bad, shape = i, None
        outs.append(shape)
    return ins, outs, bad, problem


def _pull_widget_values() -> None:
    """Widget values changed in the browser are already in session state: copy them into the draft first,
    so shapes and errors shown above a widget reflect the edit made in this very run."""
    for layer in draft():
        for field in FIELDS:
            key = _key(layer["id"], field)
            if key in st.session_state:
                layer[field] = st.session_state[key]


def _shape_text(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else shape_text(shape)


def _ensure(layer: dict[str, Any], field: str) -> str:
    key = _key(layer["id"], field)
    if key not in st.session_state:
        st.session_state[key] = layer[field]
    return key


def _units_field(kind: LayerKind) -> Field | None:
    """The kind's number of neurons / filters, when the learner sets one."""
    field = kind.field("units")
    return field if field is not None and field.edit else None


def editor_fields(kind: LayerKind) -> tuple[list[Field], list[Field]]:
    """The number widgets of a kind: (on a row of their own: neurons/filters, side by side: kernel/window,
    stride, padding). The activation (if the kind has one) and dropout follow."""
    numbers = [f for f in kind.numbers if f.edit]
    return [f for f in numbers if f.name == "units"], [f for f in numbers if f.name != "units"]


def _help(key: str, low: int, high: int) -> str:
    """A field's help with its allowed range."""
    return f"{t(key)} {t('build.range', low=low, high=high)}"


def _number(container: Any, layer: dict[str, Any], field: Field) -> None:
    """A whole-number field with a minimum but no maximum: a number above the limit reaches the draft,
    which then shows, under this layer, the message saying the limit (the browser would only have turned
    the field red); its help says the range."""
    layer[field.name] = container.number_input(t(field.label_key), field.low, None, step=1,
                                               key=_ensure(layer, field.name),
                                               help=_help(field.help_key, field.low, field.high))


def _option_label(choice: Choice) -> Callable[[str], str]:
    """A choice's option -> its text in the page's language (the selectbox's format_func)."""
    return lambda option: t(choice.option_key(option))


def _layer_fields(layer: dict[str, Any]) -> None:
    """The widgets for one layer's settings; their values flow back into the draft."""
    kind = KINDS[layer["kind"]]
    alone, side_by_side = editor_fields(kind)
    for field in alone:
        # the number field's own − / + steppers add or remove one neuron (filter), as in TF Playground
        _number(st, layer, field)
    if side_by_side:
        for column, field in zip(st.columns(len(side_by_side)), side_by_side):
            _number(column, layer, field)
    for choice in kind.choices:  # a recurrent layer: what the classifier reads
        layer[choice.name] = st.selectbox(t(choice.label_key), choice.options, key=_ensure(layer, choice.name),
                                          format_func=_option_label(choice), help=t(choice.help_key))
    c_act, c_drop = st.columns(2)
    if kind.activation:  # pooling has no activation of its own
        allowed = kind.activations or ACTIVATIONS
        if layer["activation"] not in allowed:
            layer["activation"] = st.session_state[_key(layer["id"], "activation")] = allowed[0]
        layer["activation"] = c_act.selectbox(t("build.activation"), allowed, key=_ensure(layer, "activation"))
    else:
        c_drop = c_act
    layer["dropout"] = float(c_drop.number_input(t("build.dropout"), 0.0, 0.95, step=0.05, format="%.2f",
                                                 key=_ensure(layer, "dropout"), help=t("build.dropout_help")))


def render_layer_list(base: ModelSpec) -> None:
    """The editable list of hidden layers, each in a bordered box with ↑ ↓ ✕ buttons."""
    layers = draft()
    _pull_widget_values()
    ins, outs, bad, problem = _shapes(base)
    st.markdown(f"**{t('build.input_layer')}** · {_shape_text(base.input_shape)}")
    if not layers:
        st.info(t("build.no_hidden"))
    for i, layer in enumerate(layers):
        lid = layer["id"]
        with st.container(border=True, key=f"build_layer_{lid}"):
            c_title, c_buttons = st.columns([3, 2], vertical_alignment="center")
            arrow = ":material/warning:" if bad == i else "→"
            c_title.markdown(f"**{t('build.layer_n', n=i + 1)}** {arrow} `{_shape_text(outs[i])}`")
            with c_buttons, st.container(horizontal=True, horizontal_alignment="right", gap="small"):
                st.button("", key=f"build_up_{lid}", on_click=move_layer, args=(lid, -1), disabled=i == 0,
                          help=t("build.move_up"), icon=":material/arrow_upward:", type="tertiary")
                st.button("", key=f"build_down_{lid}", on_click=move_layer, args=(lid, 1),
                          disabled=i == len(layers) - 1, help=t("build.move_down"),
                          icon=":material/arrow_downward:", type="tertiary")
                st.button("", key=f"build_del_{lid}", on_click=remove_layer, args=(lid,),
                          help=t("build.remove"), icon=":material/delete:", type="tertiary")
            layer["kind"] = st.selectbox(t("build.kind"), LAYER_KINDS, key=_ensure(layer, "kind"),
                                         format_func=lambda k: t(KINDS[k].key), on_change=change_kind,
                                         args=(lid,))
            shape_in = ins[i]
            if shape_in is not None and KINDS[layer["kind"]].flattens(shape_in):
                flat = 1
                for s in shape_in:
                    flat *= s
                st.caption(t("build.auto_flatten", shape=_shape_text(shape_in), size=flat))
            _layer_fields(layer)
            if bad == i and problem is not None:
                st.error(error_text(problem), icon=":material/error:")
    st.markdown(f"**{t('build.output_layer')}** · {base.num_classes} softmax")


def render_add_controls() -> None:
    c_kind, c_add = st.columns([3, 2], vertical_alignment="bottom")
    kind = c_kind.selectbox(t("build.new_kind"), LAYER_KINDS, key="build_new_kind",
                            format_func=lambda k: t(KINDS[k].key))
    full = add_refusal(kind)
    c_add.button(t("build.add"), key="build_add", on_click=add_layer, args=(kind,), icon=":material/add:",
                 disabled=full is not None, width="stretch")
    if full is not None:
        st.caption(full)
    st.caption(t("build.add_hint"))


def add_refusal(kind: str) -> str | None:
    """Why a ``kind`` layer cannot be added to the draft (the network's limits), or None."""
    layers = draft()
    if len(layers) >= MAX_LAYERS:
        return t("build.full_layers", limit=MAX_LAYERS)
    if kind in WEIGHT_KINDS and sum(layer["kind"] in WEIGHT_KINDS for layer in layers) >= MAX_WEIGHT_LAYERS:
        return t("build.full_weighted", limit=MAX_WEIGHT_LAYERS)
    return None


def render_init_select(base: ModelSpec) -> None:
    """The model's weight initialisation, with a line on what it does."""
    if INIT_KEY not in st.session_state:
        st.session_state[INIT_KEY] = base.init
    st.selectbox(t("build.init"), INITS, key=INIT_KEY, format_func=lambda k: t(f"build.init_{k}"),
                 help=t("build.init_help"))
    st.caption(t(f"build.init_{st.session_state[INIT_KEY]}_text"))


def render_order_select(base: ModelSpec) -> None:
    """The model's reading order, shown when a layer reads the image as a sequence."""
    if ORDER_KEY not in st.session_state:
        st.session_state[ORDER_KEY] = base.order
    if any(KINDS[layer["kind"]].sequence for layer in draft()):
        st.selectbox(t("build.order"), ORDERS, key=ORDER_KEY, format_func=lambda k: t(f"build.order_{k}"),
                     help=t("build.order_help"))


def try_draft_spec(base: ModelSpec) -> tuple[ModelSpec | None, str | None]:
    """(spec, None) when the draft is a valid network, else (None, the error in the learner's language)."""
    try:
        return draft_spec(base), None
    except UserError as exc:
        return None, error_text(exc)
    except TypeError:
        return None, t("build.invalid_value")
