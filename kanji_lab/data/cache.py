"""The on-disk cache format shared by every data source.

A cache is a folder holding memory-mappable numpy arrays plus a manifest:

- ``images.npy``  uint8 ``(N, 64, 64)``, ink bright (0 = paper, 255 = darkest ink)
- ``codepoints.npy`` int32 ``(N,)``, the Unicode code point of each sample's character
- ``writers.npy`` int32 ``(N,)``, writer ids, unique across the whole cache
- ``sources.npy`` int16 ``(N,)``, index into ``manifest["sources"]`` (e.g. ``"ETL9G"``,
  ``"synthetic/brush"``)
- ``manifest.json``: ``sources``, ``fingerprint`` (what the cache was built from; a different
  fingerprint means rebuild) and free-form ``info``.

Labels are stored as code points, never as per-source offsets, so caches combine by concatenation
and a vocabulary is ``sorted(set(codepoints))``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SIZE = 64
FORMAT_VERSION = 1
_ARRAYS = ("images", "codepoints", "writers", "sources")


@dataclass
class CharacterSet:
    """Samples of handwritten characters, as stored in a cache."""

    images: np.ndarray
    codepoints: np.ndarray
    writers: np.ndarray
    sources: np.ndarray
    source_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"images must be uint8 (N, {IMAGE_SIZE}, {IMAGE_SIZE}), got "
                f"{self.images.dtype} {self.images.shape}"
            )
        for name in _ARRAYS[1:]:
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def characters(self) -> list[str]:
        """The sorted, de-duplicated characters present."""
        return [chr(c) for c in np.unique(self.codepoints)]


def is_complete(cache_dir: Path, fingerprint: dict[str, Any]) -> bool:
    """True when ``cache_dir`` holds a finished cache built from ``fingerprint``."""
    manifest = Path(cache_dir) / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        stored = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return False
    return stored.get("version") == FORMAT_VERSION and stored.get("fingerprint") == jsonable(
        fingerprint
    )


def open_cache(cache_dir: Path) -> CharacterSet:
    """Open a cache memory-mapped (nothing is read until indexed)."""
    cache_dir = Path(cache_dir)
    manifest_path = cache_dir / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{cache_dir} is not a kanji_lab cache (no manifest.json); delete it and rerun to "
            "rebuild it"
        )
    manifest = json.loads(manifest_path.read_text())
    arrays = {name: np.load(cache_dir / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
    return CharacterSet(
        **arrays, source_names=list(manifest["sources"]), info=manifest.get("info", {})
    )


def concatenate(parts: list[CharacterSet]) -> CharacterSet:
    """Join sets into one, merging their source-name tables. Writer ids must already be distinct."""
    names: list[str] = []
    remapped = []
    for part in parts:
        table = np.array([_index(names, n) for n in part.source_names], dtype=np.int16)
        remapped.append(table[np.asarray(part.sources)] if len(part) else part.sources)
    return CharacterSet(
        images=np.concatenate([p.images for p in parts]),
        codepoints=np.concatenate([p.codepoints for p in parts]),
        writers=np.concatenate([p.writers for p in parts]),
        sources=np.concatenate(remapped).astype(np.int16),
        source_names=names,
        info={"parts": [p.info for p in parts]},
    )


def _index(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)


def jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, other objects strings)."""
    return json.loads(json.dumps(value, default=str))
