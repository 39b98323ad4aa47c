"""INT8 export keeps the model's input and output float: grey-level inputs sit exactly halfway
between two steps of the uint8 grid calibration gives them, so a quantized input rounds by the float
error of the runtime (x86 and the browser disagreed), and uint8 logits tie."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from kanji_lab.deploy.int8 import quantize_int8
from kanji_lab.deploy.onnx_export import export_onnx, run_session, session

LABELS = [chr(0x4E00 + i) for i in range(40)]


def grey_levels(n: int, seed: int) -> np.ndarray:
    """Model inputs as every source makes them: uint8 grey levels g mapped to g / 127.5 - 1."""
    g = np.random.default_rng(seed).integers(0, 256, (n, 1, 64, 64))
    return (g.astype(np.float32) / 127.5 - 1).astype(np.float32)


def int8_model(tmp_path) -> tuple:
    """A convolution and a linear layer: every pixel moves the logits (a randomly initialised
    deep network's logits hardly depend on its input)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 5, stride=4), nn.ReLU(), nn.Flatten(), nn.Linear(900, 40))
    fp32 = export_onnx(net, tmp_path / "model.onnx", LABELS)
    calibration = [grey_levels(16, seed) for seed in range(4)]
    return fp32, quantize_int8(fp32, tmp_path / "model.int8.onnx", calibration)


def test_int8_graph_reads_its_input_and_writes_its_output_in_float(tmp_path):
    _, path = int8_model(tmp_path)
    graph = onnx.load(str(path)).graph
    producer = {out: n.op_type for n in graph.node for out in n.output}
    readers = [n.op_type for n in graph.node if graph.input[0].name in n.input]
    assert readers and "QuantizeLinear" not in readers, readers
    assert producer[graph.output[0].name] != "DequantizeLinear"
    assert "QuantizeLinear" in producer.values()  # the layers in between stay int8


def test_int8_logits_do_not_jump_with_the_float_error_of_the_input(tmp_path):
    """Inputs 2e-6 apart (the float error another runtime makes computing g / 127.5 - 1) give
    INT8 logits far closer than a whole grey level moves the float ones; with a quantized input
    they rounded every pixel apart, a shift of one grey level."""
    fp32, path = int8_model(tmp_path)
    x = grey_levels(32, seed=9)
    int8, float32 = session(path), session(fp32)
    up, down = (run_session(int8, (x + np.float32(d)).astype(np.float32)) for d in (1e-6, -1e-6))
    grey = (x + np.float32(1 / 127.5)).astype(np.float32)
    one_level = np.abs(run_session(float32, x) - run_session(float32, grey)).max()
    assert np.abs(up - down).max() < 0.2 * one_level, (np.abs(up - down).max(), one_level)


def test_int8_logits_do_not_tie(tmp_path):
    _, path = int8_model(tmp_path)
    logits = run_session(session(path), grey_levels(32, seed=9))
    assert all(len(np.unique(row)) == len(LABELS) for row in logits)  # uint8 logits tie
