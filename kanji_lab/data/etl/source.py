"""ETL parts as data sources: find the user's files, decode them into a cache, register sources.

Sources: ``etl9g``, ``etl8g``, ``etl7``, ``etl6``, ``etl1``, ``etl8b``, ``etl9b`` (one part each),
``combined_all_etl`` (whatever of ETL6, ETL7, ETL8G, ETL9G is present, one vocabulary) and
``auto`` (the largest of every ETL source present, else the synthetic data).
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from kanji_lab.config import data_config
from kanji_lab.data import cache, etl, sources
from kanji_lab.data.cache_writer import CacheWriter
from kanji_lab.data.normalize import SETTINGS as NORMALIZE_SETTINGS
from kanji_lab.errors import DataSourceError

log = logging.getLogger(__name__)

DOWNLOAD_URL = "http://etlcdb.db.aist.go.jp/"
DECODER_VERSION = 1  # bump when decoding or resizing changes what a cache holds
SAMPLED_RECORDS = 16  # records checksummed per file for the fingerprint, spread through it

SOURCE_PARTS = {
    "etl9g": ("ETL9G",),
    "etl8g": ("ETL8G",),
    "etl7": ("ETL7",),
    "etl6": ("ETL6",),
    "etl1": ("ETL1",),
    "etl8b": ("ETL8B",),
    "etl9b": ("ETL9B",),
    "combined_all_etl": ("ETL6", "ETL7", "ETL8G", "ETL9G"),
}
# data=auto: every ETL source, in the order that breaks ties between equally large ones
AUTO_ORDER = ("combined_all_etl", "etl9g", "etl9b", "etl8g", "etl8b", "etl7", "etl6", "etl1")


@dataclass(frozen=True)
class PartFile:
    """One file of one part, with the number of records it contributes."""

    part: etl.Part
    path: Path
    records: int
    include_models: bool


# ---------------------------------------------------------------- finding files


def data_root(cfg: DictConfig) -> Path:
    """``data.root`` as an existing folder; DataSourceError saying how to set it otherwise."""
    root = cfg.get("root")
    if not root:
        raise DataSourceError(
            f"data.root is not set for data={cfg.get('source')}: download the ETL archives from "
            f"{DOWNLOAD_URL}, unpack them into one folder and pass data.root=<folder> (or set "
            "KANJI_LAB_DATA=<folder>)."
        )
    root = Path(str(root)).expanduser()
    if not root.is_dir():
        raise DataSourceError(
            f"data.root={root} is not a folder: point it (or KANJI_LAB_DATA) at the folder where "
            f"you unpacked the ETL archives from {DOWNLOAD_URL}."
        )
    return root


def search_dirs(root: Path, part: etl.Part) -> list[Path]:
    """Where a part's files may be: its own folder (as in the archives) or the root itself."""
    return [root / part.name, root]


def find_part_files(root: Path, part: etl.Part) -> list[Path]:
    """The part's files under ``root`` by their real names (case-sensitive), sorted by name.

    DataSourceError when the part's folder holds a file of another part.
    """
    found: dict[str, Path] = {}
    for folder in search_dirs(root, part):
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            owner = etl.part_of_file(path.name)
            if owner is part:
                found.setdefault(path.name, path)
            elif owner is not None and folder.name == part.name:
                raise DataSourceError(
                    f"{path} is an {owner.name} file inside the {part.name} folder {folder}: move "
                    f"it to {root / owner.name} (each part's files keep their archive names)."
                )
    return [found[name] for name in sorted(found)]


def missing_files_error(root: Path, part: etl.Part) -> DataSourceError:
    """The error for a part with no files, listing what was looked for and where."""
    where = ", ".join(str(d) for d in search_dirs(root, part))
    near = [
        str(p)
        for d in search_dirs(root, part)
        if d.is_dir()
        for p in d.iterdir()
        if p.name.upper().replace("-", "_").startswith(part.name.upper()) and p.is_file()
    ]
    hint = (
        f" Found similar names (matching is case-sensitive): {', '.join(near[:5])}." if near else ""
    )
    return DataSourceError(
        f"no {part.name} files found: looked for names matching {part.file_pattern!r} "
        f"(e.g. {example_name(part)}) in {where}.{hint} Download the {part.name} archive from "
        f"{DOWNLOAD_URL} and unpack it under data.root (or KANJI_LAB_DATA)."
    )


