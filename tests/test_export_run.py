"""The end-of-fit export callback and ``python -m kanji_lab.export`` on a finished run."""

import json

import numpy as np
import onnx
import pytest
import torch

from kanji_lab.deploy.int8 import top1_agreement
from kanji_lab.deploy.onnx_export import read_metadata, run_session, session
from kanji_lab.deploy.weights import load_weights
from kanji_lab.export import export
from kanji_lab.run_dir import RunDirError
from tests.conftest import TINY_CLASSES, compose_app
from tests.deploy_run import deploy_run

# INT8 must keep the float model's top-1 on at least this share of the fixture images
MIN_INT8_AGREEMENT = 0.9


def fixture_images(n: int = 40) -> np.ndarray:
    """Bar patterns like the tiny data's, as model inputs in [-1, 1]."""
    rng = np.random.default_rng(1)
    x = np.full((n, 1, 64, 64), -1.0, np.float32)
    for i in range(n):
        k = i % len(TINY_CLASSES)
        x[i, 0, 16 + 6 * k : 20 + 6 * k, 10:54] = 1.0
        x[i, 0, 10:54, 12 + 8 * k : 16 + 8 * k] = 1.0
    return np.clip(x + rng.normal(0, 0.2, x.shape), -1, 1).astype(np.float32)


def export_cfg(root, overrides):
    return compose_app("export", overrides, root / "export_out", root / "cache")


def test_fit_writes_checked_onnx_and_int8_from_the_best_weights():
    _, run, metrics = deploy_run()
    for name in ("model.onnx", "model.int8.onnx", "export.json"):
        assert name in metrics["files"], name
    report = json.loads((run / "export.json").read_text())
    assert report["onnx"]["max_abs_diff_b3"] <= 1e-4
    # the ONNX file computes what the best checkpoint (= model.safetensors) computes
    net, meta = load_weights(run / "model.safetensors")
    x = fixture_images(8)
    want = net(torch.from_numpy(x)).detach().numpy()
    assert np.abs(run_session(session(run / "model.onnx"), x) - want).max() <= 1e-4
    assert read_metadata(run / "model.onnx")["labels"] == meta["labels"]


def test_export_time_is_counted_as_export_not_training():
    _, run, metrics = deploy_run()
    timings = metrics["timings"]
    # the ONNX export with its ONNX Runtime checks and INT8 calibration runs inside fit; the
    # summary must still put it under export (it takes far longer than writing safetensors)
    assert timings["export_s"] > 0.2
    assert timings["train_s"] > 0


COMPUTE_OPS = {"Conv", "Gemm", "MatMul"}


