"""The one normalisation: what it does to an image, and that every path applies it alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from kanji_lab.data import etl, normalize
from kanji_lab.data.normalize import draw_strokes, normalize_ink, strokes_input
from kanji_lab.data.strokes import build_strokes
from kanji_lab.deploy import weights
from kanji_lab.predict import load_image, trained_normalization
from tests.conftest import compose_app
from tests.etl_fixtures import Glyph, g_record, write

# 十 as two crossing strokes, and a few more shapes
JU = [np.array([[10.0, 50.0], [90.0, 50.0]]), np.array([[50.0, 5.0], [50.0, 95.0]])]
SHAPES = {
    "十": JU,
    "ハ": [np.array([[40.0, 10.0], [20.0, 80.0]]), np.array([[60.0, 10.0], [90.0, 85.0]])],
    "口": [np.array([[10.0, 10], [10, 60], [70, 60], [70, 10], [10, 10]])],
}


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(image > 128)
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def halved(image: np.ndarray) -> np.ndarray:
    return image.reshape(32, 2, 32, 2).astype(float).mean(axis=(1, 3))


def test_crop_centre_and_margin():
    image = np.zeros((100, 200), np.uint8)
    image[10:30, 120:180] = 200  # 20 x 60 block in the top right
    top, bottom, left, right = ink_box(normalize_ink(image))
    margin = 64 * normalize.SETTINGS["margin"] / (1 + 2 * normalize.SETTINGS["margin"])
    assert abs(left - margin) <= 1.5 and abs(63 - right - margin) <= 1.5
    assert abs((top + bottom) / 2 - 31.5) <= 1


def test_faint_ink_is_stretched_and_paper_level_removed():
    image = np.full((80, 80), 30, np.uint8)  # grey paper
    image[20:60, 38:42] = 60  # faint pencil line, 30 levels above the paper
    out = normalize_ink(image)
    assert out.max() == 255 and out[0, 0] == 0


def test_a_speck_of_dust_does_not_set_the_frame():
    image = np.zeros((200, 200), np.uint8)
    image[60:140, 95:105] = 255
    image[60:70, 60:140] = 255
    clean = normalize_ink(image)
    image[2, 2] = 255
    specked = normalize_ink(image)
    assert ink_box(specked) == ink_box(clean)  # (a speck counted in the box would shrink it)
    assert np.abs(specked.astype(int) - clean).mean() < 1


def test_blank_stays_blank_and_batches_match_singles():
    assert normalize_ink(np.zeros((30, 40), np.uint8)).max() == 0
    images = np.stack([draw_strokes(s)[:100, :100] for s in SHAPES.values()])
    batch = normalize_ink(images)
    for image, out in zip(images, batch, strict=True):
        assert np.array_equal(normalize_ink(image), out)


def test_strokes_ju_renders_as_two_crossing_strokes():
    out = strokes_input(JU)
    assert out[:, 30:34].max(axis=1)[8:56].min() > 128  # a vertical stroke down the middle
    assert out[30:34].max(axis=0)[8:56].min() > 128  # a horizontal one across it
    assert out[:20, :20].max() == 0 and out[44:, 44:].max() == 0  # nothing in the corners


def test_pen_width_does_not_depend_on_the_writing_size():
    small = strokes_input([s * 0.2 for s in JU])
    large = strokes_input([s * 7 + 300 for s in JU])
    assert np.abs(small.astype(int) - large).max() <= 2


@pytest.mark.parametrize("char", SHAPES)
def test_same_glyph_through_every_path(tmp_path, char):
    """A drawing read as strokes, as an image file (either polarity, anywhere on a larger page)
    and as an ETL9G record (4-bit levels in the 128x127 sheet frame) gives the same input."""
    drawing = draw_strokes(SHAPES[char])
    reference = strokes_input(SHAPES[char])

    page = np.zeros((drawing.shape[0] + 90, drawing.shape[1] + 40), np.uint8)
    page[70 : 70 + drawing.shape[0], 10 : 10 + drawing.shape[1]] = drawing
    Image.fromarray(255 - page).save(tmp_path / "dark_on_white.png")
    Image.fromarray(page).save(tmp_path / "light_on_dark.png")
    for name in ("dark_on_white.png", "light_on_dark.png"):
        assert np.abs(load_image(tmp_path / name).astype(int) - reference).max() <= 1, name

    side = max(drawing.shape)
    scale = 120 / side
    small = Image.fromarray(drawing).resize(
        (max(1, round(drawing.shape[1] * scale)), max(1, round(drawing.shape[0] * scale))),
        Image.Resampling.BOX,
    )
    levels = np.zeros((127, 128), np.uint8)
    glyph = np.rint(np.asarray(small, np.float32) * 15 / 255).astype(np.uint8)
    levels[3 : 3 + glyph.shape[0], 4 : 4 + glyph.shape[1]] = glyph
    path = write(tmp_path / "ETL9G_01", [g_record("9G", 1, 0x3021, Glyph(levels))])
    from_etl = etl.read_file(path, "ETL9G").images()[0].astype(int)
    # a 4-bit copy at 120 px: its edges are known to about half a source pixel, so the long
    # straight sides of 口 may move by a fraction of an output pixel
    assert np.abs(halved(from_etl) - halved(reference)).mean() < 6
    assert np.abs(np.subtract(ink_box(from_etl), ink_box(reference))).max() <= 1


def test_stroke_source_caches_what_strokes_input_draws(tmp_path):
    tdic = tmp_path / "one.tdic"
    tdic.write_text("十\n:2\n2 (10 50) (90 50)\n2 (50 5) (50 95)\n", encoding="utf-8")
    cfg = compose_app(
        "train", ["data=strokes", f"data.root={tdic}"], tmp_path / "run", tmp_path / "cache"
    ).data
    images = np.load(build_strokes(cfg, progress=False) / "images.npy")
    assert np.array_equal(images[0], strokes_input(JU))


def test_thin_lines_on_a_large_canvas_are_thickened(monkeypatch):
    canvas = np.zeros((400, 400), np.uint8)
    canvas[100:300, 198:202] = 255  # a 4 px line, 200 px long: well under a pixel at 64x64
    canvas[198:202, 100:300] = 255
    monkeypatch.setitem(normalize.SETTINGS, "min_width", 0.0)
    thin, pen = normalize_ink(canvas), strokes_input(JU)
    monkeypatch.setitem(normalize.SETTINGS, "min_width", 2.5)
    thick = normalize_ink(canvas)
    assert np.array_equal(pen, strokes_input(JU))  # the canonical pen is wider: left alone
    widths = normalize.stroke_widths(np.stack([thin, thick]).astype(np.float32))
    assert widths[0] < 2.2 and widths[1] >= 2.5
    assert np.abs(np.subtract(ink_box(thick), ink_box(thin))).max() <= 2


def test_predict_uses_the_normalisation_the_model_was_trained_with(tmp_path, monkeypatch):
    """A model trained with other settings (here a wider margin) gets its own framing back."""
    own = {**normalize.SETTINGS, "margin": 0.2}
    monkeypatch.setitem(weights.PREPROCESSING, "normalize", own)
    weights.save_weights(tmp_path / "model.safetensors", torch.nn.Linear(1, 1), "cnn", {}, ["十"])
    monkeypatch.undo()
    assert trained_normalization(tmp_path) == own
    drawing = draw_strokes(JU)
    Image.fromarray(255 - drawing).save(tmp_path / "ju.png")
    wide = load_image(tmp_path / "ju.png", settings=trained_normalization(tmp_path))
    assert np.array_equal(wide, normalize_ink(drawing, settings=own))
    assert not np.array_equal(wide, load_image(tmp_path / "ju.png"))
    assert trained_normalization(tmp_path / "nowhere") is None
