"""Readers of pen-trace files: what a tablet or a handwriting recogniser stores per character.

- **Tomoe** dictionaries (``.tdic``): blocks separated by blank lines, each a character, a line
  ``:<number of strokes>``, then one line per stroke of ``(x y)`` points (0-320 box, y down).
- **Tegaki** character collections (``.charcol``, gzipped ``.charcol.gz``): XML with
  ``<set name="あ">`` groups of ``<character>`` elements; a single Tegaki character is one
  ``<character>`` per ``.xml`` file. Each ``<character>`` has ``<utf8>`` (optional inside a set)
  and ``<strokes>`` of ``<stroke>`` elements of ``<point x= y= .../>``.

Every reader returns :class:`Trace` items; a malformed file raises :class:`StrokeFileError` that
names the file and the line.
"""

from __future__ import annotations

import gzip
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
SUFFIXES = (".tdic", ".charcol", ".charcol.gz", ".xml")
_POINT = re.compile(r"\(\s*(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)\s*\)")


class StrokeFileError(ValueError):
    """A stroke file cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class Trace:
    """One written character: its label and strokes (each ``(n, 2)`` float ``x, y``, y down)."""

    char: str
    strokes: tuple[np.ndarray, ...]


def is_stroke_file(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def read_stroke_file(path: Path) -> list[Trace]:
    """The characters of one Tomoe or Tegaki file, chosen by its suffix."""
    path = Path(path)
    if path.name.endswith(".tdic"):
        return read_tomoe(path)
    if is_stroke_file(path):
        return read_tegaki(path)
    raise StrokeFileError(f"{path}: not a stroke file (expected one of {', '.join(SUFFIXES)})")


def read_tomoe(path: Path) -> list[Trace]:
    """Every block of a Tomoe dictionary, in file order (variants of a character kept).

    Blocks labelled with more than one character (Tomoe has a few, e.g. ``旧「ね」`` for an old
    form) cannot be a class: they are skipped with a warning that counts them.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise StrokeFileError(f"{path}: not UTF-8 text ({err})") from None
    traces = [_tomoe_block(path, start, block) for start, block in _blocks(lines)]
    skipped = [t.char for t in traces if len(t.char) != 1]
    if skipped:
        log.warning(
            "%s: skipped %d blocks not labelled with one character: %s",
            path,
            len(skipped),
            " ".join(skipped[:10]),
        )
    return [t for t in traces if len(t.char) == 1]


def _blocks(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """Runs of non-blank lines with the 1-based number of their first line."""
    block: list[str] = []
    for number, line in enumerate(lines + [""], start=1):
        if line.strip():
            block.append(line.strip())
        elif block:
            yield number - len(block), block
            block = []


def _tomoe_block(path: Path, start: int, block: list[str]) -> Trace:
    def fail(offset: int, why: str) -> StrokeFileError:
        return StrokeFileError(f"{path}:{start + offset}: {why}")

    char = block[0]
    if char.startswith(":") or _POINT.search(char):
        raise fail(0, f"expected a character to start a block, got {char!r}")
    if len(block) < 2 or not re.fullmatch(r":\d+", block[1]):
        raise fail(1, "expected ':<number of strokes>' after the character")
    count = int(block[1][1:])
    if len(block) - 2 != count:
        raise fail(1, f"{char}: {count} strokes announced, {len(block) - 2} stroke lines follow")
    strokes = []
    for offset, line in enumerate(block[2:], start=2):
        points = _POINT.findall(line)
        head = line.split("(", 1)[0].strip()
        if not points or not head.isdigit() or int(head) != len(points):
            raise fail(offset, f"{char}: a stroke line is '<n> (x y) ...' with n points: {line!r}")
        strokes.append(np.array(points, dtype=np.float64))
    return Trace(char, tuple(strokes))


def read_tegaki(path: Path) -> list[Trace]:
    """Every character of a Tegaki collection (or a single-character ``.xml``) with its label."""
    path = Path(path)
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            root = ET.parse(fh).getroot()
    except ET.ParseError as err:
        line = err.position[0]
        raise StrokeFileError(f"{path}:{line}: not well-formed XML ({err})") from None
    except (OSError, EOFError) as err:
        raise StrokeFileError(f"{path}: cannot read ({err})") from None
    if root.tag == "character":
        return [_tegaki_character(path, root, None)]
    if root.tag != "character-collection":
        raise StrokeFileError(f"{path}: root element <{root.tag}>, expected a Tegaki collection")
    traces = []
    for group in root.iter("set"):
        for element in group.iter("character"):
            traces.append(_tegaki_character(path, element, group.get("name")))
    return traces


def _tegaki_character(path: Path, element: ET.Element, label: str | None) -> Trace:
    utf8 = element.findtext("utf8")
    char = (utf8 or label or "").strip()
    if len(char) != 1:
        raise StrokeFileError(f"{path}: a <character> without a one-character label ({char!r})")
    strokes = []
    for stroke in element.iter("stroke"):
        try:
            points = [(float(p.get("x")), float(p.get("y"))) for p in stroke.iter("point")]
        except (TypeError, ValueError):
            raise StrokeFileError(f"{path}: {char}: a <point> without numeric x and y") from None
        if points:
            strokes.append(np.array(points, dtype=np.float64))
    if not strokes:
        raise StrokeFileError(f"{path}: {char}: a <character> with no points")
    return Trace(char, tuple(strokes))
