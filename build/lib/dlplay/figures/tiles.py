"""One tiling helper: small images (feature maps, first-layer weights, single units) laid out in a grid.

:func:`tile` places ``n`` images of ``h x w`` in ``rows x cols`` cells, row by row, with ``gap`` NaN
pixels between them (NaN is drawn blank), and says which image each pixel belongs to. The two
layouts the pages use: :func:`square_grid` (near-square, wider than tall) and :func:`row_grid`
(one row when the images fit, else rows of ``max_cols``).
"""
from __future__ import annotations

import math

import numpy as np


def square_grid(n: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid holding ``n`` tiles (wider than tall)."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def row_grid(n: int, max_cols: int = 8) -> tuple[int, int]:
    """Rows and columns for ``n`` tiles: one row when they fit, else rows of ``max_cols``."""
    if n <= 0:
        return 0, 0
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def tile(images: np.ndarray, rows: int, cols: int, gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """[n, h, w] images -> (one float64 2-D array of the tiles with NaN gaps, the tile number of each
    pixel with NaN in the gaps and empty cells)."""
    n, h, w = images.shape
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    index = np.full(out.shape, np.nan)
    for k in range(n):
        r, c = divmod(k, cols)
        cell = (slice(r * (h + gap), r * (h + gap) + h), slice(c * (w + gap), c * (w + gap) + w))
        out[cell] = images[k]
        index[cell] = k
    return out, index
