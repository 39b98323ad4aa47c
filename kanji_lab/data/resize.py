"""Vectorised pad-to-square and resize of whole image arrays (``(N, H, W)``), for every source.

Resizing is area averaging: an integer factor is a box reduction by reshaping, any other factor a
pair of area-weight matrices applied to the whole batch at once. No per-image PIL calls.
"""

from __future__ import annotations

import numpy as np

from kanji_lab.data.cache import IMAGE_SIZE


def pad_to_square(images: np.ndarray, fill: int = 0) -> np.ndarray:
    """Pad ``(N, H, W)`` images with ``fill`` to ``(N, S, S)``, S = max(H, W), content centred.

    An odd difference puts the extra row or column at the bottom or right.
    """
    n, h, w = images.shape
    side = max(h, w)
    if h == w:
        return images
    out = np.full((n, side, side), fill, dtype=images.dtype)
    top, left = (side - h) // 2, (side - w) // 2
    out[:, top : top + h, left : left + w] = images
    return out


def area_weights(src: int, dst: int) -> np.ndarray:
    """``(dst, src)`` float32 matrix: output cell i averages the source span it covers."""
    edges = np.arange(dst + 1) * (src / dst)
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(src)[None, :]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def resize_square(images: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Resize square uint8 ``(N, S, S)`` images to ``(N, size, size)`` uint8 by area averaging."""
    n, side, width = images.shape
    if side != width:
        raise ValueError(f"resize_square needs square images, got {side}x{width}")
    if side == size:
        return np.ascontiguousarray(images, dtype=np.uint8)
    if side % size == 0:
        k = side // size
        blocks = images.reshape(n, size, k, size, k).sum(axis=(2, 4), dtype=np.uint32)
        return _round_to_uint8(blocks / (k * k))
    rows = area_weights(side, size)
    out = np.matmul(np.matmul(rows, images.astype(np.float32)), rows.T)
    return _round_to_uint8(out)


def to_square_size(images: np.ndarray, size: int = IMAGE_SIZE, fill: int = 0) -> np.ndarray:
    """Pad ``(N, H, W)`` uint8 images to square, then resize them to ``(N, size, size)``."""
    return resize_square(pad_to_square(images, fill), size)


def _round_to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
