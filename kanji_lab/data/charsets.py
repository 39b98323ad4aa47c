"""Class sets: which characters a data set or model covers."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from kanji_lab.errors import UserError


class ClassSetError(UserError, ValueError):
    """A class set names no known set and is no string of characters."""


# each small kana and the full-size kana it is a smaller copy of
_SMALL_TO_FULL = dict(
    zip(
        "ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ",
        "あいうえおつやゆよわアイウエオツヤユヨワカケ",
        strict=True,
    )
)
_SMALL_KANA = set(_SMALL_TO_FULL)
# hiragana and katakana written with one shape
_SHAPE_TWINS = ("へヘ", "べベ", "ぺペ")
# katakana and the kanji (or symbol) they look like, and the kana twins: pairs that one image can
# hardly tell apart, reported by evaluate (``look_alikes``)
LOOK_ALIKES = (
    *("カ力", "ニ二", "ロ口", "エ工", "ト卜", "ハ八", "タ夕", "ー一", "オ才", "チ千"),
    *_SHAPE_TWINS,
)


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
    voiced = set("ガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポヴ")
    return [c for c in row if c not in _SMALL_KANA and c not in voiced]


def katakana_row() -> list[str]:
    """JIS X 0208 row 0x25: the 86 katakana ァ..ヶ (small, voiced, semi-voiced, ヴ ヵ ヶ)."""
    return [jis0208(0x25, lo) for lo in range(0x21, 0x77)]


def kana_classes() -> list[str]:
    """Every kana: the 83 hiragana and 86 katakana of JIS X 0208 plus the long-vowel mark ー."""
    return hiragana_row() + katakana_row() + ["ー"]


def etl_m_type_classes() -> list[str]:
    """Every class of JIS X 0201 that is not kana, as the ETL6 and ETL7 readers label it: digits
    and Latin capitals (ASCII; ETL has no small letters), the printable ASCII symbols (¥ for 0x5C,
    ‾ for 0x7E), 。「」、・ ゛ ゜."""
    from kanji_lab.data.etl.labels import jis0201_char

    codes = [c for c in range(0x21, 0x7F) if not chr(c).islower()] + [
        *range(0xA1, 0xA6),
        0xDE,
        0xDF,
    ]
    return [jis0201_char(code) for code in codes]


def combined_classes() -> list[str]:
    """The default class set: ETL9G's 3,036 classes, every kana, and the other classes of ETL6,
    ETL7 and ETL8G (``data=combined_all_etl``'s vocabulary on the classes ETL has). ETL9G's order
    first, then the rest by code point."""
    base = etl9g_classes()
    rest = sorted(set(kana_classes() + etl_m_type_classes()) - set(base))
    return base + rest


def jis0208_classes() -> list[str]:
    """Every graphic character of JIS X 0208 (rows 0x21..0x74, the ideographic space left out):
    symbols, full-width digits and Latin letters, kana, Greek, Cyrillic, box drawing, and the
    6,355 kanji of levels 1 and 2, in JIS order."""
    chars = []
    for hi in range(0x21, 0x75):
        for lo in range(0x21, 0x7F):
            try:
                chars.append(jis0208(hi, lo))
            except UnicodeDecodeError:
                continue
    return [c for c in chars if c != "\u3000"]


JOYO_FILE = Path(__file__).with_name("joyo.txt")


def joyo_kanji() -> list[str]:
    """The 2,136 jōyō kanji (the 2010 list), in JIS X 0208 order, then the two outside it (塡 頰)
    by code point: the kanji that KANJIDIC2 (EDRDG, CC BY-SA 4.0; as shipped in the
    ``jamdict-data`` 1.5 package) gives grades 1-6 and 8, in its forms (叱 and 剥 for the list's
    𠮟 and 剝; 塡 and 頰 as the list has them)."""
    return list(JOYO_FILE.read_text(encoding="utf-8").strip())


def script_of(char: str) -> str:
    """The script a class belongs to, for accuracy per script: hiragana, katakana, kanji by JIS
    level (level 1, level 2, other), digit, latin or other (symbols, Greek, ...)."""
    if "\u3041" <= char <= "\u309f":
        return "hiragana"
    if "\u30a0" <= char <= "\u30ff":
        return "katakana"
    if char.isdigit():
        return "digit"
    if char.isascii() and char.isalpha() or "\uff21" <= char <= "\uff5a":
        return "latin"
    if "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf":
        row = _jis_row(char)
        return "kanji level 1" if row and row < 0x50 else "kanji level 2" if row else "kanji other"
    return "other"


def _jis_row(char: str) -> int | None:
    """The JIS X 0208 row (first byte) of ``char``; None when it has no JIS X 0208 code."""
    try:
        encoded = char.encode("euc_jp")
    except UnicodeEncodeError:
        return None
    return encoded[0] & 0x7F if len(encoded) == 2 else None


def look_alike_confusions(
    targets: np.ndarray, predicted: np.ndarray, labels: list[str]
) -> dict[str, dict[str, int]]:
    """For each pair of :data:`LOOK_ALIKES` whose both characters are in ``labels``: how many
    samples of each there were (``n_a``, ``n_b``) and how many of them were read as the other
    (``a_as_b``, ``b_as_a``). ``targets`` and ``predicted`` are class indices (top-1)."""
    index = {c: i for i, c in enumerate(labels)}
    out = {}
    for a, b in LOOK_ALIKES:
        if a not in index or b not in index:
            continue
        ia, ib = index[a], index[b]
        out[f"{a}/{b}"] = {
            "n_a": int(np.sum(targets == ia)),
            "n_b": int(np.sum(targets == ib)),
            "a_as_b": int(np.sum((targets == ia) & (predicted == ib))),
            "b_as_a": int(np.sum((targets == ib) & (predicted == ia))),
        }
    return out


def yielding_twins(classes: list[str]) -> set[str]:
    """The classes of ``classes`` that one image cannot tell from a more common class of the set.

    The shared normalisation scales every character to fill the frame, so a small kana alone is
    its full-size kana (a reader sees the difference only beside its neighbours), and へ/ヘ, べ/ベ
    and ぺ/ペ share one shape. A small kana yields to its full-size kana, and of each look-alike
    pair the one rarer in Japanese text (:mod:`kanji_lab.prior`'s table) yields to the other.
    The synthetic generator writes a yielding class less often, so the model learns to prefer
    the common reading of an image that fits both.
    """
    from kanji_lab.prior import frequencies

    present = set(classes)
    small = {s for s, full in _SMALL_TO_FULL.items() if s in present and full in present}
    table = frequencies()
    rarer = {
        min(pair, key=lambda c: table.get(c, 0.0)) for pair in _SHAPE_TWINS if set(pair) <= present
    }
    return small | rarer


def zero_shot_split(seen: int = 2000) -> tuple[list[str], list[str]]:
    """The level-1 kanji split for zero-shot studies: ``seen`` of them to train on, the rest
    never seen. The order is fixed by a hash of each character (not by JIS order, which follows
    readings), so the split is the same on every machine and Python version."""
    kanji = sorted(jis_level1_kanji(), key=lambda c: hashlib.sha1(c.encode()).hexdigest())
    return sorted(kanji[:seen]), sorted(kanji[seen:])


NAMED_SETS = {
    "etl9g": etl9g_classes,
    "combined": combined_classes,
    "kana": kana_classes,
    "hiragana": lambda: etl9g_classes()[-71:],
    "jis_level1": jis_level1_kanji,
    "jis0208": jis0208_classes,
    "joyo": joyo_kanji,
    # 2,000 / 965 of the 2,965 level-1 kanji (model=hiercode zero-shot recipe)
    "zeroshot_seen": lambda: zero_shot_split()[0],
    "zeroshot_unseen": lambda: zero_shot_split()[1],
}


# names that look like set names but have no list here
_UNAVAILABLE = {
    "etl8g": "ETL8G's 881 kanji (the 1958 education list) ship with no package here: train on "
    "the real files with data=etl8g, or pass the characters as a quoted string",
}


def resolve_classes(spec: str, key: str = "data.classes") -> list[str]:
    """A named class set (see :data:`NAMED_SETS`), named sets joined by ``+`` (their union, in
    order: ``jis0208+joyo``), or an explicit string of characters.

    The result is de-duplicated and keeps first-seen order. A plain lower-case ASCII word that
    names no set is refused rather than read as the characters of its letters. ``key``: the
    setting the spec came from, named in the :class:`ClassSetError` message.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ClassSetError(
            f"empty class set: set {key} to a named set "
            f"({', '.join(NAMED_SETS)}) or a quoted string of characters, "
            f"e.g. '{key}=\"亜唖娃\"'"
        )
    if not re.fullmatch(r"(?=.*[a-z0-9])[a-z0-9_+]+", spec):
        return list(dict.fromkeys(c for c in spec if not c.isspace()))
    chars: list[str] = []
    for name in spec.split("+"):
        if name not in NAMED_SETS:
            reason = _UNAVAILABLE.get(name, "not a named class set")
            which = f"{key}={spec}" + (f": {name or 'an empty name'}" if name != spec else "")
            raise ClassSetError(
                f"{which}: {reason}. Named sets: {', '.join(NAMED_SETS)} (joined "
                f"by +, e.g. jis0208+joyo); characters are given as a quoted string, e.g. "
                f"'{key}=\"亜唖娃\"'"
            )
        chars += NAMED_SETS[name]()
    return list(dict.fromkeys(chars))


def class_codes(spec: str | None, key: str = "data.classes") -> np.ndarray | None:
    """The code points a class spec keeps (see :func:`resolve_classes`), as a filter on the
    samples of any source; None for no spec (every class)."""
    if spec is None:
        return None
    return np.array([ord(c) for c in resolve_classes(spec, key)], dtype=np.int32)
