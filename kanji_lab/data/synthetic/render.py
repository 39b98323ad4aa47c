"""Render characters as handwriting: writer styles, stroke drawing and scan simulation.

A :class:`WriterStyle` holds what stays fixed for one synthetic writer (slant, size, thickness,
pen or brush behaviour, scanner noise). Each sample adds its own variation on top. Strokes are
drawn as variable-width polygons on a canvas of ``CANVAS`` pixels and reduced to the 64x64 output.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from kanji_lab.data.cache import IMAGE_SIZE
from kanji_lab.data.kanjivg import DOT, HANE, HARAI, PRESS_HARAI, TOME, VIEWBOX, Character
from kanji_lab.data.normalize import Settings, normalize_ink

SCALE = 2  # the canvas is drawn at SCALE x the output size, then box-reduced
CANVAS = IMAGE_SIZE * SCALE
FAMILIES = ("pen", "pencil", "brush", "cursive", "touch", "font", "print", "form")
FONT_FAMILIES = ("font", "print")  # writers that copy font glyphs rather than KanjiVG strokes
# form writers write in the cells of a sheet (see kanji_lab.data.forms) with one of these hands
FORM_HANDS = ("pen", "pencil", "cursive", "brush")
NOISE_BANK = 1 << 22  # standard half-normal samples that every image's paper noise is cut from
_SPLIT_COS = np.cos(np.radians(40))  # split a stroke outline where it turns more sharply
_ANGLES = np.linspace(0, 2 * np.pi, 12, endpoint=False)
# An oval (half-axes 0.6 and 0.4 stroke widths) tilted 45 degrees, nudged up and to the left
_ENTRY_OVAL = (
    np.stack([0.6 * np.cos(_ANGLES), 0.4 * np.sin(_ANGLES)], axis=1)
    @ (np.array([[1.0, 1.0], [-1.0, 1.0]]) / np.sqrt(2))
    - 0.12
)


@dataclass(frozen=True)
class WriterStyle:
    """What one synthetic writer keeps constant across the characters it writes."""

    family: str
    slant: float  # horizontal shear per unit height (positive leans right)
    rotation: float  # radians
    aspect: float  # width / height stretch
    size: float  # ink box as a fraction of the frame
    offset: float  # spread of the character's position, fraction of the frame
    thickness: float  # stroke width in canvas pixels (font writers: emboldening pixels)
    brushiness: float  # 0 = even pen line, 1 = brush: entry press, tome, hane, harai tapers
    pressure: float  # spread of the width along a stroke
    jitter: float  # spread of stroke end points, viewBox units
    wobble: float  # hand tremor, viewBox units
    ink: float  # ink darkness, 0..1
    grain: float  # pencil grain: fraction of ink randomly missing
    dry: float  # chance that a stroke shows dry-brush gaps
    ligature: float  # chance that a stroke runs into the next with a thin connecting trail
    smooth: int  # smoothing passes: rounded, simplified forms
    looseness: float  # spread of each stroke's own rotation and length
    proportion: float  # spread of how wide / tall each part of the character comes out
    warp: float  # font writers: local mesh warp, fraction of the glyph size
    blur: float  # scan blur radius in output pixels
    noise: float  # scanner background noise, grey levels
    levels: int  # grey levels kept: 2 (binarised), 16 (ETL's 4-bit scans) or 256
    resolution: float  # the canvas is stored this many times coarser before normalisation


def writer_style(family: str, rng: np.random.Generator) -> WriterStyle:
    """Draw the consistent style of a new writer of ``family``."""
    u = rng.uniform
    brush = family == "brush"
    cursive = family == "cursive"
    touch = family == "touch"  # finger or stylus on a screen: thin, even, slightly wobbly
    printed = family == "print"  # printed text under a scanner: exact glyphs, scan damage
    thickness = {
        "pen": u(3.0, 5.5),
        "pencil": u(2.5, 5.0),
        "brush": u(5.5, 9.0),
        "cursive": u(3.0, 6.0),
        "touch": float(np.exp(u(np.log(2.0), np.log(5.0)))),
        "font": float(rng.choice([0, 0, 1, 2])),  # font writers: pixels of emboldening
        "print": float(rng.choice([0, 0, 0, 1])),
    }[family]
    levels = [2, 16, 256][int(rng.choice(3, p=[0.45, 0.0, 0.55] if touch else [0.15, 0.25, 0.6]))]
    return WriterStyle(
        family=family,
        slant=float(rng.normal(0.08 if cursive else 0.0, 0.01 if printed else 0.1)),
        rotation=float(rng.normal(0.0, 0.01 if printed else 0.03)),
        aspect=float(np.exp(rng.normal(0.0, 0.03 if printed else 0.07))),
        size=u(0.72, 0.88),
        offset=u(0.01, 0.04),
        thickness=thickness,
        brushiness=u(0.8, 1.0) if brush else u(0.2, 0.6) if cursive else u(0.0, 0.2) * (not touch),
        pressure=u(0.1, 0.2) if brush else (u(0.0, 0.03) if touch else u(0.03, 0.1)),
        jitter=u(2.0, 3.5) if cursive else u(1.0, 3.0 if touch else 2.5),
        wobble=u(0.1, 0.4) if family == "pencil" else u(0.05, 0.3) if touch else u(0.0, 0.15),
        ink=u(0.3, 0.8) if family == "pencil" else u(0.8, 1.0),
        grain=u(0.2, 0.6) if family == "pencil" else 0.0,
        dry=u(0.2, 0.6) if brush else 0.0,
        ligature=u(0.4, 0.9) if cursive else (u(0.0, 0.1) if family == "pen" else 0.0),
        smooth=int(rng.integers(2, 5)) if cursive else int(rng.integers(0, 2)),
        looseness=u(0.5, 1.5),
        proportion=u(0.04, 0.15),
        warp=u(0.0, 0.006) if printed else 0.02,
        blur=u(0.0, 0.3) if touch else u(0.3, 0.9) if printed else u(0.2, 0.6),
        noise=0.0 if touch else u(0.0, 30.0) if printed else u(0.0, 8.0),
        levels=levels,
        resolution=u(1.0, 3.0) if touch or printed else u(1.0, 1.6),
    )


def render_strokes(
    char: Character, style: WriterStyle, rng: np.random.Generator, settings: Settings | None = None
) -> np.ndarray:
    """One handwritten sample of a character from its KanjiVG strokes: uint8 64x64, ink bright,
    normalised by ``settings`` (default :data:`~kanji_lab.data.normalize.SETTINGS`)."""
    points = _smooth(char.points.astype(np.float64), char, style.smooth)
    points = _fit(_jitter(points, char, style, rng), style, rng)
    thickness = style.thickness * float(np.exp(rng.normal(0.0, 0.08)))
    widths = thickness * _width_profile(_arc_fraction(points, char), char, style, rng)
    n = len(char)
    brushy = style.brushiness > 0.5
    fills = (255 * rng.uniform(0.85, 1.0, n)).astype(int) if brushy else np.full(n, 255)
    dry = rng.random(n) < style.dry
    joins = rng.random(n) < style.ligature
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    outlines, caps, owners = _outlines(points, widths, char)
    first = np.searchsorted(owners, np.arange(n + 1)).tolist()  # each stroke's first piece
    for k in range(n):
        fill = int(fills[k])
        # a dry stroke is drawn on its own layer so that its gaps do not erase other strokes
        layer = Image.new("L", canvas.size, 0) if dry[k] else None
        target = ImageDraw.Draw(layer) if layer else draw
        ink = 255 if layer else fill
        if brushy and char.endings[k] != DOT:
            _entry(target, points[char.starts[k]], widths[char.starts[k]], ink)
        for piece in range(first[k], first[k + 1]):
            target.polygon(outlines[piece], fill=ink)
            for x, y, r in caps[piece]:
                target.ellipse((x - r, y - r, x + r, y + r), fill=ink)
        stroke = slice(char.starts[k], char.ends[k])
        if layer:
            _dry_gaps(target, points[stroke], widths[stroke], rng)
            canvas.paste(fill, mask=layer)
        if joins[k] and k + 1 < n:
            _ligature(draw, points[stroke], points[char.starts[k + 1]], thickness, rng)
    return finish(canvas, style, rng, settings)


def _draw_polyline(
    draw: ImageDraw.ImageDraw, points: np.ndarray, widths: np.ndarray, fill: int
) -> None:
    """Fill one smoothly curving line of varying width, with round caps."""
    half = widths / 2
    normal = _normals(points) * half[:, None]
    outline = np.concatenate([points + normal, (points - normal)[::-1]])
    draw.polygon(outline.ravel().tolist(), fill=fill)
    for (x, y), r in ((points[0], half[0]), (points[-1], half[-1])):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def finish(
    canvas: Image.Image,
    style: WriterStyle,
    rng: np.random.Generator,
    settings: Settings | None = None,
) -> np.ndarray:
    """Scan a drawn canvas (pencil grain, ink level, blur, noise, grey levels, resolution), then
    normalise it like every other source (:func:`kanji_lab.data.normalize.normalize_ink`, by
    ``settings``)."""
    blur = style.blur * SCALE * float(np.exp(rng.normal(0.0, 0.2)))
    image = canvas.filter(ImageFilter.GaussianBlur(blur)) if blur > 0.05 else canvas
    coarse = style.resolution * float(np.exp(rng.normal(0.0, 0.1)))
    if coarse > 1.05:  # stored small: a character written small on a pad, a low-resolution scan
        side = max(16, int(round(CANVAS / coarse)))
        image = image.resize((side, side), Image.Resampling.BOX)
    ink = np.asarray(image, dtype=np.float32) / 255.0
    if style.grain:
        ink *= 1.0 - style.grain * rng.random(ink.shape, dtype=np.float32)
    ink *= style.ink * float(rng.uniform(0.92, 1.0))
    out = ink * 255.0 + _paper_noise(ink.shape, style.noise, rng) * (1.0 - ink)
    if style.levels == 2:
        out = np.where(out > 255.0 * style.ink * rng.uniform(0.3, 0.6), 255.0, 0.0)
    elif style.levels < 256:
        step = 255.0 / (style.levels - 1)
        out = np.round(out / step) * step
    return normalize_ink(np.clip(out + 0.5, 0, 255).astype(np.uint8), settings=settings, clean=True)


def _paper_noise(shape: tuple[int, ...], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Half-normal noise of ``scale`` (its normal's standard deviation) in ``shape``: a window at
    a random place of :func:`_noise_bank` (drawing a normal sample per pixel of every image was
    one of the generator's largest costs)."""
    size = int(np.prod(shape))
    start = int(rng.integers(0, NOISE_BANK - size + 1))
    return _noise_bank()[start : start + size].reshape(shape) * np.float32(scale)


