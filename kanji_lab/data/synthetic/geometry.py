"""Compiled stroke geometry of the synthetic hands: where a sample's points go and how wide its
line is there, and the outlines that :func:`kanji_lab.data.synthetic.render.render_strokes` fills.

Every random number is drawn by the caller (:class:`Draws`, in a fixed order), so these steps
are pure arithmetic: numba compiles them (cached on disk after the first use) instead of the
hundred-odd small numpy calls per sample they replaced, which were half of a sample's time.
Points are ``(m, 2)`` canvas or viewBox coordinates of all strokes in stroke order, as in
:class:`kanji_lab.data.kanjivg.Character`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit

from kanji_lab.data import kanjivg
from kanji_lab.data.kanjivg import DOT, HANE, HARAI, PRESS_HARAI, TOME
from kanji_lab.data.normalize import drop_stale_compiled

# numba keys a cached function by its own file: the ending codes above come from kanjivg.py
drop_stale_compiled(
    Path(__file__).with_name("__pycache__"),
    Path(__file__).stem,
    Path(kanjivg.__file__).stat().st_mtime,
)

SPLIT_COS = math.cos(math.radians(40))  # split a stroke outline where it turns more sharply


class Draws(NamedTuple):
    """One sample's random numbers, drawn by the caller in this order."""

    dot_scale: np.ndarray  # (n,) cursive hands: how far each dot shrinks (else empty)
    stroke_scale: np.ndarray  # (n,) cursive hands: how far each other stroke shrinks (else empty)
    shift: np.ndarray  # (n, 2, 2) each stroke's start and end moved, viewBox units
    bend: np.ndarray  # (n,) each stroke bowed, as a fraction of its chord
    angle: np.ndarray  # (n,) each stroke turned about its centre, radians
    stretch: np.ndarray  # (n,) and stretched, log scale
    proportion: np.ndarray  # (2, 4) log widths of the four parts of each axis
    wobble: np.ndarray  # (m, 2) tremor before smoothing (empty for a steady hand)
    affine: np.ndarray  # (2, 2) the sample's slant, rotation and aspect
    size: float  # the ink box as a fraction of the frame
    centre: np.ndarray  # (2,) where the ink box centre goes, canvas pixels
    thickness: float  # line width, canvas pixels
    pressure: np.ndarray  # (n, 4) slow width changes along each stroke, log scale


@njit(cache=True)
def frame_scale(extent: float, size: float, canvas: float, viewbox: float) -> float:
    """Canvas pixels per unit for ink extending ``extent`` units, drawn ``size`` of the frame.

    Characters are scaled towards the writer's size, but small characters (口, kana) stay
    somewhat smaller, as they do in handwriting.
    """
    effective = max(extent, 1.0) ** 0.75 * (0.85 * viewbox) ** 0.25
    return size * canvas / effective


@njit(cache=True)
def place(
    points: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    endings: np.ndarray,
    passes: int,
    brushiness: float,
    draws: Draws,
    canvas: float,
    viewbox: float,
) -> tuple[np.ndarray, np.ndarray]:
    """A sample's canvas points and line widths from a character's viewBox ``points``: smoothed
    ``passes`` times, each stroke moved, bent, turned and stretched, the parts of the character
    resized, tremor added, the sample's affine applied and the ink box placed on the canvas."""
    moved = np.empty(points.shape)  # (plain loops throughout: array expressions compile slowly)
    for i in range(len(points)):
        moved[i, 0], moved[i, 1] = points[i, 0], points[i, 1]
    moved = smooth(moved, starts, ends, passes)
    if len(draws.dot_scale):
        _shrink(moved, starts, ends, endings, draws.dot_scale, draws.stroke_scale)
    _bend(moved, starts, ends, draws.shift, draws.bend)
    _turn(moved, starts, ends, draws.angle, draws.stretch)
    for axis in range(2):
        _proportion(moved[:, axis], draws.proportion[axis], viewbox)
    if len(draws.wobble):
        tremor = smooth(draws.wobble, starts, ends, 2)
        for i in range(len(moved)):
            moved[i, 0] += tremor[i, 0]
            moved[i, 1] += tremor[i, 1]
    out = _fit(moved, draws.affine, draws.size, draws.centre, canvas, viewbox)
    widths = _widths(arc_fraction(out, starts, ends), starts, ends, endings, brushiness, draws)
    return out, widths


