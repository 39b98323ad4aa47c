"""Readers of the ETL Character Database record files (reference: ``shared/etl-format.md``).

One table drives every part: a :class:`Layout` per record type (field offsets, image position,
depth, byte ranges that must be zero) and a :class:`Part` per part (layout, label rule, writer
rule, file names, model patterns). A whole file is decoded at once with numpy: the header through a
structured big-endian dtype, the pixels through lookup tables (one packed byte -> its pixels, or
-> the sum of its two 4-bit pixels, which is half of a 2x2 box of the 64x64 output).
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from numba import njit

from kanji_lab.data.cache import IMAGE_SIZE
from kanji_lab.data.etl import labels as etl_labels
from kanji_lab.data.normalize import normalize_ink
from kanji_lab.errors import DataSourceError

log = logging.getLogger(__name__)
WRITER_BLOCK = 100_000  # global writer id = family id * WRITER_BLOCK + writer within the family
CHUNK = 256  # records decoded at a time, to bound memory


@dataclass(frozen=True)
class Layout:
    """Byte layout of one record type."""

    name: str
    record_length: int
    fields: tuple[tuple[str, str, int], ...]  # (name, numpy dtype, byte offset)
    image_offset: int
    width: int
    height: int
    bits: int
    zero_ranges: tuple[tuple[int, int], ...] = ()  # [start, stop) byte ranges that are padding
    dummy_first: bool = False  # record 0 of each file is a dummy of zeros

    @property
    def image_bytes(self) -> int:
        return self.width * self.height * self.bits // 8

    @property
    def max_level(self) -> int:
        return (1 << self.bits) - 1

    @cached_property
    def header_dtype(self) -> np.dtype:
        names, formats, offsets = zip(*self.fields, strict=True)
        return np.dtype(
            {
                "names": list(names),
                "formats": list(formats),
                "offsets": list(offsets),
                "itemsize": self.record_length,
            }
        )


_G_FIELDS = (
    ("sheet", ">u2", 0),
    ("jis", ">u2", 2),
    ("reading", "S8", 4),
    ("serial", ">u4", 12),
    ("eval_image", "u1", 16),
    ("eval_group", "u1", 17),
    ("sex", "u1", 18),
    ("age", "u1", 19),
    ("industry", ">u2", 20),
    ("occupation", ">u2", 22),
    ("gathered", ">u2", 24),
    ("scanned", ">u2", 26),
    ("x", "u1", 28),
    ("y", "u1", 29),
)
_B_FIELDS = (("sheet", ">u2", 0), ("jis", ">u2", 2), ("reading", "S4", 4))
_M_FIELDS = (
    ("data_number", ">u2", 0),
    ("code_name", "S2", 2),
    ("sheet", ">u2", 4),
    ("jis", "u1", 6),
    ("ebcdic", "u1", 7),
    ("eval_image", "u1", 8),
    ("eval_group", "u1", 9),
    ("sex", "u1", 10),
    ("age", "u1", 11),
    ("serial", ">u4", 12),
    ("industry", ">u2", 16),
    ("occupation", ">u2", 18),
    ("gathered", ">u2", 20),
    ("scanned", ">u2", 22),
    ("y", "u1", 24),
    ("x", "u1", 25),
    ("min_level", "u1", 26),
    ("max_level", "u1", 27),
)

LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout("G9", 8199, _G_FIELDS, 64, 128, 127, 4, ((30, 64), (8192, 8199))),
        Layout("G8", 8199, _G_FIELDS, 60, 128, 127, 4, ((30, 60), (8188, 8199))),
        Layout("B9", 576, _B_FIELDS, 8, 64, 63, 1, dummy_first=True),
        Layout("B8", 512, _B_FIELDS, 8, 64, 63, 1, dummy_first=True),
        Layout("M", 2052, _M_FIELDS, 32, 64, 63, 4),
    )
}


@dataclass(frozen=True)
class Part:
    """One ETL part: how its files are named, laid out, labelled and grouped into writers."""

    name: str
    layout: Layout
    family: str  # parts of one family share writers (ETL9G with ETL9B)
    family_id: int
    file_pattern: str  # regular expression matching a whole file name
    labels: str  # "jis0208" | "katakana" | "hiragana" (JIS X 0201 parts)
    sheets_per_writer: int = 1
    model_tails: dict[str, int] = field(default_factory=dict)  # file-name regex -> trailing
    # model-pattern records (0: the whole file)

    def matches(self, file_name: str) -> bool:
        return re.fullmatch(self.file_pattern, file_name) is not None

    def model_count(self, file_name: str, records: int) -> int:
        """How many records at the end of ``file_name`` are printed model patterns."""
        for pattern, tail in self.model_tails.items():
            if re.fullmatch(pattern, file_name):
                return records if tail == 0 else min(tail, records)
        return 0


PARTS = {
    part.name: part
    for part in (
        Part("ETL9G", LAYOUTS["G9"], "ETL9", 9, r"ETL9G[_-]\d{2}", "jis0208", 20),
        Part("ETL8G", LAYOUTS["G8"], "ETL8", 8, r"ETL8G[_-]\d{2}", "jis0208", 10, {r".*33": 0}),
        Part("ETL9B", LAYOUTS["B9"], "ETL9", 9, r"ETL9B[_-]\d", "jis0208", 20, {r".*5": 3036}),
        Part("ETL8B", LAYOUTS["B8"], "ETL8", 8, r"ETL8B2C\d", "jis0208", 10, {r".*3": 956}),
        Part("ETL7", LAYOUTS["M"], "ETL7", 7, r"ETL7[LS]C[_-]\d", "hiragana"),
        Part("ETL6", LAYOUTS["M"], "ETL6", 6, r"ETL6C[_-]\d{2}", "katakana"),
        Part("ETL1", LAYOUTS["M"], "ETL1", 1, r"ETL1C[_-]\d{2}", "katakana"),
    )
}


def part_of_file(file_name: str) -> Part | None:
    """The part whose archive names ``file_name`` follows, if any."""
    return next((p for p in PARTS.values() if p.matches(file_name)), None)


@dataclass
class Records:
    """The records of one file: header fields, packed pixels and what they mean."""

    part: Part
    path: Path
    header: np.ndarray  # structured, one field per header entry of the layout
    pixels: np.ndarray  # (N, image_bytes) uint8, packed as stored
    codepoints: np.ndarray  # int32 Unicode code points
    writers: np.ndarray  # int32 writer ids, unique across every part and family
    sheets: np.ndarray  # int32 sheet numbers as stored

    def __len__(self) -> int:
        return len(self.header)

    @property
    def codes(self) -> np.ndarray:
        """The stored character codes (JIS X 0208, or JIS X 0201 for M-type parts)."""
        return self.header["jis"]

    def levels(self) -> np.ndarray:
        """Native-resolution raw levels ``(N, H, W)`` uint8: 0 = paper, ``max_level`` = ink."""
        return unpack_levels(self.pixels, self.part.layout)

    def images(self, size: int = IMAGE_SIZE, out: np.ndarray | None = None) -> np.ndarray:
        """Ink-bright uint8 ``(N, size, size)``, normalised like every source (the frame of the
        sheet is cropped away: :func:`kanji_lab.data.normalize.normalize_ink`)."""
        out = np.empty((len(self), size, size), np.uint8) if out is None else out
        for start in range(0, len(self), CHUNK):
            stop = min(start + CHUNK, len(self))
            out[start:stop] = decode_images(self.pixels[start:stop], self.part.layout, size)
        return out


def unpack_levels(pixels: np.ndarray, layout: Layout, gain: int = 1) -> np.ndarray:
    """Packed records ``(N, image_bytes)`` -> raw levels ``(N, H, W)`` uint8, MSB-first, each
    multiplied by ``gain`` (at most 255 // max_level)."""
    n = len(pixels)
    if layout.bits == 4:  # high nibble = left pixel
        flat = _unpack_nibbles(pixels, gain, 0 if sys.byteorder == "little" else 8)
        flat = flat.view(np.uint8)
    elif layout.bits == 1:
        flat = np.unpackbits(pixels, axis=1)
        flat *= np.uint8(gain)
    else:
        raise ValueError(f"unsupported depth {layout.bits} bits")
    return flat.reshape(n, layout.height, layout.width)


@njit(cache=True)
def _unpack_nibbles(pixels, gain, left):  # pragma: no cover - compiled
    """``(N, B)`` bytes -> ``(N, B)`` uint16 pairs of 4-bit levels x ``gain``, the high nibble
    in the pair's first byte (``left``: its bit offset in this machine's byte order)."""
    out = np.empty(pixels.shape, np.uint16)
    gain = np.uint16(gain)
    for i in range(pixels.shape[0]):
        packed, pairs = pixels[i], out[i]
        for j in range(len(packed)):
            byte = np.uint16(packed[j])
            pairs[j] = ((byte >> 4) * gain) << left | ((byte & 15) * gain) << (8 - left)
    return out


def decode_images(pixels: np.ndarray, layout: Layout, size: int = IMAGE_SIZE) -> np.ndarray:
    """Packed records -> ink-bright uint8 ``(N, size, size)``: levels scaled to 0..255, then the
    shared normalisation."""
    gain = 255 // layout.max_level
    if gain * layout.max_level == 255:  # 4-bit (x 17), 1-bit (x 255): a product
        levels = unpack_levels(pixels, layout, gain)
    else:
        scale = np.rint(np.arange(layout.max_level + 1) * 255 / layout.max_level)
        levels = scale.astype(np.uint8)[unpack_levels(pixels, layout)]
    return normalize_ink(levels, size)


def read_file(path: Path, part: Part | str, include_models: bool = False) -> Records:
    """Read and check one whole file of ``part``; model patterns are dropped unless asked for."""
    part = PARTS[part] if isinstance(part, str) else part
    path = Path(path)
    raw = _read_records(path, part)
    if part.layout.dummy_first:
        raw = _drop_dummy(raw, path, part)
    check_padding(raw, path, part)
    if not include_models:
        raw = raw[: len(raw) - part.model_count(path.name, len(raw))]
    header = raw.reshape(-1).view(part.layout.header_dtype)
    offset = part.layout.image_offset
    sheets = header["sheet"].astype(np.int32)
    return Records(
        part=part,
        path=path,
        header=header,
        pixels=raw[:, offset : offset + part.layout.image_bytes],
        codepoints=codepoints_of(header["jis"], part, path),
        writers=writer_ids(sheets, part),
        sheets=sheets,
    )


def count_records(path: Path, part: Part, include_models: bool = False) -> int:
    """Number of records :func:`read_file` returns for ``path``, from its size alone."""
    records = check_size(path, part) - int(part.layout.dummy_first)
    return records - (0 if include_models else part.model_count(Path(path).name, records))


def check_size(path: Path, part: Part) -> int:
    """The record count of ``path``; DataSourceError when its size does not fit ``part``."""
    size = Path(path).stat().st_size
    length = part.layout.record_length
    if size == 0:
        raise DataSourceError(f"{path} is empty; re-extract it from the AIST archive.")
    if size % length:
        fits = sorted(
            {p.name for p in PARTS.values() if size and size % p.layout.record_length == 0}
        )
        hint = f"its size fits {', '.join(fits)}" if fits else "it fits no known ETL part"
        raise DataSourceError(
            f"{path} ({size:,} bytes) is not a whole number of {part.name} records "
            f"({length} bytes each): {hint}. Is it truncated, or a file of another part? "
            "Re-extract it from the AIST archive."
        )
    return size // length


def _read_records(path: Path, part: Part) -> np.ndarray:
    records = check_size(path, part)
    shape = (records, part.layout.record_length)
    return np.memmap(path, dtype=np.uint8, mode="r", shape=shape)  # no copy of the whole file


def _drop_dummy(raw: np.ndarray, path: Path, part: Part) -> np.ndarray:
    """Skip record 0, the dummy each file of the part starts with. The format does not promise
    that it is all zero: other bytes only earn a warning."""
    if len(raw) and raw[0].any():
        log.warning(
            "%s: the dummy record %s files start with holds %d non-zero bytes; skipped as usual",
            path,
            part.name,
            int(np.count_nonzero(raw[0])),
        )
    return raw[1:]


def check_padding(raw: np.ndarray, path: Path, part: Part) -> int:
    """Check the layout's undefined ("uncertain") byte ranges, which the format does not promise
    to be zero: data there in most records while another layout's ranges are all zero means a
    file of that other part (e.g. ETL9G read as ETL8G: identical record length, image 4 bytes
    apart), a DataSourceError; otherwise a warning with the count. Returns that count."""
    if not len(raw) or not part.layout.zero_ranges:
        return 0
    dirty = np.zeros(len(raw), dtype=bool)
    for start, stop in part.layout.zero_ranges:
        dirty |= raw[:, start:stop].any(axis=1)
    count = int(dirty.sum())
    if not count:
        return 0
    others = [p.name for p in PARTS.values() if p is not part and _padding_is_zero(raw, p.layout)]
    ranges = ", ".join(f"{a}..{b - 1}" for a, b in part.layout.zero_ranges)
    if others and 2 * count >= len(raw):
        raise DataSourceError(
            f"{path}: this is not an {part.name} file: bytes {ranges} of the records, undefined "
            f"in the {part.name} layout, hold data in {count} of {len(raw)} records, and its "
            f"bytes fit the {' / '.join(others)} layout. Put each part's files in its own folder "
            "under their original names."
        )
    log.warning(
        "%s: %d of %d records hold non-zero bytes in the undefined ranges %s of the %s layout; "
        "read as usual",
        path,
        count,
        len(raw),
        ranges,
        part.name,
    )
    return count


def _padding_is_zero(raw: np.ndarray, layout: Layout) -> bool:
    if raw.shape[1] != layout.record_length or not layout.zero_ranges:
        return False
    return not any(raw[:, a:b].any() for a, b in layout.zero_ranges)


def codepoints_of(codes: np.ndarray, part: Part, path: Path) -> np.ndarray:
    """Unicode code points of the stored codes; DataSourceError naming the first invalid one."""
    if part.labels == "jis0208":
        points = etl_labels.jis0208_codepoints(codes)
    else:
        points = etl_labels.jis0201_codepoints(codes, part.labels)
    bad = np.flatnonzero(points == etl_labels.INVALID)
    if len(bad):
        raise DataSourceError(
            f"{path}: record {bad[0]} has character code 0x{int(codes[bad[0]]):X}, which is not "
            f"a valid {part.name} code ({len(bad)} such records); is this a file of another part?"
        )
    return points


def writer_ids(sheets: np.ndarray, part: Part) -> np.ndarray:
    """Global writer ids: the same hand gets the same id in every part of its family."""
    local = (np.asarray(sheets, dtype=np.int64) - 1) // part.sheets_per_writer + 1
    if len(local) and (local.min() < 0 or local.max() >= WRITER_BLOCK):
        raise DataSourceError(f"{part.name}: sheet numbers out of range ({local.min()}..)")
    return (part.family_id * WRITER_BLOCK + local).astype(np.int32)
