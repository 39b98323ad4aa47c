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

import numpy as np
from PIL import Image, ImageDraw

from kanji_lab.data.clutter import remove_clutter

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
CHUNK = 256  # images normalised per batched step (bounds the size of the weight tensors)


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
    single = images.ndim == 2
    batch = images[None] if single else images
    size = int(size or s["size"])
    out = np.empty((len(batch), size, size), np.uint8)
    for start in range(0, len(batch), CHUNK):
        out[start : start + CHUNK] = _normalize_chunk(batch[start : start + CHUNK], size, s, clean)
    return out[0] if single else out


def _normalize_chunk(images: np.ndarray, size: int, s: Settings, clean: bool) -> np.ndarray:
    ink = stretch_contrast(images, s)
    if not clean:
        ink = remove_clutter(ink, s)
    boxes = ink_boxes(ink, s)
    if float(s.get("min_width", 0)) > 0:
        pixel = frame_sides(boxes, s) / size
        ink = thicken(ink, pixel, float(s["min_width"]), float(s["threshold"]))
    return resample_frames(ink, boxes, size, s)


def stroke_widths(ink: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Each image's typical line width in pixels: twice the ink area over its outline length."""
    mask = ink > 255.0 * float(SETTINGS["threshold"] if threshold is None else threshold)
    inner = mask.copy()
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[:, :, 1:] &= mask[:, :, :-1]
    inner[:, :, :-1] &= mask[:, :, 1:]
    area = mask.sum(axis=(1, 2)).astype(np.float64)
    outline = area - inner.sum(axis=(1, 2))
    return 2.0 * area / np.maximum(outline, 1.0)


def thicken(
    ink: np.ndarray, pixel: np.ndarray, min_width: float, threshold: float | None = None
) -> np.ndarray:
    """Dilate each image whose lines would come out thinner than ``min_width`` output pixels
    (``pixel``: source pixels per output pixel), by 3x3 steps and a blend for the fraction."""
    # source pixels to add on each side
    grow = (min_width * pixel - stroke_widths(ink, threshold)) / 2
    need = np.flatnonzero(grow > 0.25)
    if not len(need):
        return ink
    steps = np.floor(grow[need]).astype(int)
    fraction = (grow[need] - steps).astype(np.float32)[:, None, None]
    part = ink[need]
    for step in range(int(steps.max()) + 1):
        wider = _dilate(part)
        blend = part + fraction * (wider - part)
        part = np.where((steps > step)[:, None, None], wider, part)
        part = np.where((steps == step)[:, None, None], blend, part)
    out = ink.copy()
    out[need] = part
    return out


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
    s = settings or SETTINGS
    n = len(images)
    flat = images.reshape(n, -1)
    offsets = (np.arange(n, dtype=np.int64) * 256)[:, None]
    hist = np.bincount((flat + offsets).ravel(), minlength=256 * n).reshape(n, 256)
    border = np.concatenate(
        [images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]], axis=1
    )
    border_hist = np.bincount((border + offsets).ravel(), minlength=256 * n).reshape(n, 256)
    paper = np.argmax(np.cumsum(border_hist, axis=1) * 2 >= border.shape[1], axis=1)
    k = max(1, int(round(flat.shape[1] * float(s["peak_fraction"]))))
    from_top = np.cumsum(hist[:, ::-1], axis=1)
    top = 255 - np.argmax(from_top >= k, axis=1)
    brightest = 255 - np.argmax(hist[:, ::-1] > 0, axis=1)
    floor = paper + float(s["peak_floor"]) * (brightest - paper)
    peak = np.maximum(top, floor)
    gain = np.where(peak > paper, 255.0 / np.maximum(peak - paper, 1e-6), 0.0).astype(np.float32)
    ink = images.astype(np.float32) - paper.astype(np.float32)[:, None, None]
    ink *= gain[:, None, None]
    return np.clip(ink, 0.0, 255.0, out=ink)


def ink_boxes(ink: np.ndarray, settings: Settings | None = None) -> np.ndarray:
    """``(N, 4)`` float boxes ``(top, bottom, left, right)`` (pixel edges) of each image's ink.

    Each edge is a quantile of the ink's mass projected on that axis (``trim`` of the mass lies
    outside it), counting only pixels above ``threshold`` x 255, so that faint noise and specks
    do not set the frame and the box does not depend on the image's resolution. A blank image
    gets the whole frame.
    """
    s = settings or SETTINGS
    mass = np.where(ink > 255.0 * float(s["threshold"]), ink, 0.0)
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
    top, bottom, left, right = boxes.T
    side = frame_sides(boxes, settings)
    step = side / size
    rows = _taps((top + bottom) / 2 - side / 2, step, size, ink.shape[1])
    cols = _taps((left + right) / 2 - side / 2, step, size, ink.shape[2])
    index, weight = rows
    tall = np.einsum("nik,nikw->niw", weight, _gather_rows(ink, index))  # (N, size, W)
    index, weight = cols
    out = np.einsum("njk,njki->nij", weight, _gather_rows(tall.transpose(0, 2, 1), index))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _gather_rows(images: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``images[n, index[n, ...]]`` for each image ``n``: rows ``(N, *index.shape[1:], W)``."""
    n, h, w = images.shape
    flat = index + (np.arange(n) * h).reshape((n,) + (1,) * (index.ndim - 1))
    rows = np.take(np.ascontiguousarray(images).reshape(n * h, w), flat.ravel(), axis=0)
    return rows.reshape(index.shape + (w,))


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
