"""Clutter removal: ink that belongs to the page, not to the character, taken out before framing.

A character cut from a form, a grid or a page carries fragments of its neighbours at the edges
(a stroke end, a dot, a short bar), the remains of a ruled or grid line, and specks. The crop
of :func:`kanji_lab.data.normalize.normalize_ink` (its step 3) would frame them with the
character and shrink it, so :func:`remove_clutter` erases them first. On the ink above
``threshold`` x 255, per image:

1. **Lines**: rows (columns) within the outer band whose ink runs from within ``clutter_line`` of
   the first to within ``clutter_line`` of the last column (row) and covers over ``clutter_run``
   of their length, in a band of rows at least half ink no thicker than ``clutter_line`` of the
   side, are a ruled line or the grid of the sheet the cell was cut from: they become paper. A
   character's own stroke does not reach both edges of an image cut with a margin around it.
2. **Pieces**: 8-connected components, each with its ink mass and bounding box.
3. **Suspects**: a piece is suspect when it is tiny (under ``clutter_speck`` of the image's ink
   mass), or when it lies wholly within the outer ``clutter_band`` of the image on one side and is
   small (under ``clutter_mass`` of the ink), or fairly small (under twice that) and cut by the
   image's edge (a neighbour's stroke crossing into the cell). A **bar** is suspect too: a piece
   under half of the ink, wholly within the band of one side and at least ``clutter_bar`` times
   longer along that side than across it (a neighbour's long stroke beside the cell), when the
   rest of the ink, with any bars along the opposite side, leaves that opposite side's band
   free: the character sits inside its cell. A drawing cut tightly, whose own outer strokes lie
   in the bands of both sides (川, 三, 亘), keeps them; one drawn against one edge of a large
   image with a detached stroke there (は on the left of a pad) loses that stroke, the price of
   telling it from a neighbour. ``clutter_bar = 0`` (models before version 4): no bars.
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

How (the rules above do not depend on it): each image is cut into runs, the horizontal stretches
of ink pixels within a row, and the runs of neighbouring rows that touch (8-connected) are joined
into pieces by union-find. A character has a few hundred runs against some 16,000 pixels, so the
pieces' masses, boxes and distances come from the runs; pixels are visited again only to erase.
The steps are compiled (numba), one image at a time (their speed: ``experiments/bench_prepare.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from numba import njit

LITTLE_ENDIAN = sys.byteorder == "little"  # (the word-wise run search reads bytes so)


class Rules(NamedTuple):
    """The clutter settings (``clutter_*`` of the normalisation's settings); band 0: off."""

    band: float
    mass: float
    speck: float
    gap: float
    line: float
    run: float
    bar: float

    @classmethod
    def of(cls, settings: Mapping[str, float]) -> Rules:
        band = float(settings.get("clutter_band", 0.0))
        if band <= 0:  # models trained before the step carry no clutter keys
            return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        bar = float(settings.get("clutter_bar", 0.0))  # (models before version 4: none)
        return cls(band, *(float(settings[f"clutter_{k}"]) for k in cls._fields[1:-1]), bar)


def remove_clutter(ink: np.ndarray, settings: Mapping[str, float]) -> np.ndarray:
    """Float ink ``(N, H, W)`` in 0..255 -> a copy with clutter set to paper (see module)."""
    out = np.array(ink, np.float32)
    limit = np.float32(255.0 * float(settings["threshold"]))
    _clean_batch(out, limit, Rules.of(settings), run_scratch(*out.shape[1:]))
    return out


def run_scratch(height: int, width: int) -> np.ndarray:
    """Working memory for :func:`clean_ink` on images of ``height`` x ``width``: room for the
    runs of a character (a few per row); :func:`clean_ink` enlarges it when an image has more."""
    return np.empty((5, 16 * height + width), np.int64)


@njit(cache=True)
def _clean_batch(ink, limit, rules, scratch):  # pragma: no cover - compiled
    mask = np.empty(ink.shape[1:], np.bool_)
    for i in range(len(ink)):
        mask[:] = ink[i] > limit
        scratch = clean_ink(ink[i], mask, rules, scratch)


@njit(cache=True)
def clean_ink(ink, mask, rules, scratch):  # pragma: no cover - compiled
    """:func:`remove_clutter` of one image in place: float32 ``ink`` (H, W) and its boolean
    ``mask`` (above the threshold) become those of the cleaned ink. ``scratch``: working
    memory from :func:`run_scratch`, reused from image to image; returned, enlarged when an
    image needed more."""
    if rules.band <= 0:
        return scratch
    height, width = ink.shape
    rows, cols = _line_flags(mask, rules)
    if rows.any() or cols.any():
        for y in range(height):
            for x in range(width):
                if rows[y] or cols[x]:
                    ink[y, x] = 0.0
                    mask[y, x] = False
    run_row, run_first, run_last, piece, count, scratch = _runs(mask, scratch)
    if count < 2:
        return scratch
    mass, box = _pieces(ink, run_row, run_first, run_last, piece, count)
    drop = _dropped(mass, box, run_row, run_first, run_last, piece, height, width, rules)
    if drop.any():
        _erase(ink, mask, run_row, run_first, run_last, piece, drop)
    return scratch


@njit(cache=True)
def _line_flags(mask, rules):  # pragma: no cover - compiled
    """Per row and per column: whether it is a ruled or grid line (module text)."""
    height, width = mask.shape
    rows = np.zeros(height, np.int64)
    cols = np.zeros(width, np.int64)
    for y in range(height):
        count = 0
        for x in range(width):
            count += mask[y, x]
            cols[x] += mask[y, x]
        rows[y] = count
    return _lines(mask, rows, rules, True), _lines(mask, cols, rules, False)


@njit(cache=True)
def _lines(mask, cover, rules, across):  # pragma: no cover - compiled
    """:func:`_line_flags` for the rows (``across``) or the columns, given their ink counts."""
    side = len(cover)
    length = mask.shape[1] if across else mask.shape[0]
    edge = int(rules.band * side)
    reach = rules.line * length  # how near each end the line must start
    full = np.zeros(side, np.bool_)
    for a in range(side):
        if (edge <= a < side - edge) or cover[a] < rules.run * length:
            continue
        first, last = length, -1
        for b in range(length):
            if mask[a, b] if across else mask[b, a]:
                first, last = min(first, b), b
        full[a] = first <= reach and last >= length - 1 - reach
    # the line with its edges (rows at least half ink) is thin: not a character's stroke
    a = 0
    while a < side:
        if cover[a] < 0.5 * length:
            a += 1
            continue
        stop = a
        while stop < side and cover[stop] >= 0.5 * length:
            stop += 1
        if stop - a > rules.line * side:
            for b in range(a, stop):
                full[b] = False
        a = stop
    return full


@njit(cache=True)
def _root(parent, a):  # pragma: no cover - compiled
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True)
def _runs(mask, scratch):  # pragma: no cover - compiled
    """The runs of ``mask`` in raster order (row, first and last column) and each run's
    8-connected piece (0 .. count - 1, in raster order of the pieces' first runs), held in the
    rows of ``scratch`` (:func:`run_scratch`; a larger one when the runs outgrow it, returned
    last)."""
    height, width = mask.shape
    row, first, last, parent = scratch[0], scratch[1], scratch[2], scratch[3]
    edges = np.empty(width + 2, np.int64)
    flat = mask.view(np.uint8).reshape(height * width)
    per_row = width // 8 if width % 8 == 0 and LITTLE_ENDIAN else 0
    words = flat.view(np.uint64) if per_row else np.empty(0, np.uint64)
    n = 0
    above = 0  # the previous row's runs start here
    for y in range(height):
        start = n
        k = _row_edges(flat, y * width, width, words[y * per_row : (y + 1) * per_row], edges)
        if n + k // 2 > scratch.shape[1]:  # more runs than room: a larger scratch
            larger = np.empty((5, 2 * (n + k // 2)), np.int64)
            for q in range(5):  # (loops: a 2-D slice copy takes numba seconds to compile)
                for r in range(n):
                    larger[q, r] = scratch[q, r]
            scratch = larger
            row, first, last, parent = scratch[0], scratch[1], scratch[2], scratch[3]
        for j in range(0, k, 2):
            begin, end = edges[j], edges[j + 1] - 1
            row[n], first[n], last[n], parent[n] = y, begin, end, n
            for a in range(above, start):  # runs above that touch this one
                if first[a] <= end + 1 and begin <= last[a] + 1:
                    top, me = _root(parent, a), _root(parent, n)
                    if top != me:
                        parent[max(top, me)] = min(top, me)
            n += 1
        above = start
    piece = scratch[4, :n]
    count = 0
    for r in range(n):
        top = _root(parent, r)
        if top == r:
            piece[r] = count
            count += 1
        else:
            piece[r] = piece[top]
    return scratch[0, :n], scratch[1, :n], scratch[2, :n], piece, count, scratch


@njit(cache=True)
def _row_edges(flat, start, width, words, edges):  # pragma: no cover - compiled
    """Where the row ``flat[start : start + width]`` (0 / 1 bytes) changes between paper and
    ink, into ``edges``; their count (the row's end closes an open run). ``words``: the row as
    little-endian uint64 words when its width is a multiple of 8 (else empty): a word that
    only continues the current run or gap (most of a row is paper) is passed over, and in the
    others each change is found from the word's bits, not pixel by pixel."""
    inside, k = np.uint64(0), 0
    for w in range(len(words)):
        word = words[w]
        changes = word ^ ((word << np.uint64(8)) | inside)  # bit 8b set: byte b differs
        inside = word >> np.uint64(56)
        while changes:
            lowest = changes & (~changes + np.uint64(1))
            # the byte index of the lowest set bit (bits sit at 8b): de Bruijn-like multiply
            edges[k] = 8 * w + int((lowest * np.uint64(0x0001020304050607)) >> np.uint64(56))
            k += 1
            changes ^= lowest
    for x in range(8 * len(words), width):  # (no words: pixel by pixel, without a branch)
        edges[k] = x
        level = np.uint64(flat[start + x])
        k += int(level ^ inside)
        inside = level
    edges[k] = width
    return k + int(inside)


@njit(cache=True)
def _pieces(ink, row, first, last, piece, count):  # pragma: no cover - compiled
    """Per piece: ink mass and inclusive box (top, bottom, left, right)."""
    mass = np.zeros(count, np.float64)
    box = np.empty((count, 4), np.int64)
    box[:, 0] = box[:, 2] = np.iinfo(np.int64).max
    box[:, 1] = box[:, 3] = -1
    for r in range(len(row)):
        p, y, inside = piece[r], row[r], 0.0
        for x in range(first[r], last[r] + 1):
            inside += ink[y, x]
        mass[p] += inside
        box[p, 0] = min(box[p, 0], y)
        box[p, 1] = max(box[p, 1], y)
        box[p, 2] = min(box[p, 2], first[r])
        box[p, 3] = max(box[p, 3], last[r])
    return mass, box


@njit(cache=True)
def _dropped(mass, box, row, first, last, piece, height, width, rules):  # pragma: no cover
    """Per piece: the suspects that stay out of reach of the body (module text)."""
    count = len(mass)
    total = mass.sum()
    band_h, band_w = rules.band * height, rules.band * width
    kept = np.empty(count, np.bool_)
    reach = np.empty(count, np.float64)
    edge = np.zeros(count, np.int64)
    for p in range(count):
        top, bottom, left, right = box[p, 0], box[p, 1], box[p, 2], box[p, 3]
        share = mass[p] / total
        one_side = (
            bottom + 1 <= band_h or top >= height - band_h
            or right + 1 <= band_w or left >= width - band_w
        )  # fmt: skip
        small = share < rules.mass
        touches = top == 0 or left == 0 or bottom == height - 1 or right == width - 1
        large = not small and share < 2 * rules.mass and touches
        reach[p] = (2.0 if one_side and large else 1.0) * rules.gap
        kept[p] = not ((one_side and (small or large)) or share < rules.speck)
        edge[p] = _bar_edge(box[p], height, width, band_h, band_w, rules.bar) if share < 0.5 else 0
    if rules.bar > 0:
        _drop_bars(kept, edge, box, height, width, band_h, band_w)
    if not kept.any():  # an image whose every piece is suspect keeps them all
        return np.zeros(count, np.bool_)
    nearest = np.empty(count, np.int64)
    while True:
        body = np.empty(4, np.int64)
        body[0], body[1], body[2], body[3] = np.iinfo(np.int64).max, -1, np.iinfo(np.int64).max, -1
        for p in range(count):
            if kept[p]:
                body[0], body[1] = min(body[0], box[p, 0]), max(body[1], box[p, 1])
                body[2], body[3] = min(body[2], box[p, 2]), max(body[3], box[p, 3])
        side = max(body[1] - body[0], body[3] - body[2]) + 1
        # each suspect's nearest pixel to the body's box (Chebyshev distance; 0 inside it): per
        # run, the row's distance and that of the run's column nearest to the box
        nearest[:] = np.iinfo(np.int64).max
        for r in range(len(row)):
            p = piece[r]
            if not kept[p]:
                y = row[r]
                d = max(body[0] - y, y - body[1], body[2] - last[r], first[r] - body[3], 0)
                nearest[p] = min(nearest[p], d)
        joins = False
        for p in range(count):
            if not kept[p] and nearest[p] - 1 <= reach[p] * side:
                kept[p] = joins = True
        if not joins:
            return ~kept


@njit(cache=True)
def _bar_edge(box, height, width, band_h, band_w, ratio):  # pragma: no cover - compiled
    """The side (1 left, 2 right, 3 top, 4 bottom; 0 none) along which a piece with ``box``
    lies as a bar: wholly within that side's band and at least ``ratio`` times longer along the
    side than across it."""
    if ratio <= 0:
        return 0
    top, bottom, left, right = box[0], box[1], box[2], box[3]
    tall, wide = bottom - top + 1, right - left + 1
    if tall >= ratio * wide:
        if right + 1 <= band_w:
            return 1
        if left >= width - band_w:
            return 2
    if wide >= ratio * tall:
        if bottom + 1 <= band_h:
            return 3
        if top >= height - band_h:
            return 4
    return 0


@njit(cache=True)
def _drop_bars(kept, edge, box, height, width, band_h, band_w):  # pragma: no cover - compiled
    """Bars along an edge (``edge``) become suspects when the rest of the kept ink, bars along
    the opposite edge included, leaves the band of the opposite side free: a character written
    inside its cell, not one cut tightly, whose own outer strokes would lie in the bands too."""
    far = np.empty((5, 4), np.int64)  # per edge (0: no bar): the box of what it holds
    far[:, 0] = far[:, 2] = np.iinfo(np.int64).max
    far[:, 1] = far[:, 3] = -1
    for p in range(len(kept)):
        if kept[p]:
            e = edge[p]
            far[e, 0], far[e, 1] = min(far[e, 0], box[p, 0]), max(far[e, 1], box[p, 1])
            far[e, 2], far[e, 3] = min(far[e, 2], box[p, 2]), max(far[e, 3], box[p, 3])
    if far[0, 1] < 0:  # nothing but bars
        return
    free = (  # per edge: the band of the opposite side is free
        width - 1 - max(far[0, 3], far[2, 3]) >= band_w,
        min(far[0, 2], far[1, 2]) >= band_w,
        height - 1 - max(far[0, 1], far[4, 1]) >= band_h,
        min(far[0, 0], far[3, 0]) >= band_h,
    )  # fmt: skip
    for p in range(len(kept)):
        if kept[p] and edge[p] > 0 and free[edge[p] - 1]:
            kept[p] = False


@njit(cache=True)
def _erase(ink, mask, row, first, last, piece, drop):  # pragma: no cover - compiled
    """Set the dropped runs and the pixel ring around them (their anti-aliased edge,
    8-connected, but not other pieces' ink) to paper in ``ink`` and ``mask``."""
    height, width = ink.shape
    gone = np.zeros((height, width), np.bool_)
    for r in range(len(row)):
        if drop[piece[r]]:
            gone[row[r], first[r] : last[r] + 1] = True
    for r in range(len(row)):
        if not drop[piece[r]]:
            continue
        for y in range(max(row[r] - 1, 0), min(row[r] + 1, height - 1) + 1):
            for x in range(max(first[r] - 1, 0), min(last[r] + 1, width - 1) + 1):
                if not mask[y, x] or gone[y, x]:
                    ink[y, x] = 0.0
    for y in range(height):
        for x in range(width):
            if gone[y, x]:
                mask[y, x] = False
