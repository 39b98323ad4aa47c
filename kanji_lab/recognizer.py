"""Recognise handwritten characters from Python with an exported model, without PyTorch.

Usage::

    from kanji_lab import Recognizer

    rec = Recognizer("outputs/train/runs/<run>")   # a run directory or an .onnx file
    rec.read("scan.png", k=5)                      # path, PIL image or numpy array
    rec.read_strokes([[(10, 12), (40, 12)], [(25, 0), (25, 50)]])  # pen traces, y down
    rec.read_many(paths_or_arrays, batch_size=256)
    Recognizer.models()                            # the models shipped in the package
    Recognizer()                                   # the default shipped model

A :class:`Reading` holds the character (``.char``), its probability (``.prob``) and the ``k``
candidates in order (``.candidates``), or ``.error`` for an input that could not be read.

Images are normalised with the settings stored in the model (those it was trained with), exactly
as ``python -m kanji_lab.predict`` does (:mod:`kanji_lab.inference`); pen traces are drawn with
the canonical pen first, as the web page does (:func:`kanji_lab.data.normalize.strokes_input`).
Only onnxruntime, numpy, numba and Pillow are needed.

Shipped models: ``kanji_lab/shipped/registry.json`` lists them, ``{"models": [entry, ...]}``, each
entry ``{name, file, classes, description, recipe, commit, metrics}`` with ``file`` (the ONNX
file) beside the registry; the first entry is the default. To ship one, copy its ``.onnx`` into
``kanji_lab/shipped/`` and add its entry.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kanji_lab.data.normalize import Settings, strokes_input
from kanji_lab.inference import (
    ONNX_FILE,
    ImageError,
    ModelError,
    OnnxModel,
    array_image,
    collect_images,
    image_input,
    load_image,
    model_batch,
    open_onnx,
    top_k,
)
from kanji_lab.prior import checked_weight

__all__ = ["Candidate", "ModelError", "ReadError", "Reading", "Recognizer", "ShippedModel"]

REGISTRY = Path(__file__).parent / "shipped" / "registry.json"
ImageInput = str | os.PathLike[str] | Image.Image | np.ndarray
Strokes = Sequence[Sequence[Sequence[float]]]  # strokes of (x, y) points, y down
_INVERT = {"auto", "true", "false"}
_NO_MODEL = (
    "no model is shipped with kanji_lab yet: pass a run directory or an .onnx file, "
    'Recognizer("outputs/train/runs/<run>") or kanji-lab read --model <run dir> ...'
)


class ReadError(ValueError):
    """One input cannot be read (missing, not an image, blank, unsupported type)."""


@dataclass(frozen=True)
class Candidate:
    """One character and its probability."""

    char: str
    prob: float


@dataclass(frozen=True)
class Reading:
    """What one input reads as: ``candidates``, most probable first (``k`` of them), or
    ``error``, one line saying why the input could not be read."""

    source: str
    candidates: tuple[Candidate, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def char(self) -> str | None:
        """The most probable character (None when the input failed)."""
        return self.candidates[0].char if self.candidates else None

    @property
    def prob(self) -> float | None:
        """Its probability (None when the input failed)."""
        return self.candidates[0].prob if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        """``{char, prob}`` plus ``candidates`` (``[{char, prob}]``) when there are several, or
        ``{error}``; JSON-ready, without the source."""
        if self.error is not None:
            return {"error": self.error}
        out: dict[str, Any] = {"char": self.char, "prob": self.prob}
        if len(self.candidates) > 1:
            out["candidates"] = [{"char": c.char, "prob": c.prob} for c in self.candidates]
        return out


@dataclass(frozen=True)
class ShippedModel:
    """An entry of the registry of models shipped in the package."""

    name: str
    file: Path
    classes: int
    description: str = ""
    recipe: str = ""
    commit: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)


def shipped_models(registry: Path | None = None) -> list[ShippedModel]:
    """The entries of ``registry`` (default :data:`REGISTRY`), the default model first."""
    registry = Path(registry or REGISTRY)
    try:
        entries = json.loads(registry.read_text(encoding="utf-8"))["models"]
        return [
            ShippedModel(
                name=str(e["name"]),
                file=registry.parent / str(e["file"]),
                classes=int(e["classes"]),
                description=str(e.get("description", "")),
                recipe=str(e.get("recipe", "")),
                commit=str(e.get("commit", "")),
                metrics=dict(e.get("metrics") or {}),
            )
            for e in entries
        ]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{registry}: not a valid registry of models ({exc!r})") from exc


class Recognizer:
    """An exported model, ready to read characters from images and pen traces.

    ``model``: a run directory (its ``model.onnx``), an ``.onnx`` file (e.g. a run's
    ``model.int8.onnx``), the name of a shipped model, or None for the default shipped model.
    ``prior``: weight of the character-frequency prior (:mod:`kanji_lab.prior`; 0: off).
    ``invert``: ink polarity of images, ``"auto"`` (from each image's outer band), ``"true"`` (dark
    ink on light paper) or ``"false"``. ``threads``: ONNX Runtime threads (None: its default).
    Raises :class:`ModelError` when no model can be loaded from ``model``.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        prior: float = 0.0,
        invert: str | bool = "auto",
        threads: int | None = None,
    ) -> None:
        self.invert = str(invert).lower()
        if self.invert not in _INVERT:
            raise ValueError(f"invert must be one of {sorted(_INVERT)}, got {invert!r}")
        self.prior = checked_weight(prior)
        self.shipped, path = _resolve(model)
        self._model: OnnxModel = open_onnx(path, threads)
        if self.shipped and self.shipped.classes != len(self.labels):
            raise ModelError(
                f"shipped model {self.shipped.name}: the registry says {self.shipped.classes} "
                f"classes, {path.name} has {len(self.labels)}"
            )

    def __repr__(self) -> str:
        return f"Recognizer({str(self.path)!r}, classes={len(self.labels)})"

    @property
    def path(self) -> Path:
        """The ONNX file in use."""
        return self._model.path

    @property
    def labels(self) -> list[str]:
        """The characters the model knows, in class order."""
        return self._model.labels

    @property
    def settings(self) -> Settings | None:
        """The image normalisation the model was trained with (None: this version's)."""
        return self._model.normalization

    @staticmethod
    def models() -> list[ShippedModel]:
        """The models shipped in the package (``kanji_lab/shipped/registry.json``), the default
        first; empty while none is shipped."""
        return shipped_models()

    def read(self, image: ImageInput, k: int = 1) -> Reading:
        """The ``k`` most probable characters of one image: a file path, a PIL image or a numpy
        array (grey ``(H, W)`` or colour ``(H, W, 3|4)``, either ink polarity, any size).
        Raises :class:`ReadError` when it cannot be read."""
        return _checked(self.read_many([image], k=k)[0])

    def read_strokes(self, strokes: Strokes, k: int = 1) -> Reading:
        """The ``k`` most probable characters of pen traces: strokes of ``(x, y)`` points, y
        down, any unit (the web page's pad coordinates, a tablet's). Raises :class:`ReadError`
        for no strokes or malformed points."""
        _check_positive(k=k)
        try:
            arrays = [np.asarray(s, dtype=np.float64).reshape(-1, 2) for s in strokes]
            if not np.isfinite(np.concatenate([np.zeros((0, 2)), *arrays])).all():
                raise ValueError("points must be finite numbers")
            image = strokes_input(arrays, settings=self.settings)
        except (ValueError, TypeError) as exc:
            raise ReadError(f"strokes: {_one_line(exc)}") from exc
        return self._classify([image], ["<strokes>"], k)[0]

    def read_many(
        self, inputs: Iterable[ImageInput], k: int = 1, batch_size: int = 256
    ) -> list[Reading]:
        """One :class:`Reading` per input, in order, the model run ``batch_size`` images at a
        time. An input that cannot be read gets a reading with ``error`` set; the rest are
        read all the same."""
        return list(self.read_iter(inputs, k=k, batch_size=batch_size))

    def read_iter(
        self, inputs: Iterable[ImageInput], k: int = 1, batch_size: int = 256
    ) -> Iterator[Reading]:
        """:meth:`read_many`, yielding the readings of each batch as soon as it is done."""
        _check_positive(k=k, batch_size=batch_size)
        if isinstance(inputs, str | os.PathLike | Image.Image):
            raise TypeError("read_many takes a list of inputs; read() takes one")
        items = iter(inputs)
        start = 0
        while chunk := list(itertools.islice(items, batch_size)):
            yield from self._read_chunk(chunk, start, k)
            start += len(chunk)

    def _read_chunk(self, chunk: list[Any], start: int, k: int) -> list[Reading]:
        readings: list[Reading | None] = []
        images, sources, slots = [], [], []
        for index, item in enumerate(chunk, start):
            source = _describe(item, index)
            try:
                images.append(self._prepare(item))
            except (ImageError, OSError, ValueError, TypeError) as exc:
                readings.append(Reading(source, error=_one_line(exc)))
                continue
            sources.append(source)
            slots.append(len(readings))
            readings.append(None)
        for slot, reading in zip(slots, self._classify(images, sources, k), strict=True):
            readings[slot] = reading
        return readings  # type: ignore[return-value]

    def _prepare(self, item: Any) -> np.ndarray:
        """One input -> the normalised uint8 model image; :class:`ImageError` if it cannot be."""
        if isinstance(item, str | os.PathLike):
            path = Path(item)
            if path.is_dir() and collect_images(path) != [path]:
                raise ImageError("a folder: read its image files (kanji-lab read takes folders)")
            return load_image(path, self.invert, self.settings)
        if isinstance(item, Image.Image):
            return image_input(item, self.invert, self.settings)
        if isinstance(item, np.ndarray):
            return image_input(array_image(item), self.invert, self.settings)
        raise ImageError(
            f"unsupported input type {type(item).__name__}: "
            "pass a file path, a PIL image or a numpy array"
        )

    def _classify(self, images: list[np.ndarray], sources: list[str], k: int) -> list[Reading]:
        if not images:
            return []
        inputs = model_batch(np.stack(images), self._model.value_range)
        best = top_k(self._model.logits(inputs), self.labels, k, self.prior)
        return [
            Reading(source, tuple(Candidate(t["char"], t["prob"]) for t in row))
            for source, row in zip(sources, best, strict=True)
        ]


