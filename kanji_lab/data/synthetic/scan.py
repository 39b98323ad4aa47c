"""Compiled scan effects of the synthetic hands: ink level, pencil grain, paper noise and grey
levels applied to a drawn canvas in one pass (numba, cached on disk after the first use).

:func:`kanji_lab.data.synthetic.render.finish` draws the random numbers; the arithmetic here is
float32 in the order of the numpy passes it replaced, so the images are the same bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ONE, _FULL, _HALF = np.float32(1.0), np.float32(255.0), np.float32(0.5)


@njit(cache=True)
def scan(
    drawn: np.ndarray,
    grain: np.ndarray,
    ink: np.float32,
    noise: np.ndarray,
    levels: int,
    threshold: np.float32,
) -> np.ndarray:
    """uint8 ink-bright ``drawn`` -> the scanned uint8 image: ink scaled by ``ink`` and thinned
    by ``grain`` (per pixel, or empty for none), paper ``noise`` added where there is no ink,
    then kept at ``levels`` grey levels (2: binarised at ``threshold``; 256: all)."""
    h, w = drawn.shape
    out = np.empty((h, w), np.uint8)
    step = np.float32(255.0 / (levels - 1))
    for y in range(h):
        for x in range(w):
            value = np.float32(drawn[y, x]) / _FULL
            if len(grain):
                value *= _ONE - grain[y, x]
            value *= ink
            level = value * _FULL + noise[y, x] * (_ONE - value)
            if levels == 2:
                out[y, x] = 255 if level > threshold else 0
                continue
            if levels < 256:
                level = np.rint(level / step) * step
            out[y, x] = np.uint8(min(max(level + _HALF, np.float32(0.0)), _FULL))
    return out
