"""Source ``folder``: any folder of labelled character images described by ``labels.csv``.

``<root>/labels.csv`` has columns ``path,char`` (paths relative to the folder or absolute; extra
columns ignored; an optional ``writer`` column groups samples by hand, else one writer per image).
This is the format ``python -m kanji_lab.dump`` writes.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from kanji_lab.data import cache, sources
from kanji_lab.data.images import normalize_image
from kanji_lab.data.normalize import SETTINGS as NORMALIZE_SETTINGS
from kanji_lab.data.sources import DataSourceError

log = logging.getLogger(__name__)

SOURCE_NAME = "folder"
_REQUIRED = ("path", "char")


def read_labels(root: Path) -> list[dict[str, str]]:
    """The rows of ``<root>/labels.csv``; DataSourceError when missing or malformed."""
    labels = root / "labels.csv"
    if not labels.is_file():
        raise DataSourceError(
            f"{labels} not found: data=folder needs a labels.csv with columns path,char "
            "(e.g. written by python -m kanji_lab.dump)."
        )
    with open(labels, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise DataSourceError(f"{labels}: missing column(s) {', '.join(missing)}")
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        if len(row["char"] or "") != 1:
            raise DataSourceError(
                f"{labels} line {line}: char {row['char']!r} is not one character"
            )
    if not rows:
        raise DataSourceError(f"{labels} lists no images")
    return rows


def image_path(root: Path, row: dict[str, str]) -> Path:
    path = Path(row["path"])
    return path if path.is_absolute() else root / path


def load_image(path: Path, invert: str) -> np.ndarray:
    """One image file normalised to the cache convention; DataSourceError naming a bad file."""
    try:
        with Image.open(path) as img:
            return normalize_image(img, invert)
    except (OSError, UnidentifiedImageError) as err:
        raise DataSourceError(f"cannot read image {path}: {err}") from err


def writer_ids(rows: list[dict[str, str]]) -> np.ndarray:
    """From the ``writer`` column when present (any strings), else one writer per image."""
    if rows and "writer" in rows[0] and all(r.get("writer") for r in rows):
        names = [r["writer"] for r in rows]
        table = {name: i for i, name in enumerate(dict.fromkeys(names))}
        return np.array([table[n] for n in names], dtype=np.int32)
    return np.arange(len(rows), dtype=np.int32)


def fingerprint(root: Path, rows: list[dict[str, str]], invert: str) -> dict[str, Any]:
    """labels.csv content plus every image's size and modification time."""
    digest = hashlib.sha1((root / "labels.csv").read_bytes())
    for row in rows:
        stat = image_path(root, row).stat() if image_path(root, row).exists() else None
        digest.update(f"{row['path']}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}".encode())
    return {
        "source": SOURCE_NAME,
        "root": str(root.resolve()),
        "invert": invert,
        "digest": digest.hexdigest(),
        "normalize": NORMALIZE_SETTINGS,
    }


@sources.register(SOURCE_NAME)
def build_folder(cfg: DictConfig, progress: bool = True) -> Path:
    """Return the cache of the folder ``data.root``, building it when missing or stale."""
    if not cfg.get("root") or not Path(str(cfg.root)).is_dir():
        raise DataSourceError(
            f"data=folder needs data.root=<folder with labels.csv>, got {cfg.get('root')!r}"
        )
    root = Path(str(cfg.root)).expanduser()
    invert = str(cfg.get("invert", "auto")).lower()
    rows = read_labels(root)
    stamp = fingerprint(root, rows, invert)
    tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    folder = Path(str(cfg.cache_dir)).expanduser() / f"{cfg.name}-{tag}"
    if cache.is_complete(folder, stamp):
        log.info("Using cached %s (%s)", cfg.name, folder)
        return folder
    images = np.stack(
        [load_image(image_path(root, r), invert) for r in tqdm(rows, disable=not progress)]
    )
    data = cache.CharacterSet(
        images=images,
        codepoints=np.array([ord(r["char"]) for r in rows], dtype=np.int32),
        writers=writer_ids(rows),
        sources=np.zeros(len(rows), dtype=np.int16),
        source_names=[SOURCE_NAME],
        info={"root": str(root), "images": len(rows)},
    )
    log.info("Read %d images from %s", len(rows), root)
    return cache.write_cache(folder, data, stamp)
