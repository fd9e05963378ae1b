"""Plotly figures of the 2-D playground (arrays in, go.Figure out), built light enough to redraw 10 times a second.

Every picture over the plane (the decision map, each neuron's output) is one small PNG placed as a layout
image, not a heatmap of thousands of cells: colouring a 50×50 grid through a lookup table and encoding it
takes well under a millisecond. Colours: classes take the palette's categorical colours (class 1 blue,
class 2 orange, … as in TensorFlow Playground); a neuron's output, a weight and a regression value run
from orange (negative) through white (zero) to blue (positive), the network diagram's weight signs.
"""
from __future__ import annotations

import base64
import io
import itertools
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io
from PIL import Image, ImageDraw

from dlplay.figures.style import BLUE, CATEGORY10, GRID, ORANGE, OUTLINE, TEXT_MUTED, WEIGHT_ORANGE, axis, base_layout
from dlplay.i18n import translate
from dlplay.run.metrics import downsample

POSITIVE, NEGATIVE = BLUE, WEIGHT_ORANGE  # blue > 0, orange < 0 (like TF Playground and the diagram)
TEST_OUTLINE = OUTLINE  # test points: outlined in black; training points: in white
EXTENT = 6.0


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)


def _diverging_lut(n: int = 257) -> np.ndarray:
    """[n, 3] uint8: orange at -1, white at 0 (the middle entry, n odd), blue at +1."""
    t = np.linspace(-1, 1, n, dtype=np.float32)[:, None]
    white = np.full(3, 255, np.float32)
    ends = np.where(t < 0, _rgb(NEGATIVE), _rgb(POSITIVE))
    return np.round(white + (ends - white) * np.abs(t)).astype(np.uint8)


LUT = _diverging_lut()
CLASS_RGB = np.stack([_rgb(c) for c in CATEGORY10])


def class_colour(k: int) -> str:
    return CATEGORY10[k % len(CATEGORY10)]


def diverging_rgb(values: np.ndarray, vmax: float = 1.0) -> np.ndarray:
    """Values [R, R] -> colours [R, R, 3] uint8 (clipped at ±vmax)."""
    idx = np.clip((np.asarray(values, np.float32) / vmax + 1) * (0.5 * (len(LUT) - 1)), 0, len(LUT) - 1)
    idx = np.where(np.isnan(idx), (len(LUT) - 1) // 2, idx).astype(np.intp)  # NaN: white
    return LUT[idx]


def class_map_rgb(probs: np.ndarray) -> np.ndarray:
    """Class probabilities [K, R, R] -> colours [R, R, 3]: the classes' colours mixed by probability, paler
    where the network is unsure (white where all classes are equally likely)."""
    k, rows, cols = probs.shape
    p = np.asarray(probs, np.float32).reshape(k, -1)
    mix = CLASS_RGB[np.arange(k) % len(CLASS_RGB)].T @ p  # [3, n]
    confidence = np.clip((p.max(0) - 1 / k) / (1 - 1 / k), 0, 1)
    rgb = 255 + (mix - 255) * (0.15 + 0.6 * confidence)
    return np.round(rgb.T).astype(np.uint8).reshape(rows, cols, 3)


def class_prob_rgb(prob: np.ndarray, k: int) -> np.ndarray:
    """One class's probability [R, R] -> white (0) to the class's colour (1)."""
    colour = CLASS_RGB[k % len(CLASS_RGB)]
    return np.round(255 + (colour - 255) * np.clip(prob, 0, 1)[..., None]).astype(np.uint8)


def output_rgb(output: np.ndarray, regression: bool) -> np.ndarray:
    """The network's output over the grid ([K, R, R] probabilities or [1, R, R] values) -> colours."""
    return diverging_rgb(output[0]) if regression else class_map_rgb(output)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(rgb: np.ndarray) -> bytes:
    """Colours [H, W, 3] uint8 (top row first) -> a PNG file: 8-bit RGB, no row filter, zlib level 1.

    Written out here because it is the hot path of every redraw: for a 50×50 tile this takes tens of
    microseconds where PIL's encoder takes about ten times as long."""
    h, w = rgb.shape[:2]
    rows = np.empty((h, 1 + 3 * w), np.uint8)
    rows[:, 0] = 0  # filter type "none" for every row
    rows[:, 1:] = rgb.reshape(h, 3 * w)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) \
        + _chunk(b"IEND", b"")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_uri(rgb: np.ndarray) -> str:
    """Colours [R, R, 3] whose row 0 is the bottom of the plane -> a PNG data URI (top row first)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb[::-1])).decode("ascii")


class LiveFigure(go.Figure):
    """A figure redrawn many times a second: its JSON-ready spec, handed on as it is.

    Plotly's Figure validates and deep-copies every trace and image on construction (~75 ms for the
    largest diagram on this machine, mostly Python), and Streamlit asks a Figure only for ``to_dict()``.
    This one skips BaseFigure's constructor and returns the spec it was built from; numbers travel as
    typed arrays (:func:`typed`). tests/test_plane.py validates every builder's spec with go.Figure once.
    """

    def __new__(cls, spec: dict) -> LiveFigure:
        obj = object.__new__(cls)
        obj._spec = spec
        return obj

    def __init__(self, spec: dict):  # BaseFigure.__init__ skipped on purpose (see the class doc)
        pass

    def to_dict(self) -> dict:
        return {"data": list(self._spec["data"]), "layout": dict(self._spec["layout"])}

    def to_plotly_json(self) -> dict:
        return self.to_dict()

    def to_json(self, *args: Any, **kwargs: Any) -> str:
        return plotly.io.to_json(self.to_dict(), validate=False)

    def __repr__(self) -> str:
        return f"LiveFigure({len(self._spec['data'])} traces)"


def live_figure(spec: dict) -> go.Figure:
    return LiveFigure(spec)


def typed(values: Any) -> dict:
    """Numbers as Plotly's typed array (float32, base64): a tenth of the JSON and no per-number encoding."""
    a = np.ascontiguousarray(np.asarray(values, dtype=np.float32).ravel())
    return {"dtype": "f4", "bdata": base64.b64encode(a.tobytes()).decode("ascii")}


