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

The model's input and output stay float (:func:`float_boundaries`). Inputs are grey levels mapped
to [-1, 1] (``g / 127.5 - 1``), and the uint8 grid that calibration gives them (scale 2/255, zero
point 128) puts every level exactly halfway between two steps, so which way each pixel rounded
came down to the float error of the runtime at hand: ONNX Runtime on x86 and in the browser (WASM)
rounded differently and disagreed on the top-1 of 3% of drawings (``experiments/bench_web.py``).
Logits on a uint8 grid tie: two classes with the same score, probabilities in coarse steps.
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
    float_boundaries(model)
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


def float_boundaries(model: onnx.ModelProto) -> None:
    """Remove the QuantizeLinear -> DequantizeLinear pairs on the graph's inputs and outputs (see
    the module docstring): the first layers read the inputs as they are (through their int8
    weights) and the last ones write float outputs."""
    graph = model.graph
    inputs = {i.name for i in graph.input}
    outputs = {o.name for o in graph.output}
    producer = {out: n for n in graph.node for out in n.output}
    rename, dropped = {}, {}  # tensor -> the name it takes; nodes removed, by output name
    for dq in [n for n in graph.node if n.op_type == "DequantizeLinear"]:
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        if q.input[0] in inputs:
            rename[dq.output[0]] = q.input[0]
        elif dq.output[0] in outputs:
            rename[q.input[0]] = dq.output[0]
        else:
            continue
        dropped.update({q.output[0]: q, dq.output[0]: dq})
    for node in dropped.values():
        graph.node.remove(node)
    for node in graph.node:
        node.input[:] = [rename.get(name, name) for name in node.input]
        node.output[:] = [rename.get(name, name) for name in node.output]
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


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
