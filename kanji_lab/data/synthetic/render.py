"""Render characters as handwriting: writer styles, stroke drawing and scan simulation.

A :class:`WriterStyle` holds what stays fixed for one synthetic writer (slant, size, thickness,
pen or brush behaviour, scanner noise). Each sample adds its own variation on top. Strokes are
drawn as variable-width polygons on a canvas of ``CANVAS`` pixels and reduced to the 64x64 output.
This module draws the random numbers and the polygons; the arithmetic is compiled in
:mod:`~kanji_lab.data.synthetic.geometry` (where the points go) and
:mod:`~kanji_lab.data.synthetic.scan` (blur, ink, grain, noise, grey levels).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from kanji_lab.data.cache import IMAGE_SIZE
from kanji_lab.data.kanjivg import DOT, VIEWBOX, Character
from kanji_lab.data.normalize import Settings, normalize_ink
from kanji_lab.data.synthetic import geometry, scan

SCALE = 2  # the canvas is drawn at SCALE x the output size, then box-reduced
CANVAS = IMAGE_SIZE * SCALE
FAMILIES = ("pen", "pencil", "brush", "cursive", "touch", "font", "print", "form")
FONT_FAMILIES = ("font", "print")  # writers that copy font glyphs rather than KanjiVG strokes
# form writers write in the cells of a sheet (see kanji_lab.data.forms) with one of these hands
FORM_HANDS = ("pen", "pencil", "cursive", "brush")
NOISE_BANK = 1 << 22  # standard half-normal samples that every image's paper noise is cut from
_NONE, _NO_POINTS = np.empty(0), np.empty((0, 2))  # draws a style does not use
_NO_GRAIN = np.empty((0, 0), np.float32)
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
    draws = _draws(char, style, rng)
    points, widths = geometry.place(
        char.points, char.starts, char.ends, char.endings, style.smooth, style.brushiness,
        draws, CANVAS, VIEWBOX,
    )  # fmt: skip
    n = len(char)
    brushy = style.brushiness > 0.5
    fills = (255 * rng.uniform(0.85, 1.0, n)).astype(int) if brushy else np.full(n, 255)
    dry = rng.random(n) < style.dry
    joins = rng.random(n) < style.ligature
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    coords, bounds, caps, first = geometry.outlines(points, widths, char.starts, char.ends)
    coords, bounds, caps, first = coords.tolist(), bounds.tolist(), caps.tolist(), first.tolist()
    for k in range(n):
        fill = int(fills[k])
        # a dry stroke is drawn on its own layer so that its gaps do not erase other strokes
        layer = Image.new("L", canvas.size, 0) if dry[k] else None
        target = ImageDraw.Draw(layer) if layer else draw
        ink = 255 if layer else fill
        if brushy and char.endings[k] != DOT:
            _entry(target, points[char.starts[k]], widths[char.starts[k]], ink)
        for piece in range(first[k], first[k + 1]):
            _fill(target, coords[bounds[piece] : bounds[piece + 1]], caps[piece], ink)
        stroke = slice(char.starts[k], char.ends[k])
        if layer:
            _dry_gaps(target, points[stroke], widths[stroke], rng)
            canvas.paste(fill, mask=layer)
        if joins[k] and k + 1 < n:
            _ligature(draw, points[stroke], points[char.starts[k + 1]], draws.thickness, rng)
    return finish(canvas, style, rng, settings)


def _draws(char: Character, style: WriterStyle, rng: np.random.Generator) -> geometry.Draws:
    """The random numbers of one sample's stroke geometry (:class:`geometry.Draws`)."""
    n = len(char)
    cursive = style.family == "cursive"  # fast hands shrink dots to ticks and cut strokes short
    return geometry.Draws(
        dot_scale=rng.uniform(0.4, 0.8, n) if cursive else _NONE,
        stroke_scale=rng.uniform(0.82, 1.0, n) if cursive else _NONE,
        shift=rng.normal(0.0, style.jitter, (n, 2, 2)),
        bend=rng.normal(0.0, 0.02 + 0.01 * style.jitter, n),
        angle=rng.normal(0.0, 0.05 * style.looseness, n),
        stretch=rng.normal(0.0, 0.07 * style.looseness, n),
        proportion=rng.normal(0.0, style.proportion, (2, 4)),
        wobble=rng.normal(0.0, style.wobble, char.points.shape) if style.wobble else _NO_POINTS,
        affine=sample_affine(style, rng),
        size=frame_size(style, rng),
        centre=frame_centre(style, rng),
        thickness=style.thickness * float(np.exp(rng.normal(0.0, 0.08))),
        pressure=rng.normal(0.0, style.pressure, (n, 4)),
    )