def _image(source: str, x0: float, y1: float, size_x: float, size_y: float, xref: str = "x", yref: str = "y",
           layer: str = "below") -> dict:
    return {"source": source, "xref": xref, "yref": yref, "x": x0, "y": y1, "sizex": size_x, "sizey": size_y,
            "sizing": "stretch", "layer": layer, "xanchor": "left", "yanchor": "top"}


def diagram_tiles(inputs: np.ndarray, neurons: Sequence[np.ndarray], output: np.ndarray, regression: bool,
                  step: int = 2) -> list[list[np.ndarray]]:
    """Every node's picture for :func:`network_figure` ([t, t, 3] colours, row 0 at the bottom), column by
    column: the input features (scaled to their largest value), each hidden neuron (its activation, ±1 full
    colour), and the outputs (each class's probability in its colour, or the regression value). ``step``
    thins the grid for these small tiles."""
    inputs = np.asarray(inputs)[:, ::step, ::step]
    scale = np.maximum(np.abs(inputs).max(axis=(1, 2), keepdims=True), 1e-6)
    cols = [list(diverging_rgb(inputs / scale))]
    if neurons:  # every hidden neuron through the lookup table at once
        hidden = diverging_rgb(np.concatenate([np.asarray(h)[:, ::step, ::step] for h in neurons]))
        bounds = np.cumsum([0] + [len(h) for h in neurons])
        cols += [list(hidden[a:b]) for a, b in itertools.pairwise(bounds)]
    if regression:
        cols.append([diverging_rgb(output[0, ::step, ::step])])
    else:
        cols.append([class_prob_rgb(p[::step, ::step], k) for k, p in enumerate(output)])
    return cols


