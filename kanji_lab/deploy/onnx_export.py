"""Export a network to one self-contained ONNX file and check it against PyTorch.

The default is the ``torch.export``-based exporter (``dynamo=True``) at its default opset; an
explicit ``opset`` below :data:`DYNAMO_MIN_OPSET` (e.g. 14, for old runtimes) uses the legacy
TorchScript exporter. Every file carries the label map, the preprocessing and the architecture in
its ``metadata_props``, so it can be used without the training code or the run directory.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx.external_data_helper import uses_external_data
from torch import nn

from kanji_lab.atomic import atomic_file
from kanji_lab.deploy.weights import PREPROCESSING
from kanji_lab.errors import UserError
from kanji_lab.inference import cpu_session

log = logging.getLogger(__name__)

INPUT, OUTPUT = "image", "logits"
DYNAMO_MIN_OPSET = 18
PARITY_BATCHES = (1, 3)
# ONNX Runtime against PyTorch: logits may differ by PARITY_TOL times their scale (the largest
# absolute logit, at least 1) and probabilities by PARITY_PROB_TOL; float32 kernels that sum in
# another order differ in proportion to the values summed, so an absolute bound fails large logits
PARITY_TOL = 1e-4
PARITY_PROB_TOL = 1e-4
# the example batch the graph is traced with; parity is checked at other sizes, so a batch size
# baked into the graph (a known failure of recurrent models) shows up as an error or a mismatch
EXAMPLE_BATCH = 2


class ExportError(UserError, RuntimeError):
    """An exported model is invalid or does not compute what the PyTorch model computes."""


def export_onnx(
    net: nn.Module,
    path: Path,
    labels: list[str],
    opset: int | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``net`` (a copy of it, in eval mode on the CPU) to ``path`` with a dynamic batch
    axis; ``opset=None`` is the dynamo exporter's default opset."""
    net = copy.deepcopy(net).cpu().eval()
    example = torch.zeros(EXAMPLE_BATCH, 1, PREPROCESSING["size"], PREPROCESSING["size"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        model = _dynamo(net, example, opset) if _use_dynamo(opset) else _legacy(net, example, opset)
    strip_node_metadata(model.graph)
    meta = {
        "labels": json.dumps(labels, ensure_ascii=False),
        "preprocessing": json.dumps(PREPROCESSING),
        "exporter": "dynamo" if _use_dynamo(opset) else "torchscript",
    }
    meta.update({k: _text(v) for k, v in (extra_metadata or {}).items()})
    set_metadata(model, meta)
    model.producer_name = "kanji_lab"
    with atomic_file(path) as tmp:
        onnx.save_model(model, str(tmp), save_as_external_data=False)
    return path


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _use_dynamo(opset: int | None) -> bool:
    return opset is None or opset >= DYNAMO_MIN_OPSET


def _dynamo(net: nn.Module, example: torch.Tensor, opset: int | None) -> onnx.ModelProto:
    program = torch.onnx.export(
        net,
        (example,),
        dynamo=True,
        opset_version=opset,
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    return program.model_proto


def _legacy(net: nn.Module, example: torch.Tensor, opset: int) -> onnx.ModelProto:
    import io

    buffer = io.BytesIO()
    torch.onnx.export(
        net,
        (example,),
        buffer,
        dynamo=False,
        opset_version=opset,
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
    )
    return onnx.load_from_string(buffer.getvalue())


def strip_node_metadata(graph: onnx.GraphProto) -> None:
    """Drop what the exporter records on each node for debugging (its Python stack trace, module
    path, FX node): a tenth of a small model's file, of no use to a runtime."""
    for node in graph.node:
        del node.metadata_props[:]
        for attribute in node.attribute:
            for sub in (attribute.g, *attribute.graphs):
                strip_node_metadata(sub)


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    """Set (replace) string entries of a model's ``metadata_props``."""
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)


def read_metadata(path: Path) -> dict[str, Any]:
    """An exported file's metadata, JSON values decoded (``labels``, ``preprocessing`` ...)."""
    model = onnx.load(str(path), load_external_data=False)
    meta: dict[str, Any] = {"opset": _default_opset(model)}
    for prop in model.metadata_props:
        try:
            meta[prop.key] = json.loads(prop.value)
        except json.JSONDecodeError:
            meta[prop.key] = prop.value
    return meta


def _default_opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


session = cpu_session  # an ONNX Runtime CPU session (kanji_lab.inference)


def run_session(sess: ort.InferenceSession, images: np.ndarray) -> np.ndarray:
    """Logits for float ``(B, 1, 64, 64)`` model inputs."""
    feed = {sess.get_inputs()[0].name: np.ascontiguousarray(images, dtype=np.float32)}
    return sess.run(None, feed)[0]


def check_onnx(
    path: Path, net: nn.Module, inputs: np.ndarray | None = None, tol: float = PARITY_TOL
) -> dict[str, Any]:
    """Validate ``path`` (``onnx.checker``, one file, dynamic batch) and compare ONNX Runtime with
    ``net`` at batch sizes :data:`PARITY_BATCHES`: logits within ``tol`` times their scale,
    probabilities within :data:`PARITY_PROB_TOL`, the same top-1 wherever PyTorch's top two are
    further apart than the logit tolerance. ``inputs``: model inputs to compare on (default:
    seeded noise in [-1, 1]). Raises :class:`ExportError`; returns the measured differences."""
    path = Path(path)
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path.name}: onnx.checker failed: {exc}") from exc
    if any(uses_external_data(t) for t in model.graph.initializer):
        raise ExportError(f"{path.name}: weights stored outside the file")
    inputs = _parity_inputs(inputs, max(PARITY_BATCHES))
    sess = session(path)
    net = copy.deepcopy(net).cpu().eval()
    report: dict[str, Any] = {"file": path.name, "opset": _default_opset(model), "tol": tol}
    for batch in PARITY_BATCHES:
        report[f"max_abs_diff_b{batch}"] = _compare(sess, net, inputs[:batch], tol, path.name)
    return report


def _parity_inputs(inputs: np.ndarray | None, n: int) -> np.ndarray:
    if inputs is None or len(inputs) < n:
        rng = np.random.default_rng(0)
        size = PREPROCESSING["size"]
        return rng.uniform(-1, 1, (n, 1, size, size)).astype(np.float32)
    return np.asarray(inputs[:n], dtype=np.float32)


def _compare(
    sess: ort.InferenceSession, net: nn.Module, x: np.ndarray, tol: float, name: str
) -> float:
    try:
        got = run_session(sess, x)
    except Exception as exc:  # any runtime failure is an export failure
        raise ExportError(f"{name}: ONNX Runtime failed at batch {len(x)}: {exc}") from exc
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    if got.shape != want.shape:
        raise ExportError(f"{name}: batch {len(x)} gives shape {got.shape}, PyTorch {want.shape}")
    diff = float(np.abs(got - want).max())
    allowed = tol * max(1.0, float(np.abs(want).max()))
    prob_diff = float(np.abs(softmax(got) - softmax(want)).max())
    top2 = np.sort(want, axis=1)[:, -2:] if want.shape[1] > 1 else np.zeros((len(want), 2))
    decided = top2[:, 1] - top2[:, 0] > allowed  # rows whose top-1 no rounding can flip
    same_top1 = np.array_equal(got.argmax(1)[decided], want.argmax(1)[decided])
    if diff > allowed or prob_diff > PARITY_PROB_TOL or not same_top1:
        raise ExportError(
            f"{name}: ONNX Runtime differs from PyTorch at batch {len(x)}: max abs logit "
            f"difference {diff:.3g} (allowed {allowed:.3g}, {tol:g} x the largest logit), max "
            f"probability difference {prob_diff:.3g} (allowed {PARITY_PROB_TOL:g}), top-1 "
            f"equal: {same_top1}"
        )
    return diff


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise probabilities of ``(B, classes)`` logits."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
