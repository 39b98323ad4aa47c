"""Class sets: which characters a data set or model covers."""

from __future__ import annotations

import hashlib
import re

_SMALL_KANA = set("ぁぃぅぇぉっゃゅょゎ")


def jis0208(hi: int, lo: int) -> str:
    """The Unicode character of a JIS X 0208 row/cell code (7-bit bytes, e.g. 0x30, 0x21 -> 亜)."""
    return bytes([0x80 | hi, 0x80 | lo]).decode("euc_jp")


def jis_level1_kanji() -> list[str]:
    """The 2,965 JIS X 0208 level-1 kanji, 0x3021..0x4F53, in JIS order."""
    chars = []
    for hi in range(0x30, 0x50):
        for lo in range(0x21, 0x7F):
            if (hi, lo) > (0x4F, 0x53):
                break
            chars.append(jis0208(hi, lo))
    return chars


def hiragana_row() -> list[str]:
    """JIS X 0208 row 0x24: the 83 hiragana ぁ..ん."""
    return [jis0208(0x24, lo) for lo in range(0x21, 0x74)]


def etl9g_classes() -> list[str]:
    """The 3,036 ETL9G classes: level-1 kanji plus 71 hiragana (no small kana, no ゐ ゑ)."""
    hira = [c for c in hiragana_row() if c not in _SMALL_KANA and c not in "ゐゑ"]
    return jis_level1_kanji() + hira


def katakana() -> list[str]:
    """The 48 basic katakana ア..ン (no small or voiced forms; ヰ ヱ included, as in ETL)."""
    row = [jis0208(0x25, lo) for lo in range(0x21, 0x74)]
    small = set("ァィゥェォッャュョヮヵヶ")
    voiced = set("ガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポヴ")
    return [c for c in row if c not in small and c not in voiced]


def kana_classes() -> list[str]:
    """Hiragana and katakana: the 71 hiragana of ETL9 plus the basic katakana."""
    return etl9g_classes()[-71:] + katakana()


def zero_shot_split(seen: int = 2000) -> tuple[list[str], list[str]]:
    """The level-1 kanji split for zero-shot studies: ``seen`` of them to train on, the rest
    never seen. The order is fixed by a hash of each character (not by JIS order, which follows
    readings), so the split is the same on every machine and Python version."""
    kanji = sorted(jis_level1_kanji(), key=lambda c: hashlib.sha1(c.encode()).hexdigest())
    return sorted(kanji[:seen]), sorted(kanji[seen:])


NAMED_SETS = {
    "etl9g": etl9g_classes,
    "kana": kana_classes,
    "hiragana": lambda: etl9g_classes()[-71:],
    # 2,000 / 965 of the 2,965 level-1 kanji (model=hiercode zero-shot recipe)
    "zeroshot_seen": lambda: zero_shot_split()[0],
    "zeroshot_unseen": lambda: zero_shot_split()[1],
}


# names that look like set names but have no list here
_UNAVAILABLE = {
    "etl8g": "ETL8G's 881 kanji (the 1958 education list) ship with no package here: train on "
    "the real files with data=etl8g, or pass the characters as a quoted string",
}


def resolve_classes(spec: str) -> list[str]:
    """A named class set (see :data:`NAMED_SETS`) or an explicit string of characters.

    The result is de-duplicated and keeps first-seen order. A plain lower-case ASCII word that
    names no set is refused rather than read as the characters of its letters.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            "empty class set: set data.classes to a named set "
            f"({', '.join(NAMED_SETS)}) or a quoted string of characters, "
            "e.g. 'data.classes=\"亜唖娃\"'"
        )
    if spec not in NAMED_SETS and re.fullmatch(r"[a-z0-9_]+", spec):
        reason = _UNAVAILABLE.get(spec, "not a named class set")
        raise ValueError(
            f"data.classes={spec}: {reason}. Named sets: {', '.join(NAMED_SETS)}; characters "
            "are given as a quoted string, e.g. 'data.classes=\"亜唖娃\"'"
        )
    chars = NAMED_SETS[spec]() if spec in NAMED_SETS else [c for c in spec if not c.isspace()]
    return list(dict.fromkeys(chars))
