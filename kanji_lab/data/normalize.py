"""The one normalisation that turns any character image or stroke drawing into the model's input.

Every path into the model goes through :func:`normalize_ink`: the ETL readers, the synthetic
source, ``data=folder``, ``data=strokes``, ``predict``, ``evaluate`` and (re-implemented in
JavaScript from :data:`SETTINGS`, which travels in every exported model's metadata) the browser
page. Given ink-bright images (255 = ink, any size), per image:

1. **Background**: the median of the image border is taken as paper and subtracted.
2. **Contrast**: the ``peak_fraction`` brightest pixels set the ink level (at least ``peak_floor``
   of the maximum), which is stretched to 255, so faint pencil reads like pen.
   **Clutter**: fragments of neighbouring characters at the edges, the remains of ruled or grid
   lines and specks are erased (:mod:`kanji_lab.data.clutter`).
3. **Crop**: the box holding all but ``trim`` (on each side) of the ink mass of the pixels above
   ``threshold`` x 255, found per axis from the mass profile with sub-pixel precision (so specks
   of dust do not set the frame, and the box does not depend on the image's resolution).
4. **Frame**: a square around the box centre, ``1 + 2 * margin`` times its longer side
   (the aspect ratio is kept).
5. **Resize**: the square is area-averaged to ``size`` x ``size`` (box interpolation when it is
   smaller than the output), paper outside the image.

Stroke data (pen traces) is first drawn by :func:`draw_strokes` with a pen whose width is a fixed
fraction (``pen``) of the drawing's longer side, so how large someone wrote on a pad does not
change the line width the model sees; the drawing then goes through the same steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import accumulate
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import sparse

from kanji_lab.data.clutter import clean_ink

Settings = Mapping[str, float]
SETTINGS: dict[str, float] = {
    "version": 2,
    "size": 64,
    "threshold": 0.25,
    "trim": 0.003,
    "peak_fraction": 0.005,
    "peak_floor": 0.5,
    "margin": 0.08,
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
}
# source pixels normalised per batched step (64 ETL9G records): large enough to spread the cost
# of each numpy call, small enough for the step's arrays to stay in the processor's caches
CHUNK_PIXELS = 1 << 20
SPARSE_BATCH = 16  # from this many images a step resamples through sparse products


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
    chunk = max(1, CHUNK_PIXELS // max(1, batch.shape[1] * batch.shape[2]))
    for start in range(0, len(batch), chunk):
        out[start : start + chunk] = _normalize_chunk(batch[start : start + chunk], size, s, clean)
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


def _normalize_chunk(images: np.ndarray, size: int, s: Settings, clean: bool) -> np.ndarray:
    contrast = _Contrast.of(images, s)
    ink = contrast.apply(images)
    mask = ink > 255.0 * float(s["threshold"])
    if not clean:
        ink, mask = clean_ink(ink, mask, s)
    boxes = _mass_boxes(ink, mask, s)
    if float(s.get("min_width", 0)) > 0:
        pixel = frame_sides(boxes, s) / size
        ink = _thicken(ink, mask, pixel, float(s["min_width"]), (images, contrast))
    return resample_frames(ink, boxes, size, s)


def stroke_widths(ink: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Each image's typical line width in pixels: twice the ink area over its outline length."""
    return _widths(ink > 255.0 * float(SETTINGS["threshold"] if threshold is None else threshold))


