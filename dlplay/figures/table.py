"""A chart's text alternative, built from the figure itself: its title and its traces' data as table columns.

Works for every figure of dlplay (lines, bars, scatters, heatmaps, images): line/bar/scatter traces give
their x and y values (thinned to at most MAX_ROWS rows), heatmaps a summary of their values, images a note.
"""
from __future__ import annotations

import base64
import re
from typing import Any

import numpy as np

MAX_ROWS = 200
_TAGS = re.compile(r"<[^>]+>")


def _plain(text: Any) -> str:
    return _TAGS.sub(" ", str(text or "")).replace("  ", " ").strip()


def _spec(fig: Any) -> dict:
    """The figure as plain data: a go.Figure, or a spec handed on as it is (the 2-D playground's LiveFigure)."""
    return fig.to_dict() if hasattr(fig, "to_dict") else dict(fig)


def _array(v: Any) -> Any:
    """A plotly typed array ({"dtype", "bdata", "shape"}) as numpy; anything else unchanged."""
    if isinstance(v, dict) and "bdata" in v and "dtype" in v:
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        shape = v.get("shape")
        if shape:
            arr = arr.reshape([int(n) for n in str(shape).split(",")] if isinstance(shape, str) else shape)
        return arr
    return v


def figure_title(fig: Any) -> str:
    """The figure's title as plain text ("" without one)."""
    title = _spec(fig).get("layout", {}).get("title")
    return _plain(title.get("text") if isinstance(title, dict) else title)


def _values(v: Any) -> list | None:
    v = _array(v)
    if v is None:
        return None
    arr = np.asarray(v, dtype=object).ravel()
    return arr.tolist() if arr.size else None


def _thin(values: list, keep: np.ndarray) -> list:
    return [values[i] for i in keep]


def _round(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v


WORDS = {"series": "series {n}", "shape": "rows × columns", "min": "min", "mean": "mean", "max": "max",
         "label": "label", "missing": "–"}  # the page passes them in its language


def _cell(v: Any, missing: str) -> Any:
    return missing if v is None or (isinstance(v, float) and v != v) else _round(v)


def figure_tables(fig: Any, words: dict[str, str] | None = None) -> list[tuple[str, dict[str, list]]]:
    """(trace name, {column: values}) for each trace with data; heatmaps as a short summary (min, mean, max).
    ``words``: the tables' own words (an unnamed trace, the summary's columns, a missing value), see WORDS."""
    w = {**WORDS, **(words or {})}
    tables: list[tuple[str, dict[str, list]]] = []
    for i, trace in enumerate(_spec(fig).get("data", [])):
        kind = trace.get("type", "scatter")
        name = _plain(trace.get("name")) or w["series"].format(n=i + 1)
        if kind in ("heatmap", "contour", "surface"):
            z_in = _array(trace.get("z"))
            z = np.asarray(z_in, dtype=float) if z_in is not None else np.zeros((0, 0))
            if z.size:
                tables.append((name, {w["shape"]: [f"{z.shape[0]} × {z.shape[-1]}"],
                                      w["min"]: [_round(float(np.nanmin(z)))], w["mean"]: [_round(float(np.nanmean(z)))],
                                      w["max"]: [_round(float(np.nanmax(z)))]}))
            continue
        if kind == "image":
            continue
        x, y = _values(trace.get("x")), _values(trace.get("y"))
        columns: dict[str, list] = {}
        n = max(len(x or []), len(y or []))
        if not n:
            continue
        keep = np.unique(np.linspace(0, n - 1, min(n, MAX_ROWS)).round().astype(int))
        for label, values in (("x", x), ("y", y)):
            if values is not None and len(values) == n:
                columns[label] = [_cell(v, w["missing"]) for v in _thin(values, keep)]
        text = _values(trace.get("text"))
        if text is not None and len(text) == n and "x" not in columns:
            columns[w["label"]] = [_cell(v, w["missing"]) for v in _thin(text, keep)]
        if columns:
            tables.append((name, columns))
    return tables
