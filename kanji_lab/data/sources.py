"""Registry of data sources: each turns its ``data`` config into a ready cache folder.

A source is a function ``build(cfg, progress) -> Path`` that returns a finished cache folder (see
:mod:`kanji_lab.data.cache`), building it first when it is missing or stale. Modules register
themselves with :func:`register`; the registry knows which module holds which source, so that
importing it stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

from kanji_lab.registry import Registry

Builder = Callable[[DictConfig, bool], Path]

_REGISTRY: Registry[Builder] = Registry(
    "data source",
    {
        "synthetic": "kanji_lab.data.synthetic",
        "etl9g": "kanji_lab.data.etl_source",
        "etl8g": "kanji_lab.data.etl_source",
        "etl7": "kanji_lab.data.etl_source",
        "etl6": "kanji_lab.data.etl_source",
        "etl1": "kanji_lab.data.etl_source",
        "etl8b": "kanji_lab.data.etl_source",
        "etl9b": "kanji_lab.data.etl_source",
        "combined_all_etl": "kanji_lab.data.etl_source",
        "auto": "kanji_lab.data.etl_source",
        "folder": "kanji_lab.data.folder",
        "strokes": "kanji_lab.data.stroke_source",
    },
)


class DataSourceError(ValueError):
    """A data source cannot be used as configured; the message says how to fix it."""


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make ``fn`` the builder of source ``name``."""
    return _REGISTRY.register(name)


def available() -> list[str]:
    """Names of every known source."""
    return _REGISTRY.names()


def build_cache(cfg: DictConfig, progress: bool = True) -> Path:
    """Return the cache folder for data config ``cfg``, building it if needed (joined with the
    sources listed in ``cfg.extra``, see :mod:`kanji_lab.data.mix`)."""
    if cfg.get("extra"):
        from kanji_lab.data.mix import build_with_extra

        return build_with_extra(cfg, progress)
    name = cfg.get("source")
    builder = _REGISTRY.get(name)
    if builder is None:
        raise DataSourceError(
            f"unknown data source {name!r}; known sources: {', '.join(available())}. "
            "Pick one with data=<name> (see conf/data/)."
        )
    return builder(cfg, progress)
