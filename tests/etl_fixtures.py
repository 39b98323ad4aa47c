"""Byte-exact ETL records built from ``shared/etl-format.md`` with ``struct`` (not the readers'
numpy layouts), from glyphs whose labels and pixels are known. Never real ETL bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

G9_STRUCT = ">2H8sI4B4H2B34x8128s7x"
G8_STRUCT = ">2H8sI4B4H2B30x8128s11x"
B9_STRUCT = ">2H4s504s64x"
B8_STRUCT = ">2H4s504s"
M_STRUCT = ">H2sH6BI4H4B4x2016s4x"

# The official ETL9G sample headers (first 14 fields) and their characters.
ETL9G_SAMPLE_HEADERS = [
    ((1, 12321, b"A.TSUGU ", 1, 0, 0, 0, 0, 0, 0, 8212, 8310, 0, 0), "亜"),
    ((1, 12580, b"IN.HIBI ", 101, 0, 0, 0, 0, 0, 0, 8212, 8311, 4, 6), "韻"),
    ((2, 12839, b"OU.OKI  ", 49, 0, 0, 0, 0, 0, 0, 8212, 8406, 0, 3), "翁"),
]


@dataclass
class Glyph:
    """Known raw levels of one record image (0 = paper, max = ink)."""

    levels: np.ndarray  # (H, W) uint8


def glyph(height: int, width: int, max_level: int, seed: int, noise: bool = False) -> Glyph:
    """A deterministic glyph: an ink bar and a box at seed-dependent places; G-type noise."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, 3, (height, width)) if noise else np.zeros((height, width), int)
    r, c = rng.integers(2, height // 2), rng.integers(2, width // 2)
    levels[r : r + height // 3, c : c + 3] = max_level
    levels[height // 4 : height // 4 + 4, width // 5 : width - width // 5] = max(1, max_level - 2)
    levels[height - 1, width - 1] = max_level if noise else levels[height - 1, width - 1]
    levels[0, 0] = 1 if noise else 0
    return Glyph(levels.astype(np.uint8))


def pack4(levels: np.ndarray) -> bytes:
    """4-bit pixels, row-major, high nibble = left pixel."""
    flat = levels.astype(np.uint8).reshape(-1)
    return bytes(((flat[0::2] << 4) | flat[1::2]).tolist())


def pack1(levels: np.ndarray) -> bytes:
    """1-bit pixels, row-major, MSB = left pixel."""
    return np.packbits(levels.astype(np.uint8).reshape(-1) > 0).tobytes()


def g_record(
    kind: str,
    sheet: int,
    jis: int,
    image: Glyph,
    reading: bytes = b"A.TSUGU ",
    serial: int = 1,
    extra: tuple[int, ...] = (1, 2, 3, 25, 5, 6, 8212, 8310, 7, 8),
) -> bytes:
    """An ETL9G (``kind="9G"``) or ETL8G record. ``extra``: the 10 fields after the serial."""
    fmt = G9_STRUCT if kind == "9G" else G8_STRUCT
    return struct.pack(fmt, sheet, jis, reading, serial, *extra, pack4(image.levels))


def b_record(kind: str, sheet: int, jis: int, image: Glyph, reading: bytes = b"A.TS") -> bytes:
    """An ETL9B (``kind="9B"``) or ETL8B record."""
    fmt = B9_STRUCT if kind == "9B" else B8_STRUCT
    return struct.pack(fmt, sheet, jis, reading, pack1(image.levels))


def b_dummy(kind: str) -> bytes:
    return bytes(struct.calcsize(B9_STRUCT if kind == "9B" else B8_STRUCT))


def m_record(
    sheet: int,
    code: int,
    image: Glyph,
    name: bytes = b"KA",
    data_number: int = 1,
    extra: tuple[int, ...] = (0xC2, 1, 2, 1, 30, 123456, 4, 5, 8010, 8105, 11, 12, 0, 15),
) -> bytes:
    """An M-type (ETL1/6/7) record. ``extra``: EBCDIC, evaluations, sex, age, serial, industry,
    occupation, dates, sample Y, sample X, min level, max level."""
    return struct.pack(M_STRUCT, data_number, name, sheet, code, *extra, pack4(image.levels))


def write(path: Path, records: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(records))
    return path


# ---------------------------------------------------------------- small data roots

ETL9_CODES = [0x3021, 0x3124, 0x2422]  # 亜 韻 あ
ETL8_CODES = [0x3021, 0x2463, 0x2443]  # 亜 ゃ(small) っ(small): 亜 shared with ETL9
M_KANA_CODES = [0xB1, 0xB6, 0xA8, 0xDE]  # ｱ ｶ ｨ(ヰ/ゐ) ﾞ
ETL6_CODES = M_KANA_CODES + [0x41, 0x30, 0x5C]  # A 0 ¥


def g_file(kind: str, sheets: list[int], codes: list[int], seed: int = 0) -> list[bytes]:
    return [
        g_record(kind, s, c, glyph(127, 128, 15, seed + 10 * i + j, noise=True), serial=i + 1)
        for i, s in enumerate(sheets)
        for j, c in enumerate(codes)
    ]


def b_file(kind: str, sheets: list[int], codes: list[int], models: int = 0) -> list[bytes]:
    body = [b_record(kind, s, c, glyph(63, 64, 1, 7 * s + c)) for s in sheets for c in codes]
    model = b_record(kind, 0, codes[0], glyph(63, 64, 1, 99))
    return [b_dummy(kind)] + body + [model] * models


def m_file(sheets: list[int], codes: list[int], seed: int = 0) -> list[bytes]:
    return [
        m_record(s, c, glyph(63, 64, 15, seed + 31 * s + c), data_number=i + 1)
        for i, s in enumerate(sheets)
        for c in codes
    ]


def build_root(root: Path, parts: tuple[str, ...] = ("ETL9G", "ETL8G", "ETL7", "ETL6")) -> Path:
    """A data root with a few records of each requested part, in the archive folder layout.

    Writers: ETL9G/9B sheets 1 and 21 (writers 1, 2); ETL8G/8B sheets 1 and 11 (writers 1, 2).
    """
    makers = {
        "ETL9G": lambda: write(root / "ETL9G/ETL9G_01", g_file("9G", [1, 21], ETL9_CODES)),
        "ETL8G": lambda: [
            write(root / "ETL8G/ETL8G_01", g_file("8G", [1, 11], ETL8_CODES, seed=500)),
            write(root / "ETL8G/ETL8G_33", g_file("8G", [0], ETL8_CODES, seed=900)),
        ],
        "ETL9B": lambda: [
            write(root / "ETL9B/ETL9B_1", b_file("9B", [1, 21], ETL9_CODES)),
            write(root / "ETL9B/ETL9B_5", b_file("9B", [41], ETL9_CODES, models=3036)),
        ],
        "ETL8B": lambda: [
            write(root / "ETL8B/ETL8B2C1", b_file("8B", [1, 11], ETL8_CODES)),
            write(root / "ETL8B/ETL8B2C3", b_file("8B", [21], ETL8_CODES, models=956)),
        ],
        "ETL7": lambda: [
            write(root / "ETL7/ETL7LC_1", m_file([1, 2], M_KANA_CODES)),
            write(root / "ETL7/ETL7SC_1", m_file([1, 3], M_KANA_CODES, seed=3)),
        ],
        "ETL6": lambda: write(root / "ETL6/ETL6C_01", m_file([1, 2, 3], ETL6_CODES)),
        "ETL1": lambda: write(root / "ETL1/ETL1C_01", m_file([5, 6], [0x30, 0x31, 0xB2])),
    }
    for part in parts:
        makers[part]()
    return root
