"""Streaming construction of a cache (format of :mod:`kanji_lab.data.cache`) too big for memory.

Images go straight into a preallocated ``images.npy`` memory map inside a temporary folder, which
is renamed over the cache folder only once the manifest is written, so ``cache.is_complete`` and
``cache.open_cache`` never see a half-built cache.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from kanji_lab.atomic import remove_stale, replace_dir, temporary_dir
from kanji_lab.data.cache import FORMAT_VERSION, IMAGE_SIZE, CharacterSet, jsonable


class CacheWriter:
    """Preallocate a cache of ``count`` samples, fill it by slices, then :meth:`finish` it."""

    def __init__(self, cache_dir: Path, count: int, source_names: list[str]) -> None:
        self.cache_dir = Path(cache_dir)
        # what a killed build of this cache left behind (a temporary folder can be gigabytes)
        remove_stale(self.cache_dir.parent, self.cache_dir.name)
        self.tmp = temporary_dir(self.cache_dir)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.count = count
        self.source_names = list(source_names)
        self.images_path = self.tmp / "images.npy"
        self.images = np.lib.format.open_memmap(
            self.images_path, mode="w+", dtype=np.uint8, shape=(count, IMAGE_SIZE, IMAGE_SIZE)
        )
        self.codepoints = np.zeros(count, np.int32)
        self.writers = np.zeros(count, np.int32)
        self.sources = np.zeros(count, np.int16)

    def set_labels(
        self, start: int, codepoints: np.ndarray, writers: np.ndarray, source: str
    ) -> None:
        """Record labels, writers and the source of the samples ``start .. start + len``."""
        stop = start + len(codepoints)
        self.codepoints[start:stop] = codepoints
        self.writers[start:stop] = writers
        self.sources[start:stop] = self.source_names.index(source)

    def finish(self, fingerprint: dict[str, Any], info: dict[str, Any]) -> Path:
        """Write the label arrays and the manifest, then move the cache into place."""
        self.images.flush()
        del self.images
        np.save(self.tmp / "codepoints.npy", self.codepoints)
        np.save(self.tmp / "writers.npy", self.writers)
        np.save(self.tmp / "sources.npy", self.sources)
        manifest = {
            "version": FORMAT_VERSION,
            "count": self.count,
            "sources": self.source_names,
            "fingerprint": jsonable(fingerprint),
            "info": jsonable(info),
        }
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
        replace_dir(self.tmp, self.cache_dir)
        return self.cache_dir

    def abandon(self) -> None:
        """Remove the temporary folder after a failure."""
        self.__dict__.pop("images", None)
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_cache(cache_dir: Path, data: CharacterSet, fingerprint: dict[str, Any]) -> Path:
    """Write ``data`` to ``cache_dir`` atomically: a half-written cache is never seen as valid."""
    writer = CacheWriter(cache_dir, len(data), data.source_names)
    try:
        writer.images[:] = data.images
        writer.codepoints[:] = data.codepoints
        writer.writers[:] = data.writers
        writer.sources[:] = data.sources
        return writer.finish(fingerprint, data.info)
    except BaseException:
        writer.abandon()
        raise
