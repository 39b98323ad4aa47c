"""Label rules: JIS X 0208 through the codec, JIS X 0201 with the ETL exceptions, ETL7 hiragana."""

from __future__ import annotations

import numpy as np
import pytest

from kanji_lab.data.etl.labels import (
    INVALID,
    jis0201_char,
    jis0201_codepoints,
    jis0208_char,
    jis0208_codepoints,
)


def test_jis0208_uses_the_table_not_a_formula():
    assert jis0208_char(0x3021) == "亜"
    assert jis0208_char(0x3124) == "韻"
    assert jis0208_char(0x3227) == "翁"
    assert jis0208_char(0x2422) == "あ"
    assert jis0208_char(0x4F53) == "腕"  # last level-1 kanji
    linear = 0x4E00 + (0x30 - 0x30) * 94 + (0x21 - 0x21)
    assert chr(linear) != jis0208_char(0x3021)


def test_jis0208_vectorised_and_invalid():
    codes = np.array([0x3021, 0x2422, 0x3021, 0x7F7F, 0x0000])
    got = jis0208_codepoints(codes)
    assert got.dtype == np.int32
    assert got.tolist() == [ord("亜"), ord("あ"), ord("亜"), INVALID, INVALID]
    with pytest.raises(ValueError):
        jis0208_char(0x2F7F)


@pytest.mark.parametrize(
    "code, char",
    [(0x5C, "¥"), (0x7E, "‾"), (0xA5, "・"), (0xDE, "゛"), (0xDF, "゜"), (0xA8, "ヰ"),
     (0xAA, "ヱ"), (0xB1, "ア"), (0xDD, "ン"), (0xA6, "ヲ"), (0x41, "A"), (0x30, "0"),
     (0x2F, "/"), (0xB0, "ー")],
)  # fmt: skip
def test_jis0201_katakana_parts(code, char):
    assert jis0201_char(code) == char
    assert jis0201_codepoints(np.array([code])).tolist() == [ord(char)]


@pytest.mark.parametrize(
    "code, char",
    [(0xB1, "あ"), (0xB6, "か"), (0xDD, "ん"), (0xA6, "を"), (0xA8, "ゐ"), (0xAA, "ゑ"),
     (0xDE, "゛"), (0xDF, "゜")],
)  # fmt: skip
def test_etl7_hiragana_stored_with_katakana_codes(code, char):
    assert jis0201_char(code, "hiragana") == char
    assert jis0201_char(code, "katakana") != char or code in (0xDE, 0xDF)


def test_jis0201_invalid_bytes():
    assert jis0201_codepoints(np.array([0x00, 0x80, 0xE0, 0xFF])).tolist() == [INVALID] * 4