def _fill(
    draw: ImageDraw.ImageDraw, polygon: list[float], caps: list[list[float]], fill: int
) -> None:
    """Fill a flat polygon and its round caps (``x, y, radius`` each)."""
    draw.polygon(polygon, fill=fill)
    for x, y, r in caps:
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
    drawn = np.asarray(canvas)
    if blur > 0.05:
        drawn = scan.blur(drawn, blur)
    coarse = style.resolution * float(np.exp(rng.normal(0.0, 0.1)))
    if coarse > 1.05:  # stored small: a character written small on a pad, a low-resolution scan
        side = max(16, int(round(CANVAS / coarse)))
        drawn = np.asarray(Image.fromarray(drawn).resize((side, side), Image.Resampling.BOX))
    grain = _NO_GRAIN
    if style.grain:
        grain = np.float32(style.grain) * rng.random(drawn.shape, dtype=np.float32)
    ink = np.float32(style.ink * float(rng.uniform(0.92, 1.0)))
    noise = _paper_noise(drawn.shape, style.noise, rng)
    threshold = 255.0 * style.ink * rng.uniform(0.3, 0.6) if style.levels == 2 else 0.0
    out = scan.scan(drawn, grain, ink, noise, style.levels, np.float32(threshold))
    return normalize_ink(out, settings=settings, clean=True)


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


def frame_size(style: WriterStyle, rng: np.random.Generator) -> float:
    """This sample's ink box as a fraction of the frame."""
    return float(np.clip(style.size + rng.normal(0.0, 0.03), 0.62, 0.94))


def frame_scale(extent: float, style: WriterStyle, rng: np.random.Generator) -> float:
    """Canvas pixels per unit for a character whose ink extends ``extent`` viewBox units
    (:func:`geometry.frame_scale`)."""
    return geometry.frame_scale(extent, frame_size(style, rng), CANVAS, VIEWBOX)


def frame_centre(style: WriterStyle, rng: np.random.Generator) -> np.ndarray:
    """Where this sample's ink box centre goes on the canvas."""
    return CANVAS / 2 + rng.normal(0.0, style.offset * CANVAS, 2)


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
    offsets = rng.uniform(-0.6, 0.6, int(rng.integers(1, 4)))
    for line in geometry.offset_lines(points[start:], widths[start:], offsets):
        draw.line(line.ravel().tolist(), fill=0, width=int(rng.integers(1, 3)))


def _ligature(
    draw: ImageDraw.ImageDraw,
    points: np.ndarray,
    next_start: np.ndarray,
    thickness: float,
    rng: np.random.Generator,
) -> None:
    """A thin trail from the end of a stroke to the start of the next
    (:func:`geometry.ligature`), unless the two are too close or too far apart."""
    gap = float(np.hypot(*(next_start - points[-1])))
    if gap < 2 or gap > CANVAS * 0.45:
        return
    bow, width = rng.uniform(0.2, 0.5), thickness * rng.uniform(0.3, 0.6)
    coords, caps = geometry.ligature(points, next_start, gap, bow, width)
    _fill(draw, coords.tolist(), caps.tolist(), int(255 * rng.uniform(0.6, 0.95)))
