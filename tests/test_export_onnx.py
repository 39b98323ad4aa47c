"""ONNX export of every architecture in conf/model/ at both exporters, and the parity check."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from kanji_lab.config import config_dir
from kanji_lab.deploy.onnx_export import (
    ExportError,
    check_onnx,
    export_onnx,
    read_metadata,
    run_session,
    session,
)
from kanji_lab.deploy.weights import PREPROCESSING
from kanji_lab.models.registry import build_network

LABELS = list("亜唖娃阿哀愛挨")
MODELS = sorted(p.stem for p in Path(config_dir(), "model").glob("*.yaml"))
# shrink the default configs where a model has these keys (keeps the tests fast)
SMALL = {"width": 8, "features": 32, "hidden": 32, "dim": 32, "depth": 2, "layers": 1}
# models that cannot be exported yet, with the reason (none so far)
SKIP: dict[str, str] = {}


def small_network(name: str) -> nn.Module:
    cfg = OmegaConf.to_container(OmegaConf.load(Path(config_dir(), "model", f"{name}.yaml")))
    net_cfg = {k: SMALL.get(k, v) for k, v in (cfg.get("net") or {}).items()}
    torch.manual_seed(0)
    net = build_network(cfg["arch"], LABELS, **net_cfg)
    _randomise_norm_stats(net)
    return net.eval()


def _randomise_norm_stats(net: nn.Module) -> None:
    """Non-trivial BN statistics, so folding them at export is actually exercised."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("opset", [None, 14], ids=["dynamo", "opset14"])
@pytest.mark.parametrize("name", MODELS)
def test_export_parity(name, opset, tmp_path):
    if name in SKIP:
        pytest.skip(SKIP[name])
    net = small_network(name)
    path = export_onnx(net, tmp_path / "model.onnx", LABELS, opset, {"arch": name})
    report = check_onnx(path, net)  # raises on any mismatch
    assert report["max_abs_diff_b1"] <= 1e-4 and report["max_abs_diff_b3"] <= 1e-4
    if opset:
        assert report["opset"] == opset
    else:
        assert report["opset"] >= 18
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no external-data sidecar
    meta = read_metadata(path)
    assert meta["labels"] == LABELS and meta["preprocessing"] == PREPROCESSING
    assert meta["arch"] == name
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch axis
    # the exporter's debugging records (stack traces, module paths) are not shipped
    assert not [p.key for node in graph.node for p in node.metadata_props]
    x = np.zeros((7, 1, 64, 64), np.float32)
    assert run_session(session(path), x).shape == (7, len(LABELS))


class BakedBatch(nn.Module):
    """A recurrent model whose initial state takes the batch size as a Python int, so the traced
    graph fixes it: the failure mode of recurrent exports the check must catch."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(64, 16, batch_first=True)
        self.head = nn.Linear(16, len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x[:, 0]
        h0 = torch.zeros(1, int(rows.shape[0]), 16)
        out, _ = self.rnn(rows, h0)
        return self.head(out[:, -1])


def test_parity_check_catches_a_baked_batch_size(tmp_path):
    net = BakedBatch().eval()
    path = export_onnx(net, tmp_path / "m.onnx", LABELS, opset=14)
    with pytest.raises(ExportError, match="batch 1"):
        check_onnx(path, net)


def test_parity_check_catches_wrong_values(tmp_path):
    net = small_network("cnn")
    path = export_onnx(net, tmp_path / "m.onnx", LABELS, opset=14)
    with torch.no_grad():
        net.head.bias += 0.01
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_onnx(path, net)


def test_hiercode_int8_onnx_at_3036_classes_fits_in_one_megabyte(tmp_path):
    """model=hiercode as shipped, for ETL9G's 3,036 classes: the INT8 file is at most 1.0 MB."""
    from kanji_lab.data.charsets import etl9g_classes
    from kanji_lab.deploy.int8 import quantize_int8

    labels = etl9g_classes()
    net_cfg = OmegaConf.load(Path(config_dir()) / "model" / "hiercode.yaml").net
    net = build_network("hiercode", labels, **OmegaConf.to_container(net_cfg)).eval()
    fp32 = export_onnx(net, tmp_path / "model.onnx", labels)
    batch = np.random.default_rng(0).uniform(-1, 1, (8, 1, 64, 64)).astype(np.float32)
    int8 = quantize_int8(fp32, tmp_path / "model.int8.onnx", [batch])
    assert int8.stat().st_size <= 1_000_000, int8.stat().st_size


def test_parity_check_scales_with_the_logits(tmp_path):
    """Large logits (as training on real data can give) differ between runtimes in proportion to
    their size: within the relative tolerance the check passes; wrong values still fail it."""
    net = small_network("cnn")
    with torch.no_grad():
        net.head.weight *= 3e4
        net.head.bias *= 3e4
    path = export_onnx(net, tmp_path / "m.onnx", LABELS, opset=14)
    report = check_onnx(path, net)
    assert max(report["max_abs_diff_b1"], report["max_abs_diff_b3"]) > 1e-4  # the old bound
    with torch.no_grad():
        net.head.bias += 0.01 * net.head.bias.abs().max()
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_onnx(path, net)
