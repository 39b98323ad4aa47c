"""Inference without PyTorch: image inputs, ONNX Runtime models and top-k candidates.

Shared by :mod:`kanji_lab.predict` (every backend) and :class:`kanji_lab.Recognizer`. It imports
only numpy, Pillow, numba (through the normalisation) and onnxruntime, so that characters can be
recognised where torch, Lightning and Hydra are not installed.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image, UnidentifiedImageError

from kanji_lab.data.images import grayscale, normalize_gray
from kanji_lab.data.normalize import Settings
from kanji_lab.errors import RunDirError
from kanji_lab.prior import log_prior, rescore

# the files a run's export writes (the names kanji_lab.deploy.pipeline gives them)
ONNX_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
MIN_CONTRAST = 16  # grey levels between the darkest and lightest pixel for an image to hold ink
VALUE_RANGE = (-1.0, 1.0)  # model input values of paper and of full ink, unless metadata says


class ImageError(ValueError):
    """One input image cannot be used; the message (one line) says why."""


class ModelError(RunDirError):
    """No model can be loaded from what was given; the message says what to pass instead."""


def required_file(path: Path) -> Path:
    """``path`` when it is a file, else :class:`ModelError` naming the command that writes it."""
    path = Path(path)
    if not path.is_file():
        hint = "python -m kanji_lab.export run_dir=" + str(path.parent)
        raise ModelError(f"{path} not found; a finished training run writes it (or run: {hint})")
    return path


def collect_images(specs: Sequence[str | Path] | str | Path) -> list[Path]:
    """The image paths named by files and folders (a folder: its image files, recursively,
    sorted; an empty folder stays in the list, to be reported as a failed input)."""
    specs = [specs] if isinstance(specs, str | Path) else list(specs)
    paths: list[Path] = []
    for spec in map(Path, specs):
        if spec.is_dir():
            found = sorted(p for p in spec.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            paths += found or [spec]
        else:
            paths.append(spec)
    return paths


def load_image(path: Path, invert: str = "auto", settings: Settings | None = None) -> np.ndarray:
    """A file -> ``(64, 64)`` uint8 ink-bright, like the training data; :class:`ImageError` when
    it is missing, unreadable, empty or blank. ``settings``: the model's normalisation."""
    path = Path(path)
    try:
        info = path.stat()  # one call for what is there (a folder, a file, its size)
    except OSError:
        raise ImageError("no such file") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError("folder holds no image files")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError("no such file")
    if info.st_size == 0:
        raise ImageError("empty file")
    try:
        with Image.open(path) as img:
            img.load()
            return image_input(img, invert, settings)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageError(f"not a readable image ({type(exc).__name__}: {exc})") from exc


def image_input(
    img: Image.Image, invert: str = "auto", settings: Settings | None = None
) -> np.ndarray:
    """A PIL image (any mode, size, polarity) -> the normalised uint8 ink-bright model image;
    :class:`ImageError` when it holds no ink."""
    gray = grayscale(img)
    if gray.size == 0 or int(gray.max()) - int(gray.min()) < MIN_CONTRAST:
        raise ImageError("no ink found (the image is blank)")
    return normalize_gray(gray, invert=invert, settings=settings)


