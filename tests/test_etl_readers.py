"""Every field of every record type decoded from byte-exact fixture records."""

from __future__ import annotations

import logging
import re
import struct

import numpy as np
import pytest

from kanji_lab.data import etl
from kanji_lab.data.normalize import normalize_ink
from kanji_lab.errors import DataSourceError
from tests.etl_fixtures import (
    B8_STRUCT,
    B9_STRUCT,
    ETL9G_SAMPLE_HEADERS,
    G8_STRUCT,
    G9_STRUCT,
    M_STRUCT,
    b_file,
    b_record,
    g_record,
    glyph,
    m_record,
    write,
)

G_NAMES = ("sheet", "jis", "reading", "serial", "eval_image", "eval_group", "sex", "age",
           "industry", "occupation", "gathered", "scanned", "x", "y")  # fmt: skip
M_NAMES = ("ebcdic", "eval_image", "eval_group", "sex", "age", "serial", "industry", "occupation",
           "gathered", "scanned", "y", "x", "min_level", "max_level")  # fmt: skip


def _items(fmt: str) -> tuple[list[tuple[int, int]], int]:
    """(offset, size) of each item of a ``struct`` format (padding ``x`` skipped), and the
    record length."""
    order, items, pos = fmt[0], [], 0
    for count, code in re.findall(r"(\d*)([a-zA-Z])", fmt[1:]):
        n = int(count or 1)
        if code == "x":
            pos += n
        elif code == "s":
            items.append((pos, n))
            pos += n
        else:
            size = struct.calcsize(order + code)
            items += [(pos + k * size, size) for k in range(n)]
            pos += n * size
    return items, pos


@pytest.mark.parametrize(
    "layout, fmt",
    [("G9", G9_STRUCT), ("G8", G8_STRUCT), ("B9", B9_STRUCT), ("B8", B8_STRUCT), ("M", M_STRUCT)],
)
def test_layouts_match_the_struct_formats_of_the_format_notes(layout, fmt):
    """The readers' layout table against the fixtures' struct formats (written from
    shared/etl-format.md): every header field's offset and size, the image's, the length."""
    layout = etl.LAYOUTS[layout]
    items, length = _items(fmt)
    assert layout.record_length == length
    *fields, image = items
    assert [(o, layout.header_dtype[n].itemsize) for n, _, o in layout.fields] == fields
    assert (layout.image_offset, layout.image_bytes) == image
    padding = sum(b - a for a, b in layout.zero_ranges)
    if padding:  # the zero ranges are exactly the format's undefined bytes
        assert padding == length - sum(size for _, size in items)


@pytest.mark.parametrize("kind, part", [("9G", "ETL9G"), ("8G", "ETL8G")])
def test_g_type_fields_and_pixels(tmp_path, kind, part):
    extra = (3, 4, 1, 27, 11, 12, 8212, 8310, 9, 10)
    images = [glyph(127, 128, 15, seed, noise=True) for seed in range(3)]
    recs = [
        g_record(kind, 21, 0x3021, im, b"A.TSUGU ", 7 + i, extra) for i, im in enumerate(images)
    ]
    r = etl.read_file(write(tmp_path / f"ETL{kind}_01", recs), part)
    assert len(r) == 3
    values = (21, 0x3021, b"A.TSUGU ", 7) + extra
    for name, value in zip(G_NAMES, values, strict=True):
        assert r.header[name][0] == value, name
    assert r.header["serial"].tolist() == [7, 8, 9]
    assert r.codepoints.tolist() == [ord("亜")] * 3
    assert np.array_equal(r.levels(), np.stack([im.levels for im in images]))
    assert r.sheets.tolist() == [21] * 3


def test_official_etl9g_sample_headers(tmp_path):
    recs = [
        struct.pack(G9_STRUCT, *header, glyph(127, 128, 15, 0, noise=True).levels.tobytes()[:8128])
        for header, _ in ETL9G_SAMPLE_HEADERS
    ]
    r = etl.read_file(write(tmp_path / "ETL9G_01", recs), "ETL9G")
    assert "".join(map(chr, r.codepoints)) == "".join(c for _, c in ETL9G_SAMPLE_HEADERS)
    for i, (header, _) in enumerate(ETL9G_SAMPLE_HEADERS):
        assert tuple(r.header[n][i] for n in G_NAMES) == header
    assert r.writers.tolist() == [900001] * 3  # sheets 1, 1, 2 are all writer 1


