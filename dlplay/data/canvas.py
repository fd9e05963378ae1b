"""Drawn or uploaded image -> a 28x28 digit prepared the way MNIST digits were.

MNIST recipe (LeCun et al.): white ink on black, cropped to the ink, scaled so the longer side is
20 px (aspect kept, anti-aliased), then placed in a 28x28 frame with the centre of mass at (14, 14)
(pixel-index coordinates, as measured on the real MNIST test set).
"""
from __future__ import annotations

import io
import re
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from dlplay.errors import UserError

FRAME = 28  # output side, px
BOX = 20  # longer side of the digit inside the frame, px
INK_THRESHOLD = 0.2  # ink level (0..1, after background removal) that counts as a drawn pixel
MIN_INK_PIXELS = 4  # fewer drawn pixels than this: empty
MIN_INK_FRACTION = 0.001  # drawn pixels below 0.1 % of the image: empty
MIN_EXTENT = 0.1  # ink's bounding box, longer side, below 10 % of the image's longer side: a dot
MAX_UPLOAD_BYTES = 5_000_000
MAX_UPLOAD_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class Preprocessed:
    """Result of ``preprocess``; ``image28`` is None when the input is (nearly) empty.

    ``bbox`` is the ink's box in input pixels as (top, left, bottom, right), bottom/right exclusive.
    ``ink_fraction`` is the share of input pixels counted as ink; ``inverted`` means the input was
    dark ink on a light background.
    """

    image28: np.ndarray | None
    ink_fraction: float
    bbox: tuple[int, int, int, int] | None
    inverted: bool
    is_empty: bool


def _unit(array: np.ndarray) -> np.ndarray:
    """Any numeric array -> float32 in [0, 1]."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype.kind in "ui":
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    out = np.nan_to_num(array.astype(np.float32))
    return np.clip(out / 255.0 if out.size and out.max() > 1.0 else out, 0.0, 1.0)


def _gray(image: np.ndarray | Image.Image) -> np.ndarray:
    """Luminance in [0, 1]; RGBA is composited over a background that contrasts with the ink."""
    if isinstance(image, Image.Image):
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = np.asarray(image.convert("RGBA" if has_alpha else "L"))
    array = _unit(np.asarray(image))
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return array
    if array.ndim != 3 or array.shape[2] not in (2, 3, 4):
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {array.shape}")
    if array.shape[2] == 2:  # grey + alpha
        lum, alpha = array[:, :, 0], array[:, :, 1]
    else:
        lum = array[:, :, :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        alpha = array[:, :, 3] if array.shape[2] == 4 else np.ones_like(lum)
    # Transparent pixels are background: light ink goes over black, dark ink over white.
    weight = float(alpha.sum())
    background = 0.0 if weight == 0 or float((alpha * lum).sum()) / weight >= 0.5 else 1.0
    return alpha * lum + (1.0 - alpha) * background


def preprocess(image: np.ndarray | Image.Image) -> Preprocessed:
    """Turn a canvas RGBA array, a grey/RGB array or a PIL image into an MNIST-style uint8 28x28."""
    gray = _gray(image)
    if gray.size == 0:
        return Preprocessed(None, 0.0, None, False, True)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    level = float(np.median(border))
    inverted = level > 0.5  # the border (background) is light: dark ink on a light page
    if inverted:
        gray, level = 1.0 - gray, 1.0 - level
    ink = np.clip((gray - level) / max(1.0 - level, 1e-6), 0.0, 1.0)
    mask = ink > INK_THRESHOLD
    count = int(mask.sum())
    fraction = count / mask.size
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    bbox = None
    if count:
        bbox = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    extent = 0 if bbox is None else max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    too_small = extent < MIN_EXTENT * max(gray.shape)
    if count < MIN_INK_PIXELS or fraction < MIN_INK_FRACTION or too_small or bbox is None:  # (no ink: no bbox)
        return Preprocessed(None, fraction, bbox, inverted, True)
    top, left, bottom, right = bbox
    crop = ink[top:bottom, left:right]
    crop = crop / crop.max()
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Shrinking: area averaging (grey edges = ink coverage, as in MNIST); enlarging: Lanczos.
    resample = Image.Resampling.BOX if scale <= 1 else Image.Resampling.LANCZOS
    small = np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, resample))
    small = np.clip(small, 0.0, 1.0)
    total = float(small.sum())
    ys, xs = np.indices(small.shape)
    cy, cx = float((ys * small).sum()) / total, float((xs * small).sum()) / total
    # Shift so the centre of mass lands on (14, 14), clipped so no ink leaves the frame.
    dy = int(np.clip(round(FRAME / 2 - cy), 0, FRAME - small.shape[0]))
    dx = int(np.clip(round(FRAME / 2 - cx), 0, FRAME - small.shape[1]))
    frame = np.zeros((FRAME, FRAME), dtype=np.float32)
    frame[dy : dy + small.shape[0], dx : dx + small.shape[1]] = small
    image28 = np.round(frame * 255.0).astype(np.uint8)
    return Preprocessed(image28, fraction, bbox, inverted, False)


def load_upload(
    data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS
) -> np.ndarray:
    """Decode an uploaded image (PNG, JPEG, ...) safely into an RGBA uint8 array (H, W, 4).

    Rejects files over ``max_bytes`` and images over ``max_pixels`` (checked from the header,
    before decoding), applies the EXIF orientation, and raises UserError for anything unreadable.
    """
    if len(data) > max_bytes:
        size_mb, limit_mb = f"{len(data) / 1e6:.1f}", f"{max_bytes / 1e6:.1f}"
        raise UserError("canvas.too_large", size_mb=size_mb, limit_mb=limit_mb)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    pixels, limit = f"{width * height:,}", f"{max_pixels:,}"
                    raise UserError("canvas.too_many_pixels", pixels=pixels, limit=limit)
                image.load()
                upright = ImageOps.exif_transpose(image)
                return np.asarray(upright.convert("RGBA")).copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's message names the size
        pixels = f"{int(found.group(1)):,}" if found else "?"
        raise UserError("canvas.too_many_pixels", pixels=pixels, limit=f"{max_pixels:,}") from None
    except UserError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise UserError("canvas.not_an_image") from exc
