"""Turn any character image file into the cache convention: 64x64 uint8, ink bright (255 = ink).

Grey levels and ink polarity are read here; the rest is the one shared normalisation
(:func:`kanji_lab.data.normalize.normalize_ink`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from kanji_lab.data.cache import IMAGE_SIZE
from kanji_lab.data.normalize import Settings, normalize_ink

_INVERT = {"auto", "true", "false"}


def normalize_image(
    img: Image.Image, invert: str = "auto", size: int = IMAGE_SIZE, settings: Settings | None = None
) -> np.ndarray:
    """Any PIL image -> ``(size, size)`` uint8, ink bright, normalised like every other source.

    ``invert``: ``"true"`` for dark ink on a light background, ``"false"`` for light ink on dark,
    ``"auto"`` to decide per image from its paper (:func:`has_dark_ink`). ``settings``: the
    normalisation a model was trained with (default: this version's).
    """
    return normalize_gray(grayscale(img), invert, size, settings)


def normalize_gray(
    gray: np.ndarray, invert: str = "auto", size: int = IMAGE_SIZE, settings: Settings | None = None
) -> np.ndarray:
    """:func:`normalize_image` of an image already in 8-bit luminance (:func:`grayscale`)."""
    invert = str(invert).lower()
    if invert not in _INVERT:
        raise ValueError(f"invert must be one of {sorted(_INVERT)}, got {invert!r}")
    dark_ink = has_dark_ink(gray) if invert == "auto" else invert == "true"
    return normalize_ink(255 - gray if dark_ink else gray, size, settings)


def grayscale(img: Image.Image) -> np.ndarray:
    """8-bit luminance; transparent areas become white paper."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    return np.asarray(img.convert("L"), dtype=np.uint8)


POLARITY_VERSION = 2  # bump when the polarity rule changes (caches of image folders keep it)


def has_dark_ink(gray: np.ndarray) -> bool:
    """True when the background is lighter than mid-grey: the median of the outer eighth of each
    side (at least one pixel). Not the outermost pixels alone: a frame or a ruled line along the
    edge of a cell cut from a form makes them ink, and the paper would be read as the ink."""
    height, width = gray.shape
    rows, cols = max(1, height // 8), max(1, width // 8)
    middle = gray[rows : max(rows, height - rows)]
    band = [gray[:rows], gray[height - rows :], middle[:, :cols], middle[:, width - cols :]]
    return float(np.median(np.concatenate([b.ravel() for b in band]))) >= 128
