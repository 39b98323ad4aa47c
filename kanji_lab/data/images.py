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
    ``"auto"`` to decide per image from its border (the background). ``settings``: the
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


def has_dark_ink(gray: np.ndarray) -> bool:
    """True when the background (the image border) is lighter than mid-grey."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(np.median(border)) >= 128