def array_image(array: np.ndarray) -> Image.Image:
    """A numpy image -> PIL: ``(H, W)`` grey, ``(H, W, 1)``, ``(H, W, 3)`` RGB or ``(H, W, 4)``
    RGBA; uint8 or other integers in 0..255 (uint16: 0..65535), floats in 0..1 or 0..255,
    booleans (True = 255)."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ImageError(f"array of shape {a.shape} is not an image: (H, W) or (H, W, 3 or 4)")
    if a.size == 0:
        raise ImageError(f"array of shape {a.shape} holds no pixels")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16 and a.max() > 255:
        a = np.rint(a / 257.0)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError("array holds NaN or infinite values")
        if a.max() <= 1.0:
            a = np.rint(a * 255.0)
    elif not np.issubdtype(a.dtype, np.integer):
        raise ImageError(f"array of dtype {a.dtype} is not an image")
    if a.min() < 0 or a.max() > 255:
        raise ImageError(f"array values {a.min()}..{a.max()} outside 0..255 (or 0..1)")
    return Image.fromarray(a.astype(np.uint8))


def model_batch(images: np.ndarray, value_range: Sequence[float] = VALUE_RANGE) -> np.ndarray:
    """uint8 ink-bright ``(B, H, W)`` -> float32 ``(B, 1, H, W)`` model inputs, paper at
    ``value_range[0]`` and full ink at ``value_range[1]`` (the same values as
    :func:`kanji_lab.data.datamodule.model_input` gives for ``(-1, 1)``)."""
    lo, hi = (np.float32(v) for v in value_range)
    x = images[:, None].astype(np.float32) / np.float32(255.0)
    return x * (hi - lo) + lo


def top_k(
    logits: np.ndarray, labels: list[str], k: int, prior: float = 0.0
) -> list[list[dict[str, Any]]]:
    """Per row: the ``k`` most probable characters with their softmax probabilities; with
    ``prior`` > 0 the scores first take that weight of the character-frequency prior
    (:mod:`kanji_lab.prior`)."""
    z = rescore(logits, log_prior(labels), prior) if prior else logits.astype(np.float64)
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    order = best_first(probs, min(k, len(labels)))
    return [
        [{"char": labels[i], "prob": float(p[i])} for i in row]
        for row, p in zip(order, probs, strict=True)
    ]


def best_first(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the indices of the ``k`` highest ``scores``, highest first (ties: lower index
    first). A partition first: the full sort of thousands of classes is most of the work."""
    if k >= scores.shape[1]:
        return np.argsort(-scores, axis=1, kind="stable")
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(scores, part, axis=1)
    # where the k-th score is tied with scores left out, the partition chose among them at
    # random: those rows are sorted in full
    last = picked.min(axis=1, keepdims=True)
    tied = (scores == last).sum(axis=1) > (picked == last).sum(axis=1)
    order = np.take_along_axis(part, np.lexsort((part, -picked), axis=-1), axis=1)
    order[tied] = np.argsort(-scores[tied], axis=1, kind="stable")[:, :k]
    return order


@dataclass(frozen=True)
class OnnxModel:
    """An exported model in ONNX Runtime, with the metadata stored in its file (labels,
    preprocessing: see :mod:`kanji_lab.deploy.onnx_export`)."""

    path: Path
    session: ort.InferenceSession
    metadata: Mapping[str, Any]

    @property
    def labels(self) -> list[str]:
        return list(self.metadata["labels"])

    @property
    def preprocessing(self) -> Mapping[str, Any]:
        return self.metadata.get("preprocessing") or {}

    @property
    def normalization(self) -> Settings | None:
        """The image normalisation the model was trained with (None: this version's)."""
        return self.preprocessing.get("normalize")

    @property
    def value_range(self) -> tuple[float, float]:
        lo, hi = self.preprocessing.get("range", VALUE_RANGE)
        return float(lo), float(hi)

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Logits ``(B, classes)`` of float ``(B, 1, H, W)`` model inputs."""
        feed = {self.session.get_inputs()[0].name: np.ascontiguousarray(inputs, np.float32)}
        return self.session.run(None, feed)[0]


def cpu_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session; ``threads`` caps intra-op threads (None: runtime default)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def open_onnx(path: Path, threads: int | None = None) -> OnnxModel:
    """An ONNX file on the CPU in ONNX Runtime (``threads``: intra-op threads; None: the
    runtime's default). :class:`ModelError` when it is missing, not a model, or lacks labels."""
    path = required_file(path)
    try:
        sess = cpu_session(path, threads)
    except Exception as exc:  # onnxruntime raises its own unrelated exception types
        raise ModelError(f"{path}: not a model ONNX Runtime can load ({exc})") from exc
    metadata: dict[str, Any] = {}
    for key, value in sess.get_modelmeta().custom_metadata_map.items():
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError:
            metadata[key] = value
    if not isinstance(metadata.get("labels"), list):
        raise ModelError(f"{path}: no labels in its metadata; export it with kanji_lab.export")
    return OnnxModel(path, sess, metadata)
