"""A name -> function table whose entries register themselves on import.

``modules`` says which module holds which name, so that importing a registry stays cheap and a
name's module is imported only when it is first looked up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """Functions by name, filled by the :meth:`register` decorator."""

    def __init__(self, kind: str, modules: dict[str, str]) -> None:
        self.kind = kind
        self.modules = dict(modules)
        self.entries: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: make the decorated function the entry ``name``."""

        def wrap(fn: F) -> F:
            self.entries[name] = fn
            return fn

        return wrap

    def names(self) -> list[str]:
        """Every known name, registered or not yet imported."""
        return sorted(set(self.modules) | set(self.entries))

    def get(self, name: str) -> F | None:
        """The entry ``name`` (importing its module first), or None when there is none."""
        if name not in self.entries and name in self.modules:
            importlib.import_module(self.modules[name])
        return self.entries.get(name)
