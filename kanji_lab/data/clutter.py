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
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

# 8-connected within an image, never across images of a batch
_STRUCTURE = np.zeros((3, 3, 3), bool)
_STRUCTURE[1] = True


def remove_clutter(ink: np.ndarray, settings: Mapping[str, float]) -> np.ndarray:
    """Float ink ``(N, H, W)`` in 0..255 -> the same with clutter set to paper (see module)."""
    band = float(settings.get("clutter_band", 0.0))
    if band <= 0 or not len(ink):
        return ink
    mask = ink > 255.0 * float(settings["threshold"])
    lines = _lines(mask, band, settings)
    if lines is not None:
        ink = np.where(lines, 0.0, ink).astype(ink.dtype)
        mask &= ~lines
    labels, count = ndimage.label(mask, structure=_STRUCTURE)
    if count < 2:
        return ink
    pieces = _pieces(ink, labels, count)
    suspect, reach = _suspects(pieces, ink.shape[1:], settings)
    if not suspect.any():
        return ink
    drop = _dropped(pieces, suspect, reach, labels)
    if not drop.any():
        return ink
    # label 0 is paper; dropped pieces and their one-pixel ring become paper
    gone = np.concatenate([[False], drop])[labels]
    ring = ndimage.binary_dilation(gone, structure=_STRUCTURE) & ~(mask & ~gone)
    out = ink.copy()
    out[ring] = 0.0
    return out


def _lines(mask: np.ndarray, band: float, s: Mapping[str, float]) -> np.ndarray | None:
    """Pixels of ruled or grid lines in the outer band (see the module text); None if none."""
    found = None
    for axis in (1, 2):  # rows, then columns
        along = mask if axis == 1 else mask.transpose(0, 2, 1)
        length, side = along.shape[2], along.shape[1]
        cover = along.sum(axis=2)
        edge = int(band * side)
        candidate = cover >= float(s["clutter_run"]) * length
        candidate[:, edge : side - edge] = False
        if not candidate.any():
            continue
        reach = float(s["clutter_line"]) * length  # how near each end the line must start
        first = np.argmax(along, axis=2)
        last = length - 1 - np.argmax(along[:, :, ::-1], axis=2)
        full = candidate & (first <= reach) & (last >= length - 1 - reach)
        # the line with its edges (rows at least half ink) is thin: not a character's stroke
        full &= _thin_runs(cover >= 0.5 * length, float(s["clutter_line"]) * side)
        hit = np.broadcast_to(full[:, :, None], along.shape)
        hit = hit if axis == 1 else hit.transpose(0, 2, 1)
        found = hit.copy() if found is None else found | hit
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


def _pieces(ink: np.ndarray, labels: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Per component (label 1..count): image index, ink mass and inclusive box."""
    slices = ndimage.find_objects(labels)
    spans = np.array([(i.start, r.start, r.stop - 1, c.start, c.stop - 1) for i, r, c in slices])
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count + 1)[1:]
    return {"image": spans[:, 0], "mass": mass, "box": spans[:, 1:]}


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
    pieces: dict[str, np.ndarray], suspect: np.ndarray, reach: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """Boolean per component: the suspects that stay out of reach of the body (module text)."""
    image, box = pieces["image"], pieces["box"]
    n_images = int(image.max()) + 1
    # the suspects' pixels, grouped by suspect
    flat = labels.ravel()
    index = np.flatnonzero(np.concatenate([[False], suspect])[flat])
    label = flat[index] - 1
    order = np.argsort(label, kind="stable")
    index, label = index[order], label[order]
    pixel_image, rows, cols = np.unravel_index(index, labels.shape)
    owners = np.flatnonzero(suspect)
    starts = np.searchsorted(label, owners)
    kept = ~suspect
    while True:
        body = _union_boxes(box, image, kept, n_images)
        b = body[pixel_image]
        # each suspect's nearest pixel to the body's box (Chebyshev distance; 0 inside it)
        distance = np.maximum.reduce(
            [b[:, 0] - rows, rows - b[:, 1], b[:, 2] - cols, cols - b[:, 3], np.zeros_like(rows)]
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