@pytest.mark.parametrize("kind, part", [("9B", "ETL9B"), ("8B", "ETL8B")])
def test_b_type_fields_pixels_and_dummy(tmp_path, kind, part):
    images = [glyph(63, 64, 1, seed) for seed in range(2)]
    recs = [bytes(512 if kind == "8B" else 576)] + [
        b_record(kind, 21 + i, 0x2422, im, b"A.  ") for i, im in enumerate(images)
    ]
    r = etl.read_file(write(tmp_path / f"ETL{kind}_1", recs), part)
    assert len(r) == 2  # the dummy record is skipped
    assert r.header["sheet"].tolist() == [21, 22]
    assert r.header["reading"].tolist() == [b"A.  "] * 2
    assert r.codepoints.tolist() == [ord("あ")] * 2
    assert np.array_equal(r.levels(), np.stack([im.levels for im in images]))


def test_b_type_dummy_with_data_warns_and_is_skipped(tmp_path, caplog):
    recs = [b"\1" * 576, b_record("9B", 1, 0x2422, glyph(63, 64, 1, 0))]
    with caplog.at_level(logging.WARNING, logger="kanji_lab.data.etl"):
        r = etl.read_file(write(tmp_path / "ETL9B_1", recs), "ETL9B")
    assert len(r) == 1 and r.header["sheet"].tolist() == [1]
    assert "dummy record" in caplog.text and "576 non-zero bytes" in caplog.text


def test_data_in_undefined_bytes_warns_with_a_count(tmp_path, caplog):
    """The format does not promise zeros in the G-type's undefined bytes: read, and count."""
    recs = [g_record("9G", s, 0x3021, glyph(127, 128, 15, s)) for s in range(1, 5)]
    recs[2] = recs[2][:8195] + b"\7" + recs[2][8196:]  # trailing undefined bytes 8192..8198
    with caplog.at_level(logging.WARNING, logger="kanji_lab.data.etl"):
        r = etl.read_file(write(tmp_path / "ETL9G_01", recs), "ETL9G")
    assert len(r) == 4
    assert "1 of 4 records hold non-zero bytes in the undefined ranges" in caplog.text


def test_m_type_fields_and_pixels(tmp_path):
    extra = (0xC2, 1, 2, 1, 30, 123456, 4, 5, 8010, 8105, 11, 12, 0, 15)
    images = [glyph(63, 64, 15, seed) for seed in range(2)]
    recs = [m_record(17, 0xB6, im, b"KA", 5 + i, extra) for i, im in enumerate(images)]
    r = etl.read_file(write(tmp_path / "ETL6C_01", recs), "ETL6")
    assert r.header["data_number"].tolist() == [5, 6]
    assert r.header["code_name"][0] == b"KA"
    assert r.header["jis"][0] == 0xB6
    for name, value in zip(M_NAMES, extra, strict=True):
        assert r.header[name][0] == value, name
    assert r.codepoints.tolist() == [ord("カ")] * 2
    assert r.writers.tolist() == [600017] * 2
    assert np.array_equal(r.levels(), np.stack([im.levels for im in images]))


@pytest.mark.parametrize("layout", ["G9", "B8", "M"])
def test_decode_is_the_shared_normalisation_of_the_levels(layout):
    lay = etl.LAYOUTS[layout]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, lay.image_bytes), dtype=np.uint8)
    levels = etl.unpack_levels(pixels, lay).astype(float) * 255 / lay.max_level
    expected = normalize_ink(np.rint(levels).astype(np.uint8))
    got = etl.decode_images(pixels, lay)
    assert got.shape == (5, 64, 64) and got.dtype == np.uint8
    assert np.array_equal(got, expected)


