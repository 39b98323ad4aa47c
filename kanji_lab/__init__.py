"""kanji_lab: train, compare and ship recognisers of handwritten Japanese characters.

``from kanji_lab import Recognizer`` (:mod:`kanji_lab.recognizer`) is imported on first use, so
that importing the package loads neither the training stack nor ONNX Runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["ModelError", "ReadError", "Reading", "Recognizer"]

if TYPE_CHECKING:
    from kanji_lab.recognizer import ModelError, ReadError, Reading, Recognizer


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kanji_lab import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'kanji_lab' has no attribute {name!r}")
