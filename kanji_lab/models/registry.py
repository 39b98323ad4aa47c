"""Architecture registry: a network is a function of its name, its label list and its config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from kanji_lab.errors import NetworkConfigError
from kanji_lab.registry import Registry

Constructor = Callable[..., nn.Module]

_REGISTRY: Registry[Constructor] = Registry(
    "architecture",
    [
        "kanji_lab.models.cnn",
        "kanji_lab.models.rnn",
        "kanji_lab.models.hiercode",
        "kanji_lab.models.vit",
    ],
)


def register(name: str) -> Callable[[Constructor], Constructor]:
    """Decorator: make ``fn(labels, **kwargs)`` the constructor of architecture ``name``."""
    return _REGISTRY.register(name)


def architectures() -> list[str]:
    """Names of every known architecture."""
    return _REGISTRY.names()


# options removed after measuring below the default, with the value every model kept: a model
# file or checkpoint that still names one at that value builds as before
RETIRED = {
    "hiercode": {"codebook": "slots", "margin": 0.0, "slot_weight": 0.0},
    "rnn": {"read": "columns"},
    "vit": {"stem": "hybrid"},
}


def build_network(name: str, labels: list[str], **kwargs: Any) -> nn.Module:
    """Build architecture ``name`` for the classes ``labels`` with keyword config ``kwargs``."""
    constructor = _REGISTRY.get(name)
    if constructor is None:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(architectures())}")
    for key, kept in RETIRED.get(name, {}).items():
        if key in kwargs and kwargs.pop(key) != kept:
            raise NetworkConfigError(
                f"model.net of {name!r}: {key} was removed (only {key}={kept!r} remains; keys and "
                f"defaults: conf/model/{name}.yaml); a model trained with another value loads only "
                "with the kanji_lab commit that trained it"
            )
    try:
        return constructor(labels, **kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, TypeError) and "unexpected keyword argument" not in str(exc):
            raise
        raise NetworkConfigError(
            f"model.net of {name!r}: {exc} (its keys and defaults: conf/model/{name}.yaml)"
        ) from exc


def stored_tables(net: nn.Module) -> dict[str, Any]:
    """What ``net`` derived from KanjiVG and needs to be rebuilt as it was (``net.stored()``: the
    RNN's component vocabulary, HierCode's codes); empty for networks that derive nothing."""
    stored = getattr(net, "stored", None)
    return stored() if callable(stored) else {}
