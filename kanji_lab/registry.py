"""A name -> function table whose entries register themselves on import.

A registry knows only which modules hold entries, not which names each holds: the decorators are
the one list of names. Modules are imported when a name is first looked up (one at a time, until
it is found) or when every name is asked for, so that importing a registry stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """Functions by name, filled by the :meth:`register` decorator of the ``modules``."""

    def __init__(self, kind: str, modules: list[str]) -> None:
        self.kind = kind
        self.modules = list(modules)
        self.entries: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: make the decorated function the entry ``name``."""

        def wrap(fn: F) -> F:
            self.entries[name] = fn
            return fn

        return wrap

    def names(self) -> list[str]:
        """Every known name (every module imported)."""
        for module in self.modules:
            importlib.import_module(module)
        return sorted(self.entries)

    def get(self, name: str) -> F | None:
        """The entry ``name`` (importing modules until one registers it), or None."""
        for module in self.modules:
            if name in self.entries:
                break
            importlib.import_module(module)
        return self.entries.get(name)