# ---------------------------------------------------------------- the plane with its points
def plane_figure(heat_uri: str | None, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                 y_test: np.ndarray, lang: str, *, classes: int = 2, regression: bool = False, show_test: bool = True,
                 title: str | None = None, height: int = 440, extent: float = EXTENT) -> go.Figure:
    """The decision map (or regression surface) as one image under the training points (white outline) and
    the test points (black outline)."""
    traces: list[dict] = []
    tr = translate
    if regression:
        for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
            if split == "test" and not show_test:
                continue
            x = np.asarray(x, np.float64).reshape(-1, 2)
            traces.append({
                "type": "scatter", "mode": "markers", "x": typed(x[:, 0]), "y": typed(x[:, 1]),
                "name": tr(f"plane.fig_{split}_points", lang), "hovertemplate": "%{marker.color:.2f}<extra></extra>",
                "marker": {"color": typed(y), "colorscale": [[0, NEGATIVE], [0.5, "#ffffff"],
                                                                                       [1, POSITIVE]],
                           "cmin": -1, "cmax": 1, "size": 7, "symbol": "circle",
                           "line": {"color": "white" if split == "train" else TEST_OUTLINE, "width": 1}}})
    else:
        for k in range(classes):
            for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
                if split == "test" and not show_test:
                    continue
                pts = np.asarray(x, np.float64).reshape(-1, 2)[np.asarray(y) == k]
                traces.append({
                    "type": "scatter", "mode": "markers", "x": typed(pts[:, 0]), "y": typed(pts[:, 1]),
                    "name": tr("plane.fig_class", lang, n=k + 1), "legendgroup": f"c{k}", "showlegend": split == "train",
                    "hovertemplate": f"{tr('plane.fig_class', lang, n=k + 1)} · {tr(f'plane.fig_{split}_points', lang)}"
                                     "<br>(%{x:.2f}, %{y:.2f})<extra></extra>",
                    "marker": {"color": class_colour(k), "size": 7,
                               "line": {"color": "white" if split == "train" else TEST_OUTLINE,
                                        "width": 1 if split == "train" else 1.6}}})
    if show_test:  # a legend entry that says what a black outline means
        traces.append({"type": "scatter", "mode": "markers", "x": [None], "y": [None],
                       "name": tr("plane.fig_test_points", lang),
                       "marker": {"color": "white", "size": 7, "line": {"color": TEST_OUTLINE, "width": 1.6}}})
    layout = base_layout(title if title is not None else tr("plane.fig_plane_title", lang), height)
    layout.update({
        "xaxis": axis("x₁", range=[-extent, extent], zeroline=False, showgrid=False, constrain="domain"),
        "yaxis": axis("x₂", range=[-extent, extent], zeroline=False, showgrid=False, scaleanchor="x",
                      constrain="domain"),
        "images": [_image(heat_uri, -extent, extent, 2 * extent, 2 * extent)] if heat_uri else [],
        "uirevision": "keep", "margin": {"l": 45, "r": 10, "t": 40, "b": 40},
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0.0, "font": {"size": 11}},
    })
    return live_figure({"data": traces, "layout": layout})


# ---------------------------------------------------------------- the network diagram
UNIT_PX = 40  # pixels per diagram unit in the composed picture (one unit between neighbouring nodes)
TILE = 0.625  # a neuron's picture, in diagram units (25 px)


def node_positions(widths: Sequence[int]) -> list[list[tuple[float, float]]]:
    """Centres (x, y) of each column's nodes: column c at x = c, nodes one unit apart, centred at y = 0."""
    return [[(float(c), (n - 1) / 2 - i) for i in range(n)] for c, n in enumerate(widths)]


def column_strip(tiles: Sequence[np.ndarray], height_units: float) -> np.ndarray:
    """One column's pictures stacked at their diagram positions (centred, one unit apart) on white, each
    framed in grey: [height, tile px + 2, 3], top row first. One image per column keeps the pixels to
    encode few (the gaps between columns, where the weights run, belong to no image)."""
    size = round(TILE * UNIT_PX)
    height = round(height_units * UNIT_PX)
    strip = np.full((height, size + 2, 3), 255, np.uint8)
    n = len(tiles)
    for i, tile in enumerate(tiles):
        centre = height / 2 - ((n - 1) / 2 - i) * UNIT_PX
        row = round(centre - size / 2)
        t = tile[::-1]  # row 0 of a tile is the bottom of the plane
        if t.shape[0] != size:  # nearest neighbour to the tile's pixels
            idx = np.arange(size) * t.shape[0] // size
            t = t[idx][:, idx]
        strip[row - 1:row + size + 1] = 160
        strip[row:row + size, 1:size + 1] = t
    return strip


WIDTH_BINS = (0.25, 0.5, 1.0, 2.0, 4.0)  # |w| thresholds of the line widths below
LINE_WIDTHS = (0.6, 1.2, 2.0, 3.2, 4.6, 6.5)


