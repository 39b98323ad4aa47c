"""Extra sources mixed into a data source's training set: ``data.extra=[synthetic]``.

The main source is built as usual; each extra source (a ``conf/data/`` name) is built for the
main source's characters (only those with fewer than ``data.extra_below`` samples, when set), and
the samples are joined into one cache. Extra samples only ever go to the training split (the
manifest lists their source names under ``train_only``), so validation and test stay real data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, open_dict

from kanji_lab.config import data_config
from kanji_lab.data import cache, cache_writer
from kanji_lab.data.charsets import class_codes
from kanji_lab.errors import DataSourceError

log = logging.getLogger(__name__)
Builder = Callable[[DictConfig, bool], Path]


def build_with_extra(cfg: DictConfig, progress: bool, build: Builder) -> Path:
    """The cache of ``cfg``'s source joined with its ``extra`` sources; ``build`` builds one
    source's cache (:func:`kanji_lab.data.sources.build_cache`, passed in so that this module
    does not import the registry that calls it)."""
    main_cfg = cfg.copy()
    with open_dict(main_cfg):
        main_cfg.extra = []
    main_dir = build(main_cfg, progress)
    main = cache.open_cache(main_dir)
    codes = np.asarray(main.codepoints)
    kept = class_codes(cfg.get("classes"))  # data.classes: extra samples for those alone
    wanted = classes_needing_samples(
        codes if kept is None else codes[np.isin(codes, kept)], cfg.get("extra_below")
    )
    if not wanted:
        log.info("data.extra: every class has at least %s samples; nothing added", cfg.extra_below)
        return main_dir
    extra_dirs = [build(extra_config(name, cfg, wanted), progress) for name in cfg.extra]
    parts = [main_dir, *extra_dirs]
    fingerprint = {"parts": [str(p) for p in parts], "manifests": [_manifest(p) for p in parts]}
    digest = hashlib.sha1(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]
    folder = Path(str(cfg.cache_dir)) / f"mix-{digest}"
    if cache.is_complete(folder, fingerprint):
        return folder
    extras = [cache.open_cache(d) for d in extra_dirs]
    joined = cache.concatenate([main, *_distinct_writers(main, extras)])
    joined.info["train_only"] = sorted({n for e in extras for n in e.source_names})
    log.info(
        "data.extra: %d samples of %s added for %d classes (training only)",
        len(joined) - len(main),
        ", ".join(cfg.extra),
        len(wanted),
    )
    return cache_writer.write_cache(folder, joined, fingerprint)


def classes_needing_samples(codepoints: np.ndarray, below: int | None) -> list[str]:
    """Characters with fewer than ``below`` samples (every character when ``below`` is None)."""
    counts = Counter(np.asarray(codepoints).tolist())
    return sorted(chr(c) for c, n in counts.items() if below is None or n < below)


def extra_config(name: str, cfg: DictConfig, classes: list[str]) -> DictConfig:
    """The ``conf/data/<name>.yaml`` config, in ``cfg``'s cache folder, for ``classes``."""
    try:
        extra = data_config(name, cache_dir=str(cfg.cache_dir))
    except KeyError:
        raise DataSourceError(
            f"data.extra: no data config {name!r} (see conf/data/); e.g. data.extra=[synthetic]"
        ) from None
    if "root" in extra:
        extra.root = cfg.get("root")
    if "heldout_classes" in extra:  # an extra source only trains: every writer writes everything
        extra.heldout_classes = None
    if "classes" not in extra:
        raise DataSourceError(f"data.extra: source {name!r} cannot be given classes")
    extra.classes = "".join(classes)
    return extra


def _distinct_writers(
    main: cache.CharacterSet, extras: list[cache.CharacterSet]
) -> list[cache.CharacterSet]:
    """Shift each extra set's writer ids past every id before it."""
    shifted, offset = [], int(np.max(main.writers)) + 1
    for extra in extras:
        shifted.append(
            cache.CharacterSet(
                images=extra.images,
                codepoints=extra.codepoints,
                writers=np.asarray(extra.writers) + offset,
                sources=extra.sources,
                source_names=extra.source_names,
                info=extra.info,
            )
        )
        offset += int(np.max(extra.writers)) + 1
    return shifted


def _manifest(folder: Path) -> dict:
    return json.loads((Path(folder) / "manifest.json").read_text())["fingerprint"]
