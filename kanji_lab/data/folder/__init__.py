"""Source ``folder``: any folder of labelled character images described by ``labels.csv``.

``<root>/labels.csv`` has columns ``path,char`` (paths relative to the folder or absolute; extra
columns ignored). Samples are grouped into writers, which go to one split whole, by
``data.group_by``: ``auto`` (the ``writer`` column when present, else one writer per image, said
loudly in the log and in the run's ``metrics.json``), a column name, ``folder`` (each image's
sub-folder) or ``image``. This is the format ``python -m kanji_lab.dump`` writes.
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

from kanji_lab.data import cache, cache_writer, sources
from kanji_lab.data.images import POLARITY_VERSION, normalize_image
from kanji_lab.data.normalize import SETTINGS as NORMALIZE_SETTINGS
from kanji_lab.errors import DataSourceError

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


PER_IMAGE_WARNING = (
    "data=folder: {labels} has no writer column, so every image is its own writer and the "
    "train/val/test split is per sample: a hand seen in training can be scored in test, which "
    "inflates the accuracy. Add a writer column, or group with data.group_by=folder (one writer "
    "per sub-folder) or data.group_by=<column>."
)


def writer_ids(
    rows: list[dict[str, str]], group_by: str = "auto", labels: str = "labels.csv"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Writer ids by ``group_by`` and what was done (``info["writers"]`` of the cache: how the
    samples were grouped, how many groups, and a warning when that was one per image)."""
    column = "writer" if group_by == "auto" else group_by
    per_image = group_by == "image" or (group_by == "auto" and not _has_column(rows, column))
    if group_by == "folder":
        names, grouped = [Path(r["path"]).parent.as_posix() for r in rows], "folder"
    elif per_image:
        names, grouped = [str(i) for i in range(len(rows))], "image"
    elif _has_column(rows, column):
        names, grouped = [r[column] for r in rows], column
    else:
        raise DataSourceError(
            f"data.group_by={group_by}: {labels} has no {column!r} column with a value on every "
            f"line (its columns: {', '.join(rows[0])}); name a column, or use folder, image or auto"
        )
    table = {name: i for i, name in enumerate(dict.fromkeys(names))}
    info: dict[str, Any] = {"grouped_by": grouped, "groups": len(table)}
    if per_image and group_by == "auto":
        info["warning"] = PER_IMAGE_WARNING.format(labels=labels)
    return np.array([table[n] for n in names], dtype=np.int32), info


def _has_column(rows: list[dict[str, str]], column: str) -> bool:
    return bool(rows) and column in rows[0] and all(r.get(column) for r in rows)


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
        "polarity": POLARITY_VERSION,
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
    writers, grouping = writer_ids(rows, str(cfg.get("group_by", "auto")), str(root / "labels.csv"))
    if "warning" in grouping:
        log.warning("%s", grouping["warning"])
    stamp = {**fingerprint(root, rows, invert), "group_by": grouping["grouped_by"]}
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
        writers=writers,
        sources=np.zeros(len(rows), dtype=np.int16),
        source_names=[SOURCE_NAME],
        info={
            "root": str(root),
            "images": len(rows),
            "writers": grouping,
            "warnings": [grouping["warning"]] if "warning" in grouping else [],
        },
    )
    log.info("Read %d images from %s", len(rows), root)
    return cache_writer.write_cache(folder, data, stamp)
