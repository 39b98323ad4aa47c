"""``python -m kanji_lab.prepare data=<name>``: build (or reuse) the cache of a data source."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

import kanji_lab.config
from kanji_lab.data import cache, sources
from kanji_lab.errors import reports_user_errors

log = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> Path:
    """Build the cache of ``cfg.data`` when missing or stale; log what it holds."""
    folder = sources.build_cache(cfg.data, progress=bool(cfg.get("progress", True)))
    data = cache.open_cache(folder)
    log.info(
        "Cache %s: %d samples, %d classes, %d writers, sources %s",
        folder,
        len(data),
        len(data.characters),
        len(set(data.writers.tolist())),
        ", ".join(data.source_names),
    )
    return folder


@hydra.main(config_path=kanji_lab.config.config_dir(), config_name="prepare", version_base="1.3")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    prepare(cfg)


if __name__ == "__main__":
    main()
