"""Clutter removal: ink that belongs to the page, not to the character, taken out before framing.

A character cut from a form, a grid or a page carries fragments of its neighbours at the edges
(a stroke end, a dot, a short bar), the remains of a ruled or grid line, and specks. The crop of
:func:`kanji_lab.data.normalize.ink_boxes` would frame them with the character and shrink it, so
:func:`remove_clutter` erases them first. On the ink above ``threshold`` x 255, per image:

1. **Lines**: rows (columns) within the outer band whose ink runs from within ``clutter_line`` of
   the first to within ``clutter_line`` of the last column (row) and covers over ``clutter_run``
   of their length, in a band of rows at least half ink no thicker than ``clutter_line`` of the
   side, are a ruled line or the grid of the sheet the cell was cut from: they become paper. A
   character's own stroke does not reach both edges of an image cut with a margin around it.
2. **Pieces**: 8-connected components, each with its ink mass and bounding box.
3. **Suspects**: a piece is suspect when it is tiny (under ``clutter_speck`` of the image's ink
   mass), or when it lies wholly within the outer ``clutter_band`` of the image on one side and is
   small (under ``clutter_mass`` of the ink), or fairly small (under twice that) and cut by the
   image's edge (a neighbour's stroke crossing into the cell).
4. **Body**: every piece that is not suspect. Suspects are joined to the body, repeatedly, while
   the gap between a suspect's nearest pixel and the body's box is at most ``clutter_gap`` times
   the body box's longer side (twice that for a fairly small piece): a dakuten or a dot written
   close to its character stays, a fragment of a neighbour beyond the cell's white space goes.
   An image whose pieces are all suspect keeps all.
5. **Erase**: the dropped pieces and the pixel ring around them (their anti-aliased edge) become
   paper.

The gap is measured against the character, not the image, so a tightly cropped drawing (strokes
near every edge) keeps its detached parts. ``clutter_band = 0`` turns the step off (models
trained before it carry no such key and are read without it). The browser's ``normalize.js``
implements the same rules (``removeClutter``).

How (the rules above do not depend on it): a batch's ink is cut into runs, the horizontal
stretches of ink pixels within a row, and the runs of neighbouring rows that touch (8-connected)
are joined into pieces by :func:`scipy.sparse.csgraph.connected_components`. A character has a few
hundred runs against some 16,000 pixels, so the pieces' masses, boxes and distances come from the
runs; pixels are visited again only to erase, in the images that lose a piece.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph


class _Runs(NamedTuple):
    """The runs of ink of a batch ``(N, H, W)``, in raster order: image by image, row by row."""

    image: np.ndarray  # which image
    row: np.ndarray
    first: np.ndarray  # first and last column (inclusive)
    last: np.ndarray
    mass: np.ndarray  # the ink within the run
    piece: np.ndarray  # the 8-connected piece it belongs to (0 .. pieces - 1, batch-wide)
    pieces: int


def remove_clutter(ink: np.ndarray, settings: Mapping[str, float]) -> np.ndarray:
    """Float ink ``(N, H, W)`` in 0..255 -> the same with clutter set to paper (see module)."""
    mask = ink > 255.0 * float(settings["threshold"])
    return clean_ink(ink.copy(), mask, settings)[0]


def clean_ink(
    ink: np.ndarray, mask: np.ndarray, settings: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`remove_clutter` in place: ``ink`` and its ``mask`` (above ``threshold`` x 255)
    become those of the cleaned ink."""
    band = float(settings.get("clutter_band", 0.0))
    if band <= 0 or not len(ink):
        return ink, mask
    lines = _lines(mask, band, settings)
    if lines is not None:
        ink[lines] = 0.0
        mask &= ~lines
    runs = _ink_runs(mask, ink)
    if runs.pieces < 2:
        return ink, mask
    pieces = _pieces(runs)
    suspect, reach = _suspects(pieces, ink.shape[1:], settings)
    if not suspect.any():
        return ink, mask
    drop = _dropped(pieces, suspect, reach, runs)
    if not drop.any():
        return ink, mask
    return _erase(ink, mask, runs, drop[runs.piece])


