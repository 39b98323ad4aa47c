"""The faster normalisation (issue 21) gives the images the previous one gave, to the grey level.

The previous definition is read from git at the commit before the change (its normalize.py and
clutter.py, run as they were), and both are applied to records of every kind a cache is built
from: clean glyphs of many sizes, pens and positions, cells cut from a sheet with neighbours'
fragments and grid lines, specks, blank and nearly blank records, ink against the edges, in both
ETL record sizes (128x127 and 64x63) and depths (4-bit, 1-bit).
"""

from __future__ import annotations

import subprocess
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kanji_lab.data import clutter, etl, normalize
from kanji_lab.data.forms import cut_cells
from kanji_lab.data.kanjivg import load_strokes
from kanji_lab.data.normalize import SETTINGS, draw_strokes, normalize_ink
from tests.etl_fixtures import Glyph, b_dummy, b_record, g_record, m_record, write

REPO = Path(__file__).resolve().parents[1]
# the last commit with the previous normalisation (per-pixel labels, einsum resampling)
OLD_COMMIT = "e3ed03a0f1b50b1eb614a4d71c2a450bb097edf1"
CHARS = "亜韻翁がぱ川三回心小い十縄鬱永あ字明林森"


@pytest.fixture(autouse=True)
def without_flatten(monkeypatch):
    """These tests hold the compiled steps to the definition they replaced, which had no step 0
    (``flatten``, version 3), no bars along the edges (``clutter_bar``, version 4; both in
    tests/test_clutter.py), the quantile box (``frame_sd``, version 5: tests/test_frame.py) and
    a linear resize (``density``, version 6: tests/test_density.py); with them off the
    definitions are the same."""
    monkeypatch.setitem(SETTINGS, "flatten", 0.0)
    monkeypatch.setitem(SETTINGS, "clutter_bar", 0.0)
    monkeypatch.setitem(SETTINGS, "frame_sd", 0.0)
    monkeypatch.setitem(SETTINGS, "density", 0.0)


@pytest.fixture(scope="module")
def old() -> types.ModuleType:
    """The previous normalize.py (with its clutter.py) as a module."""

    def show(path: str) -> str:
        done = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:{path}"], cwd=REPO, capture_output=True, text=True
        )
        if done.returncode:
            pytest.skip(f"the previous normalisation is not in this checkout's history: {path}")
        return done.stdout

    old_clutter = types.ModuleType("old_clutter")
    exec(compile(show("kanji_lab/data/clutter.py"), "old_clutter.py", "exec"), vars(old_clutter))
    module = types.ModuleType("old_normalize")
    module.remove_clutter = old_clutter.remove_clutter
    source = show("kanji_lab/data/normalize.py")
    source = source.replace("from kanji_lab.data.clutter import remove_clutter\n", "")
    exec(compile(source, "old_normalize.py", "exec"), vars(module))
    return module


def drawn(char: str, pen: float = 0.05) -> np.ndarray:
    s = load_strokes(char)
    strokes = [s.points[a:b] for a, b in zip(s.starts, s.ends, strict=True)]
    return draw_strokes(strokes, {**SETTINGS, "pen": pen})


