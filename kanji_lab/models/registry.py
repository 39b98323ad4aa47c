"""Architecture registry: a network is a function of its name, its label list and its config."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

Constructor = Callable[..., nn.Module]

_CONSTRUCTORS: dict[str, Constructor] = {}
_MODULES = {
    "cnn": "kanji_lab.models.cnn",
    "rnn": "kanji_lab.models.rnn",
    "hiercode": "kanji_lab.models.hiercode",
    "vit": "kanji_lab.models.vit",
}


def register(name: str) -> Callable[[Constructor], Constructor]:
    """Decorator: make ``fn(labels, **kwargs)`` the constructor of architecture ``name``."""

    def wrap(fn: Constructor) -> Constructor:
        _CONSTRUCTORS[name] = fn
        return fn

    return wrap


def architectures() -> list[str]:
    """Names of every known architecture."""
    return sorted(set(_MODULES) | set(_CONSTRUCTORS))


def build_network(name: str, labels: list[str], **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` for the classes ``labels`` with keyword config ``kwargs``."""
    if name not in _CONSTRUCTORS and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in _CONSTRUCTORS:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(architectures())}")
    return _CONSTRUCTORS[name](labels, **kwargs)
