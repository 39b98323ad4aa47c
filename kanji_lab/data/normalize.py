"""The one normalisation that turns any character image or stroke drawing into the model's input.

Every path into the model goes through :func:`normalize_ink`: the ETL readers, the synthetic
source, ``data=folder``, ``data=strokes``, ``predict``, ``evaluate`` and (re-implemented in
JavaScript from :data:`SETTINGS`, which travels in every exported model's metadata) the browser
page. Given ink-bright images (255 = ink, any size), per image:

0. **Flatten**: the paper's slow changes (uneven light, a shadow, a gradient across a photo) are
   taken out: the image is cut into square cells of ``flatten / 3`` of its longer side, each cell
   keeps its lowest level, a 3x3 minimum then a 3x3 maximum over the cells (a grey opening: it
   follows the paper and ignores the strokes, which are thinner than three cells) give each
   cell's paper, and every pixel loses its cell's paper (integer levels, at least 0). A cell whose
   paper is over half-way from the lowest cell's level to the brightest pixel is ink wider than
   the window (a bold stroke, a blot) and gets the lowest level instead. On clean paper the
   paper is 0 and nothing changes. ``flatten = 0`` (models before version 3): off.
1. **Background**: the median of the image border is taken as paper and subtracted.
2. **Contrast**: the ``peak_fraction`` brightest pixels set the ink level (at least ``peak_floor``
   of the maximum), which is stretched to 255, so faint pencil reads like pen.
   **Clutter**: fragments of neighbouring characters at the edges, the remains of ruled or grid
   lines and specks are erased (:mod:`kanji_lab.data.clutter`; its bars along an edge from
   version 4 on).
3. **Crop**: per axis, from the mass profile of the ink above ``threshold`` x 255 with sub-pixel
   precision: the box holding all but ``trim`` (on each side) of the mass (so specks of dust do
   not set the frame, and the box does not depend on the image's resolution), narrowed to the
   mass centre +- ``frame_sd`` standard deviations where that is narrower (moment normalisation,
   version 5: a character's body, not a long thin tail, sets its size). In the moments no pixel
   weighs more than ``frame_cap`` x 255, so ink that is darker in one part of a scan than in
   another (uneven light, pen pressure) does not move the frame. ``frame_sd = 0`` (models before
   version 5): the quantile box alone.
4. **Frame**: a square around the box centre, ``1 + 2 * margin`` times its longer side
   (the aspect ratio is kept).
5. **Resize**: the square is area-averaged to ``size`` x ``size`` (box interpolation when it is
   smaller than the output), paper outside the image. From version 6 the resize is nonlinear
   within the box (line density normalisation, after Tsukumo and Tanaka): on that linear frame,
   every run of paper between two strokes along a row or a column adds one unit of density
   spread over the run, and each axis of the box is resampled so that each part of it gets
   ``1 - density`` of its linear room plus ``density`` of the room in proportion to its density
   (the box keeps its place; outside it the resize stays linear). Where strokes crowd (a
   many-stroked radical) they get more room, an open part less, so near-identical characters
   differ in more pixels. Measured on the linear frame, the density does not depend on the
   image's resolution, and a speck or a pinhole smaller than an output pixel does not count.
   ``density = 0`` (models before version 6): linear.

Stroke data (pen traces) is first drawn by :func:`draw_strokes` with a pen whose width is a fixed
fraction (``pen``) of the drawing's longer side, so how large someone wrote on a pad does not
change the line width the model sees; the drawing then goes through the same steps.

The steps are compiled (numba, cached on disk after the first use), one image at a time, with the
float32 arithmetic in the order that decides each pixel kept from the numpy code they replaced
(``tests/test_normalize_fast.py`` holds them to it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit
from PIL import Image, ImageDraw

from kanji_lab.data import clutter
from kanji_lab.data.clutter import Rules, clean_ink, run_scratch


def drop_stale_compiled(cache: Path, stem: str, newest: float) -> None:
    """Delete the numba cache files of module ``stem`` in ``cache`` written before ``newest``.

    numba keys a cached function by its own file alone, so the compiled steps here would keep
    the clutter step as it was when they were cached after ``clutter.py`` changed (an edited
    checkout, a ``git pull``), and read images by a definition no model was trained with.
    """
    for path in cache.glob(f"{stem}.*.nb[ic]"):
        try:
            if path.stat().st_mtime < newest:
                path.unlink()
        except OSError:  # another process removed it, or the folder is read-only: numba copes
            pass


drop_stale_compiled(
    Path(__file__).with_name("__pycache__"),
    Path(__file__).stem,
    Path(clutter.__file__).stat().st_mtime,
)

Settings = Mapping[str, float]
SETTINGS: dict[str, float] = {
    "version": 6,
    "size": 64,
    "threshold": 0.25,
    "trim": 0.003,
    "peak_fraction": 0.005,
    "peak_floor": 0.5,
    "flatten": 0.25,  # step 0's window (3 cells) as a fraction of the longer side; 0: off
    "margin": 0.08,
    "frame_sd": 2.0,  # step 3: the box within the mass centre +- this many sd (before version 5: 0)
    "frame_cap": 0.5,  # step 3's moments: a pixel weighs at most this x 255
    "density": 0.15,  # step 5: share of the box's room by line density (before version 6: 0)
    # strokes: drawn with the longer side at `stroke_canvas` pixels, the pen `pen` of that side
    "stroke_canvas": 256,
    "pen": 0.05,
    # lines thinner than this many output pixels are thickened before resizing (0: never)
    "min_width": 2.2,
    # clutter (neighbours' fragments, grid lines, specks) erased before the crop: data/clutter.py
    "clutter_band": 0.12,
    "clutter_mass": 0.15,
    "clutter_speck": 0.01,
    "clutter_gap": 0.12,
    "clutter_line": 0.035,
    "clutter_run": 0.9,
    "clutter_bar": 3.0,  # (models before version 4: no key, no bars)
}


def linear(settings: Settings | None = None) -> dict[str, float]:
    """``settings`` (default :data:`SETTINGS`) with a linear resize (``density`` 0): how a
    character is drawn onto a sheet or into a record that is normalised again later (a form
    writer's cells, the experiments' and tests' cut cells), so that the sheet holds the character
    as written, not already reshaped by the line density."""
    return {**(settings or SETTINGS), "density": 0.0}


class _Params(NamedTuple):
    """The settings as the compiled steps read them."""

    limit: np.float32  # threshold x 255: ink above it counts
    trim: float
    peak_floor: float
    flatten: float
    margin: float
    frame_sd: float
    frame_cap: float
    density: float
    min_width: float
    clutter: Rules

    @classmethod
    def of(cls, s: Settings) -> _Params:
        limit = np.float32(255.0 * float(s["threshold"]))
        if not 0.0 <= float(s.get("density", 0.0)) < 1.0:  # at 1 a part of the box gets no room
            raise ValueError(f"normalisation setting density must be in [0, 1), not {s['density']}")
        return cls(
            limit, float(s["trim"]), float(s["peak_floor"]), float(s.get("flatten", 0.0)),
            float(s["margin"]), float(s.get("frame_sd", 0.0)),
            255.0 * float(s.get("frame_cap", 1.0)), float(s.get("density", 0.0)),
            float(s.get("min_width", 0.0)), Rules.of(s),
        )  # fmt: skip


def normalize_ink(
    images: np.ndarray,
    size: int | None = None,
    settings: Settings | None = None,
    clean: bool = False,
) -> np.ndarray:
    """Ink-bright uint8 ``(N, H, W)`` (or one ``(H, W)``) -> normalised ``(N, size, size)``.

    ``settings``: those a model was trained with (its metadata); default :data:`SETTINGS`.
    ``clean``: the images are known to hold nothing but the character (the synthetic
    generator's own canvases), so the clutter step, which leaves such images as they are, is
    skipped for speed.
    """
    s = settings or SETTINGS
    images = _uint8_images(images)
    single = images.ndim == 2
    batch = images[None] if single else images
    size = int(size or s["size"])
    out = np.empty((len(batch), size, size), np.uint8)
    params = _Params.of(s)
    if clean:
        params = params._replace(clutter=Rules.of({}))
    scratch = run_scratch(*batch.shape[1:])
    _normalize_batch(np.ascontiguousarray(batch), out, params, _peak_rank(batch, s), scratch)
    return out[0] if single else out


def _uint8_images(images: np.ndarray) -> np.ndarray:
    """``images`` as uint8 (integer or boolean levels 0..255 are converted); ValueError for
    anything else."""
    images = np.asarray(images)
    if images.ndim not in (2, 3) or 0 in images.shape[-2:]:
        raise ValueError(f"normalize_ink takes images (H, W) or (N, H, W), not {images.shape}")
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind not in "biu" or (images.size and (images.min() < 0 or images.max() > 255)):
        raise ValueError(
            f"normalize_ink takes uint8 images (levels 0..255), not {images.dtype} "
            f"in {images.min() if images.size else 0}..{images.max() if images.size else 0}"
        )
    return images.astype(np.uint8)


def _peak_rank(images: np.ndarray, s: Settings) -> int:
    """How many of an image's brightest pixels set its ink level (``peak_fraction``)."""
    return max(1, int(round(images.shape[-1] * images.shape[-2] * float(s["peak_fraction"]))))


@njit(cache=True, nogil=True)  # without the GIL: a caller's threads can normalise side by side
def _normalize_batch(images, out, p, rank, scratch):  # pragma: no cover - compiled
    """Each of ``images`` (N, H, W) normalised into ``out`` (N, size, size)."""
    height, width = images.shape[1:]
    ink = np.empty((height, width), np.float32)
    mask = np.empty((height, width), np.bool_)
    inked = np.empty(out.shape[1:], np.bool_)  # the linear frame's pixels over half the ink
    flat = np.zeros(0)
    for i in range(len(images)):
        image = _flatten(images[i], p.flatten)
        paper, gain = _contrast(image, rank, p.peak_floor)
        _stretch(image, paper, gain, p.limit, ink, mask)
        scratch = clean_ink(ink, mask, p.clutter, scratch)
        box = _ink_box(ink, mask, p.trim, p.frame_sd, p.frame_cap)
        side = _frame_side(box, p.margin)
        thick = _thicken(ink, mask, side / len(out[i]), p.min_width)
        shown = _resample(thick, box, side, len(out[i]), flat, flat, 0.0)
        if p.density > 0:  # the line density of the linear frame, then the frame by it
            _over_half(shown, inked)
            rows, cols = _gap_profiles(inked)
            shown = _resample(thick, box, side, len(out[i]), rows, cols, p.density)
        _store(shown, out[i])


@njit(cache=True)
def _flatten(image, fraction):  # pragma: no cover - compiled
    """Step 0 (module text): ``image`` less its paper's slow changes, a new array (written
    here, not into a caller's buffer, which the compiler could not vectorise: it might overlap
    ``image``); ``image`` itself when ``fraction`` is 0."""
    if not fraction > 0:
        return image
    height, width = image.shape
    cell = max(1, int(max(height, width) * fraction / 3))
    rows, cols = (height + cell - 1) // cell, (width + cell - 1) // cell
    lowest = np.empty((rows, cols), np.uint8)
    line = np.empty(width, np.uint8)  # (whole rows at a time: contiguous, vectorised)
    for r in range(rows):
        line[:] = 255
        for y in range(r * cell, min(r * cell + cell, height)):
            for x in range(width):
                line[x] = min(line[x], image[y, x])
        for c in range(cols):  # (spans, not x // cell: an integer division costs a pass)
            low = np.uint8(255)
            for x in range(c * cell, min(c * cell + cell, width)):
                low = min(low, line[x])
            lowest[r, c] = low
    paper = _cells_3x3(_cells_3x3(lowest, True), False)
    _keep_ink(paper, lowest.min(), image.max())
    if paper.max() == 0:  # clean paper (a drawing, a generated canvas): nothing to take out
        return image
    out = np.empty_like(image)
    for r in range(rows):
        for c in range(cols):
            for x in range(c * cell, min(c * cell + cell, width)):
                line[x] = paper[r, c]
        for y in range(r * cell, min(r * cell + cell, height)):
            for x in range(width):
                out[y, x] = image[y, x] - min(image[y, x], line[x])
    return out


@njit(cache=True)
def _keep_ink(paper, low, high):  # pragma: no cover - compiled
    """Cells whose paper lies more than half-way from the lowest paper ``low`` to the brightest
    level ``high`` are inside ink wider than the window (a bold stroke, a blot): they get
    ``low``, so the ink is not hollowed out."""
    for r in range(paper.shape[0]):
        for c in range(paper.shape[1]):
            if 2 * (int(paper[r, c]) - int(low)) > int(high) - int(low):
                paper[r, c] = low


@njit(cache=True)
def _cells_3x3(cells, lowest):  # pragma: no cover - compiled
    """The minimum (``lowest``) or maximum of each cell and its neighbours (those that exist):
    along the rows, then down the columns (the same extremes, in a third of the comparisons)."""
    rows, cols = cells.shape
    across = np.empty_like(cells)
    for r in range(rows):
        for c in range(cols):
            across[r, c] = _extreme3(
                cells[r, max(c - 1, 0)], cells[r, c], cells[r, min(c + 1, cols - 1)], lowest
            )
    out = np.empty_like(cells)
    for r in range(rows):
        for c in range(cols):
            out[r, c] = _extreme3(
                across[max(r - 1, 0), c], across[r, c], across[min(r + 1, rows - 1), c], lowest
            )
    return out


@njit(cache=True)
def _extreme3(a, b, c, lowest):  # pragma: no cover - compiled
    return min(a, b, c) if lowest else max(a, b, c)


def stretch_contrast(images: np.ndarray, settings: Settings | None = None) -> np.ndarray:
    """uint8 ``(N, H, W)`` -> float32 ink in 0..255: paper (the border median) to 0, the ink
    level (see the module text) to 255; a blank image becomes all paper."""
    s = settings or SETTINGS
    images = _uint8_images(images)
    batch = images[None] if images.ndim == 2 else images
    ink = np.empty(batch.shape, np.float32)
    _stretch_batch(batch, _peak_rank(batch, s), float(s["peak_floor"]), ink)
    return ink[0] if images.ndim == 2 else ink


@njit(cache=True)
def _stretch_batch(images, rank, peak_floor, ink):  # pragma: no cover - compiled
    mask = np.empty(images.shape[1:], np.bool_)
    for i in range(len(images)):
        paper, gain = _contrast(images[i], rank, peak_floor)
        _stretch(images[i], paper, gain, np.float32(0.0), ink[i], mask)


@njit(cache=True)
def _contrast(image, rank, peak_floor):  # pragma: no cover - compiled
    """Paper and gain (float32) of ``image``: the border's median (paper) goes to 0, the level
    of the ``rank``-th brightest pixel (at least ``peak_floor`` of the way from paper to the
    brightest) to 255."""
    height, width = image.shape
    border = np.zeros(256, np.int64)
    for x in range(width):
        border[image[0, x]] += 1
        border[image[height - 1, x]] += 1
    for y in range(1, height - 1):
        border[image[y, 0]] += 1
        border[image[y, width - 1]] += 1
    # the median: the lowest level that at least half of the border is at or below
    need, paper, seen = (2 * width + 2 * max(height - 2, 0) + 1) // 2, 0, 0
    for v in range(256):
        seen += border[v]
        if seen >= need:
            paper = v
            break
    flat = image.ravel()
    brightest = np.uint8(0)
    for j in range(len(flat)):  # (a reduction in uint8: vectorised)
        brightest = max(brightest, flat[j])
    floor = paper + peak_floor * (int(brightest) - paper)
    # the rank-th brightest pixel's level only matters above the floor: the highest level there
    # that at least `rank` pixels reach, by bisection on whole-image counts (vectorised passes),
    # the brightest level tried first (saturated ink settles it in one pass)
    top, low, high = 0, max(int(np.ceil(floor)), 0), int(brightest)
    while low <= high:
        level = high if top == 0 and high == brightest else (low + high + 1) // 2
        if _count_from(flat, np.uint8(level)) >= rank:
            top, low = level, level + 1
        else:
            high = level - 1
    peak = max(float(top), floor)
    gain = 255.0 / max(peak - paper, 1e-6) if peak > paper else 0.0
    return np.float32(paper), np.float32(gain)


@njit(cache=True)
def _count_from(flat, level):  # pragma: no cover - compiled
    """How many of ``flat``'s pixels are at ``level`` or above."""
    n = 0
    for j in range(len(flat)):
        n += flat[j] >= level
    return n


@njit(cache=True)
def _stretch(image, paper, gain, limit, ink, mask):  # pragma: no cover - compiled
    """``ink`` = ``image`` with paper at 0 and the ink level at 255; ``mask`` = ink > limit."""
    for y in range(image.shape[0]):
        levels, out, above = image[y], ink[y], mask[y]
        for x in range(len(levels)):
            v = min(max((np.float32(levels[x]) - paper) * gain, np.float32(0.0)), np.float32(255.0))
            out[x] = v
            above[x] = v > limit


def stroke_widths(ink: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Each image's typical line width in pixels: twice the ink area over its outline length."""
    limit = 255.0 * float(SETTINGS["threshold"] if threshold is None else threshold)
    return np.array([_width(image > limit) for image in ink])


@njit(cache=True)
def _width(mask):  # pragma: no cover - compiled
    """Twice the ink area over its outline length (outside the image counts as ink)."""
    m = mask.view(np.uint8)
    height, width = m.shape
    area = inner = 0
    for y in range(height):
        # a row's own pixels stand in for the missing neighbours beyond the image's edge
        row, up, down = m[y], m[max(y - 1, 0)], m[min(y + 1, height - 1)]
        for x in range(1, width - 1):
            area += row[x]
            inner += row[x] & up[x] & down[x] & row[x - 1] & row[x + 1]
        ends = (0, width - 1) if width > 1 else (0, -1)  # the edge columns, once each
        for x in ends:
            if x >= 0:
                area += row[x]
                inner += row[x] & up[x] & down[x] & row[max(x - 1, 0)] & row[min(x + 1, width - 1)]
    return 2.0 * area / max(area - inner, 1.0)


@njit(cache=True)
def _thicken(ink, mask, pixel, min_width):  # pragma: no cover - compiled
    """``ink`` with lines thinner than ``min_width`` output pixels (``pixel``: source pixels
    per output pixel) dilated by 3x3 steps and a blend for the fraction; ``ink`` itself when
    they are wide enough."""
    grow = (min_width * pixel - _width(mask)) / 2  # source pixels to add on each side
    if not grow > 0.25:
        return ink
    steps = int(np.floor(grow))
    fraction = np.float32(grow - steps)
    now = ink.copy()
    for _ in range(steps):
        now = _dilate(now)
    wider = _dilate(now)
    for y in range(ink.shape[0]):
        for x in range(ink.shape[1]):
            now[y, x] += fraction * (wider[y, x] - now[y, x])
    return now


@njit(cache=True)
def _dilate(ink):  # pragma: no cover - compiled
    """3x3 maximum filter (paper outside; ink is never below paper): across rows, then down."""
    height, width = ink.shape
    across = np.empty_like(ink)
    for y in range(height):
        for x in range(width):
            m = ink[y, x]
            if x > 0:
                m = max(m, ink[y, x - 1])
            if x < width - 1:
                m = max(m, ink[y, x + 1])
            across[y, x] = m
    out = np.empty_like(ink)
    for y in range(height):
        for x in range(width):
            m = across[y, x]
            if y > 0:
                m = max(m, across[y - 1, x])
            if y < height - 1:
                m = max(m, across[y + 1, x])
            out[y, x] = m
    return out


@njit(cache=True)
def _frame_side(box, margin):  # pragma: no cover - compiled
    """The side, in source pixels, of the square frame around the ink box."""
    return max(max(box[1] - box[0], box[3] - box[2]), 1.0) * (1.0 + 2.0 * margin)


@njit(cache=True)
def _ink_box(ink, mask, trim, sds, cap):  # pragma: no cover - compiled
    """``(top, bottom, left, right)`` float pixel edges of the ink (step 3): each edge a quantile
    of the ink's mass above the threshold projected on that axis (``trim`` of it outside), so
    that faint noise and specks do not set the frame (a blank image gets the whole frame); with
    ``sds`` > 0 narrowed, per axis, to ``sds`` standard deviations either side of the mass centre
    of that ink, each pixel weighing at most ``cap``."""
    rows, cols, capped_rows, capped_cols = _profiles(ink, mask, cap)
    box = np.empty(4)
    box[0], box[1] = _quantile(rows, trim), len(rows) - _quantile(rows[::-1], trim)
    box[2], box[3] = _quantile(cols, trim), len(cols) - _quantile(cols[::-1], trim)
    if sds > 0:
        for axis, profile in ((0, capped_rows), (2, capped_cols)):
            start, end = _spread(profile, sds)
            box[axis], box[axis + 1] = max(box[axis], start), min(box[axis + 1], end)
    return box


# the sums in any order (vectorised), exact either way: float32 values (and halves) in float64
@njit(cache=True, fastmath={"reassoc"})
def _profiles(ink, mask, cap):  # pragma: no cover - compiled
    """The mass of the ink above the threshold per row and per column, and the same with each
    pixel weighing at most ``cap``."""
    height, width = ink.shape
    rows, capped_rows = np.zeros(height, np.float64), np.zeros(height, np.float64)
    cols, capped_cols = np.zeros(width, np.float64), np.zeros(width, np.float64)
    for y in range(height):
        total = capped = 0.0
        line, ok = ink[y], mask[y].view(np.uint8)
        for x in range(width):
            v = np.float64(line[x]) if ok[x] else 0.0
            low = min(v, cap)
            total += v
            capped += low
            cols[x] += v
            capped_cols[x] += low
        rows[y], capped_rows[y] = total, capped
    return rows, cols, capped_rows, capped_cols


@njit(cache=True)  # (not reassociated: the browser sums in this order and must agree)
def _spread(profile, sds):  # pragma: no cover - compiled
    """``(start, end)``: ``sds`` standard deviations either side of the profile's mass centre
    (cell ``i``'s mass at ``i + 0.5``); the whole profile when it is empty."""
    total = first = 0.0
    for i in range(len(profile)):
        total += profile[i]
        first += profile[i] * (i + 0.5)
    if not total > 0:
        return 0.0, float(len(profile))
    mean = first / total
    second = 0.0
    for i in range(len(profile)):
        d = i + 0.5 - mean
        second += profile[i] * d * d
    half = sds * np.sqrt(second / total)
    return mean - half, mean + half


@njit(cache=True)
def _quantile(profile, fraction):  # pragma: no cover - compiled
    """The position (0 = the first cell's leading edge) before which ``fraction`` of the
    profile's mass lies, the mass spread evenly within each cell; 0 for an empty profile."""
    total = 0.0
    for v in profile:
        total += v
    if not total > 0:
        return 0.0
    target = total * fraction
    before = 0.0
    for i in range(len(profile)):
        if before + profile[i] > target:
            inside = (target - before) / max(profile[i], 1e-9)
            return i + min(max(inside, 0.0), 1.0)
        before += profile[i]
    return 0.0


@njit(cache=True)
def _resample(ink, box, side, size, rows, cols, density):  # pragma: no cover - compiled
    """The square frame of ``side`` around ``box``'s centre area-averaged to ``size`` x ``size``
    float32 levels, transposed (``[j, i]`` is output pixel ``(i, j)``), paper outside the image;
    within the box, ``density`` of each axis's room follows the line density ``rows`` / ``cols``
    (:func:`_gap_profiles`)."""
    height, width = ink.shape
    step = side / size
    top, left = (box[0] + box[1]) / 2 - side / 2, (box[2] + box[3]) / 2 - side / 2
    row_lo, row_span = _spans(top, step, size, box[0], box[1], rows, density)
    col_lo, col_span = _spans(left, step, size, box[2], box[3], cols, density)
    row_index, row_weight = _taps(row_lo, row_span, height)
    col_index, col_weight = _taps(col_lo, col_span, width)
    tall = _weighted_rows(ink, row_index, row_weight)
    # the second pass along contiguous memory too: on the transposed rows
    return _weighted_rows(np.ascontiguousarray(tall.T), col_index, col_weight)


@njit(cache=True)
def _store(shown, out):  # pragma: no cover - compiled
    """``out`` (size, size) uint8: the levels of :func:`_resample`, rounded half to even."""
    for i in range(len(out)):
        for j in range(len(out)):
            out[i, j] = min(max(np.rint(shown[j, i]), np.float32(0.0)), np.float32(255.0))


@njit(cache=True)
def _over_half(shown, mask):  # pragma: no cover - compiled
    """``mask`` (size, size): the pixels of :func:`_resample`'s levels that :func:`_store` would
    round above 127 (from 127.5 on: half to even makes it 128)."""
    for i in range(len(mask)):
        for j in range(len(mask)):
            mask[i, j] = shown[j, i] >= np.float32(127.5)


@njit(cache=True)
def _gap_profiles(mask):  # pragma: no cover - compiled
    """Line density (Tsukumo and Tanaka) per row and per column of ``mask`` (the linear frame's
    ink over half its level): every run of paper between two inks along a column (a row) adds one
    unit spread evenly over the rows (columns) it spans; runs open to the border add nothing.
    Where strokes lie close together the density is high."""
    height, width = mask.shape
    rows = np.zeros(height, np.float64)
    cols = np.zeros(width, np.float64)
    above = np.full(width, -1, np.int64)  # per column, the row of its last ink so far
    for y in range(height):
        line = mask[y].view(np.uint8)
        left = -1
        for x in range(width):
            if line[x]:
                _add_run(cols, left, x)
                _add_run(rows, above[x], y)
                left, above[x] = x, y
    return rows, cols


@njit(cache=True)
def _add_run(profile, last, here):  # pragma: no cover - compiled
    """One unit over ``profile[last + 1: here]``, the run of paper between two inks."""
    if last >= 0 and here - last > 1:
        share = 1.0 / (here - last - 1)
        for k in range(last + 1, here):
            profile[k] += share


@njit(cache=True)
def _spans(start, step, size, lo, hi, density, share):  # pragma: no cover - compiled
    """Output cell ``i``'s source span, ``first[i]`` and its length: ``step`` each from ``start``
    (linear), except within the box ``[lo, hi)``, which keeps its place in the output and whose
    room is shared out as ``(1 - share)`` x its linear length + ``share`` x the line density
    ``density`` (per output cell of the linear frame)."""
    first = np.empty(size, np.float64)
    span = np.full(size, step, np.float64)
    for i in range(size):
        first[i] = start + step * i
    begin, end = (lo - start) / step, (hi - start) / step  # the box in linear output cells
    if not share > 0 or not end > begin:
        return first, span
    lower, upper = int(np.floor(begin)), int(np.ceil(end))
    knots = np.empty(upper - lower + 1, np.float64)  # begin, whole cells, end (linear)
    length = np.empty(upper - lower, np.float64)
    dense = np.zeros(upper - lower, np.float64)
    knots[0] = begin
    total = 0.0  # summed in order, as the browser sums
    for k in range(upper - lower):
        c = lower + k
        knots[k + 1] = min(float(c + 1), end)
        length[k] = knots[k + 1] - max(float(c), begin)
        if 0 <= c < len(density):
            dense[k] = density[c] * length[k]
        total += dense[k]
    if not total > 0:
        return first, span
    room = np.empty(upper - lower + 1, np.float64)  # where each knot is shown
    room[0] = begin
    for k in range(len(length)):
        part = (1.0 - share) * length[k] / (end - begin) + share * dense[k] / total
        room[k + 1] = room[k] + part * (end - begin)
    edges = np.empty(size + 1, np.float64)
    for i in range(size + 1):
        edges[i] = start + step * _shown_at(float(i), knots, room)
    for i in range(size):
        first[i], span[i] = edges[i], edges[i + 1] - edges[i]
    return first, span


@njit(cache=True)
def _shown_at(position, knots, room):  # pragma: no cover - compiled
    """The linear position shown at output ``position``: itself outside the box's room, by
    linear interpolation between the knots inside."""
    if position <= room[0] or position >= room[-1]:
        return position
    k = np.searchsorted(room, position) - 1
    width = room[k + 1] - room[k]
    inside = (position - room[k]) / width if width > 0 else 0.0
    return knots[k] + inside * (knots[k + 1] - knots[k])


@njit(cache=True)
def _weighted_rows(source, index, weight):  # pragma: no cover - compiled
    """Row ``i`` of the result: the sum of ``weight[i, k]`` x row ``index[i, k]`` of
    ``source``, in float32, tap by tap."""
    out = np.zeros((len(index), source.shape[1]), np.float32)
    for i in range(len(index)):
        for k in range(index.shape[1]):
            w, row = weight[i, k], source[index[i, k]]
            for x in range(len(row)):
                out[i, x] += w * row[x]
    return out


@njit(cache=True)
def _taps(first, span, length):  # pragma: no cover - compiled
    """Source indices and float32 weights ``(size, K)``: output cell ``i`` averages the source
    span ``[first[i], first[i] + span[i])``; cells outside ``0..length`` weigh 0."""
    size = len(first)
    taps = int(np.ceil(span.max())) + 1
    index = np.zeros((size, taps), np.int64)
    weight = np.zeros((size, taps), np.float32)
    for i in range(size):
        lo = first[i]
        hi = lo + span[i]
        cell0 = np.floor(lo)
        for t in range(taps):
            cell = cell0 + t
            overlap = max(min(hi, cell + 1) - max(lo, cell), 0.0)
            if 0 <= cell < length:
                index[i, t] = int(cell)
                weight[i, t] = overlap / span[i]
    return index, weight


def draw_strokes(strokes: Sequence[np.ndarray], settings: Settings | None = None) -> np.ndarray:
    """Stroke data (each stroke ``(n, 2)`` points ``x, y``, y down, any unit) -> ink-bright uint8
    drawing with the canonical pen, ready for :func:`normalize_ink`."""
    strokes = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes if len(s)]
    if not strokes:
        raise ValueError("no strokes to draw")
    points = np.concatenate(strokes)
    lo, hi = points.min(axis=0), points.max(axis=0)
    longer = float(np.max(hi - lo))
    s = settings or SETTINGS
    reference = float(s["stroke_canvas"])
    scale = reference / longer if longer > 0 else 1.0
    pen = float(s["pen"]) * reference
    pad = int(np.ceil(pen)) + 2
    extent = np.ceil((hi - lo) * scale).astype(int) + 2 * pad
    canvas = Image.new("L", (int(extent[0]), int(extent[1])), 0)
    draw = ImageDraw.Draw(canvas)
    radius = pen / 2
    for stroke in strokes:
        xy = (stroke - lo) * scale + pad
        if len(xy) > 1:
            draw.line([tuple(p) for p in xy.tolist()], fill=255, width=int(round(pen)))
        for x, y in xy.tolist():  # round caps and joins
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(canvas, dtype=np.uint8)


def strokes_input(
    strokes: Sequence[np.ndarray], size: int | None = None, settings: Settings | None = None
) -> np.ndarray:
    """Stroke data -> the normalised ``(size, size)`` uint8 model image."""
    return normalize_ink(draw_strokes(strokes, settings), size, settings)
