"""Labels of ETL records as Unicode code points (see ``shared/etl-format.md``, "Labels").

JIS X 0208 codes (G- and B-type parts) go through the EUC-JP codec, never a linear formula.
JIS X 0201 codes (M-type parts) go through Shift_JIS plus NFKC, with the exceptions the ETL parts
need; hiragana parts (ETL7) store hiragana under katakana codes and are converted back.
"""

from __future__ import annotations

import unicodedata

import numpy as np

from kanji_lab.data.charsets import jis0208

INVALID = -1
KATAKANA = "katakana"
HIRAGANA = "hiragana"

# JIS X 0201 codes whose Shift_JIS + NFKC reading is not the ETL class.
_JIS0201_EXCEPTIONS = {
    0x5C: "¥",  # Shift_JIS decodes to a backslash
    0x7E: "‾",  # Shift_JIS decodes to a tilde
    0xA5: "・",
    0xDE: "゛",  # NFKC would give the combining mark U+3099
    0xDF: "゜",  # NFKC would give the combining mark U+309A
    0xA8: "ヰ",  # no JIS X 0201 code: ETL stores it in the slot of ｨ
    0xAA: "ヱ",  # likewise, in the slot of ｪ
}
_KATAKANA_TO_HIRAGANA = -0x60  # ア U+30A2 -> あ U+3042, for U+30A1..U+30F6


def jis0208_char(code: int) -> str:
    """The character of a 16-bit JIS X 0208 code such as 0x3021 (亜); ValueError if none."""
    hi, lo = code >> 8, code & 0xFF
    if not (0x21 <= hi <= 0x7E and 0x21 <= lo <= 0x7E):
        raise ValueError(f"0x{code:04X} is not a JIS X 0208 code")
    try:
        return jis0208(hi, lo)
    except UnicodeDecodeError as err:
        raise ValueError(f"0x{code:04X} is not an assigned JIS X 0208 code") from err


def jis0201_char(code: int, script: str = KATAKANA) -> str:
    """The ETL class of a JIS X 0201 byte; ``script="hiragana"`` for parts such as ETL7."""
    if not (0x20 <= code <= 0x7E or 0xA1 <= code <= 0xDF):
        raise ValueError(f"0x{code:02X} is not a printable JIS X 0201 code")
    if code in _JIS0201_EXCEPTIONS:
        char = _JIS0201_EXCEPTIONS[code]
    else:
        char = unicodedata.normalize("NFKC", bytes([code]).decode("shift_jis"))
    if script == HIRAGANA:
        char = "".join(_to_hiragana(c) for c in char)
    if len(char) != 1:
        raise ValueError(f"JIS X 0201 code 0x{code:02X} has no single-character class ({char!r})")
    return char


def _to_hiragana(char: str) -> str:
    if "\u30a1" <= char <= "\u30f6":
        return chr(ord(char) + _KATAKANA_TO_HIRAGANA)
    return char


def jis0208_codepoints(codes: np.ndarray) -> np.ndarray:
    """Code points (int32) of an array of JIS X 0208 codes; ``INVALID`` where there is none."""
    return _map_unique(codes, jis0208_char)


def jis0201_codepoints(codes: np.ndarray, script: str = KATAKANA) -> np.ndarray:
    """Code points (int32) of an array of JIS X 0201 bytes; ``INVALID`` where there is none."""
    table = np.full(256, INVALID, dtype=np.int32)
    for code in range(256):
        try:
            table[code] = ord(jis0201_char(code, script))
        except ValueError:
            continue
    return table[np.asarray(codes, dtype=np.uint8)]


def _map_unique(codes: np.ndarray, to_char) -> np.ndarray:
    codes = np.asarray(codes)
    unique, inverse = np.unique(codes, return_inverse=True)
    mapped = np.empty(len(unique), dtype=np.int32)
    for i, code in enumerate(unique.tolist()):
        try:
            mapped[i] = ord(to_char(code))
        except ValueError:
            mapped[i] = INVALID
    return mapped[inverse.reshape(codes.shape)]
