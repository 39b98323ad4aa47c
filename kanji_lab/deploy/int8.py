"""INT8 ONNX: ONNX Runtime static quantization in QDQ format, calibrated on training batches.

Weights are int8, symmetric, per output channel; activations uint8 with ranges from MinMax
calibration. The QDQ format keeps standard ``Conv`` / ``Gemm`` nodes between QuantizeLinear and
DequantizeLinear pairs, which the CPU runtime fuses into int8 kernels; the operator-oriented
format's ``ConvInteger`` is refused because the CPU runtime has no kernel for all its variants.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from kanji_lab.atomic import atomic_file
from kanji_lab.deploy.onnx_export import (
    ExportError,
    run_session,
    session,
    set_metadata,
)

log = logging.getLogger(__name__)
FORBIDDEN_OPS = {"ConvInteger", "MatMulInteger"}


class BatchReader(CalibrationDataReader):
    """Feeds float ``(B, 1, 64, 64)`` batches to the calibrator under the model's input name."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self.input_name = input_name
        self._batches: Iterator[np.ndarray] = iter(batches)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        if batch is None:
            return None
        self.count += 1
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_int8(fp32_path: Path, out_path: Path, calibration: Iterable[np.ndarray]) -> Path:
    """Write the INT8 QDQ version of ``fp32_path`` to ``out_path``, keeping its metadata."""
    source = onnx.load(str(fp32_path))
    input_name = source.graph.input[0].name
    reader = BatchReader(input_name, calibration)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(
            str(prepared),
            str(Path(tmp) / "quantized.onnx"),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        if reader.count == 0:
            raise ExportError("INT8 calibration got no batches")
        model = onnx.load(str(Path(tmp) / "quantized.onnx"))
    bad = FORBIDDEN_OPS & {n.op_type for n in model.graph.node}
    if bad:
        raise ExportError(f"{out_path.name}: holds {sorted(bad)}, which the CPU runtime lacks")
    meta = {p.key: p.value for p in source.metadata_props}
    meta.update(quantization="int8-qdq", calibration_batches=str(reader.count))
    set_metadata(model, meta)
    with atomic_file(out_path) as target:
        onnx.save_model(model, str(target), save_as_external_data=False)
    log.info("INT8 model calibrated on %d batches: %s", reader.count, out_path)
    return Path(out_path)


def top1_agreement(int8_path: Path, fp32_path: Path, inputs: np.ndarray) -> float:
    """Fraction of ``inputs`` on which the INT8 and float models predict the same class."""
    a = run_session(session(int8_path), inputs).argmax(1)
    b = run_session(session(fp32_path), inputs).argmax(1)
    return float((a == b).mean())