def test_the_sheet_frame_is_cropped_away(tmp_path):
    """A small glyph in a corner of the 128x127 frame fills the 64x64 input, centred."""
    im = glyph(127, 128, 15, 0)
    im.levels[:] = 0
    im.levels[5:25, 90:120] = 15  # 20 x 30 block, top right
    r = etl.read_file(write(tmp_path / "ETL9G_01", [g_record("9G", 1, 0x3021, im)]), "ETL9G")
    ink = np.nonzero(r.images()[0] > 128)
    rows, cols = (int(ink[0].min()), int(ink[0].max())), (int(ink[1].min()), int(ink[1].max()))
    assert cols[0] <= 6 and cols[1] >= 57  # the longer side spans the frame less its margins
    assert abs((rows[0] + rows[1]) / 2 - 31.5) <= 1 and abs((cols[0] + cols[1]) / 2 - 31.5) <= 1


def test_9g_file_read_as_8g_fails_loudly(tmp_path):
    path = write(tmp_path / "ETL8G_01", [g_record("9G", 1, 0x3021, glyph(127, 128, 15, 0, True))])
    with pytest.raises(DataSourceError, match="not an ETL8G file.*ETL9G layout"):
        etl.read_file(path, "ETL8G")


def test_8g_file_read_as_9g_fails_loudly(tmp_path):
    path = write(tmp_path / "ETL9G_01", [g_record("8G", 1, 0x3021, glyph(127, 128, 15, 0, True))])
    with pytest.raises(DataSourceError, match="not an ETL9G file.*ETL8G layout"):
        etl.read_file(path, "ETL9G")


def test_size_not_a_multiple_names_file_and_likely_part(tmp_path):
    path = write(tmp_path / "ETL9G_01", [b"\0" * 576 * 3])
    with pytest.raises(DataSourceError, match=r"ETL9G_01 .*not a whole number.*fits ETL9B"):
        etl.read_file(path, "ETL9G")
    with pytest.raises(DataSourceError, match="empty"):
        etl.read_file(write(tmp_path / "ETL6C_01", []), "ETL6")


def test_invalid_codes_are_reported(tmp_path):
    path = write(tmp_path / "ETL9G_01", [g_record("9G", 1, 0x7F7F, glyph(127, 128, 15, 0, True))])
    with pytest.raises(DataSourceError, match="0x7F7F"):
        etl.read_file(path, "ETL9G")


def test_model_patterns_excluded_by_default(tmp_path):
    path = write(tmp_path / "ETL9B_5", b_file("9B", [1], [0x3021], models=3036))
    assert len(etl.read_file(path, "ETL9B")) == 1
    assert len(etl.read_file(path, "ETL9B", include_models=True)) == 3037
    assert etl.count_records(path, etl.PARTS["ETL9B"]) == 1
    g8 = write(tmp_path / "ETL8G_33", [g_record("8G", 1, 0x3021, glyph(127, 128, 15, 0, True))])
    assert len(etl.read_file(g8, "ETL8G")) == 0
    assert len(etl.read_file(g8, "ETL8G", include_models=True)) == 1


def test_writer_rules_per_family():
    sheets = np.array([1, 10, 11, 20, 21, 40, 41])
    assert etl.writer_ids(sheets, etl.PARTS["ETL9G"]).tolist() == [900001] * 4 + [900002] * 2 + [
        900003
    ]
    assert np.array_equal(
        etl.writer_ids(sheets, etl.PARTS["ETL9G"]), etl.writer_ids(sheets, etl.PARTS["ETL9B"])
    )
    assert np.array_equal(
        etl.writer_ids(sheets, etl.PARTS["ETL8G"]), etl.writer_ids(sheets, etl.PARTS["ETL8B"])
    )
    assert etl.writer_ids(sheets, etl.PARTS["ETL8G"]).tolist()[:4] == [
        800001,
        800001,
        800002,
        800002,
    ]
    assert etl.writer_ids(sheets, etl.PARTS["ETL6"]).tolist() == (600000 + sheets).tolist()


def test_part_of_file_is_case_sensitive():
    assert etl.part_of_file("ETL9G_01").name == "ETL9G"
    assert etl.part_of_file("ETL9G-01").name == "ETL9G"
    assert etl.part_of_file("ETL8B2C3").name == "ETL8B"
    assert etl.part_of_file("ETL7SC_2").name == "ETL7"
    assert etl.part_of_file("etl9g_01") is None
    assert etl.part_of_file("ETL9INFO") is None