def network_figure(tiles: Sequence[Sequence[np.ndarray]], labels: Sequence[Sequence[str]],
                   weights: Sequence[np.ndarray], *, selected: tuple[int, int] | None = None, height: int = 440,
                   column_titles: Sequence[str] = ()) -> go.Figure:
    """The network as columns of small pictures (inputs, hidden layers, the outputs: :func:`diagram_tiles`),
    composed into one image; a line per weight, its width |w|, its colour the sign (hover: its value).

    ``labels[c][i]`` is the hover text of node i of column c; the node markers carry ``customdata``
    (column, index) so that a click selects a neuron; ``selected`` gets a dark frame.
    """
    widths = [len(col) for col in tiles]
    pos = node_positions(widths)
    top = max(widths) / 2
    half = TILE / 2
    xs_by: dict[tuple[bool, int], list[np.ndarray]] = {}
    ys_by: dict[tuple[bool, int], list[np.ndarray]] = {}
    mids_x, mids_y, mids_w = [], [], []
    for c, w in enumerate(weights):
        w = np.asarray(w, np.float64)
        src = np.array(pos[c])  # [in, 2]
        dst = np.array(pos[c + 1])  # [out, 2]
        x0 = np.broadcast_to(src[None, :, 0] + half, w.shape)
        y0 = np.broadcast_to(src[None, :, 1], w.shape)
        x1 = np.broadcast_to(dst[:, None, 0] - half, w.shape)
        y1 = np.broadcast_to(dst[:, None, 1], w.shape)
        bins = np.digitize(np.abs(w), WIDTH_BINS)
        for positive in (True, False):
            for b in range(len(LINE_WIDTHS)):
                m = (bins == b) & ((w >= 0) == positive)
                if not m.any():
                    continue
                nan = np.full(int(m.sum()), np.nan)
                xs_by.setdefault((positive, b), []).append(np.stack([x0[m], x1[m], nan], 1).ravel())
                ys_by.setdefault((positive, b), []).append(np.stack([y0[m], y1[m], nan], 1).ravel())
        mids_x.append((x0 + (x1 - x0) * 0.3).ravel())
        mids_y.append((y0 + (y1 - y0) * 0.3).ravel())
        mids_w.append(w.ravel())
    traces: list[dict] = []
    for key in sorted(xs_by):
        positive, b = key
        traces.append({"type": "scatter", "mode": "lines", "x": typed(np.concatenate(xs_by[key])),
                       "y": typed(np.concatenate(ys_by[key])), "hoverinfo": "skip", "showlegend": False,
                       "connectgaps": False, "opacity": 0.75,
                       "line": {"color": POSITIVE if positive else NEGATIVE, "width": LINE_WIDTHS[b]}})
    if mids_x:
        traces.append({"type": "scatter", "mode": "markers", "x": typed(np.concatenate(mids_x)),
                       "y": typed(np.concatenate(mids_y)), "customdata": typed(np.concatenate(mids_w)), "hovertemplate": "w = %{customdata:.3f}<extra></extra>",
                       "showlegend": False, "marker": {"size": 6, "color": "rgba(0,0,0,0)"}})
    nodes = [(c, i, *pos[c][i]) for c, col in enumerate(tiles) for i in range(len(col))]
    chosen = [selected == (c, i) for c, i, _, _ in nodes]
    traces.append({"type": "scatter", "mode": "markers", "x": [n[2] for n in nodes], "y": [n[3] for n in nodes],
                   "customdata": [[n[0], n[1]] for n in nodes], "text": [labels[n[0]][n[1]] for n in nodes],
                   "hovertemplate": "%{text}<extra></extra>", "showlegend": False,
                   "marker": {"symbol": "square", "size": 30, "color": "rgba(255,255,255,0.01)",
                              "line": {"color": [OUTLINE if s else "rgba(0,0,0,0)" for s in chosen],
                                       "width": [3 if s else 0 for s in chosen]}}})
    annotations = [{"x": c, "y": top, "text": title, "showarrow": False, "yanchor": "bottom",
                    "font": {"size": 11, "color": TEXT_MUTED}} for c, title in enumerate(column_titles)]
    width = (round(TILE * UNIT_PX) + 2) / UNIT_PX
    images = [_image(png_uri(column_strip(col, 2 * top)[::-1]), c - width / 2, top, width, 2 * top, layer="above")
              for c, col in enumerate(tiles)]
    layout = base_layout("", height)
    layout.update({
        "xaxis": {"visible": False, "range": [-0.5, len(widths) - 0.5], "fixedrange": True},
        "yaxis": {"visible": False, "range": [-top, top + 0.45], "fixedrange": True, "scaleanchor": "x"},
        "images": images, "annotations": annotations, "margin": {"l": 5, "r": 5, "t": 5, "b": 5},
        "clickmode": "event+select", "dragmode": False, "hovermode": "closest", "uirevision": "keep",
        "showlegend": False,
    })
    return live_figure({"data": traces, "layout": layout})