@cache
def _noise_bank() -> np.ndarray:
    """``NOISE_BANK`` standard half-normal float32 samples, the same in every process."""
    return np.abs(np.random.default_rng(0).standard_normal(NOISE_BANK, dtype=np.float32))


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


def _fit(points: np.ndarray, style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """Apply the sample affine and place the ink box on the canvas."""
    moved = points @ sample_affine(style, rng).T
    lo, hi = moved.min(axis=0), moved.max(axis=0)
    scale = frame_scale(float(np.max(hi - lo)), style, rng)
    return (moved - (lo + hi) / 2) * scale + frame_centre(style, rng)


def _smooth(points: np.ndarray, char: Character, passes: int) -> np.ndarray:
    """Round corners off with a [1, 2, 1] filter, keeping every stroke's end points."""
    ends = np.concatenate([char.starts, char.ends - 1])
    for _ in range(passes):
        out = points.copy()
        out[1:-1] = (points[:-2] + 2 * points[1:-1] + points[2:]) / 4
        out[ends] = points[ends]
        points = out
    return points


def _jitter(
    points: np.ndarray, char: Character, style: WriterStyle, rng: np.random.Generator
) -> np.ndarray:
    """Move each stroke's ends and bend it (viewBox units), plus tremor for unsteady hands."""
    n, sid = len(char), char.stroke
    if style.family == "cursive":  # fast hands shrink dots to ticks and cut strokes short
        dots = char.endings == DOT
        scale = np.where(dots, rng.uniform(0.4, 0.8, n), rng.uniform(0.82, 1.0, n))
        centre = np.add.reduceat(points, char.starts) / (char.ends - char.starts)[:, None]
        anchor = np.where(dots[:, None], centre, points[char.starts])
        points = anchor[sid] + (points - anchor[sid]) * scale[sid, None]
    t = _arc_fraction(points, char)[:, None]
    shift = rng.normal(0.0, style.jitter, (n, 2, 2))
    chord = points[char.ends - 1] - points[char.starts]
    length = np.hypot(chord[:, 0], chord[:, 1])
    normal = np.stack([-chord[:, 1], chord[:, 0]], axis=1) / (length[:, None] + 1e-6)
    bend = rng.normal(0.0, 0.02 + 0.01 * style.jitter, n) * length
    moved = points + (1 - t) * shift[sid, 0] + t * shift[sid, 1]
    moved += (bend[sid, None] * np.sin(np.pi * t)) * normal[sid]
    moved = _loosen(moved, char, style, rng)
    if style.wobble:
        moved += _smooth(rng.normal(0.0, style.wobble, points.shape), char, 2)
    return moved


def _loosen(
    points: np.ndarray, char: Character, style: WriterStyle, rng: np.random.Generator
) -> np.ndarray:
    """Each stroke turned and stretched about its own centre, then the parts of the character
    made wider or narrower, taller or shorter (a monotone remap of each axis)."""
    n, sid = len(char), char.stroke
    centre = np.add.reduceat(points, char.starts) / (char.ends - char.starts)[:, None]
    angle = rng.normal(0.0, 0.05 * style.looseness, n)
    stretch = np.exp(rng.normal(0.0, 0.07 * style.looseness, n))
    c, s = np.cos(angle) * stretch, np.sin(angle) * stretch
    d = points - centre[sid]
    turned = np.stack([c[sid] * d[:, 0] - s[sid] * d[:, 1], s[sid] * d[:, 0] + c[sid] * d[:, 1]])
    points = centre[sid] + turned.T
    for axis in range(2):
        knots = np.linspace(0.0, VIEWBOX, 5)
        widths = np.exp(rng.normal(0.0, style.proportion, 4))
        moved = np.concatenate([[0.0], np.cumsum(widths)]) * (VIEWBOX / widths.sum())
        x = points[:, axis]
        points[:, axis] = np.interp(x, knots, moved) + (x - np.clip(x, 0.0, VIEWBOX))
    return points


def _width_profile(
    t: np.ndarray, char: Character, style: WriterStyle, rng: np.random.Generator
) -> np.ndarray:
    """Width multiplier at each point: entry press, and a tome, hane or harai ending.

    ``t`` is each point's arc-length fraction along its stroke. Brushiness scales how strongly
    the ending shapes the width, so pens draw nearly even lines and brushes swell and taper.
    """
    b = style.brushiness
    endings = {
        TOME: 1.0 + b * 0.25 * np.exp(-(1.0 - t) / 0.08),  # press at the end
        HARAI: 1.0 - (0.3 + 0.62 * b) * _smoothstep(0.4, 1.0, t) ** 1.2,
        HANE: 1.0 - 0.85 * b * _smoothstep(0.82, 1.0, t),
        DOT: 1.0 + b * (0.7 * np.sqrt(t) - 0.5),
        PRESS_HARAI: (1.0 + b * 0.6 * _smoothstep(0.1, 0.75, t))
        * (1.0 - 0.9 * b * _smoothstep(0.75, 1.0, t)),
    }
    width = np.choose(char.endings[char.stroke], [endings[e] for e in sorted(endings)])
    width *= 1.0 + b * 0.5 * np.exp(-t / 0.06)  # entry press
    knots = rng.normal(0.0, style.pressure, (len(char), 4))  # slow pressure changes
    where = t * 3
    lower = np.minimum(where.astype(int), 2)
    frac = where - lower
    sid = char.stroke
    pressure = knots[sid, lower] * (1 - frac) + knots[sid, lower + 1] * frac
    return np.maximum(width * np.exp(pressure), 0.2)


def _outlines(
    points: np.ndarray, widths: np.ndarray, char: Character
) -> tuple[list[list[float]], list[list[tuple[float, float, float]]], list[int]]:
    """Stroke outlines as polygons, split where a stroke turns sharply (so none self-intersect).

    Returns each piece's flat polygon, its round caps ``(x, y, radius)`` and its stroke index.
    """
    n = len(points)
    idx = np.arange(n)
    prev = idx - 1
    prev[char.starts] = char.starts
    nxt = idx + 1
    nxt[char.ends - 1] = char.ends - 1
    d_in, d_out = points - points[prev], points[nxt] - points
    norm = np.hypot(d_in[:, 0], d_in[:, 1]) * np.hypot(d_out[:, 0], d_out[:, 1]) + 1e-9
    split = (np.sum(d_in * d_out, axis=1) / norm < _SPLIT_COS) & (prev != idx) & (nxt != idx)
    repeat = 1 + split
    expanded = np.repeat(idx, repeat)
    first = np.cumsum(repeat) - repeat
    starts = np.sort(np.concatenate([first[char.starts], first[split] + 1]))
    ends = np.append(starts[1:], len(expanded))
    pts, half = points[expanded], widths[expanded] / 2
    owner = np.repeat(np.arange(len(starts)), ends - starts)
    j = np.arange(len(expanded))
    tangent = pts[np.minimum(j + 1, ends[owner] - 1)] - pts[np.maximum(j - 1, starts[owner])]
    scale = half / (np.hypot(tangent[:, 0], tangent[:, 1]) + 1e-9)
    normal = np.stack([-tangent[:, 1] * scale, tangent[:, 0] * scale], axis=1)
    left, right = (pts + normal).tolist(), (pts - normal).tolist()
    cap = np.concatenate([pts, half[:, None]], axis=1).tolist()
    outlines, caps = [], []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        outlines.append([v for xy in left[a:b] + right[a:b][::-1] for v in xy])
        caps.append([tuple(cap[a]), tuple(cap[b - 1])])
    return outlines, caps, char.stroke[expanded[starts]].tolist()


def _entry(draw: ImageDraw.ImageDraw, point: np.ndarray, width: float, fill: int) -> None:
    """The brush's entry mark: the tip lands slanting down to the right, leaving an oval."""
    outline = point + _ENTRY_OVAL * width
    draw.polygon(outline.ravel().tolist(), fill=fill)


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
    next_start: np.ndarray,
    thickness: float,
    rng: np.random.Generator,
) -> None:
    """A thin trail from the end of a stroke to the start of the next: the pen never lifts."""
    a, b = points[-1], next_start
    gap = float(np.hypot(*(b - a)))
    if gap < 2 or gap > CANVAS * 0.45:
        return
    direction = points[-1] - points[max(len(points) - 3, 0)]
    direction = direction / (np.hypot(*direction) + 1e-6)
    ctrl = a + direction * gap * rng.uniform(0.2, 0.5)
    t = np.linspace(0.0, 1.0, max(4, int(gap / 4)))[:, None]
    curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b
    widths = thickness * rng.uniform(0.3, 0.6) * (1.0 - 0.5 * np.sin(np.pi * t[:, 0]))
    _draw_polyline(draw, curve, widths, int(255 * rng.uniform(0.6, 0.95)))


def _normals(points: np.ndarray) -> np.ndarray:
    """Unit normals at each point of a polyline (central differences)."""
    tangent = np.empty_like(points)
    tangent[1:-1] = points[2:] - points[:-2]
    tangent[0] = points[1] - points[0]
    tangent[-1] = points[-1] - points[-2]
    length = np.hypot(tangent[:, 0], tangent[:, 1])[:, None] + 1e-9
    return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) / length


def _arc_fraction(points: np.ndarray, char: Character) -> np.ndarray:
    """Arc length from its stroke's start, as a fraction of the stroke, at each point."""
    steps = np.zeros(len(points))
    steps[1:] = np.hypot(*np.diff(points, axis=0).T)
    steps[char.starts] = 0.0
    arc = np.cumsum(steps)
    base = arc[char.starts]
    total = np.maximum(arc[char.ends - 1] - base, 1e-9)
    return (arc - base[char.stroke]) / total[char.stroke]


def _smoothstep(lo: float, hi: float, t: np.ndarray) -> np.ndarray:
    x = np.clip((t - lo) / (hi - lo), 0.0, 1.0)
    return x * x * (3 - 2 * x)