def test_int8_is_qdq_runs_and_agrees_with_float():
    """Every Conv/Gemm/MatMul of the float model is there and computes on dequantized inputs:
    int8 weights (per channel) and uint8 activations, each through a QuantizeLinear ->
    DequantizeLinear pair, not merely some QDQ node somewhere in the graph; only the layer that
    reads the model's input reads it in float (see kanji_lab.deploy.int8)."""
    _, run, _ = deploy_run()
    graph = onnx.load(str(run / "model.int8.onnx")).graph
    float_graph = onnx.load(str(run / "model.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert not ops & {"ConvInteger", "MatMulInteger"}
    producer = {out: node for node in graph.node for out in node.output}
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    compute = [n for n in graph.node if n.op_type in COMPUTE_OPS]
    assert len(compute) == sum(n.op_type in COMPUTE_OPS for n in float_graph.node) > 0
    reads_input = [n for n in compute if n.input[0] == graph.input[0].name]
    assert len(reads_input) == 1
    for node in compute:
        activation, weight = (producer.get(name) for name in node.input[:2])
        assert weight is not None and weight.op_type == "DequantizeLinear", node.name
        quantized_weight = inits[weight.input[0]]
        assert quantized_weight.dtype == np.int8, node.name
        if node.op_type == "Conv":
            assert inits[weight.input[1]].size == quantized_weight.shape[0], "per channel"
        if node in reads_input:
            continue
        assert activation is not None and activation.op_type == "DequantizeLinear", node.name
        source = producer.get(activation.input[0])
        assert source is not None and source.op_type == "QuantizeLinear", node.name
        assert inits[source.input[2]].dtype == np.uint8, node.name
    meta = read_metadata(run / "model.int8.onnx")
    assert meta["quantization"] == "int8-qdq" and meta["labels"] == sorted(TINY_CLASSES)
    agreement = top1_agreement(run / "model.int8.onnx", run / "model.onnx", fixture_images())
    assert agreement >= MIN_INT8_AGREEMENT


def test_export_command_opset14(tmp_path):
    root, run, _ = deploy_run()
    cfg = export_cfg(root, [f"run_dir={run}", f"out_dir={tmp_path}", "export.opset=14"])
    report = export(cfg)
    assert report["onnx"]["opset"] == 14
    assert read_metadata(tmp_path / "model.onnx")["exporter"] == "torchscript"
    assert (tmp_path / "model.int8.onnx").is_file()


def test_export_command_bad_run_dir(tmp_path):
    root, _, _ = deploy_run()
    with pytest.raises(RunDirError, match="no such directory"):
        export(export_cfg(root, [f"run_dir={tmp_path / 'missing'}"]))


def test_every_deployment_file_holds_the_best_weights_without_a_test(tmp_path):
    """test_after_fit=false: model.safetensors and model.onnx both hold best.ckpt's weights
    (here epoch 0's: the best by "lowest epoch"), not the last epoch's."""
    from safetensors.torch import load_file

    from kanji_lab.train import train
    from tests.conftest import compose_train, tiny_overrides

    best_first = ["callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min"]
    overrides = [*tiny_overrides(), "debug=limit", "test_after_fit=false", "export.int8=false"]
    run = tmp_path / "run"
    train(compose_train([*overrides, *best_first], run, tmp_path / "cache"))
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert best["epoch"] == 0 and last["epoch"] == 1
    stored = load_file(str(run / "model.safetensors"))
    for key, value in stored.items():
        torch.testing.assert_close(value, best["state_dict"][f"net.{key}"], rtol=0, atol=0)
    assert any(not torch.equal(v, last["state_dict"][f"net.{k}"]) for k, v in stored.items())
    net, _ = load_weights(run / "model.safetensors")
    x = fixture_images(8)
    want = net(torch.from_numpy(x)).detach().numpy()
    assert np.abs(run_session(session(run / "model.onnx"), x) - want).max() <= 1e-4


@pytest.mark.parametrize("crash", [False, True], ids=["check", "exporter-crash"])
def test_a_failed_export_check_keeps_the_trained_run(tmp_path, monkeypatch, capsys, crash):
    """An export that fails after training, by its parity check or by an error inside the
    exporter itself, ends the run normally: weights, checkpoints and metrics stay, export.json
    and the summary say what failed and how to re-export."""
    from kanji_lab.deploy import run_files
    from kanji_lab.deploy.onnx_export import ExportError
    from kanji_lab.train import train
    from tests.conftest import compose_train, tiny_overrides

    def failing(*args, **kwargs):
        message = "model.onnx: ONNX Runtime differs from PyTorch at batch 1"
        raise RuntimeError(message) if crash else ExportError(message)

    monkeypatch.setattr(run_files, "export_all", failing)
    run = tmp_path / "run"
    metrics = train(compose_train([*tiny_overrides(), "debug=fdr"], run, tmp_path / "cache"))
    assert (run / "model.safetensors").is_file() and (run / "metrics.json").is_file()
    assert "differs from PyTorch" in metrics["export_error"]
    report = json.loads((run / "export.json").read_text())
    assert report["reexport"] == f"python -m kanji_lab.export run_dir={run}"
    out = capsys.readouterr().out
    assert "EXPORT FAILED" in out and f"re-export: python -m kanji_lab.export run_dir={run}" in out


def test_export_onnx_false_writes_the_weights_alone(tmp_path):
    """export.onnx=false (the switch that replaced the callbacks.onnx_export node): the run keeps
    model.safetensors and labels.json and writes no ONNX file and no export report."""
    from kanji_lab.train import train
    from tests.conftest import compose_train, tiny_overrides

    run = tmp_path / "run"
    train(compose_train([*tiny_overrides(), "debug=fdr", "export.onnx=false"], run, tmp_path))
    assert (run / "model.safetensors").is_file() and (run / "labels.json").is_file()
    assert not list(run.glob("*.onnx")) and not (run / "export.json").exists()