def neuron_figure(uri: str, title: str, lang: str, *, height: int = 300, extent: float = EXTENT) -> go.Figure:
    """One neuron's output over the plane, large (the diagram's selected node)."""
    layout = base_layout(title, height)
    layout.update({
        "xaxis": axis("x₁", range=[-extent, extent], showgrid=False, zeroline=False, constrain="domain"),
        "yaxis": axis("x₂", range=[-extent, extent], showgrid=False, zeroline=False, scaleanchor="x",
                      constrain="domain"),
        "images": [_image(uri, -extent, extent, 2 * extent, 2 * extent)],
        "margin": {"l": 45, "r": 10, "t": 40, "b": 40}, "uirevision": "keep",
    })
    return live_figure({"data": [], "layout": layout})


def loss_figure(epochs: np.ndarray, train_loss: np.ndarray, test_loss: np.ndarray, lang: str,
                height: int = 250) -> go.Figure:
    """Training and test loss per epoch (at most 400 points drawn; redrawn live, so built as a LiveFigure)."""
    traces: list[dict[str, Any]] = []
    for values, name, colour in ((train_loss, "train", BLUE), (test_loss, "test", ORANGE)):
        x, y = downsample(np.asarray(epochs, np.float64), np.asarray(values, np.float64), 400)
        traces.append({"type": "scatter", "mode": "lines", "x": typed(x), "y": typed(y),
                       "name": translate(f"plane.fig_{name}_loss", lang), "line": {"color": colour, "width": 2}})
    layout = base_layout(translate("plane.fig_loss_title", lang), height)
    layout.update({"xaxis": axis(translate("plane.fig_epoch", lang)), "yaxis": axis(translate("plane.fig_loss", lang)),
                   "uirevision": "keep"})
    return live_figure({"data": traces, "layout": layout})


# ---------------------------------------------------------------- live pictures (while a run trains)
# Plotly redraws a figure whose layout images change by removing and re-adding them, so at 10 redraws a
# second the pictures flicker and are mostly blank. While a run trains, the page shows these plain
# pictures instead (an <img> keeps its picture until the next one is decoded); the Plotly figures above,
# with hover and the weights' values, come back when it pauses or ends. They are JPEGs: libjpeg encodes
# a 300-pixel picture in about a millisecond, several times faster than zlib (bench/plane_refresh.py).
LIVE_QUALITY = 88


def _hex(colour: str) -> tuple[int, int, int]:
    """``#rgb`` or ``#rrggbb`` -> (r, g, b)."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def jpeg_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=LIVE_QUALITY)
    return buf.getvalue()


def points_overlay(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                   regression: bool = False, show_test: bool = True, size: int = 320,
                   extent: float = EXTENT) -> Image.Image:
    """The points as an RGBA layer of ``size`` pixels (transparent elsewhere): drawn once per run and laid
    over each new picture of the output."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    scale = size / (2 * extent)
    lut = [tuple(int(v) for v in row) for row in LUT]
    classes = [_hex(c) for c in CATEGORY10]
    sets = [(x_train, y_train, (255, 255, 255))] + ([(x_test, y_test, _hex(TEST_OUTLINE))] if show_test else [])
    for xy, labels, rim in sets:
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        px = (xy[:, 0] + extent) * scale
        py = (extent - xy[:, 1]) * scale
        for x, y, label in zip(px.tolist(), py.tolist(), np.asarray(labels).tolist()):
            if regression:
                fill = lut[int(np.clip((label + 1) / 2 * (len(lut) - 1), 0, len(lut) - 1))]
            else:
                fill = classes[int(label) % len(classes)]
            draw.ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=(*fill, 255), outline=(*rim, 255), width=1)
    return layer


def plane_jpeg(heat_rgb: np.ndarray, overlay: Image.Image) -> bytes:
    """The output over the plane (``heat_rgb`` [R, R, 3], row 0 at the bottom) smoothed to the overlay's size,
    with the points (:func:`points_overlay`) on it."""
    image = Image.fromarray(np.ascontiguousarray(heat_rgb[::-1])).resize(overlay.size, Image.Resampling.BILINEAR).convert("RGBA")
    return jpeg_bytes(Image.alpha_composite(image, overlay).convert("RGB"))


LIVE_UNIT_PX = 56  # the live diagram's pixels per unit: shown at its own size, not stretched