def placed(drawing: np.ndarray, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """The drawing at 20..110% of the frame, anywhere (cut by the edges at times)."""
    h, w = shape
    f = rng.uniform(0.2, 1.1) * min(h, w) / max(drawing.shape)
    size = (max(1, round(drawing.shape[1] * f)), max(1, round(drawing.shape[0] * f)))
    small = np.asarray(Image.fromarray(drawing).resize(size, Image.Resampling.BOX))
    y = int(rng.integers(-small.shape[0] // 4, h - small.shape[0] * 3 // 4 + 1))
    x = int(rng.integers(-small.shape[1] // 4, w - small.shape[1] * 3 // 4 + 1))
    out = np.zeros(shape, np.uint8)
    ys, xs, ye, xe = max(0, y), max(0, x), min(h, y + small.shape[0]), min(w, x + small.shape[1])
    out[ys:ye, xs:xe] = small[ys - y : ye - y, xs - x : xe - x]
    return out


def levels(ink: np.ndarray, rng: np.random.Generator, max_level: int) -> np.ndarray:
    """Ink-bright uint8 -> raw levels: a pen level up to ``max_level``, paper noise at times."""
    top = rng.integers(max(1, max_level - 6), max_level + 1)
    out = np.rint(ink.astype(np.float32) * top / 255).astype(np.int64)
    if max_level > 1 and rng.random() < 0.7:
        out += rng.integers(0, rng.integers(1, 4), out.shape)
    return np.clip(out, 0, max_level).astype(np.uint8)


def varied(count: int, shape: tuple[int, int], max_level: int, seed: int) -> np.ndarray:
    """``count`` raw level images of every kind (see the module text)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    drawings = [drawn(c, pen) for c in CHARS for pen in (0.02, 0.05)]
    glyphs = normalize_ink(np.stack([placed(d, rng, (96, 96)) for d in drawings[:12]]))
    out = []
    for i in range(count):
        kind = i % 8
        if kind <= 2:  # a clean glyph
            ink = placed(drawings[rng.integers(len(drawings))], rng, shape)
        elif kind <= 4:  # a cell cut from a sheet: neighbours' fragments, a grid at times
            cell = cut_cells(glyphs[rng.permutation(len(glyphs))[:3]], rng, grid=0.5)[0]
            ink = np.asarray(Image.fromarray(cell).resize((w, h), Image.Resampling.BILINEAR))
        elif kind == 5:  # blank, or a speck, or a dot of ink alone
            ink = np.zeros(shape, np.uint8)
            if rng.random() < 0.7:
                r, c = rng.integers(0, h - 2), rng.integers(0, w - 2)
                ink[r : r + rng.integers(1, 3), c : c + rng.integers(1, 3)] = 255
        elif kind == 6:  # ink against an edge, a ruled line
            ink = placed(drawings[rng.integers(len(drawings))], rng, shape)
            edge = rng.integers(0, 4)
            if edge == 0:
                ink[:3] = 200
            elif edge == 1:
                ink[:, -2:] = 255
            elif edge == 2:
                ink[h // 2 : h // 2 + 2] = 255
            else:
                ink[:, : rng.integers(1, 6)] = 180
        else:  # specks of dust around a glyph
            ink = placed(drawings[rng.integers(len(drawings))], rng, shape)
            for _ in range(rng.integers(1, 12)):
                r, c = rng.integers(0, h - 2), rng.integers(0, w - 2)
                ink[r : r + 2, c : c + 2] = 255
        out.append(levels(ink, rng, max_level))
    return np.stack(out)


def scaled(raw: np.ndarray, max_level: int) -> np.ndarray:
    return np.rint(raw.astype(np.float64) * 255 / max_level).astype(np.uint8)


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    """Within one grey level everywhere, and exactly equal nearly everywhere (an off-by-one
    everywhere would be a changed definition, not rounding)."""
    diff = np.abs(got.astype(np.int16) - want)
    assert diff.max() <= 1, (diff.max(), np.argwhere(diff > 1)[:5])
    assert np.count_nonzero(diff) <= 1e-3 * diff.size, np.count_nonzero(diff)


@pytest.mark.parametrize(
    "kind, shape, max_level, record",
    [
        ("9G", (127, 128), 15, g_record),
        ("8G", (127, 128), 15, g_record),
        ("M", (63, 64), 15, None),
        ("9B", (63, 64), 1, b_record),
    ],
)
def test_etl_records_decode_as_before(tmp_path, old, kind, shape, max_level, record):
    """Records of each size and depth, written byte-exact and read through the ETL reader."""
    raw = varied(96, shape, max_level, seed=len(kind) * 10 + max_level)
    if kind == "M":
        records = [m_record(1, 0xB1, Glyph(r)) for r in raw]
        name, part = "ETL6C_01", "ETL6"
    elif kind == "9B":
        records = [b_dummy("9B")] + [b_record("9B", 1, 0x3021, Glyph(r)) for r in raw]
        name, part = "ETL9B_1", "ETL9B"
    else:
        records = [record(kind, 1, 0x3021, Glyph(r)) for r in raw]
        name, part = f"ETL{kind}_01", f"ETL{kind}"
    got = etl.read_file(write(tmp_path / name, records), part).images()
    assert_close(got, old.normalize_ink(scaled(raw, max_level)))


def test_cells_cut_from_sheets_and_drawings_as_before(old):
    """Cut cells (each its own size) and tightly cropped drawings, one at a time and as one
    batch of equal size."""
    rng = np.random.default_rng(7)
    glyphs = normalize_ink(np.stack([drawn(c)[:120, :120] for c in CHARS[:8]]))
    cells = cut_cells(glyphs, rng, grid=0.6) + cut_cells(glyphs, rng, fill=(0.6, 0.9))
    for image in cells + [drawn(c, pen) for c in CHARS[:6] for pen in (0.012, 0.08)]:
        assert_close(normalize_ink(image), old.normalize_ink(image))
    batch = np.stack([c[:110, :110] for c in cells])
    assert_close(normalize_ink(batch), old.normalize_ink(batch))


@pytest.mark.parametrize("shape", [(1, 1), (1, 60), (60, 1), (2, 2), (3, 200), (240, 7)])
def test_odd_shapes_and_blank_images_as_before(old, shape):
    rng = np.random.default_rng(sum(shape))
    images = [
        np.zeros(shape, np.uint8),  # blank
        np.full(shape, 90, np.uint8),  # uniform grey paper
        (rng.random(shape) < 0.3).astype(np.uint8) * 255,  # scattered ink
        rng.integers(0, 256, shape).astype(np.uint8),  # noise
        np.full(shape, 255, np.uint8),  # all ink
    ]
    for image in images:
        assert_close(normalize_ink(image), old.normalize_ink(image))


@pytest.mark.parametrize(
    "changed",
    [
        {"clutter_band": 0.0},
        {"clutter_band": 0.3, "clutter_mass": 0.3},
        {"min_width": 0.0},
        {"min_width": 3.5},
        {"margin": 0.2, "trim": 0.01},
        {"threshold": 0.5, "peak_fraction": 0.05},
    ],
)
def test_other_settings_as_before(old, changed):
    """Models trained with other settings get their own normalisation, as before."""
    images = scaled(varied(40, (127, 128), 15, seed=3), 15)
    settings = {**SETTINGS, **changed}
    assert_close(
        normalize_ink(images, settings=settings), old.normalize_ink(images, settings=settings)
    )


def test_clean_canvases_and_other_sizes_as_before(old):
    images = scaled(varied(40, (127, 128), 15, seed=4), 15)
    assert_close(normalize_ink(images, clean=True), old.normalize_ink(images, clean=True))
    assert_close(normalize_ink(images, 32), old.normalize_ink(images, 32))


def test_batches_equal_singles():
    """An image comes out the same alone and in a batch (the working memory the batch reuses
    from image to image carries nothing over)."""
    images = scaled(varied(35, (127, 128), 15, seed=5), 15)
    batch = normalize_ink(images)
    singles = np.stack([normalize_ink(image) for image in images])
    assert np.array_equal(batch, singles)


def test_public_steps_leave_their_input_alone():
    """remove_clutter works in place internally, never on the caller's array."""
    images = scaled(varied(16, (127, 128), 15, seed=6), 15)
    ink = normalize.stretch_contrast(images)
    before = ink.copy()
    cleaned = clutter.remove_clutter(ink, SETTINGS)
    assert np.array_equal(ink, before)
    assert not np.array_equal(cleaned, ink)


def test_integer_and_boolean_images_are_read_as_levels():
    image = scaled(varied(1, (127, 128), 15, seed=8), 15)[0]
    assert np.array_equal(normalize_ink(image.astype(np.int64)), normalize_ink(image))
    mask = image > 128
    assert np.array_equal(normalize_ink(mask), normalize_ink(mask.astype(np.uint8)))
    assert normalize_ink(np.zeros((0, 30, 30), np.uint8)).shape == (0, 64, 64)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros(30, np.uint8), r"images \(H, W\) or \(N, H, W\), not \(30,\)"),
        (np.zeros((2, 0, 30), np.uint8), r"not \(2, 0, 30\)"),
        (np.zeros((30, 30), np.float32), "uint8 images .*not float32"),
        (np.full((30, 30), 256, np.int64), r"not int64 in 256\.\.256"),
        (np.full((30, 30), -1, np.int16), r"not int16 in -1\.\.-1"),
    ],
)
def test_what_is_not_an_image_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        normalize_ink(bad)


def test_images_with_more_runs_than_the_first_scratch_holds(old):
    """A checkerboard has a run on every other pixel: the working memory grows for it, and the
    image after it in the batch comes out as alone."""
    rng = np.random.default_rng(11)
    board = (np.indices((60, 90)).sum(axis=0) % 2 * 255).astype(np.uint8)
    glyph = scaled(varied(1, (60, 90), 15, seed=12), 15)[0]
    noisy = (rng.random((60, 90)) < 0.5).astype(np.uint8) * 255
    batch = np.stack([glyph, board, noisy, glyph])
    got = normalize_ink(batch)
    assert_close(got, old.normalize_ink(batch))
    assert np.array_equal(got[0], got[3]) and np.array_equal(got[3], normalize_ink(glyph))
    assert clutter.run_scratch(60, 90).shape[1] < 60 * 45  # smaller than the checkerboard needs


def edges_by_numpy(line: np.ndarray) -> list[int]:
    """Where a 0 / 1 row changes between paper and ink (an open run closes at the row's end)."""
    padded = np.concatenate([[0], line, [0]]).astype(np.int8)
    return np.flatnonzero(np.diff(padded)).tolist()


@pytest.mark.parametrize("width", [1, 7, 8, 9, 37, 64, 128])
def test_run_edges_word_by_word_are_those_pixel_by_pixel(width):
    """The run search passes over whole 8-pixel words (a width that is a multiple of 8) or goes
    pixel by pixel (any other width); both find every change, in rows of every density."""
    rng = np.random.default_rng(width)
    mask = np.stack([rng.random(width) < d for d in np.linspace(0, 1, 60)] + [np.ones(width)])
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    flat = mask.view(np.uint8).reshape(-1)
    words = flat.view(np.uint64) if width % 8 == 0 else np.empty(0, np.uint64)
    per_row = width // 8 if width % 8 == 0 else 0
    edges = np.empty(width + 2, np.int64)
    for y, line in enumerate(mask):
        k = clutter._row_edges(
            flat, y * width, width, words[y * per_row : (y + 1) * per_row], edges
        )
        assert edges[:k].tolist() == edges_by_numpy(line), (width, y)


def contrast_by_numpy(image: np.ndarray, rank: int, peak_floor: float) -> tuple[float, float]:
    """The paper and gain of step 2 (module text of normalize.py), from a sort."""
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    border = np.sort(border[: 2 * image.shape[1] + 2 * max(image.shape[0] - 2, 0)])
    paper = int(border[(len(border) + 1) // 2 - 1])
    ranked = np.sort(image.ravel())[::-1]
    top = int(ranked[rank - 1]) if rank <= ranked.size else 0
    peak = max(float(top), paper + peak_floor * (int(ranked[0]) - paper))
    gain = 255.0 / max(peak - paper, 1e-6) if peak > paper else 0.0
    return float(np.float32(paper)), float(np.float32(gain))


def test_ink_level_by_bisection_is_the_ranked_pixel():
    """The ink level is found by counting pixels at or above a level, halving the range of
    levels each time: it is the level of the rank-th brightest pixel (or the floor) as a full
    sort gives it, for ink of every level, few bright pixels, blank and full images."""
    rng = np.random.default_rng(0)
    images = list(scaled(varied(40, (127, 128), 15, seed=9), 15))
    images += [rng.integers(0, 256, (40, 30)).astype(np.uint8) for _ in range(10)]
    for top in (3, 80, 200, 255):  # a few pixels brighter than the rest
        image = rng.integers(0, 60, (50, 50)).astype(np.uint8)
        image.flat[rng.choice(image.size, rng.integers(1, 40), replace=False)] = top
        images.append(image)
    images += [
        np.zeros((9, 9), np.uint8),
        np.full((9, 9), 255, np.uint8),
        np.zeros((1, 1), np.uint8),
    ]
    for image in images:
        for rank in (1, 12, normalize._peak_rank(image, SETTINGS), image.size, image.size + 5):
            for peak_floor in (0.0, 0.5, 1.0):
                want = contrast_by_numpy(image, rank, peak_floor)
                got = normalize._contrast(image, rank, peak_floor)
                assert (float(got[0]), float(got[1])) == want, (image.shape, rank, peak_floor)
