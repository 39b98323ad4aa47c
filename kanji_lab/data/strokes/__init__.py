"""Source ``strokes``: pen traces (Tomoe ``.tdic``, Tegaki ``.charcol[.gz]`` / ``.xml``) drawn with
the canonical pen into the shared cache (:func:`kanji_lab.data.normalize.strokes_input`).

``data.root`` is one stroke file or a folder searched recursively for them. Each file is one
writer (its path relative to the root is the source name), so a folder of several people's
collections splits by person. Use it to score a run on real pen traces:
``python -m kanji_lab.evaluate run_dir=<run> data=strokes data.root=<file or folder>``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from kanji_lab.data import cache, cache_writer, sources
from kanji_lab.data.normalize import SETTINGS, strokes_input
from kanji_lab.data.strokes.files import SUFFIXES, StrokeFileError, is_stroke_file, read_stroke_file
from kanji_lab.errors import DataSourceError

log = logging.getLogger(__name__)


def stroke_files(root: Path) -> list[Path]:
    """``root`` itself when it is a stroke file, else the stroke files under it, sorted."""
    if root.is_file():
        if not is_stroke_file(root):
            raise DataSourceError(f"data.root={root}: not a stroke file ({', '.join(SUFFIXES)})")
        return [root]
    if not root.is_dir():
        raise DataSourceError(
            f"data=strokes needs data.root=<a stroke file or a folder of them>, got {str(root)!r}"
        )
    found = sorted(p for p in root.rglob("*") if p.is_file() and is_stroke_file(p))
    if not found:
        raise DataSourceError(f"no stroke files ({', '.join(SUFFIXES)}) under {root}")
    return found


def fingerprint(root: Path, files: list[Path]) -> dict[str, Any]:
    digest = hashlib.sha1()
    for path in files:
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return {
        "source": "strokes",
        "root": str(root.resolve()),
        "files": digest.hexdigest(),
        "normalize": SETTINGS,
    }


@sources.register("strokes")
def build_strokes(cfg: DictConfig, progress: bool = True) -> Path:
    """Return the cache of the stroke data at ``data.root``, building it when missing or stale."""
    if not cfg.get("root"):
        raise DataSourceError("data=strokes needs data.root=<a stroke file or a folder of them>")
    root = Path(str(cfg.root)).expanduser()
    files = stroke_files(root)
    stamp = fingerprint(root, files)
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    folder = Path(str(cfg.cache_dir)).expanduser() / f"{cfg.name}-{tag}"
    if cache.is_complete(folder, stamp):
        log.info("Using cached %s (%s)", cfg.name, folder)
        return folder
    images, codes, writers, names = [], [], [], []
    for writer, path in enumerate(files):
        try:
            traces = read_stroke_file(path)
        except StrokeFileError as err:
            raise DataSourceError(str(err)) from None
        label = str(path.relative_to(root)) if root.is_dir() else path.name
        for trace in tqdm(traces, desc=label, unit="char", disable=not progress):
            images.append(strokes_input(trace.strokes))
            codes.append(ord(trace.char))
            writers.append(writer)
        names.append(label)
    data = cache.CharacterSet(
        images=np.stack(images),
        codepoints=np.array(codes, dtype=np.int32),
        writers=np.array(writers, dtype=np.int32),
        sources=np.array(writers, dtype=np.int16),
        source_names=names,
        info={"root": str(root), "files": len(files), "characters": len(codes)},
    )
    log.info("Drew %d characters from %d stroke files under %s", len(codes), len(files), root)
    return cache_writer.write_cache(folder, data, stamp)
