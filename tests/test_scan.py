"""The synthetic hands' compiled scan effects (kanji_lab.data.synthetic.scan)."""

from __future__ import annotations

import numpy as np
import pytest

from kanji_lab.data.synthetic.scan import scan

NO_GRAIN = np.empty((0, 0), np.float32)


@pytest.fixture
def drawn() -> np.ndarray:
    image = np.zeros((20, 20), np.uint8)
    image[5:15, 8:12] = 255
    image[5:15, 12] = 128
    return image


def test_full_ink_and_no_noise_keeps_the_drawing(drawn) -> None:
    quiet = np.zeros(drawn.shape, np.float32)
    out = scan(drawn, NO_GRAIN, np.float32(1.0), quiet, 256, np.float32(0))
    np.testing.assert_array_equal(out, drawn)


def test_noise_shows_on_paper_and_not_under_full_ink(drawn) -> None:
    noise = np.full(drawn.shape, 9.0, np.float32)
    out = scan(drawn, NO_GRAIN, np.float32(1.0), noise, 256, np.float32(0))
    assert (out[drawn == 0] == 9).all() and (out[drawn == 255] == 255).all()
    assert out[5, 12] == round(128 + 9 * (1 - 128 / 255))


def test_grey_levels_binarise_or_quantise(drawn) -> None:
    quiet = np.zeros(drawn.shape, np.float32)
    binary = scan(drawn, NO_GRAIN, np.float32(0.9), quiet, 2, np.float32(100.0))
    assert set(np.unique(binary)) == {0, 255} and binary[5, 12] == 255  # 128 * 0.9 > 100
    sixteen = scan(drawn, NO_GRAIN, np.float32(0.9), quiet, 16, np.float32(0))
    assert (sixteen % 17 == 0).all() and sixteen[5, 8] == 238  # 229.5 = 13.5 levels: to even, 14


def test_grain_thins_the_ink_where_it_falls(drawn) -> None:
    grain = np.zeros(drawn.shape, np.float32)
    grain[5, 8] = 0.5
    out = scan(drawn, grain, np.float32(1.0), np.zeros(drawn.shape, np.float32), 256, np.float32(0))
    assert out[5, 8] == 128 and out[6, 8] == 255


@pytest.mark.parametrize("radius", [0.06, 0.4, 1.3, 3.7, 9.0])
def test_blur_is_pillows_gaussian_blur_bit_for_bit(radius) -> None:
    from PIL import Image, ImageFilter

    from kanji_lab.data.synthetic.scan import blur

    rng = np.random.default_rng(int(radius * 100))
    for shape in [(128, 128), (37, 90), (5, 3), (1, 20)]:  # narrower than the box, too
        image = (rng.random(shape) * 256).astype(np.uint8)
        image[rng.random(shape) < 0.6] = 0
        expected = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))
        np.testing.assert_array_equal(blur(image, radius), expected)