def example_name(part: etl.Part) -> str:
    """A file name of the part, for messages."""
    return {
        "ETL9G": "ETL9G_01",
        "ETL8G": "ETL8G_01",
        "ETL9B": "ETL9B_1",
        "ETL8B": "ETL8B2C1",
        "ETL7": "ETL7LC_1",
        "ETL6": "ETL6C_01",
        "ETL1": "ETL1C_01",
    }[part.name]


def part_files(root: Path, part: etl.Part, include_models: bool) -> list[PartFile]:
    """The part's files with their record counts (sizes checked); [] when absent."""
    files = [
        PartFile(part, path, etl.count_records(path, part, include_models), include_models)
        for path in find_part_files(root, part)
    ]
    return [f for f in files if f.records > 0]


def locate(cfg: DictConfig, part_names: tuple[str, ...], require_all: bool) -> list[PartFile]:
    """Every file of the requested parts; with ``require_all`` a missing part is an error."""
    root = data_root(cfg)
    include_models = bool(cfg.get("include_models", False))
    files: list[PartFile] = []
    present = []
    for name in part_names:
        part = etl.PARTS[name]
        found = part_files(root, part, include_models)
        if not found and (require_all or len(part_names) == 1):
            raise missing_files_error(root, part)
        files += found
        if found:
            present.append(name)
    if not files:
        raise DataSourceError(
            f"none of {', '.join(part_names)} found under {root}: download them from "
            f"{DOWNLOAD_URL} and unpack each archive there (e.g. {root}/ETL9G/ETL9G_01)."
        )
    missing = [n for n in part_names if n not in present]
    log.info(
        "ETL parts used: %s%s",
        ", ".join(present),
        f" (not found, skipped: {', '.join(missing)})" if missing else "",
    )
    return files


# ---------------------------------------------------------------- cache building


def fingerprint(cfg: DictConfig, files: list[PartFile]) -> dict[str, Any]:
    """What a cache is built from: each file's size, modification time and a checksum of
    records sampled through the whole file (not only its head: a file rewritten in place with
    other records of the same size must rebuild the cache), and the parameters."""
    return {
        "source": cfg.get("source"),
        "decoder": DECODER_VERSION,
        "image_size": cache.IMAGE_SIZE,
        "normalize": NORMALIZE_SETTINGS,
        "include_models": bool(cfg.get("include_models", False)),
        "files": [
            {
                "part": f.part.name,
                "name": f.path.name,
                "size": f.path.stat().st_size,
                "mtime_ns": f.path.stat().st_mtime_ns,
                "sampled_sha1": sampled_checksum(f.path, f.part.layout.record_length),
            }
            for f in files
        ],
    }


def sampled_checksum(path: Path, record_length: int, samples: int = SAMPLED_RECORDS) -> str:
    """SHA-1 of ``samples`` whole records spread evenly from the first to the last (all of them
    in a smaller file): a few reads, whatever the file's size."""
    count = Path(path).stat().st_size // record_length
    picks = sorted({round(k * (count - 1) / max(samples - 1, 1)) for k in range(samples)})
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for index in picks if count else []:
            fh.seek(index * record_length)
            digest.update(fh.read(record_length))
    return digest.hexdigest()


def cache_folder(cfg: DictConfig, root: Path) -> Path:
    """``data.cache_dir/<data.name>``; never inside the data root."""
    folder = Path(str(cfg.cache_dir)).expanduser().resolve() / str(cfg.name)
    if folder.is_relative_to(root.resolve()):
        raise DataSourceError(
            f"the cache {folder} would be inside data.root={root}: set data.cache_dir (or "
            "paths.cache_dir / KANJI_LAB_CACHE) to a folder outside the ETL data."
        )
    return folder


def build_etl_cache(cfg: DictConfig, part_names: tuple[str, ...], progress: bool) -> Path:
    """Return the cache of ``part_names``, decoding the files first when it is missing or stale."""
    files = locate(cfg, part_names, require_all=False)
    folder = cache_folder(cfg, data_root(cfg))
    stamp = fingerprint(cfg, files)
    if cache.is_complete(folder, stamp):
        log.info("Using cached %s (%s)", cfg.name, folder)
        return folder
    log.info("Decoding %d files into %s", len(files), folder)
    return write_etl_cache(folder, files, stamp, workers(cfg), progress)


def workers(cfg: DictConfig) -> int:
    """Processes to decode with (``data.workers``; 0 = every core)."""
    wanted = int(cfg.get("workers", 0) or 0)
    return wanted if wanted > 0 else os.cpu_count() or 1


