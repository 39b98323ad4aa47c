"""Compiled scan effects of the synthetic hands (numba, cached on disk after the first use):
the scanner's blur, then ink level, pencil grain, paper noise and grey levels in one pass.

:func:`kanji_lab.data.synthetic.render.finish` draws the random numbers. :func:`blur` is
Pillow's Gaussian blur (``ImageFilter.GaussianBlur``: three box blurs a way, in 24-bit fixed
point) computed the same way, and :func:`scan`'s arithmetic is float32 in the order of the numpy
passes it replaced, so the images are the same bit for bit as with Pillow and numpy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ONE, _FULL, _HALF = np.float32(1.0), np.float32(255.0), np.float32(0.5)
PASSES = 3  # box blurs per direction, as Pillow's Gaussian blur


def blur(image: np.ndarray, radius: float) -> np.ndarray:
    """A uint8 image blurred as Pillow's ``GaussianBlur(radius)`` blurs it."""
    box = _box_radius(radius)
    whole = int(box)
    weight = int(np.float32(1 << 24) / (box * np.float32(2) + np.float32(1)))
    far = ((1 << 24) - (2 * whole + 1) * weight) // 2
    weight, far = np.uint32(weight), np.uint32(far)  # unsigned throughout, as in Pillow
    across = _box_blur(np.ascontiguousarray(image.T), whole, weight, far)  # along rows first
    return _box_blur(np.ascontiguousarray(across.T), whole, weight, far)


def _box_radius(radius: float) -> np.float32:
    """The box radius of each of :data:`PASSES` passes for a Gaussian of ``radius``, in the
    single precision Pillow computes it in (Gwosdek et al. 2011, extended box)."""
    sigma2 = np.float32(radius) * np.float32(radius) / np.float32(PASSES)
    length = np.float32(np.sqrt(12.0 * float(sigma2) + 1.0))
    whole = np.float32(np.floor((float(length) - 1.0) / 2.0))
    part = (2 * whole + 1) * (whole * (whole + 1) - 3 * sigma2)
    part /= 6 * (sigma2 - (whole + 1) * (whole + 1))
    return whole + part


@njit(cache=True)
def _box_blur(lines: np.ndarray, radius: int, weight: int, far: int) -> np.ndarray:
    """:data:`PASSES` extended box blurs of uint8 ``lines`` along their first axis (all lines
    side by side, which vectorises): a value becomes the sum of the ``2 radius + 1`` around it
    times ``weight`` plus the two next ones out times ``far``, in units of 2**-24, rounded;
    beyond the ends the end value repeats. (Every sum fits 32 bits, as in Pillow.)"""
    n, m = lines.shape
    pad = radius + 2
    src = np.empty((n + 2 * pad, m), np.uint32)
    dst = np.empty_like(src)
    acc = np.empty(m, np.uint32)
    for i in range(n):  # (plain loops throughout: array expressions compile for seconds)
        for j in range(m):
            src[pad + i, j] = lines[i, j]
    for _ in range(PASSES):
        for j in range(m):
            for i in range(pad):
                src[i, j] = src[pad, j]
                src[pad + n + i, j] = src[pad + n - 1, j]
            acc[j] = 0
            for i in range(pad - 1 - radius, pad + radius):
                acc[j] += src[i, j]
        for x in range(pad, pad + n):
            ahead, behind = src[x + radius], src[x - radius - 1]
            beyond, out = src[x + radius + 1], dst[x]
            for j in range(m):
                acc[j] += ahead[j] - behind[j]
                out[j] = (acc[j] * weight + (behind[j] + beyond[j]) * far + (1 << 23)) >> 24
        src, dst = dst, src
    out = np.empty((n, m), np.uint8)
    for i in range(n):
        for j in range(m):
            out[i, j] = src[pad + i, j]
    return out


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
