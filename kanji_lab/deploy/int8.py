"""INT8 ONNX: ONNX Runtime static quantization in QDQ format, calibrated on training batches.

Weights are int8, symmetric, per output channel; activations uint8 with ranges from MinMax
calibration. The QDQ format keeps standard ``Conv`` / ``Gemm`` nodes between QuantizeLinear and
DequantizeLinear pairs, which the CPU runtime fuses into int8 kernels; the operator-oriented
format's ``ConvInteger`` is refused because the CPU runtime has no kernel for all its variants.

The static QDQ quantizer leaves ``LSTM`` in float. A model with an LSTM first goes through ONNX
Runtime's dynamic quantizer for that op alone: its input and recurrent weights become int8 (per
output channel) in a ``com.microsoft`` ``DynamicQuantizeLSTM`` node, which quantizes the
activations at run time; the CPU runtime and ONNX Runtime Web (WASM) both run it. ONNX Runtime has
no quantized GRU, so a GRU stays float. Models without an LSTM take the static pass alone.
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
    quantize_dynamic,
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
RECURRENT_INT8_OP = "DynamicQuantizeLSTM"


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


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    calibration: Iterable[np.ndarray],
    recurrent: bool = True,
) -> Path:
    """Write the INT8 QDQ version of ``fp32_path`` to ``out_path``, keeping its metadata;
    ``recurrent=False`` leaves an LSTM in float (the static pass alone)."""
    source = onnx.load(str(fp32_path))
    input_name = source.graph.input[0].name
    reader = BatchReader(input_name, calibration)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        if recurrent:
            prepared = _quantize_lstm(prepared, Path(tmp) / "recurrent.onnx")
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
    ops = {n.op_type for n in model.graph.node}
    bad = FORBIDDEN_OPS & ops
    if bad:
        raise ExportError(f"{out_path.name}: holds {sorted(bad)}, which the CPU runtime lacks")
    meta = {p.key: p.value for p in source.metadata_props}
    meta.update(quantization="int8-qdq", calibration_batches=str(reader.count))
    if RECURRENT_INT8_OP in ops:
        meta["recurrent_quantization"] = "dynamic-int8"
    set_metadata(model, meta)
    with atomic_file(out_path) as target:
        onnx.save_model(model, str(target), save_as_external_data=False)
    log.info("INT8 model calibrated on %d batches: %s", reader.count, out_path)
    return Path(out_path)


def _quantize_lstm(prepared: Path, out: Path) -> Path:
    """``prepared`` with its LSTM weights int8 (written to ``out``), or ``prepared`` itself when
    it has no LSTM. It runs before the static pass: the dynamic quantizer rewrites every ``Gemm``
    into ``MatMul`` + ``Add``, which in a QDQ graph puts a ``Transpose`` after a weight's
    ``DequantizeLinear`` that ONNX Runtime Web (1.30) fails to load."""
    ops = {n.op_type for n in onnx.load(str(prepared)).graph.node}
    if "GRU" in ops:
        log.info("GRU left in float: ONNX Runtime has no quantized GRU")
    if "LSTM" not in ops:
        return prepared
    quantize_dynamic(str(prepared), str(out), op_types_to_quantize=["LSTM"], per_channel=True)
    return out


def top1_agreement(int8_path: Path, fp32_path: Path, inputs: np.ndarray) -> float:
    """Fraction of ``inputs`` on which the INT8 and float models predict the same class."""
    a = run_session(session(int8_path), inputs).argmax(1)
    b = run_session(session(fp32_path), inputs).argmax(1)
    return float((a == b).mean())
