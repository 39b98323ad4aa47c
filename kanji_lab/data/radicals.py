"""Radical structure of characters, from KanjiVG: a tree of components per character.

Decomposition data: `KanjiVG <https://kanjivg.tagaini.net>`_ by Ulrich Apel, licensed CC BY-SA 3.0
(https://creativecommons.org/licenses/by-sa/3.0/), read from the SVGs of the ``kanjivg`` package.
Anything derived from it (the cached tables, component vocabularies, HierCode codes stored in a
model file) is derived from KanjiVG: credit it and share it under the same licence.

Each KanjiVG SVG nests ``<g kvg:element=...>`` groups in stroke order; a group's
``kvg:position`` says where it sits in its parent (left/right, top/bottom, kamae, tare, nyo, ...).
:func:`decompose` turns that into a :class:`Node` tree: every node carries its component
(``kvg:element``, None for an unnamed group), inner nodes carry a structure (an Ideographic
Description Character such as ``⿰`` left-right, ``⿱`` top-bottom, ``⿴`` enclosure) derived from
their children's positions. A character whose SVG names no sub-component (一, 日, kana) or that
KanjiVG lacks is *atomic*: a single leaf holding the character itself.

The parsed table of every base SVG is cached in memory and on disk under
:func:`kanji_lab.config.user_cache_dir` (keyed by the kanjivg version and the parser version).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from kanji_lab.atomic import write_json
from kanji_lab.config import user_cache_dir
from kanji_lab.data.kanjivg import kanjivg_dir

PARSER_VERSION = 3
ATOMIC = "atomic"  # structure label of a character that is its own single leaf

# kvg:position of a child -> the structure of its parent (first matching rule wins)
_STRUCTURES = [
    ({"kamae", "kamaec"}, "⿴"),
    ({"tare", "tarec"}, "⿸"),
    ({"nyo", "nyoc"}, "⿺"),
    ({"⿵A", "⿵B"}, "⿵"),
    ({"⿶1", "⿶2"}, "⿶"),
    ({"middle"}, "⿲"),
    ({"left", "right"}, "⿰"),
    ({"top", "bottom"}, "⿱"),
]
OVERLAP = "⿻"  # children without positions: overlapping or unspecified arrangement
STROKES = "~"  # prefix of an unnamed leaf component, followed by its stroke kinds (㇒㇏...)

_TAG = re.compile(r"<g\b([^>]*)>|</g>|<path\b([^>]*)>")
_ATTR = re.compile(r'(kvg:\w+|id)="([^"]*)"')


@dataclass(frozen=True)
class Node:
    """One component of a character. ``structure`` is None for leaves."""

    element: str | None
    structure: str | None = None
    children: tuple[Node, ...] = ()

    def is_leaf(self) -> bool:
        return not self.children

    def to_json(self) -> list:
        return [self.element, self.structure, [c.to_json() for c in self.children]]

    @classmethod
    def from_json(cls, raw: list) -> Node:
        element, structure, children = raw
        return cls(element, structure, tuple(cls.from_json(c) for c in children))

    def walk(self, path: tuple[int, ...] = ()):
        """Every node with its path from the root (child indices), depth first, stroke order."""
        yield path, self
        for i, child in enumerate(self.children):
            yield from child.walk((*path, i))


def atomic(char: str) -> Node:
    """The single-leaf tree of a character without decomposition."""
    return Node(char, None, ())


# ---------------------------------------------------------------------------------------------
# parsing


@dataclass
class _Group:
    element: str | None
    position: str | None
    part: str | None
    children: list[_Group]
    strokes: str = ""  # first character of the kvg:type of each stroke directly inside


def parse_svg(text: str) -> Node | None:
    """The component tree of one KanjiVG SVG; None when the file names no sub-component."""
    root = _group_tree(text)
    if root is None or not root.children:
        return None
    tree = _to_node(root)
    names = {n.element for _, n in tree.walk(()) if n is not tree and n.element}
    return tree if names - {root.element} else None


def _group_tree(text: str) -> _Group | None:
    """Nest the ``<g>`` groups of the stroke-path block (stroke numbers are skipped)."""
    stack: list[_Group | None] = []  # None: the StrokePaths wrapper
    top: _Group | None = None
    for match in _TAG.finditer(text):
        tag = match.group(0)
        if tag == "</g>":
            stack.pop()
            if not stack:
                break
            continue
        if tag.startswith("<path"):
            kind = dict(_ATTR.findall(match.group(2))).get("kvg:type", "?")
            if stack and stack[-1] is not None:
                stack[-1].strokes += kind[:1] or "?"
            continue
        attrs = dict(_ATTR.findall(match.group(1)))
        if not stack:
            if "StrokePaths" not in attrs.get("id", ""):
                break  # stroke numbers or anything after the paths
            stack.append(None)
            continue
        group = _Group(
            attrs.get("kvg:element"), attrs.get("kvg:position"), attrs.get("kvg:part"), []
        )
        if stack[-1] is not None:
            stack[-1].children.append(group)
        elif top is None:
            top = group
        stack.append(group)
    return top


def _merge_parts(groups: list[_Group]) -> list[_Group]:
    """Join the later parts (``kvg:part`` 2, 3, ...) of a split element to its first part."""
    merged: list[_Group] = []
    for group in groups:
        first = next(
            (g for g in merged if group.part not in (None, "1") and g.element == group.element),
            None,
        )
        if first is None:
            merged.append(
                _Group(
                    group.element, group.position, group.part, list(group.children), group.strokes
                )
            )
        else:
            first.children.extend(group.children)
            first.strokes += group.strokes
            first.position = first.position or group.position
    return merged


def _to_node(group: _Group) -> Node:
    children = _merge_parts(group.children)
    nodes = tuple(_to_node(c) for c in children)
    if nodes and group.strokes:  # strokes outside every sub-group: one more unnamed leaf
        nodes = (*nodes, Node(STROKES + group.strokes))
    structure = structure_of([c.position for c in children]) if nodes else None
    element = group.element
    if element is None and not nodes and group.strokes:
        element = STROKES + group.strokes  # an unnamed leaf is named by its stroke kinds
    return Node(element, structure, nodes)


def structure_of(positions: list[str | None]) -> str:
    """The structure (an Ideographic Description Character) of children at ``positions``."""
    present = {p for p in positions if p}
    for names, idc in _STRUCTURES:
        if present & names:
            return idc
    return OVERLAP


# ---------------------------------------------------------------------------------------------
# the table and its cache


_cache_dir: Path | None = None  # set by use_cache_dir(); else the user cache


def use_cache_dir(folder: str | Path | None) -> None:
    """Keep the parsed table in ``folder`` (a run's ``paths.cache_dir``) from now on."""
    global _cache_dir
    _cache_dir = Path(folder) if folder else None


def kanjivg_version() -> str:
    """The installed ``kanjivg`` package's version (``unknown`` when it has none)."""
    try:
        return importlib.metadata.version("kanjivg")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _cache_file() -> Path:
    folder = _cache_dir or Path(user_cache_dir())
    return folder / f"radicals-kanjivg{kanjivg_version()}-v{PARSER_VERSION}.json"


@lru_cache(maxsize=1)
def table() -> dict[str, Node]:
    """Every character KanjiVG decomposes -> its tree (parsed once, then read from the cache)."""
    path = _cache_file()
    if path.is_file():
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {char: Node.from_json(tree) for char, tree in raw.items()}
    trees = parse_all(kanjivg_dir())
    payload = {char: tree.to_json() for char, tree in trees.items()}
    write_json(path, payload, indent=None)
    return trees


def parse_all(folder: Path) -> dict[str, Node]:
    """Parse every base (non-variant) SVG of a KanjiVG folder."""
    trees = {}
    for svg in sorted(folder.glob("*.svg")):
        if "-" in svg.stem:
            continue  # stylistic variants (04e00-Kaisho.svg ...)
        tree = parse_svg(svg.read_text(encoding="utf-8"))
        if tree is not None:
            trees[chr(int(svg.stem, 16))] = tree
    return trees


def has_svg(char: str) -> bool:
    """Whether KanjiVG has a base SVG for ``char``."""
    return (kanjivg_dir() / f"{ord(char):05x}.svg").is_file()


# ---------------------------------------------------------------------------------------------
# views of a character


def decompose(char: str) -> Node:
    """The component tree of ``char``; an atomic single leaf when KanjiVG gives none."""
    tree = table().get(char)
    return Node(char, tree.structure, tree.children) if tree else atomic(char)


def is_atomic(char: str) -> bool:
    return decompose(char).is_leaf()


def components(char: str) -> tuple[str, ...]:
    """The flat component set: every named component below the root, first-seen order; an
    atomic character is its own single component."""
    tree = decompose(char)
    if tree.is_leaf():
        return (char,)
    names = (n.element for path, n in tree.walk() if path and n.element)
    return tuple(dict.fromkeys(names))


def sequence(char: str) -> tuple[str, ...]:
    """The leaf components in stroke order (unnamed leaves skipped); atomic: ``(char,)``."""
    tree = decompose(char)
    if tree.is_leaf():
        return (char,)
    return tuple(n.element for _, n in tree.walk() if n.is_leaf() and n.element)


def signature(char: str) -> str:
    """A string that two characters share exactly when their trees below the root are equal."""
    tree = decompose(char)
    return json.dumps(Node(None, tree.structure, tree.children).to_json(), ensure_ascii=False)


def vocabulary(chars: list[str]) -> list[str]:
    """The sorted union of the flat component sets of ``chars``."""
    return sorted({c for char in chars for c in components(char)})


def coverage(chars: list[str]) -> dict[str, Any]:
    """How well the radical data covers ``chars``: decomposed, atomic (with or without an SVG),
    distinct components and structures, and characters whose trees collide."""
    chars = list(dict.fromkeys(chars))
    atomic_chars = [c for c in chars if is_atomic(c)]
    missing = [c for c in atomic_chars if not has_svg(c)]
    groups: dict[str, list[str]] = defaultdict(list)
    for c in chars:
        if not is_atomic(c):
            groups[signature(c)].append(c)
    collisions = ["".join(g) for g in groups.values() if len(g) > 1]
    structures = Counter(n.structure for c in chars for _, n in decompose(c).walk() if n.children)
    return {
        "characters": len(chars),
        "decomposed": len(chars) - len(atomic_chars),
        "atomic": len(atomic_chars),
        "atomic_without_svg": len(missing),
        "without_svg": "".join(missing),
        "atomic_characters": "".join(atomic_chars),
        "distinct_components": len(vocabulary(chars)),
        "structures": dict(structures.most_common()),
        "colliding_groups": len(collisions),
        "colliding_characters": sum(len(g) for g in collisions),
        "collisions": collisions,
    }