@njit(cache=True)
def smooth(points: np.ndarray, starts: np.ndarray, ends: np.ndarray, passes: int) -> np.ndarray:
    """Corners rounded off with a [1, 2, 1] filter ``passes`` times, every stroke's end points
    kept."""
    m = len(points)
    for _ in range(passes):
        out = np.empty_like(points)
        for i in range(m):
            for c in range(2):
                if 0 < i < m - 1:
                    out[i, c] = (points[i - 1, c] + 2 * points[i, c] + points[i + 1, c]) / 4
                else:
                    out[i, c] = points[i, c]
        for k in range(len(starts)):
            for c in range(2):
                out[starts[k], c] = points[starts[k], c]
                out[ends[k] - 1, c] = points[ends[k] - 1, c]
        points = out
    return points


@njit(cache=True)
def arc_fraction(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Arc length from its stroke's start, as a fraction of the stroke, at each point."""
    t = np.empty(len(points))
    for k in range(len(starts)):
        arc = 0.0
        t[starts[k]] = 0.0
        for i in range(starts[k] + 1, ends[k]):
            arc += math.hypot(points[i, 0] - points[i - 1, 0], points[i, 1] - points[i - 1, 1])
            t[i] = arc
        total = max(arc, 1e-9)
        for i in range(starts[k], ends[k]):
            t[i] /= total
    return t


@njit(cache=True)
def _centre(points: np.ndarray, a: int, b: int) -> tuple[float, float]:
    """Mean of ``points[a:b]``."""
    x = y = 0.0
    for i in range(a, b):
        x += points[i, 0]
        y += points[i, 1]
    return x / (b - a), y / (b - a)


@njit(cache=True)
def _shrink(
    points: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    endings: np.ndarray,
    dot_scale: np.ndarray,
    stroke_scale: np.ndarray,
) -> None:
    """Fast hands shrink dots to ticks about their centre and cut other strokes short."""
    for k in range(len(starts)):
        a, b = starts[k], ends[k]
        if endings[k] == DOT:
            ax, ay = _centre(points, a, b)
            scale = dot_scale[k]
        else:
            ax, ay = points[a, 0], points[a, 1]
            scale = stroke_scale[k]
        for i in range(a, b):
            points[i, 0] = ax + (points[i, 0] - ax) * scale
            points[i, 1] = ay + (points[i, 1] - ay) * scale


@njit(cache=True)
def _bend(
    points: np.ndarray, starts: np.ndarray, ends: np.ndarray, shift: np.ndarray, bend: np.ndarray
) -> None:
    """Each stroke's start and end moved (the points between follow by arc length), and the
    stroke bowed sideways by ``bend`` of its chord."""
    t = arc_fraction(points, starts, ends)
    for k in range(len(starts)):
        a, b = starts[k], ends[k]
        cx, cy = points[b - 1, 0] - points[a, 0], points[b - 1, 1] - points[a, 1]
        length = math.hypot(cx, cy)
        nx, ny = -cy / (length + 1e-6), cx / (length + 1e-6)
        bow = bend[k] * length
        for i in range(a, b):
            s = bow * math.sin(math.pi * t[i])
            for c in range(2):
                points[i, c] += (1 - t[i]) * shift[k, 0, c]
                points[i, c] += t[i] * shift[k, 1, c]
                points[i, c] += s * (nx if c == 0 else ny)


@njit(cache=True)
def _turn(
    points: np.ndarray, starts: np.ndarray, ends: np.ndarray, angle: np.ndarray, stretch: np.ndarray
) -> None:
    """Each stroke turned by ``angle`` and stretched by ``exp(stretch)`` about its centre."""
    for k in range(len(starts)):
        a, b = starts[k], ends[k]
        mx, my = _centre(points, a, b)
        grow = math.exp(stretch[k])
        c, s = math.cos(angle[k]) * grow, math.sin(angle[k]) * grow
        for i in range(a, b):
            dx, dy = points[i, 0] - mx, points[i, 1] - my
            points[i, 0] = mx + (c * dx - s * dy)
            points[i, 1] = my + (s * dx + c * dy)


@njit(cache=True)
def _proportion(x: np.ndarray, log_widths: np.ndarray, viewbox: float) -> None:
    """One axis remapped monotonically: its four quarters of the viewBox made ``exp(log_widths)``
    wide, relative to each other; points outside the viewBox keep their distance from it."""
    knots = np.empty(5)
    knots[0] = 0.0
    for j in range(4):
        knots[j + 1] = knots[j] + math.exp(log_widths[j])
    scale = viewbox / knots[4]
    for j in range(5):
        knots[j] *= scale
    quarter = viewbox / 4
    for i in range(len(x)):
        v = x[i]
        j = min(max(int(v / quarter), 0), 3)
        inside = min(max(v, 0.0), viewbox)
        x[i] = knots[j] + (knots[j + 1] - knots[j]) * (inside - j * quarter) / quarter
        x[i] += v - inside


@njit(cache=True)
def _fit(
    points: np.ndarray,
    affine: np.ndarray,
    size: float,
    centre: np.ndarray,
    canvas: float,
    viewbox: float,
) -> np.ndarray:
    """The sample's affine applied and the ink box placed on the canvas around ``centre``."""
    m = len(points)
    moved = np.empty_like(points)
    for i in range(m):
        for c in range(2):
            moved[i, c] = affine[c, 0] * points[i, 0] + affine[c, 1] * points[i, 1]
    lo, hi = np.empty(2), np.empty(2)
    for c in range(2):
        lo[c] = hi[c] = moved[0, c]
        for i in range(m):
            lo[c], hi[c] = min(lo[c], moved[i, c]), max(hi[c], moved[i, c])
    scale = frame_scale(max(hi[0] - lo[0], hi[1] - lo[1]), size, canvas, viewbox)
    for i in range(m):
        for c in range(2):
            moved[i, c] = (moved[i, c] - (lo[c] + hi[c]) / 2) * scale + centre[c]
    return moved


@njit(cache=True)
def _smoothstep(lo: float, hi: float, t: float) -> float:
    x = min(max((t - lo) / (hi - lo), 0.0), 1.0)
    return x * x * (3 - 2 * x)


@njit(cache=True)
def _ending(kind: int, b: float, t: float) -> float:
    """Width multiplier of a stroke ending ``kind`` at arc fraction ``t``; brushiness ``b``
    scales how strongly it shapes the line (pens even, brushes swelling and tapering)."""
    if kind == TOME:  # press at the end
        return 1.0 + b * 0.25 * math.exp(-(1.0 - t) / 0.08)
    if kind == HARAI:
        return 1.0 - (0.3 + 0.62 * b) * _smoothstep(0.4, 1.0, t) ** 1.2
    if kind == HANE:
        return 1.0 - 0.85 * b * _smoothstep(0.82, 1.0, t)
    if kind == DOT:
        return 1.0 + b * (0.7 * math.sqrt(t) - 0.5)
    if kind == PRESS_HARAI:
        return (1.0 + b * 0.6 * _smoothstep(0.1, 0.75, t)) * (
            1.0 - 0.9 * b * _smoothstep(0.75, 1.0, t)
        )
    return 1.0


@njit(cache=True)
def _widths(
    t: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    endings: np.ndarray,
    b: float,
    draws: Draws,
) -> np.ndarray:
    """Line width at each point: the entry press, the stroke's ending, slow pressure changes."""
    widths = np.empty(len(t))
    for k in range(len(starts)):
        for i in range(starts[k], ends[k]):
            width = _ending(endings[k], b, t[i]) * (1.0 + b * 0.5 * math.exp(-t[i] / 0.06))
            where = t[i] * 3
            lower = min(int(where), 2)
            frac = where - lower
            log = draws.pressure[k, lower] * (1 - frac) + draws.pressure[k, lower + 1] * frac
            widths[i] = draws.thickness * max(width * math.exp(log), 0.2)
    return widths


@njit(cache=True)
def outlines(
    points: np.ndarray, widths: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stroke outlines as polygons, split where a stroke turns sharply (so none self-intersect).

    Returns the polygons' flat coordinates (piece ``p`` is ``coords[bounds[p]:bounds[p + 1]]``,
    its left side forwards then its right side back), each piece's round caps ``(2, 3)`` as
    ``x, y, radius`` at its two ends, and ``first``: stroke ``k``'s pieces are
    ``first[k]:first[k + 1]``.
    """
    m, n = len(points), len(starts)
    cut = np.zeros(m, dtype=np.bool_)
    pieces = n
    for k in range(n):
        for i in range(starts[k] + 1, ends[k] - 1):
            cut[i] = _turns_sharply(points, i)
            pieces += cut[i]
    coords = np.empty(4 * (m + pieces - n))
    bounds = np.empty(pieces + 1, dtype=np.int64)
    caps = np.empty((pieces, 2, 3))
    first = np.empty(n + 1, dtype=np.int64)
    p = 0
    bounds[0] = 0
    for k in range(n):
        first[k] = p
        a = starts[k]
        for i in range(starts[k] + 1, ends[k]):
            if cut[i] or i == ends[k] - 1:
                _piece(points, widths, a, i + 1, coords, bounds[p], caps[p])
                bounds[p + 1] = bounds[p] + 4 * (i + 1 - a)
                p += 1
                a = i
    first[n] = p
    return coords, bounds, caps, first


@njit(cache=True)
def _turns_sharply(points: np.ndarray, i: int) -> bool:
    """Whether the line turns by more than 40 degrees at inner point ``i``."""
    ix, iy = points[i, 0] - points[i - 1, 0], points[i, 1] - points[i - 1, 1]
    ox, oy = points[i + 1, 0] - points[i, 0], points[i + 1, 1] - points[i, 1]
    norm = math.hypot(ix, iy) * math.hypot(ox, oy) + 1e-9
    return (ix * ox + iy * oy) / norm < SPLIT_COS


@njit(cache=True)
def _piece(
    points: np.ndarray,
    widths: np.ndarray,
    a: int,
    b: int,
    coords: np.ndarray,
    at: int,
    caps: np.ndarray,
) -> None:
    """Write the outline of ``points[a:b]`` at ``coords[at:]`` and its two round caps."""
    count = b - a
    for j in range(count):
        lo, hi = a + max(j - 1, 0), a + min(j + 1, count - 1)
        tx, ty = points[hi, 0] - points[lo, 0], points[hi, 1] - points[lo, 1]
        half = widths[a + j] / 2
        scale = half / (math.hypot(tx, ty) + 1e-9)
        _sides(coords, at, count, j, points[a + j], -ty * scale, tx * scale)
    _caps(caps, points, widths, a, b - 1)


@njit(cache=True)
def _sides(
    coords: np.ndarray, at: int, count: int, j: int, point: np.ndarray, dx: float, dy: float
) -> None:
    """Point ``j`` of a ``count``-point line moved by ``(dx, dy)`` to its left and back to its
    right, into the outline at ``coords[at:]`` (the left side forwards, the right side back)."""
    left, right = at + 2 * j, at + 4 * count - 2 - 2 * j
    coords[left], coords[left + 1] = point[0] + dx, point[1] + dy
    coords[right], coords[right + 1] = point[0] - dx, point[1] - dy


@njit(cache=True)
def _caps(caps: np.ndarray, points: np.ndarray, widths: np.ndarray, first: int, last: int) -> None:
    """Round caps ``x, y, radius`` at points ``first`` and ``last`` of a line."""
    for end, i in enumerate((first, last)):
        caps[end, 0], caps[end, 1], caps[end, 2] = points[i, 0], points[i, 1], widths[i] / 2


@njit(cache=True)
def ligature(
    points: np.ndarray, target: np.ndarray, gap: float, bow: float, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """A thin trail from the end of a stroke's ``points`` to ``target``, ``gap`` away (the pen
    never lifts): a quadratic curve that leaves in the stroke's direction, its control point
    ``bow`` of the gap ahead, ``width`` wide at its ends and half that in the middle. Returns its
    outline and round caps as :func:`outlines` gives a piece's."""
    ax, ay = points[-1, 0], points[-1, 1]
    back = points[max(len(points) - 3, 0)]
    dx, dy = ax - back[0], ay - back[1]
    length = math.hypot(dx, dy) + 1e-6
    cx, cy = ax + dx / length * gap * bow, ay + dy / length * gap * bow
    count = max(4, int(gap / 4))
    t, widths = np.empty(count), np.empty(count)
    for i in range(count):  # numpy's linspace(0, 1, count)
        t[i] = i * (1.0 / (count - 1)) if i < count - 1 else 1.0
        widths[i] = width * (1.0 - 0.5 * math.sin(math.pi * t[i]))
    curve = np.empty((count, 2))
    for i in range(count):
        u = 1 - t[i]
        curve[i, 0] = u**2 * ax + 2 * u * t[i] * cx + t[i] ** 2 * target[0]
        curve[i, 1] = u**2 * ay + 2 * u * t[i] * cy + t[i] ** 2 * target[1]
    coords = np.empty(4 * count)
    caps = np.empty((2, 3))
    normal = normals(curve)
    for j in range(count):
        half = widths[j] / 2
        _sides(coords, 0, count, j, curve[j], normal[j, 0] * half, normal[j, 1] * half)
    _caps(caps, curve, widths, 0, count - 1)
    return coords, caps


@njit(cache=True)
def offset_lines(points: np.ndarray, widths: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Lines along ``points`` moved sideways by ``offsets`` (fractions of the half width):
    ``(len(offsets), len(points), 2)``."""
    normal = normals(points)
    out = np.empty((len(offsets), len(points), 2))
    for j in range(len(offsets)):
        for i in range(len(points)):
            for c in range(2):
                out[j, i, c] = points[i, c] + normal[i, c] * (widths[i] / 2) * offsets[j]
    return out


@njit(cache=True)
def normals(points: np.ndarray) -> np.ndarray:
    """Unit normals at each point of a polyline (central differences, one-sided at the ends)."""
    m = len(points)
    out = np.empty_like(points)
    for i in range(m):
        lo, hi = max(i - 1, 0), min(i + 1, m - 1)
        tx, ty = points[hi, 0] - points[lo, 0], points[hi, 1] - points[lo, 1]
        length = math.hypot(tx, ty) + 1e-9
        out[i, 0], out[i, 1] = -ty / length, tx / length
    return out
