"""ETL9G-format files written from ink images, for benchmarks and reproductions (never real ETL
bytes): 4-bit levels with the G-type scanner's paper noise and specks, packed into 8,199-byte
records with the sheet number (writer) and JIS X 0208 code of each, as ``shared/etl-format.md``
lays them out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kanji_lab.data import etl

SHEETS_PER_WRITER = 20  # ETL9G: writer = (sheet - 1) // 20 + 1


def to_levels(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink-bright uint8 ``(127, 128)`` -> 4-bit levels: the pen's darkest level 9..15, scanner
    noise 0..2 on the paper, and a few specks in one cell in three."""
    top = rng.integers(9, 16)
    levels = np.rint(ink.astype(np.float32) * top / 255).astype(np.int64)
    levels += rng.integers(0, 3, levels.shape) * (rng.random(levels.shape) < 0.3)
    if rng.random() < 1 / 3:
        for _ in range(rng.integers(1, 5)):
            r, c = rng.integers(0, 126), rng.integers(0, 127)
            levels[r : r + 2, c : c + 2] = rng.integers(8, 16)
    return np.clip(levels, 0, 15).astype(np.uint8)


def pack4(levels: np.ndarray) -> np.ndarray:
    """``(N, 127, 128)`` 4-bit levels -> ``(N, 8128)`` packed bytes, high nibble left."""
    return (levels[..., 0::2] << 4 | levels[..., 1::2]).reshape(len(levels), -1)


def jis_codes(chars: list[str]) -> np.ndarray:
    """JIS X 0208 codes (7-bit row/cell) of ``chars``, through EUC-JP."""
    return np.array([int.from_bytes(c.encode("euc_jp"), "big") & 0x7F7F for c in chars], np.uint16)


def first_sheet(writer: np.ndarray) -> np.ndarray:
    """The first sheet number of each 1-based ETL9G writer."""
    return (np.asarray(writer) - 1) * SHEETS_PER_WRITER + 1


def write_etl9g(
    path: Path, packed: np.ndarray, sheets: np.ndarray, codes: np.ndarray, first_serial: int = 1
) -> Path:
    """One ETL9G file of ``len(packed)`` records: images, sheet numbers and JIS codes, serial
    numbers counted on from ``first_serial``."""
    layout = etl.LAYOUTS["G9"]
    raw = np.zeros((len(packed), layout.record_length), np.uint8)
    header = raw.reshape(-1).view(layout.header_dtype)
    header["sheet"], header["jis"] = sheets, codes
    header["reading"] = b"A.TSUGU "
    header["serial"] = np.arange(first_serial, first_serial + len(packed))
    header["gathered"], header["scanned"] = 8212, 8310
    raw[:, 64 : 64 + packed.shape[1]] = packed
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.tofile(path)
    return path