def network_jpeg(tiles: Sequence[Sequence[np.ndarray]], weights: Sequence[np.ndarray], *,
                 selected: tuple[int, int] | None = None, unit: int = LIVE_UNIT_PX) -> bytes:
    """The network diagram of :func:`network_figure` as one picture: a column per layer, each node its
    picture, a line per weight (width |w|, half the Plotly figure's widths, colour its sign)."""
    widths = [len(col) for col in tiles]
    pos = node_positions(widths)
    top = max(widths) / 2
    xstep = unit * 1.6
    image = Image.new("RGB", (int(len(widths) * xstep), int(2 * top * unit)), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    tile_px = round(TILE * unit)
    half = tile_px / 2
    colours = {True: _hex(POSITIVE), False: _hex(NEGATIVE)}

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (x + 0.5) * xstep, (top - y) * unit

    for c, w in enumerate(weights):
        w = np.asarray(w, np.float64)
        line_widths = np.maximum(1, np.round(0.5 * np.asarray(LINE_WIDTHS)[np.digitize(np.abs(w), WIDTH_BINS)]))
        line_widths = line_widths.astype(int)
        for j in range(w.shape[0]):
            x1, y1 = to_px(*pos[c + 1][j])
            for i in range(w.shape[1]):
                x0, y0 = to_px(*pos[c][i])
                draw.line((x0 + half, y0, x1 - half, y1), fill=colours[bool(w[j, i] >= 0)], width=int(line_widths[j, i]))
    for c, col in enumerate(tiles):
        for i, tile in enumerate(col):
            x, y = to_px(*pos[c][i])
            left, upper = round(x - half), round(y - half)
            picture = Image.fromarray(np.ascontiguousarray(tile[::-1]))
            if picture.size != (tile_px, tile_px):
                picture = picture.resize((tile_px, tile_px), Image.Resampling.BILINEAR)
            frame = 3 if selected == (c, i) else 1
            draw.rectangle((left - frame, upper - frame, left + tile_px + frame - 1, upper + tile_px + frame - 1),
                           fill=_hex(OUTLINE) if frame > 1 else (160, 160, 160))
            image.paste(picture, (left, upper))
    return jpeg_bytes(image)


def picture_jpeg(rgb: np.ndarray, size: int = 240) -> bytes:
    """One picture over the plane ([R, R, 3], row 0 at the bottom) smoothed to ``size`` pixels."""
    return jpeg_bytes(Image.fromarray(np.ascontiguousarray(rgb[::-1])).resize((size, size), Image.Resampling.BILINEAR))


def data_uri(picture: bytes, mime: str = "image/jpeg") -> str:
    """A picture as a data URI: the page shows it as it is (no media file to fetch, which a redraw ten
    times a second may already have replaced by the time the browser asks for it)."""
    return f"data:{mime};base64," + base64.b64encode(picture).decode("ascii")


def loss_jpeg(epochs: np.ndarray, train_loss: np.ndarray, test_loss: np.ndarray, *, width: int = 460,
              height: int = 190) -> bytes:
    """The loss curves of :func:`loss_figure` as a plain picture (training blue, test orange; the numbers on
    the axes are the largest loss and the last epoch), for the live view."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 44, width - 10, 10, height - 22
    grid = _hex(GRID)
    for k in range(5):
        y = top + (bottom - top) * k / 4
        draw.line((left, y, right, y), fill=grid, width=1)
    x = np.asarray(epochs, np.float64)
    values = [np.asarray(v, np.float64) for v in (train_loss, test_loss)]
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if len(x) else np.zeros(0)
    high = float(finite.max()) if len(finite) else 1.0
    high = high if high > 0 else 1.0
    draw.text((4, top - 4), f"{high:.3g}", fill=_hex(TEXT_MUTED))
    draw.text((4, bottom - 8), "0", fill=_hex(TEXT_MUTED))
    if len(x) >= 2:
        draw.text((right - 40, bottom + 6), f"{int(x[-1]):,}", fill=_hex(TEXT_MUTED))
        for v, colour in zip(values, (BLUE, ORANGE)):
            xs, ys = downsample(x, np.nan_to_num(v, nan=high, posinf=high), 400)
            px = left + (xs - xs[0]) / max(xs[-1] - xs[0], 1) * (right - left)
            py = bottom - np.clip(ys / high, 0, 1) * (bottom - top)
            draw.line(list(zip(px.tolist(), py.tolist())), fill=_hex(colour), width=2)
    return jpeg_bytes(image)
