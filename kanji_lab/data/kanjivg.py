"""KanjiVG stroke data: each character as polylines in stroke order, with each stroke's ending.

KanjiVG ships as the ``kanjivg`` wheel, whose ``kanji/`` folder holds one SVG per character
(``04e9c.svg`` for 亜, viewBox 0 0 109 109). Every stroke is a ``<path d=...>`` with a
``kvg:type`` giving the stroke kind (㇐ ㇑ ㇒ ㇏ ㇚ ...), from which :func:`stroke_ending` tells
how a brush would finish it.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIEWBOX = 109.0
SAMPLE_STEP = 2.5  # distance between sampled points, in viewBox units

# How a stroke ends (and starts): used to shape its width along the stroke.
TOME, HARAI, HANE, DOT, PRESS_HARAI = range(5)
_ENDINGS = {
    **dict.fromkeys("㇒㇓㇀㇇㇜", HARAI),
    **dict.fromkeys("㇚㇁㇂㇃㇆㇈㇉㇖㇟㇡㇋㇌㇙", HANE),
    "㇔": DOT,
    "㇏": PRESS_HARAI,
}

_PATH = re.compile(r"<path\b[^>]*>")
_ATTR_D = re.compile(r'\sd="([^"]*)"')
_ATTR_TYPE = re.compile(r'kvg:type="([^"]*)"')
_TOKEN = re.compile(r"[A-Za-z]|-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ARITY = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "Z": 0}


@dataclass(frozen=True)
class Character:
    """A character's strokes packed into flat arrays, in stroke order.

    ``points`` ``(n, 2)`` are viewBox units (y down); stroke ``k`` is
    ``points[starts[k]:ends[k]]`` and finishes as ``endings[k]`` (TOME, HARAI, ...);
    ``stroke[i]`` is the stroke that point ``i`` belongs to.
    """

    points: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    endings: np.ndarray
    stroke: np.ndarray

    @classmethod
    def pack(cls, strokes: list[tuple[np.ndarray, int]]) -> Character:
        """Pack ``(points, ending)`` pairs, each with at least two points."""
        sizes = np.array([len(p) for p, _ in strokes])
        ends = np.cumsum(sizes)
        return cls(
            points=np.concatenate([p for p, _ in strokes]).astype(np.float32),
            starts=ends - sizes,
            ends=ends,
            endings=np.array([e for _, e in strokes], dtype=np.int8),
            stroke=np.repeat(np.arange(len(strokes)), sizes),
        )

    def __len__(self) -> int:
        return len(self.starts)


def kanjivg_dir() -> Path:
    """The ``kanji/`` folder of the installed ``kanjivg`` package."""
    try:
        folder = Path(str(importlib.metadata.distribution("kanjivg").locate_file("kanji")))
    except importlib.metadata.PackageNotFoundError:
        folder = None
    if folder is None or not folder.is_dir():
        raise FileNotFoundError("KanjiVG data not found: pip install kanjivg (in the train extra)")
    return folder


def svg_path(char: str, folder: Path | None = None) -> Path:
    """Where the base (non-variant) KanjiVG file of ``char`` would be."""
    return (folder or kanjivg_dir()) / f"{ord(char):05x}.svg"


def stroke_ending(kvg_type: str) -> int:
    """The ending kind of a stroke from its ``kvg:type`` (first alternative, suffix ignored)."""
    return _ENDINGS.get(kvg_type[:1], TOME)


def load_strokes(char: str, folder: Path | None = None) -> Character | None:
    """The strokes of ``char`` in writing order, or None when KanjiVG has no data for it."""
    path = svg_path(char, folder)
    if not path.is_file():
        return None
    strokes = []
    for tag in _PATH.findall(path.read_text(encoding="utf-8")):
        d = _ATTR_D.search(tag)
        if d is None:
            continue
        kind = _ATTR_TYPE.search(tag)
        points = sample_path(d.group(1))
        if len(points) >= 2:
            strokes.append((points, stroke_ending(kind.group(1) if kind else "")))
    return Character.pack(strokes) if strokes else None


def sample_path(d: str, step: float = SAMPLE_STEP) -> np.ndarray:
    """Sample an SVG path ``d`` string (M L H V C S Q T Z, absolute or relative) to a polyline."""
    pieces: list[np.ndarray] = []
    pos = np.zeros(2)
    start = np.zeros(2)
    last_ctrl: np.ndarray | None = None
    for cmd, args in _commands(d):
        rel = cmd.islower()
        op = cmd.upper()
        base = pos if rel else np.zeros(2)
        if op == "M":
            pos = start = base + args[:2]
            pieces.append(pos[None])
            last_ctrl = None
            continue
        if op in "HV":
            target = pos.copy()
            axis = 0 if op == "H" else 1
            target[axis] = (pos[axis] if rel else 0) + args[0]
            ctrl = [pos, pos, target, target]
        elif op == "Z":
            ctrl = [pos, pos, start, start]
        elif op == "L" or op == "T":
            ctrl = [pos, pos, base + args[:2], base + args[:2]]
        elif op == "C":
            ctrl = [pos, base + args[0:2], base + args[2:4], base + args[4:6]]
        elif op == "S":
            first = 2 * pos - last_ctrl if last_ctrl is not None else pos
            ctrl = [pos, first, base + args[0:2], base + args[2:4]]
        else:  # Q: raise the quadratic to a cubic
            q = base + args[0:2]
            end = base + args[2:4]
            ctrl = [pos, pos + 2 / 3 * (q - pos), end + 2 / 3 * (q - end), end]
        pieces.append(_cubic(np.array(ctrl), step))
        last_ctrl = ctrl[2] if op in "CS" else None
        pos = ctrl[3]
    points = np.concatenate(pieces) if pieces else np.zeros((0, 2))
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.any(np.abs(np.diff(points, axis=0)) > 1e-6, axis=1)
    return points[keep].astype(np.float32)


def _commands(d: str) -> list[tuple[str, np.ndarray]]:
    """Split a path string into (command, arguments) pairs, expanding implicit repeats."""
    tokens = _TOKEN.findall(d)
    out: list[tuple[str, np.ndarray]] = []
    i = 0
    cmd = ""
    while i < len(tokens):
        if tokens[i].isalpha():
            cmd = tokens[i]
            i += 1
            if cmd.upper() == "Z":
                out.append((cmd, np.zeros(0)))
                continue
        arity = _ARITY.get(cmd.upper())
        if not arity:
            raise ValueError(f"unsupported SVG path data: {d!r}")
        out.append((cmd, np.array(tokens[i : i + arity], dtype=np.float64)))
        i += arity
        if cmd in "Mm":  # further pairs after a move are line-tos
            cmd = "l" if cmd == "m" else "L"
    return out


def _cubic(ctrl: np.ndarray, step: float) -> np.ndarray:
    """Points of a cubic Bézier (4 control points) spaced about ``step`` apart, start excluded."""
    length = float(np.sum(np.hypot(*np.diff(ctrl, axis=0).T)))
    n = max(1, int(np.ceil(length / step)))
    t = np.linspace(0.0, 1.0, n + 1)[1:, None]
    u = 1.0 - t
    return u**3 * ctrl[0] + 3 * u * u * t * ctrl[1] + 3 * u * t * t * ctrl[2] + t**3 * ctrl[3]