def _resolve(model: str | os.PathLike[str] | None) -> tuple[ShippedModel | None, Path]:
    """The shipped entry (if any) and the ONNX file that ``model`` names."""
    if model is None:
        shipped = shipped_models()
        if not shipped:
            raise ModelError(_NO_MODEL)
        return shipped[0], shipped[0].file
    path = Path(model).expanduser()
    if path.is_dir():
        return None, path / ONNX_FILE
    if path.is_file():
        return None, path
    shipped = shipped_models()
    for entry in shipped:
        if entry.name == str(model):
            return entry, entry.file
    names = ", ".join(e.name for e in shipped) or "none yet"
    raise ModelError(
        f"{model}: no such run directory, .onnx file or shipped model (shipped: {names})"
    )


def _describe(item: Any, index: int) -> str:
    if isinstance(item, str | os.PathLike):
        return os.fspath(item)
    kind = {Image.Image: "PIL image", np.ndarray: "array"}
    name = next((v for t, v in kind.items() if isinstance(item, t)), type(item).__name__)
    return f"<{name} #{index}>"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, ImageError) else f"{type(exc).__name__}: {text}"


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


def _checked(reading: Reading) -> Reading:
    if reading.error is not None:
        raise ReadError(f"{reading.source}: {reading.error}")
    return reading
