"""Turn any character image into the cache convention: 64x64 uint8, ink bright (255 = ink)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from kanji_lab.data.cache import IMAGE_SIZE
from kanji_lab.data.resize import to_square_size

INK_THRESHOLD = 0.25  # fraction of the ink range above which a pixel counts as ink when cropping
MARGIN = 0.08  # blank border kept around the cropped ink, as a fraction of its longer side
_INVERT = {"auto", "true", "false"}


def normalize_image(img: Image.Image, invert: str = "auto", size: int = IMAGE_SIZE) -> np.ndarray:
    """Any PIL image -> ``(size, size)`` uint8, ink bright, cropped to the ink, padded, resized.

    ``invert``: ``"true"`` for dark ink on a light background, ``"false"`` for light ink on dark,
    ``"auto"`` to decide per image from its border (the background).
    """
    invert = str(invert).lower()
    if invert not in _INVERT:
        raise ValueError(f"invert must be one of {sorted(_INVERT)}, got {invert!r}")
    gray = grayscale(img)
    dark_ink = has_dark_ink(gray) if invert == "auto" else invert == "true"
    ink = 255 - gray if dark_ink else gray
    ink = ink - ink.min() if ink.max() > ink.min() else np.zeros_like(ink)
    return to_square_size(with_margin(crop_to_ink(ink))[None], size)[0]


def grayscale(img: Image.Image) -> np.ndarray:
    """8-bit luminance; transparent areas become white paper."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def has_dark_ink(gray: np.ndarray) -> bool:
    """True when the background (the image border) is lighter than mid-grey."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(np.median(border)) >= 128


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The bounding box of the pixels above :data:`INK_THRESHOLD` of the peak (all if none)."""
    peak = int(ink.max())
    if peak == 0:
        return ink
    rows, cols = np.nonzero(ink > peak * INK_THRESHOLD)
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def with_margin(ink: np.ndarray) -> np.ndarray:
    """Add a blank border of :data:`MARGIN` times the longer side."""
    pad = int(round(max(ink.shape) * MARGIN))
    return np.pad(ink, pad).astype(np.uint8)