def _lines(mask: np.ndarray, band: float, s: Mapping[str, float]) -> np.ndarray | None:
    """Pixels of ruled or grid lines in the outer band (see the module text); None if none."""
    found = None
    run, thin = float(s["clutter_run"]), float(s["clutter_line"])
    for axis in (1, 2):  # rows, then columns
        side, length = mask.shape[axis], mask.shape[3 - axis]
        edge = int(band * side)
        wide = np.uint16 if length < 1 << 16 else np.int64  # (a narrow sum is the faster)
        cover = mask.view(np.uint8).sum(axis=3 - axis, dtype=wide).astype(np.int64)  # (N, side)
        candidate = cover >= run * length
        candidate[:, edge : side - edge] = False
        if not candidate.any():
            continue
        # where each candidate line starts and ends (only they are looked at pixel by pixel)
        image, line = np.nonzero(candidate)
        pixels = mask[image, line] if axis == 1 else mask[image, :, line]
        first = np.argmax(pixels, axis=1)
        last = length - 1 - np.argmax(pixels[:, ::-1], axis=1)
        reach = thin * length  # how near each end the line must start
        full = np.zeros_like(candidate)
        full[image, line] = (first <= reach) & (last >= length - 1 - reach)
        # the line with its edges (rows at least half ink) is thin: not a character's stroke
        which = np.unique(image)
        full[which] &= _thin_runs(cover[which] >= 0.5 * length, thin * side)
        hit = np.flatnonzero(full.any(axis=1))
        if not len(hit):
            continue
        found = np.zeros(mask.shape, bool) if found is None else found
        if axis == 1:
            found[hit] |= full[hit, :, None]
        else:
            found[hit] |= full[hit, None, :]
    return found


def _thin_runs(flags: np.ndarray, longest: float) -> np.ndarray:
    """Per row of ``flags`` (N, L): the flags that lie in runs of at most ``longest`` in a row."""
    padded = np.pad(flags, ((0, 0), (0, 1)))  # a gap after each row: runs never join rows
    flat = padded.ravel()
    starts = flat & ~np.concatenate([[False], flat[:-1]])
    run = np.cumsum(starts) * flat
    lengths = np.bincount(run)
    thin = flat & (lengths[run] <= longest)
    return thin.reshape(padded.shape)[:, :-1]


def _ink_runs(mask: np.ndarray, ink: np.ndarray) -> _Runs:
    """The runs of ``mask`` (N, H, W) with their ``ink`` and their 8-connected pieces."""
    n, h, w = mask.shape
    # a blank column before each row and a blank row after each image: runs end within their
    # row, and no piece reaches from one image into the next
    pitch = w + 1
    padded = np.zeros((n, h + 1, pitch), bool)
    padded[:, :h, 1:] = mask
    flat = padded.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    begin, end = change[0::2], change[1::2]  # first pixel, and the one after the last
    image, within = np.divmod(begin, (h + 1) * pitch)
    row, first = np.divmod(within, pitch)
    first -= 1
    last = first + (end - begin) - 1
    # run b touches run a of the row above when a.first <= b.last + 1 and b.first <= a.last + 1:
    # in the padded layout a.begin + pitch <= b.end and b.begin <= a.end + pitch. Both lists are
    # sorted, so the runs above that b touches are a contiguous range of indices.
    low = np.searchsorted(end + pitch, begin, side="left")
    high = np.searchsorted(begin + pitch, end, side="right")
    touching = np.maximum(high - low, 0)
    indptr = np.concatenate([[0], np.cumsum(touching)])
    above = np.arange(indptr[-1]) + np.repeat(low - indptr[:-1], touching)
    # (float64 weights: the type csgraph works in, so that it takes the graph without a copy)
    graph = sparse.csr_array((np.ones(len(above)), above, indptr), shape=(len(begin), len(begin)))
    pieces, piece = csgraph.connected_components(graph, directed=True, connection="weak")
    # the ink of each run: sums between the runs' ends over the image's own layout
    start = (image * h + row) * w + first
    bounds = np.stack([start, start + (last - first) + 1], axis=1).ravel()
    values = ink.reshape(-1)
    if len(bounds) and bounds[-1] == len(values):
        bounds = bounds[:-1]  # the last run ends at the very end of the batch
    mass = np.add.reduceat(values, bounds)[0::2] if len(bounds) else np.zeros(0, ink.dtype)
    return _Runs(image, row, first, last, mass.astype(np.float64), piece, int(pieces))


def _pieces(runs: _Runs) -> dict[str, np.ndarray]:
    """Per piece: image index, ink mass and inclusive box (top, bottom, left, right)."""
    count, piece = runs.pieces, runs.piece
    image = np.empty(count, np.int64)
    image[piece] = runs.image
    mass = np.bincount(piece, weights=runs.mass, minlength=count)
    box = np.empty((4, count), np.int64)
    box[[0, 2]] = np.iinfo(np.int64).max
    box[[1, 3]] = -1
    np.minimum.at(box[0], piece, runs.row)
    np.maximum.at(box[1], piece, runs.row)
    np.minimum.at(box[2], piece, runs.first)
    np.maximum.at(box[3], piece, runs.last)
    return {"image": image, "mass": mass, "box": box.T}


