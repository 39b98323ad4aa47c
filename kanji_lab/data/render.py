"""Render characters as handwriting: writer styles, stroke drawing and scan simulation.

A :class:`WriterStyle` holds what stays fixed for one synthetic writer (slant, size, thickness,
pen or brush behaviour, scanner noise). Each sample adds its own variation on top. Strokes are
drawn as variable-width polygons on a canvas of ``CANVAS`` pixels and reduced to the 64x64 output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from kanji_lab.data.cache import IMAGE_SIZE
from kanji_lab.data.strokes import DOT, HANE, HARAI, PRESS_HARAI, VIEWBOX, Stroke

SCALE = 2  # the canvas is drawn at SCALE x the output size, then box-reduced
CANVAS = IMAGE_SIZE * SCALE
FAMILIES = ("pen", "pencil", "brush", "cursive", "font")
_SPLIT_COS = np.cos(np.radians(40))  # split a stroke outline where it turns more sharply


@dataclass(frozen=True)
class WriterStyle:
    """What one synthetic writer keeps constant across the characters it writes."""

    family: str
    slant: float  # horizontal shear per unit height (positive leans right)
    rotation: float  # radians
    aspect: float  # width / height stretch
    size: float  # ink box as a fraction of the frame
    offset: float  # spread of the character's position, fraction of the frame
    thickness: float  # stroke width in canvas pixels
    brushiness: float  # 0 = even pen line, 1 = brush: entry press, tome, hane, harai tapers
    pressure: float  # spread of the width along a stroke
    jitter: float  # spread of stroke end points, viewBox units
    wobble: float  # hand tremor, viewBox units
    ink: float  # ink darkness, 0..1
    grain: float  # pencil grain: fraction of ink randomly missing
    dry: float  # chance that a stroke shows dry-brush gaps
    ligature: float  # chance that a stroke runs into the next with a thin connecting trail
    smooth: int  # smoothing passes: rounded, simplified forms
    blur: float  # scan blur radius in output pixels
    noise: float  # scanner background noise, grey levels
    levels: int  # grey levels kept by the scanner (16 as in ETL's 4-bit scans, or 256)


def writer_style(family: str, rng: np.random.Generator) -> WriterStyle:
    """Draw the consistent style of a new writer of ``family``."""
    u = rng.uniform
    pen = family in ("pen", "font")
    brush = family == "brush"
    cursive = family == "cursive"
    thickness = {
        "pen": u(3.0, 5.5),
        "pencil": u(3.0, 5.0),
        "brush": u(5.5, 9.0),
        "cursive": u(3.0, 6.0),
        "font": u(0.0, 1.0),  # font writers: chance of a thickening filter
    }[family]
    return WriterStyle(
        family=family,
        slant=float(rng.normal(0.08 if cursive else 0.0, 0.1)),
        rotation=float(rng.normal(0.0, 0.03)),
        aspect=float(np.exp(rng.normal(0.0, 0.07))),
        size=u(0.72, 0.88),
        offset=u(0.01, 0.04),
        thickness=thickness,
        brushiness=u(0.8, 1.0) if brush else (u(0.2, 0.6) if cursive else u(0.0, 0.2)),
        pressure=u(0.1, 0.2) if brush else u(0.03, 0.1),
        jitter=u(2.0, 3.5) if cursive else u(1.0, 2.5),
        wobble=u(0.1, 0.4) if family == "pencil" else u(0.0, 0.15),
        ink=u(0.45, 0.8) if family == "pencil" else u(0.8, 1.0),
        grain=u(0.2, 0.5) if family == "pencil" else 0.0,
        dry=u(0.2, 0.6) if brush else 0.0,
        ligature=u(0.4, 0.9) if cursive else (u(0.0, 0.1) if pen else 0.0),
        smooth=int(rng.integers(2, 5)) if cursive else int(rng.integers(0, 2)),
        blur=u(0.2, 0.6),
        noise=u(0.0, 8.0),
        levels=16 if rng.random() < 0.3 else 256,
    )


def render_strokes(
    strokes: list[Stroke], style: WriterStyle, rng: np.random.Generator
) -> np.ndarray:
    """One handwritten sample of a character from its KanjiVG strokes: uint8 64x64, ink bright."""
    polylines = [_smooth(s.points.astype(np.float64), style.smooth) for s in strokes]
    polylines = [_jitter(p, s.ending, style, rng) for p, s in zip(polylines, strokes, strict=True)]
    polylines = _fit(polylines, style, rng)
    thickness = style.thickness * float(np.exp(rng.normal(0.0, 0.08)))
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    for i, (points, stroke) in enumerate(zip(polylines, strokes, strict=True)):
        widths = thickness * _width_profile(points, stroke.ending, style, rng)
        fill = int(255 * rng.uniform(0.85, 1.0)) if style.brushiness > 0.5 else 255
        draw_polyline(draw, points, widths, fill)
        if rng.random() < style.dry:
            _dry_gaps(draw, points, widths, rng)
        if i + 1 < len(polylines) and rng.random() < style.ligature:
            _ligature(draw, points, polylines[i + 1], thickness, rng)
    return finish(canvas, style, rng)


def draw_polyline(
    draw: ImageDraw.ImageDraw, points: np.ndarray, widths: np.ndarray, fill: int
) -> None:
    """Fill a stroke of varying width: one polygon per smooth run, round caps and joints."""
    turns = _sharp_turns(points)
    bounds = [0, *turns, len(points) - 1]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        piece, half = points[a : b + 1], widths[a : b + 1] / 2
        if len(piece) >= 2:
            normal = _normals(piece) * half[:, None]
            outline = np.concatenate([piece + normal, (piece - normal)[::-1]])
            draw.polygon(outline.ravel().tolist(), fill=fill)
    for k in bounds:
        _disk(draw, points[k], widths[k] / 2, fill)


def finish(canvas: Image.Image, style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """Reduce a canvas to the output size and add pencil grain, ink level and scanner effects."""
    image = canvas.reduce(SCALE) if SCALE > 1 else canvas
    blur = style.blur * float(np.exp(rng.normal(0.0, 0.2)))
    image = image.filter(ImageFilter.GaussianBlur(blur))
    ink = np.asarray(image, dtype=np.float32) / 255.0
    if style.grain:
        ink *= 1.0 - style.grain * rng.random(ink.shape, dtype=np.float32)
    ink *= style.ink * float(rng.uniform(0.92, 1.0))
    noise = np.abs(rng.normal(0.0, style.noise, ink.shape).astype(np.float32))
    out = ink * 255.0 + noise * (1.0 - ink)
    if style.levels < 256:
        step = 255.0 / (style.levels - 1)
        out = np.round(out / step) * step
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def sample_affine(style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """The writer's slant, rotation and aspect with this sample's variation: a 2x2 matrix."""
    slant = style.slant + rng.normal(0.0, 0.04)
    angle = style.rotation + rng.normal(0.0, 0.03)
    aspect = style.aspect * np.exp(rng.normal(0.0, 0.04))
    c, s = np.cos(angle), np.sin(angle)
    rotate = np.array([[c, -s], [s, c]])
    shear = np.array([[1.0, -slant], [0.0, 1.0]])  # y grows downwards: lean right when slant > 0
    stretch = np.diag([np.sqrt(aspect), 1.0 / np.sqrt(aspect)])
    return rotate @ shear @ stretch


def frame_scale(extent: float, style: WriterStyle, rng: np.random.Generator) -> float:
    """Canvas pixels per unit for a character whose ink extends ``extent`` viewBox units.

    Characters are scaled towards the writer's size, but small characters (口, kana) stay
    somewhat smaller, as they do in handwriting.
    """
    size = np.clip(style.size + rng.normal(0.0, 0.03), 0.62, 0.94)
    effective = max(extent, 1.0) ** 0.75 * (0.85 * VIEWBOX) ** 0.25
    return float(size * CANVAS / effective)


def frame_centre(style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """Where this sample's ink box centre goes on the canvas."""
    return CANVAS / 2 + rng.normal(0.0, style.offset * CANVAS, 2)


