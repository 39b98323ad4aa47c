"""Step 3's frame from version 5: the quantile box narrowed to the ink's mass centre +- frame_sd
standard deviations, each pixel weighing at most frame_cap x 255 in the moments."""

from __future__ import annotations

import numpy as np

from kanji_lab.data import normalize
from kanji_lab.data.normalize import normalize_ink

QUANTILE = {**normalize.SETTINGS, "frame_sd": 0.0}


def tailed() -> np.ndarray:
    """A compact body (a 40x40 ring) with one long thin stroke running far to the right."""
    image = np.zeros((120, 200), np.uint8)
    image[40:80, 30:70] = 255
    image[50:70, 40:60] = 0
    image[60, 70:160] = 255
    return image


def extent(image: np.ndarray) -> tuple[int, int]:
    """Rows and columns of the output that hold ink (over half the ink level)."""
    ys, xs = np.nonzero(image > 127)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def test_a_long_thin_tail_does_not_set_the_size():
    """The body is drawn larger than by the extent of all the ink, and the tail runs out of the
    frame; version 4's box keeps the whole tail, and the body small."""
    moment, quantile = normalize_ink(tailed()), normalize_ink(tailed(), settings=QUANTILE)
    assert extent(moment)[0] > 1.3 * extent(quantile)[0]
    assert moment[:, -1].max() > 127  # the tail leaves the frame
    assert quantile[:, -1].max() == 0


def test_a_character_whose_mass_sits_at_its_edges_keeps_its_extent():
    """Two bars far apart (川, い): 2 sd of their mass reach beyond the ink, and the box stays
    the quantile box, so such characters read as in version 4."""
    image = np.zeros((90, 90), np.uint8)
    image[10:80, 10:14] = 255
    image[10:80, 70:74] = 255
    assert np.array_equal(normalize_ink(image), normalize_ink(image, settings=QUANTILE))


def test_darker_ink_in_one_part_does_not_move_the_frame():
    """Pen pressure or light that leaves one part of the character at 60% of the ink level:
    every pixel above half the level weighs the same, so only the levels change, not where the
    ink is drawn."""
    even = tailed()
    uneven = even.copy()
    uneven[:, 35:] = (uneven[:, 35:] * 0.6).astype(np.uint8)
    assert np.array_equal(normalize_ink(even) > 0, normalize_ink(uneven) > 0)
    raw = {**normalize.SETTINGS, "frame_cap": 1.0}  # every level its own weight: it moves
    assert not np.array_equal(
        normalize_ink(even, settings=raw) > 0, normalize_ink(uneven, settings=raw) > 0
    )


def test_models_without_the_setting_read_as_before():
    """Settings of models trained before version 5 have no ``frame_sd`` (nor ``frame_cap``)."""
    before = {k: v for k, v in normalize.SETTINGS.items() if k not in ("frame_sd", "frame_cap")}
    assert np.array_equal(
        normalize_ink(tailed(), settings=before), normalize_ink(tailed(), settings=QUANTILE)
    )


def test_blank_and_single_pixel_images_keep_a_frame():
    assert not normalize_ink(np.zeros((40, 30), np.uint8)).any()
    dot = np.zeros((40, 30), np.uint8)
    dot[20, 15] = 255
    out = normalize_ink(dot)
    assert out.max() == 255 and out.shape == (64, 64)