def _suspects(
    pieces: dict[str, np.ndarray], shape: tuple[int, int], s: Mapping[str, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per component: whether it is suspect, and how far from the body (a fraction of the body
    box's longer side) it may lie and still belong."""
    height, width = shape
    image, mass, box = pieces["image"], pieces["mass"], pieces["box"]
    top, bottom, left, right = box.T
    share = mass / np.bincount(image, weights=mass)[image]
    band_h, band_w = float(s["clutter_band"]) * height, float(s["clutter_band"]) * width
    one_side = (
        (bottom + 1 <= band_h) | (top >= height - band_h)
        | (right + 1 <= band_w) | (left >= width - band_w)
    )  # fmt: skip
    small = share < float(s["clutter_mass"])
    touches = (top == 0) | (left == 0) | (bottom == height - 1) | (right == width - 1)
    large = ~small & (share < 2 * float(s["clutter_mass"])) & touches
    suspect = (one_side & (small | large)) | (share < float(s["clutter_speck"]))
    # twice as far for a large one
    reach = np.where(one_side & large, 2.0, 1.0) * float(s["clutter_gap"])
    # an image whose every piece is suspect keeps them all
    has_body = np.bincount(image, weights=~suspect) > 0
    return suspect & has_body[image], reach


def _dropped(
    pieces: dict[str, np.ndarray], suspect: np.ndarray, reach: np.ndarray, runs: _Runs
) -> np.ndarray:
    """Boolean per piece: the suspects that stay out of reach of the body (module text)."""
    image, box = pieces["image"], pieces["box"]
    n_images = int(image.max()) + 1
    # the suspects' runs, grouped by suspect
    mine = np.flatnonzero(suspect[runs.piece])
    mine = mine[np.argsort(runs.piece[mine], kind="stable")]
    rows, first, last = runs.row[mine], runs.first[mine], runs.last[mine]
    owners = np.flatnonzero(suspect)
    starts = np.searchsorted(runs.piece[mine], owners)
    kept = ~suspect
    while True:
        body = _union_boxes(box, image, kept, n_images)
        b = body[runs.image[mine]]
        # each suspect's nearest pixel to the body's box (Chebyshev distance; 0 inside it): per
        # run, the row's distance and that of the run's column nearest to the box
        distance = np.maximum.reduce(
            [b[:, 0] - rows, rows - b[:, 1], b[:, 2] - last, first - b[:, 3], np.zeros_like(rows)]
        )
        gap = np.minimum.reduceat(distance, starts) - 1
        b = body[image[owners]]
        side = np.maximum(b[:, 1] - b[:, 0], b[:, 3] - b[:, 2]) + 1
        joins = ~kept[owners] & (gap <= reach[owners] * side)
        if not joins.any():
            return ~kept
        kept[owners[joins]] = True


def _union_boxes(box: np.ndarray, image: np.ndarray, kept: np.ndarray, n: int) -> np.ndarray:
    """Per image, the box around its kept components (inclusive top, bottom, left, right)."""
    big = np.iinfo(np.int64).max
    out = np.stack([np.full(n, big), np.full(n, -1), np.full(n, big), np.full(n, -1)], 1)
    keep = np.flatnonzero(kept)
    np.minimum.at(out[:, 0], image[keep], box[keep, 0])
    np.maximum.at(out[:, 1], image[keep], box[keep, 1])
    np.minimum.at(out[:, 2], image[keep], box[keep, 2])
    np.maximum.at(out[:, 3], image[keep], box[keep, 3])
    return out


def _erase(
    ink: np.ndarray, mask: np.ndarray, runs: _Runs, gone: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Set the runs ``gone`` and the pixel ring around them (their anti-aliased edge,
    8-connected, but not other pieces' ink) to paper in ``ink`` and ``mask``."""
    n, h, w = ink.shape
    hit = np.unique(runs.image[gone])  # the images that lose a piece
    slot = np.zeros(n, np.int64)
    slot[hit] = np.arange(len(hit))
    length = runs.last[gone] - runs.first[gone] + 1
    start = (slot[runs.image[gone]] * h + runs.row[gone]) * w + runs.first[gone]
    offsets = np.cumsum(length) - length
    pixels = np.arange(length.sum()) + np.repeat(start - offsets, length)
    dropped = np.zeros((len(hit), h, w), bool)
    dropped.reshape(-1)[pixels] = True
    kept = mask[hit] & ~dropped
    ring = _grow(dropped) & ~kept
    part = ink[hit]
    part[ring] = 0.0
    ink[hit] = part
    mask[hit] = kept
    return ink, mask


def _grow(mask: np.ndarray) -> np.ndarray:
    """3x3 dilation of boolean ``(N, H, W)`` images (nothing outside)."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    rows = padded[:, :-2] | padded[:, 1:-1] | padded[:, 2:]
    return rows[:, :, :-2] | rows[:, :, 1:-1] | rows[:, :, 2:]