def _fit(polylines: list[np.ndarray], style: WriterStyle, rng: np.random.Generator) -> list:
    """Apply the sample affine and place the ink box on the canvas."""
    matrix = sample_affine(style, rng)
    moved = [p @ matrix.T for p in polylines]
    allpts = np.concatenate(moved)
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    scale = frame_scale(float(np.max(hi - lo)), style, rng)
    centre = frame_centre(style, rng)
    return [(p - (lo + hi) / 2) * scale + centre for p in moved]


def _smooth(points: np.ndarray, passes: int) -> np.ndarray:
    """Round corners off with a [1, 2, 1] filter, keeping the end points."""
    for _ in range(passes):
        if len(points) < 3:
            break
        inner = (points[:-2] + 2 * points[1:-1] + points[2:]) / 4
        points = np.concatenate([points[:1], inner, points[-1:]])
    return points


def _jitter(
    points: np.ndarray, ending: int, style: WriterStyle, rng: np.random.Generator
) -> np.ndarray:
    """Move a stroke's ends and bend it, in viewBox units, plus tremor for unsteady hands."""
    t = _arc_fraction(points)[:, None]
    start, end = rng.normal(0.0, style.jitter, (2, 2))
    if ending == DOT and style.family == "cursive":  # fast hands shrink dots to ticks
        centre = points.mean(axis=0)
        points = centre + (points - centre) * rng.uniform(0.4, 0.8)
    chord = points[-1] - points[0]
    normal = np.array([-chord[1], chord[0]]) / (np.hypot(*chord) + 1e-6)
    bend = rng.normal(0.0, style.jitter * 0.05) * np.hypot(*chord) * np.sin(np.pi * t)
    moved = points + (1 - t) * start + t * end + bend * normal
    if style.wobble:
        moved = moved + _smooth(rng.normal(0.0, style.wobble, points.shape), 2)
    return moved