def write_etl_cache(
    folder: Path, files: list[PartFile], stamp: dict[str, Any], processes: int, progress: bool
) -> Path:
    """Decode ``files`` file by file straight into a preallocated memory-mapped cache."""
    starts = np.cumsum([0] + [f.records for f in files]).tolist()
    names = list(dict.fromkeys(f.part.name for f in files))
    writer = CacheWriter(folder, starts[-1], names)
    jobs = [
        (str(f.path), f.part.name, f.include_models, str(writer.images_path), s)
        for f, s in zip(files, starts, strict=False)
    ]
    bar = tqdm(total=starts[-1], unit="rec", desc="decode", disable=not progress)
    try:
        for (codepoints, writer_ids), f, start in zip(
            _run_jobs(jobs, processes), files, starts, strict=False
        ):
            writer.set_labels(start, codepoints, writer_ids, f.part.name)
            bar.update(f.records)
        return writer.finish(stamp, summary(files, writer))
    except BaseException:
        writer.abandon()
        raise
    finally:
        bar.close()


def _run_jobs(jobs: list[tuple], processes: int):
    if processes <= 1 or len(jobs) <= 1:
        yield from map(decode_file_into, *zip(*jobs, strict=True))
        return
    with ProcessPoolExecutor(min(processes, len(jobs))) as pool:
        yield from pool.map(decode_file_into, *zip(*jobs, strict=True))


def decode_file_into(
    path: str, part: str, include_models: bool, images_path: str, start: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one file into rows ``start..`` of the images memory map; return its labels."""
    records = etl.read_file(Path(path), part, include_models)
    images = np.load(images_path, mmap_mode="r+")
    records.images(out=images[start : start + len(records)])  # shared map: the writer flushes
    return records.codepoints, records.writers


def summary(files: list[PartFile], writer: CacheWriter) -> dict[str, Any]:
    """The manifest's ``info``: parts, files, counts, classes and writers."""
    per_part: dict[str, dict[str, Any]] = {}
    for f in files:
        entry = per_part.setdefault(f.part.name, {"files": [], "records": 0})
        entry["files"].append(f.path.name)
        entry["records"] += f.records
    return {
        "parts": per_part,
        "classes": int(len(np.unique(writer.codepoints))),
        "writers": int(len(np.unique(writer.writers))),
    }


# ---------------------------------------------------------------- data=auto


def available_records(cfg: DictConfig, source: str) -> int:
    """Records source ``source`` would hold with the files present under data.root (0: none)."""
    root = data_root(cfg)
    include_models = bool(cfg.get("include_models", False))
    return sum(
        f.records
        for name in SOURCE_PARTS[source]
        for f in part_files(root, etl.PARTS[name], include_models)
    )


def choose_auto(cfg: DictConfig) -> str | None:
    """The largest ETL source present under data.root (ties: :data:`AUTO_ORDER`), else None."""
    root = cfg.get("root")
    if not root or not Path(str(root)).expanduser().is_dir():
        return None
    sizes = {name: available_records(cfg, name) for name in AUTO_ORDER}
    best = max(AUTO_ORDER, key=lambda name: (sizes[name], -AUTO_ORDER.index(name)))
    return best if sizes[best] > 0 else None


def synthetic_config(cfg: DictConfig) -> DictConfig:
    """``data=synthetic`` as Hydra composes it, with this config's cache folder."""
    return data_config("synthetic", cache_dir=str(cfg.cache_dir))


@sources.register("auto")
def build_auto(cfg: DictConfig, progress: bool = True) -> Path:
    """``data=auto``: the largest ETL source present, else the built-in synthetic data."""
    chosen = choose_auto(cfg)
    if chosen is None:
        log.info(
            "data=auto: no ETL files under data.root=%s; using synthetic data", cfg.get("root")
        )
        return sources.build_cache(synthetic_config(cfg), progress)
    log.info("data=auto: using %s from %s", chosen, cfg.root)
    chosen_cfg = OmegaConf.merge(cfg, {"source": chosen, "name": chosen})
    return sources.build_cache(chosen_cfg, progress)


def _register(source: str) -> None:
    @sources.register(source)
    def build(cfg: DictConfig, progress: bool = True) -> Path:
        parts = tuple(cfg.get("parts") or SOURCE_PARTS[source])
        unknown = [p for p in parts if p not in etl.PARTS]
        if unknown:
            raise DataSourceError(f"unknown ETL parts {unknown}; known: {', '.join(etl.PARTS)}")
        return build_etl_cache(cfg, parts, progress)


for _source in SOURCE_PARTS:
    _register(_source)