def _widths(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[:, :, 1:] &= mask[:, :, :-1]
    inner[:, :, :-1] &= mask[:, :, 1:]
    area = _count(mask).astype(np.float64)
    outline = area - _count(inner)
    return 2.0 * area / np.maximum(outline, 1.0)


def _count(mask: np.ndarray) -> np.ndarray:
    """The set pixels of each boolean image (or row)."""
    return np.array([np.count_nonzero(m) for m in mask], np.int64)


def thicken(
    ink: np.ndarray, pixel: np.ndarray, min_width: float, threshold: float | None = None
) -> np.ndarray:
    """Dilate each image whose lines would come out thinner than ``min_width`` output pixels
    (``pixel``: source pixels per output pixel), by 3x3 steps and a blend for the fraction."""
    threshold = float(SETTINGS["threshold"] if threshold is None else threshold)
    return _thicken(ink.copy(), ink > 255.0 * threshold, pixel, min_width)


def _thicken(
    ink: np.ndarray,
    mask: np.ndarray,
    pixel: np.ndarray,
    min_width: float,
    levels: tuple[np.ndarray, _Contrast] | None = None,
) -> np.ndarray:
    """:func:`thicken` in place, given the ink's mask. With ``levels``, the uint8 images that
    the contrast stretch turned into ``ink`` (where it is not paper), the 3x3 maxima are taken
    on those, a quarter of the memory: the stretch is monotone, so it commutes with them."""
    # source pixels to add on each side
    grow = (min_width * pixel - _widths(mask)) / 2
    need = np.flatnonzero(grow > 0.25)
    if not len(need):
        return ink
    steps = np.floor(grow[need]).astype(int)
    fraction = (grow[need] - steps).astype(np.float32)[:, None, None]
    if levels is None:
        part = ink[need]
    else:  # the levels of the ink as it is now (erased clutter is paper, level 0)
        images, contrast = levels
        part = np.where(ink[need] > 0, images[need], 0).astype(images.dtype)
    for step in range(int(steps.max()) + 1):
        active = np.flatnonzero(steps >= step)  # the images still growing
        now = part[active] if len(active) < len(part) else part
        wider = _dilate(now)
        # those at their last whole step blend in the fraction of the next one
        last = steps[active] == step
        if last.any():
            done = active[last]
            low, high = now[last], wider[last]
            if levels is not None:
                low, high = contrast.apply(low, need[done]), contrast.apply(high, need[done])
            low += fraction[done] * (high - low)
            ink[need[done]] = low
        part[active] = wider
    return ink


def _dilate(ink: np.ndarray) -> np.ndarray:
    """3x3 maximum filter of ``(N, H, W)`` images (paper outside)."""
    padded = np.pad(ink, ((0, 0), (1, 1), (1, 1)))
    rows = np.maximum(np.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return np.maximum(np.maximum(rows[:, :, :-2], rows[:, :, 1:-1]), rows[:, :, 2:])


def frame_sides(boxes: np.ndarray, settings: Settings | None = None) -> np.ndarray:
    """The side, in source pixels, of each image's square frame around its ink box."""
    top, bottom, left, right = boxes.T
    side = np.maximum(np.maximum(bottom - top, right - left), 1.0)
    return side * (1.0 + 2.0 * float((settings or SETTINGS)["margin"]))


def stretch_contrast(images: np.ndarray, settings: Settings | None = None) -> np.ndarray:
    """uint8 ``(N, H, W)`` -> float32 ink in 0..255: paper (the border median) to 0, the ink
    level (see the module text) to 255; a blank image becomes all paper."""
    return _Contrast.of(images, settings or SETTINGS).apply(images)


class _Contrast(NamedTuple):
    """Each image's paper level and gain (:func:`stretch_contrast`)."""

    paper: np.ndarray  # float32 (N,)
    gain: np.ndarray  # float32 (N,)

    @classmethod
    def of(cls, images: np.ndarray, s: Settings) -> _Contrast:
        n = len(images)
        flat = images.reshape(n, -1)
        border = np.concatenate(
            [images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]], axis=1
        )
        # the median: the lowest level that at least half of the border is at or below
        half = (border.shape[1] + 1) // 2 - 1
        paper = np.partition(border, half, axis=1)[:, half].astype(np.int64)
        k = max(1, int(round(flat.shape[1] * float(s["peak_fraction"]))))
        peaks = flat.max(axis=1)
        brightest = peaks.astype(np.int64)
        # the level of the k-th brightest pixel: the brightest level itself when k pixels are
        # at it (a saturated pen), else read from the image's histogram
        top = brightest.copy()
        for i in np.flatnonzero(_count(flat == peaks[:, None]) < k):
            # Pillow's histogram: one C pass, no index array
            from_top = accumulate(reversed(Image.fromarray(images[i]).histogram()))
            top[i] = 255 - next(j for j, count in enumerate(from_top) if count >= k)
        floor = paper + float(s["peak_floor"]) * (brightest - paper)
        peak = np.maximum(top, floor)
        gain = np.where(peak > paper, 255.0 / np.maximum(peak - paper, 1e-6), 0.0)
        return cls(paper.astype(np.float32), gain.astype(np.float32))

    def apply(self, images: np.ndarray, which: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The float32 ink of uint8 ``images`` (those of the batch at ``which``)."""
        ink = images.astype(np.float32)
        ink -= self.paper[which, None, None]
        ink *= self.gain[which, None, None]
        return np.clip(ink, 0.0, 255.0, out=ink)


def ink_boxes(ink: np.ndarray, settings: Settings | None = None) -> np.ndarray:
    """``(N, 4)`` float boxes ``(top, bottom, left, right)`` (pixel edges) of each image's ink.

    Each edge is a quantile of the ink's mass projected on that axis (``trim`` of the mass lies
    outside it), counting only pixels above ``threshold`` x 255, so that faint noise and specks
    do not set the frame and the box does not depend on the image's resolution. A blank image
    gets the whole frame.
    """
    s = settings or SETTINGS
    return _mass_boxes(ink, ink > 255.0 * float(s["threshold"]), s)


def _mass_boxes(ink: np.ndarray, mask: np.ndarray, s: Settings) -> np.ndarray:
    """:func:`ink_boxes` given the ink's mask (above the threshold)."""
    mass = ink * mask
    boxes = np.empty((len(ink), 4), np.float64)
    for axis, (lo, hi) in ((2, (0, 1)), (1, (2, 3))):
        profile = mass.sum(axis=axis, dtype=np.float64)  # per row (axis 2) or per column
        boxes[:, lo] = _quantile(profile, float(s["trim"]))
        boxes[:, hi] = profile.shape[1] - _quantile(profile[:, ::-1], float(s["trim"]))
    return boxes


def _quantile(profile: np.ndarray, fraction: float) -> np.ndarray:
    """Per row: the position (0 = the first cell's leading edge) before which ``fraction`` of
    the row's mass lies, the mass spread evenly within each cell; 0 for an empty row."""
    cum = np.cumsum(profile, axis=1)
    total = cum[:, -1]
    target = total * fraction
    index = np.argmax(cum > target[:, None], axis=1)
    rows = np.arange(len(profile))
    before = np.where(index > 0, cum[rows, np.maximum(index - 1, 0)], 0.0)
    inside = (target - before) / np.maximum(profile[rows, index], 1e-9)
    return np.where(total > 0, index + np.clip(inside, 0.0, 1.0), 0.0)


def resample_frames(
    ink: np.ndarray, boxes: np.ndarray, size: int, settings: Settings | None = None
) -> np.ndarray:
    """Area-average each image's square frame around its box to uint8 ``(N, size, size)``."""
    n, height, width = ink.shape
    top, bottom, left, right = boxes.T
    side = frame_sides(boxes, settings)
    step = side / size
    rows = _taps((top + bottom) / 2 - side / 2, step, size, height)
    cols = _taps((left + right) / 2 - side / 2, step, size, width)
    if n < SPARSE_BATCH:  # a few images: gather each output cell's source rows, weigh, sum
        index, weight = rows
        tall = np.einsum("nik,nikw->niw", weight, _gather_rows(ink, index))  # (N, size, W)
        index, weight = cols
        out = np.einsum("njk,njki->nij", weight, _gather_rows(tall.transpose(0, 2, 1), index))
    else:  # a batch: each pass one sparse, block-diagonal product (the same sums, no copies)
        tall = _tap_matrix(*rows, height) @ np.ascontiguousarray(ink).reshape(n * height, width)
        across = tall.reshape(n, size, width).transpose(0, 2, 1).reshape(n * width, size)
        out = (_tap_matrix(*cols, width) @ across).reshape(n, size, size).transpose(0, 2, 1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _gather_rows(images: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``images[n, index[n, ...]]`` for each image ``n``: rows ``(N, *index.shape[1:], W)``."""
    n, h, w = images.shape
    flat = index + (np.arange(n) * h).reshape((n,) + (1,) * (index.ndim - 1))
    rows = np.take(np.ascontiguousarray(images).reshape(n * h, w), flat.ravel(), axis=0)
    return rows.reshape(index.shape + (w,))


def _tap_matrix(index: np.ndarray, weight: np.ndarray, length: int) -> sparse.csr_array:
    """Taps ``(N, size, K)`` (:func:`_taps`) over a source side of ``length`` as one
    block-diagonal ``(N size, N length)`` matrix."""
    n, size, taps = index.shape
    columns = index + (np.arange(n) * length)[:, None, None]
    indptr = np.arange(0, n * size * taps + 1, taps)
    return sparse.csr_array(
        (weight.reshape(-1), columns.reshape(-1), indptr), shape=(n * size, n * length)
    )


def _taps(start: np.ndarray, step: np.ndarray, size: int, length: int) -> tuple[np.ndarray, ...]:
    """Source indices and weights ``(N, size, K)``: output cell ``i`` averages the source span
    ``[start + i step, start + (i+1) step)``; cells outside ``0..length`` are paper (weight 0)."""
    lo = start[:, None] + step[:, None] * np.arange(size)[None, :]
    taps = int(np.ceil(step.max())) + 1
    first = np.floor(lo)
    cells = first[:, :, None] + np.arange(taps)[None, None, :]
    hi = (lo + step[:, None])[:, :, None]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo[:, :, None], cells), 0.0, None)
    inside = (cells >= 0) & (cells < length)
    weight = np.where(inside, overlap / step[:, None, None], 0.0).astype(np.float32)
    return np.clip(cells, 0, length - 1).astype(np.intp), weight


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
