"""``python -m kanji_lab.predict run_dir=<run> images=[a.png,b.jpg]``: top-k characters of
real images (colour or grey, any size, either ink polarity, off-centre), through ONNX Runtime
(``backend=onnx``, default; ``int8``) or PyTorch (``torch``; ``nf4`` with bitsandbytes).

Each image is normalised like the training data (:func:`kanji_lab.data.images.normalize_image`).
A file that cannot be read or holds no ink gets its own error line and the others still run; the
exit status is 1 when any file failed.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig

from kanji_lab.config import config_dir
from kanji_lab.data.normalize import Settings
from kanji_lab.deploy import bnb
from kanji_lab.deploy.onnx_export import read_metadata as onnx_metadata
from kanji_lab.deploy.pipeline import INT8_FILE, ONNX_FILE, bnb_file
from kanji_lab.deploy.weights import WEIGHTS_FILE, load_weights, read_metadata
from kanji_lab.errors import reports_user_errors
from kanji_lab.inference import (
    ImageError,
    collect_images,
    load_image,
    model_batch,
    open_onnx,
    required_file,
    top_k,
)
from kanji_lab.prior import checked_weight
from kanji_lab.run_dir import RunDirError

log = logging.getLogger(__name__)
BACKENDS = ("onnx", "int8", "torch", "nf4")
FORMATS = ("text", "jsonl")
Logits = Callable[[np.ndarray], np.ndarray]


class PredictError(ValueError):
    """A bad option of the predict command (unknown backend, format, top-k)."""


def check_options(cfg: DictConfig) -> None:
    if cfg.backend not in BACKENDS:
        raise PredictError(f"backend={cfg.backend}: unknown backend; choose from {BACKENDS}")
    if cfg.format not in FORMATS:
        raise PredictError(f"format={cfg.format}: unknown format; choose from {FORMATS}")
    if int(cfg.topk) < 1:
        raise PredictError(f"topk={cfg.topk}: must be at least 1")
    checked_weight(cfg.get("prior"))


def load_backend(
    run_dir: Path, backend: str, threads: int | None = None
) -> tuple[Logits, list[str]]:
    """A function from model inputs ``(B, 1, 64, 64)`` to logits, and the labels."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run_dir={run_dir}: no such directory")
    if backend in ("onnx", "int8"):
        return _onnx_backend(run_dir / (ONNX_FILE if backend == "onnx" else INT8_FILE), threads)
    if backend == "torch":
        net, meta = load_weights(required_file(run_dir / WEIGHTS_FILE))
    elif backend == "nf4":
        net, meta = _nf4(run_dir)
    else:
        raise PredictError(f"backend={backend}: unknown backend; choose from {BACKENDS}")
    return _torch_logits(net), meta["labels"]


def _onnx_backend(path: Path, threads: int | None) -> tuple[Logits, list[str]]:
    model = open_onnx(path, threads)
    return model.logits, model.labels


def _nf4(run_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    stored = run_dir / bnb_file("nf4")
    if stored.is_file():
        return bnb.load_quantized(stored)
    log.info("%s not found: quantizing %s to NF4 in memory", stored.name, WEIGHTS_FILE)
    net, meta = load_weights(required_file(run_dir / WEIGHTS_FILE))
    quantized, _ = bnb.quantize_linears(net, "nf4")
    return quantized, meta


def _torch_logits(net: torch.nn.Module) -> Logits:
    @torch.no_grad()
    def logits(x: np.ndarray) -> np.ndarray:
        return net(torch.from_numpy(x)).float().numpy()

    return logits


def trained_normalization(run_dir: Path) -> Settings | None:
    """The image normalisation the run's model was trained with, from its weights or ONNX
    metadata; None (this version's) for models that predate it."""
    for path, read in (
        (run_dir / WEIGHTS_FILE, read_metadata),
        (run_dir / ONNX_FILE, onnx_metadata),
    ):
        if path.is_file():
            return read(path).get("preprocessing", {}).get("normalize")
    return None


def predict(cfg: DictConfig) -> list[dict[str, Any]]:
    """One result per image: ``{path, backend, topk}`` or ``{path, backend, error}``."""
    check_options(cfg)
    logits, labels = load_backend(Path(cfg.run_dir), cfg.backend, cfg.get("threads"))
    settings = trained_normalization(Path(cfg.run_dir))
    images = cfg.images
    specs = list(images) if isinstance(images, ListConfig | list) else str(images)
    results: list[dict[str, Any]] = []
    for chunk in _chunks(collect_images(specs), int(cfg.get("batch_size", 64))):
        results += _predict_chunk(chunk, logits, labels, cfg, settings)
    return results


def _chunks(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start : start + size]


def _predict_chunk(
    paths: list[Path],
    logits: Logits,
    labels: list[str],
    cfg: DictConfig,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    results = [{"path": str(p), "backend": cfg.backend} for p in paths]
    loaded = []
    for result, path in zip(results, paths, strict=True):
        try:
            loaded.append((result, load_image(path, str(cfg.invert), settings)))
        except ImageError as exc:
            result["error"] = str(exc)
    if loaded:
        batch = model_batch(np.stack([img for _, img in loaded]))
        for (result, _), best in zip(
            loaded,
            top_k(logits(batch), labels, int(cfg.topk), checked_weight(cfg.get("prior"))),
            strict=True,
        ):
            result["topk"] = best
    return results


def render(result: dict[str, Any], fmt: str) -> str:
    """One output line for one result."""
    if fmt == "jsonl":
        return json.dumps(result, ensure_ascii=False)
    if "error" in result:
        return f"{result['path']}: error: {result['error']}"
    guesses = "  ".join(f"{t['char']} {100 * t['prob']:.1f}%" for t in result["topk"])
    return f"{result['path']}: {guesses}"


@hydra.main(config_path=config_dir(), config_name="predict", version_base="1.3")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    try:
        results = predict(cfg)
    except PredictError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from exc
    for result in results:
        stream = sys.stderr if "error" in result and cfg.format == "text" else sys.stdout
        print(render(result, cfg.format), file=stream, flush=True)
    failed = sum("error" in r for r in results)
    if failed:
        log.error("%d of %d images failed", failed, len(results))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