def _width_profile(
    points: np.ndarray, ending: int, style: WriterStyle, rng: np.random.Generator
) -> np.ndarray:
    """Width multiplier at each point: entry press, and a tome, hane or harai ending.

    Brushiness scales how strongly the ending shapes the width, so pens draw nearly even lines
    and brushes swell and taper.
    """
    t = _arc_fraction(points)
    b = style.brushiness
    width = 1.0 + b * 0.5 * np.exp(-t / 0.06)  # entry press
    if ending == HARAI:
        width *= 1.0 - (0.3 + 0.62 * b) * _smoothstep(0.4, 1.0, t) ** 1.2
    elif ending == PRESS_HARAI:
        swell = 1.0 + b * 0.6 * _smoothstep(0.1, 0.75, t)
        width *= swell * (1.0 - 0.9 * b * _smoothstep(0.75, 1.0, t))
    elif ending == HANE:
        width *= 1.0 - 0.85 * b * _smoothstep(0.82, 1.0, t)
    elif ending == DOT:
        width *= 1.0 + b * (0.7 * np.sqrt(t) - 0.5)
    else:  # tome: press at the end
        width *= 1.0 + b * 0.25 * np.exp(-(1.0 - t) / 0.08)
    knots = rng.normal(0.0, style.pressure, 4)  # slow changes of pressure along the stroke
    pressure = np.exp(np.interp(t, (0.0, 0.33, 0.67, 1.0), knots))
    return np.maximum(width * pressure, 0.2)


def _dry_gaps(
    draw: ImageDraw.ImageDraw, points: np.ndarray, widths: np.ndarray, rng: np.random.Generator
) -> None:
    """Erase thin lines along the tail of a stroke, like bristles running dry."""
    start = int(len(points) * rng.uniform(0.2, 0.7))
    if len(points) - start < 3:
        return
    piece, half = points[start:], widths[start:, None] / 2
    normal = _normals(piece)
    for offset in rng.uniform(-0.6, 0.6, int(rng.integers(1, 4))):
        line = piece + normal * half * offset
        draw.line(line.ravel().tolist(), fill=0, width=int(rng.integers(1, 3)))


def _ligature(
    draw: ImageDraw.ImageDraw,
    points: np.ndarray,
    following: np.ndarray,
    thickness: float,
    rng: np.random.Generator,
) -> None:
    """A thin trail from the end of a stroke to the start of the next: the pen never lifts."""
    a, b = points[-1], following[0]
    gap = float(np.hypot(*(b - a)))
    if gap < 2 or gap > CANVAS * 0.45:
        return
    direction = points[-1] - points[max(len(points) - 3, 0)]
    direction = direction / (np.hypot(*direction) + 1e-6)
    ctrl = a + direction * gap * rng.uniform(0.2, 0.5)
    t = np.linspace(0.0, 1.0, max(4, int(gap / 4)))[:, None]
    curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b
    widths = thickness * rng.uniform(0.2, 0.45) * (1.0 - 0.5 * np.sin(np.pi * t[:, 0]))
    draw_polyline(draw, curve, widths, int(255 * rng.uniform(0.6, 0.95)))


def _sharp_turns(points: np.ndarray) -> list[int]:
    """Indices of interior points where the polyline turns by more than about 40 degrees."""
    seg = np.diff(points, axis=0)
    seg = seg / (np.hypot(seg[:, 0], seg[:, 1])[:, None] + 1e-9)
    cos = np.sum(seg[:-1] * seg[1:], axis=1)
    return (np.nonzero(cos < _SPLIT_COS)[0] + 1).tolist()


def _normals(points: np.ndarray) -> np.ndarray:
    """Unit normals at each point of a polyline (central differences)."""
    tangent = np.empty_like(points)
    tangent[1:-1] = points[2:] - points[:-2]
    tangent[0] = points[1] - points[0]
    tangent[-1] = points[-1] - points[-2]
    length = np.hypot(tangent[:, 0], tangent[:, 1])[:, None] + 1e-9
    return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / length


def _disk(draw: ImageDraw.ImageDraw, centre: np.ndarray, radius: float, fill: int) -> None:
    x, y = float(centre[0]), float(centre[1])
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)


def _arc_fraction(points: np.ndarray) -> np.ndarray:
    """Arc length from the start, as a fraction of the whole stroke, at each point."""
    steps = np.hypot(*np.diff(points, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    return arc / max(arc[-1], 1e-9)


def _smoothstep(lo: float, hi: float, t: np.ndarray) -> np.ndarray:
    x = np.clip((t - lo) / (hi - lo), 0.0, 1.0)
    return x * x * (3 - 2 * x)
