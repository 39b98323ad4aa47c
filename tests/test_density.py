"""Step 5's line density (``density``): within the ink box, part of each axis's room follows how
close together the strokes lie (Tsukumo and Tanaka's nonlinear normalisation)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from kanji_lab.data import normalize
from kanji_lab.data.normalize import normalize_ink
from tests.test_clutter import CHARS, browser_inputs, cut_cells, drawn, framed

LINEAR = {**normalize.SETTINGS, "density": 0.0}
DENSE = {**normalize.SETTINGS, "density": 0.5}


def comb() -> np.ndarray:
    """Five close vertical bars on the left, one bar far to the right (a dense radical beside a
    sparse one)."""
    image = np.zeros((100, 160), np.uint8)
    for x in (10, 20, 30, 40, 50):
        image[10:90, x : x + 4] = 255
    image[10:90, 146:150] = 255
    return image


def inked(image: np.ndarray, axis: int) -> np.ndarray:
    """The output columns (``axis=0``) or rows (``axis=1``) that hold ink over half its level."""
    return np.flatnonzero((image > 127).any(axis=axis))


def test_close_strokes_get_more_room_and_the_box_keeps_its_place():
    linear, dense = normalize_ink(comb(), settings=LINEAR), normalize_ink(comb(), settings=DENSE)
    assert inked(dense, 0)[[0, -1]] == pytest.approx(inked(linear, 0)[[0, -1]], abs=1)
    # the comb spreads: its five bars reach further right, the gap to the lone bar shrinks
    assert last_before(dense, 0, 44) > last_before(linear, 0, 44) + 4


def test_rows_follow_the_density_of_horizontal_strokes():
    """The same on the other axis: the comb turned on its side."""
    image = comb().T.copy()
    linear, dense = normalize_ink(image, settings=LINEAR), normalize_ink(image, settings=DENSE)
    assert last_before(dense, 1, 44) > last_before(linear, 1, 44) + 4


def last_before(image: np.ndarray, axis: int, limit: int) -> int:
    """The last inked column (row) before output position ``limit``."""
    found = inked(image, axis)
    return int(found[found < limit].max())


def test_models_without_the_setting_read_linearly():
    """Models before version 6 have no ``density``: the resize stays linear."""
    before = {k: v for k, v in normalize.SETTINGS.items() if k != "density"}
    for image in (comb(), drawn("極")):
        assert np.array_equal(
            normalize_ink(image, settings=before), normalize_ink(image, settings=LINEAR)
        )


def test_one_stroke_blank_and_dot_images_stay_linear():
    """Without a gap between two strokes there is no density to follow."""
    bar = np.zeros((60, 60), np.uint8)
    bar[10:50, 28:32] = 255
    dot = np.zeros((40, 30), np.uint8)
    dot[20, 15] = 255
    for image in (bar, dot, np.zeros((40, 30), np.uint8)):
        assert np.array_equal(
            normalize_ink(image, settings=DENSE), normalize_ink(image, settings=LINEAR)
        )


def test_density_does_not_depend_on_the_resolution():
    """The density is measured on the frame at the model's resolution: the same character
    scanned at three times the resolution, or with a pinhole in a stroke, reads as before."""
    large = np.kron(comb(), np.ones((3, 3), np.uint8))
    holed = large.copy()
    holed[150, 441:445] = 0  # a pinhole in the lone bar (columns 438..449)
    want, linear = normalize_ink(comb(), settings=DENSE), normalize_ink(comb(), settings=LINEAR)
    effect = np.abs(want.astype(int) - linear).mean()
    for image in (large, holed):
        assert np.abs(normalize_ink(image, settings=DENSE).astype(int) - want).mean() < effect / 10


@pytest.mark.parametrize("density", [1.0, -0.1, float("nan")])
def test_a_density_outside_its_range_is_refused(density):
    with pytest.raises(ValueError, match=r"density must be in \[0, 1\)"):
        normalize_ink(comb(), settings={**normalize.SETTINGS, "density": density})


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_browser_follows_the_density_as_python():
    glyphs = np.stack([framed(c) for c in CHARS])
    images = [*cut_cells(glyphs, np.random.default_rng(7)), *(drawn(c) for c in CHARS), comb()]
    got = browser_inputs(images, DENSE)
    want = np.stack([normalize_ink(i, settings=DENSE) for i in images]).reshape(len(images), -1)
    assert np.abs(got - want).max() <= 1


def test_a_form_writers_glyphs_are_resized_linearly_before_the_cut(monkeypatch):
    """A form writer's cells are normalised once cut from its sheet, so the glyphs written on the
    sheet are not reshaped by the line density first (it would apply twice); other writers'
    samples are normalised once, with it."""
    from kanji_lab.data import synthetic
    from kanji_lab.data.kanjivg import load_strokes
    from kanji_lab.data.synthetic import render

    used = []

    def spy(images, settings=None, clean=False):
        used.append((settings or normalize.SETTINGS)["density"])
        return normalize_ink(images, settings=settings, clean=clean)

    monkeypatch.setattr(render, "normalize_ink", spy)
    monkeypatch.setattr(synthetic, "_STROKES", {c: load_strokes(c) for c in "永木"})
    images, _ = synthetic.render_task((0, 0, "form", "", (("永", 0), ("木", 0))))
    assert used == [0.0, 0.0] and images.shape == (2, 64, 64)
    used.clear()
    synthetic.render_task((0, 1, "pen", "", (("永", 0),)))
    assert used == [normalize.SETTINGS["density"]] and used[0] > 0
