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

from kanji_lab.data.mix import Builder, build_with_extra
from kanji_lab.errors import DataSourceError
from kanji_lab.registry import Registry

# the modules whose @register decorators name the sources
_REGISTRY: Registry[Builder] = Registry(
    "data source",
    [
        "kanji_lab.data.etl.source",
        "kanji_lab.data.folder",
        "kanji_lab.data.strokes",
        "kanji_lab.data.synthetic",
    ],
)


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
        return build_with_extra(cfg, progress, build_cache)
    name = cfg.get("source")
    builder = _REGISTRY.get(name)
    if builder is None:
        raise DataSourceError(
            f"unknown data source {name!r}; known sources: {', '.join(available())}. "
            "Pick one with data=<name> (see conf/data/)."
        )
    return builder(cfg, progress)
