"""Font writers: glyphs from fonts shipped in pip packages, distorted like a hand's copy.

Fonts are named in the config by package and path inside it (never discovered on the system),
e.g. ``{package: pylopdf_fonts_cjk, path: NotoSerifJP-Regular.otf}``.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kanji_lab.data.normalize import Settings
from kanji_lab.data.synthetic.render import (
    CANVAS,
    VIEWBOX,
    WriterStyle,
    finish,
    frame_centre,
    frame_scale,
    sample_affine,
)

GLYPH_PX = 128  # font size glyphs are drawn at before being warped onto the canvas
_MISSING = "\U0010fffd"  # a private-use code point no font maps: renders as .notdef
_MESH = 3  # cells per side of the warp grid
_UNITS_PER_PX = 0.95 * VIEWBOX / GLYPH_PX  # an em is about 95% of KanjiVG's viewBox


class FontNotFound(FileNotFoundError):
    """A configured font file is not installed."""


def resolve_font(package: str, path: str) -> Path:
    """The file ``path`` inside installed package ``package``."""
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder, path)
        if candidate.is_file():
            return candidate
    pip_name = package.replace("_", "-")
    if not folders:
        raise FontNotFound(f"font package {package!r} is not installed: pip install {pip_name}")
    raise FontNotFound(
        f"font {path!r} not found in package {package!r} ({folders[0]}); check data.fonts "
        f"or reinstall it: pip install --force-reinstall {pip_name}"
    )


@functools.lru_cache(maxsize=8)
def load_font(file: str) -> ImageFont.FreeTypeFont:
    """The font at ``file``, sized for glyph rendering (cached per process)."""
    return ImageFont.truetype(file, GLYPH_PX)


def has_glyph(file: str, char: str) -> bool:
    """True when the font draws ``char`` with a real glyph rather than .notdef or nothing."""
    return glyph_image(file, char) is not None


def glyph_image(file: str, char: str, weight: int = 0) -> Image.Image | None:
    """``char`` drawn in white on black, emboldened by ``weight`` pixels, cropped to its ink.

    None when the font has no glyph for it.
    """
    image = _draw(file, char, weight)
    box = image.getbbox()
    if box is None or image.tobytes() == _notdef(file, weight):
        return None
    return image.crop(box)


@functools.lru_cache(maxsize=16)
def _notdef(file: str, weight: int) -> bytes:
    return _draw(file, _MISSING, weight).tobytes()


def _draw(file: str, char: str, weight: int) -> Image.Image:
    font = load_font(file)
    x0, y0, x1, y1 = font.getbbox(char, stroke_width=weight)
    image = Image.new("L", (x1 - x0 + 2, y1 - y0 + 2), 0)
    draw = ImageDraw.Draw(image)
    draw.text((1 - x0, 1 - y0), char, fill=255, font=font, stroke_width=weight, stroke_fill=255)
    return image


def render_glyph(
    glyph: Image.Image,
    style: WriterStyle,
    rng: np.random.Generator,
    settings: Settings | None = None,
) -> np.ndarray:
    """One sample of a glyph: the writer's affine, a smooth random warp, scan effects; normalised
    by ``settings`` (default :data:`~kanji_lab.data.normalize.SETTINGS`)."""
    w, h = glyph.size
    matrix = sample_affine(style, rng)
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=float) - (w / 2, h / 2)
    moved = corners @ matrix.T
    extent = float(np.max(moved.max(axis=0) - moved.min(axis=0))) * _UNITS_PER_PX
    scale = frame_scale(extent, style, rng) * _UNITS_PER_PX  # canvas pixels per glyph pixel
    centre = frame_centre(style, rng)
    inverse = np.linalg.inv(matrix * scale)
    grid = np.linspace(0, CANVAS, _MESH + 1)
    xs, ys = np.meshgrid(grid, grid)
    out = np.stack([xs, ys], axis=-1) - centre
    src = out @ inverse.T + (w / 2, h / 2)
    src += rng.normal(0.0, style.warp * max(w, h), src.shape)  # local warp, as a hand's wobble
    mesh = []
    for i in range(_MESH):
        for j in range(_MESH):
            box = (int(grid[j]), int(grid[i]), int(grid[j + 1]), int(grid[i + 1]))
            quad = (*src[i, j], *src[i + 1, j], *src[i + 1, j + 1], *src[i, j + 1])
            mesh.append((box, tuple(float(v) for v in quad)))
    canvas = glyph.transform((CANVAS, CANVAS), Image.Transform.MESH, mesh, Image.BILINEAR)
    return finish(canvas, style, rng, settings)
