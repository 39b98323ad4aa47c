"""Clutter removal: a character cut from a form reads like the clean character, in Python and in
the browser's normalize.js alike, and clean characters are left as they were."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kanji_lab.data import normalize
from kanji_lab.data.clutter import remove_clutter
from kanji_lab.data.forms import PITCH, cut_cells
from kanji_lab.data.images import has_dark_ink, normalize_image
from kanji_lab.data.kanjivg import load_strokes
from kanji_lab.data.normalize import draw_strokes, normalize_ink
from tests.test_frame import tailed

NORMALIZE_JS = Path(normalize.__file__).parents[1] / "web" / "static" / "normalize.js"
CHARS = "がぱ川三回心小い十縄"
OFF = {**normalize.SETTINGS, "clutter_band": 0.0}


def drawn(char: str) -> np.ndarray:
    strokes = load_strokes(char)
    return draw_strokes(
        [strokes.points[a:b] for a, b in zip(strokes.starts, strokes.ends, strict=True)]
    )


def framed(char: str) -> np.ndarray:
    """The drawing framed by its ink's extent (the quantile box) and resized linearly, whatever
    the definition under test reads with: the glyph the tests write into cells at a known size."""
    return normalize_ink(drawn(char), settings={**normalize.linear(), "frame_sd": 0.0})


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


def in_cell(glyph: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The glyph at half a cell's side in the middle of an empty PITCH x PITCH cell."""
    cell = np.zeros((PITCH, PITCH), np.uint8)
    side = PITCH // 2
    small = np.asarray(Image.fromarray(glyph).resize((side, side), Image.Resampling.BILINEAR))
    y, x = rng.integers(PITCH // 4 - 6, PITCH // 4 + 6, 2)
    cell[y : y + side, x : x + side] = small
    return cell


def cluttered(cell: np.ndarray) -> np.ndarray:
    """The same cell with a neighbour's stroke end and dot at the edges, a grid line along the
    bottom and left edges, and specks of dust."""
    out = cell.copy()
    out[0:4, 20:45] = 255  # a stroke of the character above, cut by the cell's edge
    out[60:64, 121:125] = 230  # a dot from the cell to the right
    out[PITCH - 3 : PITCH - 1, :] = 200  # the grid line below
    out[:, 1:3] = 200  # and on the left
    out[18, 100] = out[110, 90] = 255  # dust
    return out


def shaded(cell: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The cell on grey paper lit unevenly: a gradient at a random angle, a soft shadow and
    grain, the ink laid over it (ink bright, as normalize_ink takes it)."""
    h, w = cell.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    dy, dx = np.sin(a := rng.uniform(0, 2 * np.pi)), np.cos(a)
    light = 70 * (dx * (xx - 0.5) + dy * (yy - 0.5))
    cy, cx = rng.uniform(0, 1, 2)
    shadow = 60 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.05)
    paper = 60 + light + shadow + rng.normal(0, 4, cell.shape)
    return np.clip(paper + cell * (1 - paper / 255), 0, 255).astype(np.uint8)


def test_clean_drawings_are_unchanged():
    """Tightly cropped drawings with detached parts near every edge (dakuten, 川's strokes, the
    dots of 心, the top of 三) keep every part."""
    for char in CHARS:
        image = drawn(char)
        assert np.array_equal(normalize_ink(image), normalize_ink(image, settings=OFF)), char


def test_uneven_paper_is_flattened_and_clean_paper_left_alone():
    """Light falling across the page and a shadow (step 0, ``flatten``) leave the character;
    without the step they move and swamp it. On clean paper the step changes nothing."""
    rng, flat_off = np.random.default_rng(0), {**normalize.SETTINGS, "flatten": 0.0}
    on, off = [], []
    for char in CHARS:
        cell = in_cell(framed(char), rng)
        clean = normalize_ink(cell)
        assert np.array_equal(clean, normalize_ink(cell, settings=flat_off)), char
        assert np.array_equal(
            normalize_ink(drawn(char)), normalize_ink(drawn(char), settings=flat_off)
        )
        lit = shaded(cell, rng)
        on.append(mean_diff(normalize_ink(lit), clean))
        off.append(mean_diff(normalize_ink(lit, settings=flat_off), clean))
    assert np.mean(on) < 0.4 * np.mean(off) and np.mean(on) < 8.0, (on, off)


def test_ink_wider_than_the_flatten_window_is_not_hollowed():
    """A blot or a bold stroke wider than step 0's window is ink, not raised paper."""
    image = np.zeros((80, 40), np.uint8)
    image[10:71, 10:31] = 255
    assert np.array_equal(
        normalize_ink(image), normalize_ink(image, settings={**normalize.SETTINGS, "flatten": 0.0})
    )


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (2, 2), (13, 13), (9, 17)])
def test_flatten_grey_opening_takes_each_cells_neighbourhood(shape):
    """Step 0's 3x3 minimum and maximum over the cells: each cell's extreme over itself and the
    neighbours that exist, as a plain window over the grid padded with its own edge."""
    cells = np.random.default_rng(len(shape) + shape[0] * 31 + shape[1]).integers(
        0, 256, shape, dtype=np.uint8
    )
    padded = np.pad(cells, 1, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
    assert np.array_equal(normalize._cells_3x3(cells, True), windows.min(axis=(2, 3)))
    assert np.array_equal(normalize._cells_3x3(cells, False), windows.max(axis=(2, 3)))


def test_fragments_grid_lines_and_specks_are_removed():
    for char in CHARS:
        cell = in_cell(framed(char), np.random.default_rng(0))
        clean, messy = normalize_ink(cell), cluttered(cell)
        assert mean_diff(normalize_ink(messy), clean) < 2.0, char
        assert mean_diff(normalize_ink(messy, settings=OFF), clean) > 10.0, char  # it mattered


def beside(cell: np.ndarray) -> np.ndarray:
    """The cell with a long stroke of the neighbour on its left, parallel to the edge, not cut
    by it, and heavier than the character's own thin strokes allow a fragment to be."""
    out = cell.copy()
    out[34:94, 4:7] = 255
    return out


def test_a_neighbours_long_stroke_beside_the_cell_is_removed():
    """A bar along an edge (version 4) goes when the character leaves the opposite side free; a
    tightly cut drawing whose own strokes lie along both edges (川, 亘) keeps them, and models
    whose settings have no ``clutter_bar`` read as before."""
    no_bar = {**normalize.SETTINGS, "clutter_bar": 0.0}
    before = {k: v for k, v in normalize.SETTINGS.items() if k != "clutter_bar"}
    kept = 0
    for char in CHARS:
        cell = in_cell(framed(char), np.random.default_rng(0))
        clean, messy = normalize_ink(cell), beside(cell)
        assert mean_diff(normalize_ink(messy), clean) < 2.0, char
        kept += mean_diff(normalize_ink(messy, settings=no_bar), clean) > 10.0
        assert np.array_equal(normalize_ink(messy, settings=before),
                              normalize_ink(messy, settings=no_bar))  # fmt: skip
    assert kept >= len(CHARS) - 2  # the rules before bars kept it (a light 縄 dropped it anyway)
    for char in "川亘はい":
        image = drawn(char)
        assert np.array_equal(normalize_ink(image), normalize_ink(image, settings=no_bar)), char


def test_cells_cut_from_a_sheet_read_closer_to_the_clean_character():
    glyphs = np.stack([framed(c) for c in CHARS])
    cells = cut_cells(glyphs, np.random.default_rng(3))
    assert len(cells) == len(glyphs) and all(c.dtype == np.uint8 for c in cells)
    assert all(abs(c.shape[0] - PITCH) <= 0.2 * PITCH for c in cells)
    read = [normalize_ink(drawn(c)) for c in CHARS]
    on = np.mean([mean_diff(normalize_ink(c), r) for c, r in zip(cells, read, strict=True)])
    off = np.mean(
        [mean_diff(normalize_ink(c, settings=OFF), r) for c, r in zip(cells, read, strict=True)]
    )
    assert on < 0.6 * off, (on, off)


def test_a_cell_framed_by_its_grid_reads_as_dark_ink_on_paper():
    """A cell cut along the grid of a form has ink all along its edges: the polarity of an image
    file comes from the paper around the character, not from the outermost pixels (which read
    the paper as ink before)."""
    for char in "川回が":
        cell = in_cell(framed(char), np.random.default_rng(0))
        gridded = cell.copy()
        gridded[:2], gridded[-2:], gridded[:, :2], gridded[:, -2:] = 220, 220, 220, 220
        assert has_dark_ink(255 - gridded) and not has_dark_ink(gridded)
        scan = Image.fromarray(255 - gridded)  # dark ink and grid on white paper
        assert np.array_equal(normalize_image(scan), normalize_ink(gridded)), char
        assert np.array_equal(normalize_image(Image.fromarray(gridded)), normalize_ink(gridded))


def test_cut_cells_is_deterministic_and_refuses_a_single_glyph():
    glyphs = np.stack([framed(c) for c in "川三回"])
    a = cut_cells(glyphs, np.random.default_rng(5))
    b = cut_cells(glyphs, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(ValueError, match="at least two glyphs"):
        cut_cells(glyphs[:1], np.random.default_rng(0))


def test_switched_off_by_a_zero_band():
    messy = cluttered(in_cell(framed("川"), np.random.default_rng(0)))
    ink = normalize.stretch_contrast(messy[None])
    assert np.array_equal(remove_clutter(ink, OFF), ink)
    assert not np.array_equal(remove_clutter(ink, normalize.SETTINGS), ink)


def browser_inputs(images: list[np.ndarray], settings: dict) -> np.ndarray:
    """``normalize.js``'s ``normalizeInk`` of each image under ``settings`` (Node.js), flat."""
    payload = [
        {"width": i.shape[1], "height": i.shape[0], "data": i.ravel().tolist()} for i in images
    ]
    script = (
        f"import {{ normalizeInk }} from {json.dumps(NORMALIZE_JS.as_uri())};"
        "let text = ''; process.stdin.on('data', d => text += d);"
        "process.stdin.on('end', () => { const {images, settings} = JSON.parse(text);"
        "console.log(JSON.stringify(images.map(i => Array.from(normalizeInk("
        "{width: i.width, height: i.height, data: Uint8Array.from(i.data)}, settings))))); });"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=json.dumps({"images": payload, "settings": settings}),
        capture_output=True,
        text=True,
        check=True,
    )
    return np.array(json.loads(done.stdout), dtype=np.int64)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_browser_normalisation_matches_python_on_cluttered_and_shaded_cells():
    glyphs = np.stack([framed(c) for c in CHARS])
    images = [*cut_cells(glyphs, np.random.default_rng(7)), *(drawn(c) for c in CHARS[:3])]
    images.append(cluttered(in_cell(glyphs[0], np.random.default_rng(1))))
    images += [beside(in_cell(g, np.random.default_rng(4))) for g in glyphs[:3]]
    images += [drawn(c) for c in "亘は"]
    rng = np.random.default_rng(2)
    images += [shaded(in_cell(g, rng), rng) for g in glyphs[:4]]
    blot = np.zeros((80, 40), np.uint8)
    blot[10:71, 10:31] = 255
    images.append(np.maximum(shaded(blot, rng), blot))
    images += [tailed(), shaded(tailed(), rng)]  # frames narrowed to the moments (version 5)
    got = browser_inputs(images, normalize.SETTINGS)
    want = np.stack([normalize_ink(i) for i in images]).reshape(len(images), -1)
    assert np.abs(got - want).max() <= 1


def test_the_generators_canvases_are_left_as_they_are_by_the_clutter_step(monkeypatch):
    """The synthetic generator skips the clutter step on its own canvases (``clean=True``):
    allowed only because the step changes none of them."""
    from kanji_lab.data.synthetic import render

    def samples() -> list[np.ndarray]:
        out = []
        for family in ("pen", "pencil", "brush", "cursive", "touch"):
            style = render.writer_style(family, np.random.default_rng(3))
            for char in CHARS:
                rng = np.random.default_rng(ord(char))
                out.append(render.render_strokes(load_strokes(char), style, rng))
        return out

    skipped = samples()
    monkeypatch.setattr(
        render,
        "normalize_ink",
        lambda images, settings=None, clean=False: normalize_ink(images, settings=settings),
    )
    assert all(np.array_equal(a, b) for a, b in zip(skipped, samples(), strict=True))
