"""bitsandbytes layers (NF4 / FP4 / LLM.int8) and quantization-aware training."""

import pytest
import torch
from safetensors import safe_open
from torch import nn

from kanji_lab.callbacks.qat import QuantizationAwareTraining
from kanji_lab.deploy import bnb
from kanji_lab.deploy.weights import load_weights
from kanji_lab.models.registry import build_network
from kanji_lab.train import train
from tests.conftest import compose_train, tiny_overrides
from tests.deploy_run import deploy_run

LABELS = [chr(0x4E00 + i) for i in range(200)]
NET = {"width": 8, "features": 64}
# the CNN's linear layers: positional pooling's narrowing, the feature layer, the class head
LINEARS = ["embed.1.narrow", "embed.2", "head"]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_network("cnn", LABELS, **NET).eval()


def inputs(n: int = 16) -> torch.Tensor:
    return torch.rand(n, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("quant_type", bnb.QUANT_TYPES)
def test_bnb_replaces_linear_and_stays_close(net, quant_type, tmp_path):
    quantized, report = bnb.quantize_linears(net, quant_type)
    assert report.layers == LINEARS
    assert not any(type(m) is nn.Linear for m in quantized.modules())
    originals = (net.embed[1].narrow, net.embed[2], net.head)
    assert all(type(m) is nn.Linear for m in originals)  # the original is intact
    assert report.bytes_saved > 0.6 * report.bytes_before
    x = inputs()
    with torch.no_grad():
        want, got = net(x), quantized(x)
    cosine = nn.functional.cosine_similarity(want, got, dim=1)
    assert cosine.min() > (0.99 if quant_type == "llm_int8" else 0.9)

    path = bnb.save_quantized(tmp_path / "q.safetensors", quantized, report, "cnn", NET, LABELS)
    with safe_open(str(path), "pt") as f:
        head = f.get_tensor("head.weight")
    # stored as bitsandbytes holds it: packed 4-bit codes (2 per byte) or int8 rows
    expected = (torch.int8, 64 * 200) if quant_type == "llm_int8" else (torch.uint8, 64 * 200 // 2)
    assert (head.dtype, head.numel()) == expected
    reloaded, meta = bnb.load_quantized(path)
    assert meta["quantization"] == quant_type
    # reloading restores exactly what was stored (checked before the CPU kernel repacks it)
    again = bnb.save_quantized(tmp_path / "again.safetensors", reloaded, report, "cnn", NET, LABELS)
    with safe_open(str(path), "pt") as a, safe_open(str(again), "pt") as b:
        names = list(a.keys())  # safe_open is not iterable
        assert names and all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in names)
    with torch.no_grad():
        # the AVX512-BF16 CPU kernel computes in bf16, so runs differ in the last bits
        torch.testing.assert_close(reloaded(x), got, atol=2e-3, rtol=1e-2)
    with pytest.raises(ValueError, match="load_quantized"):
        load_weights(path)


def test_bnb_file_from_fit_is_the_run_weights_quantized(tmp_path):
    """model.nf4.safetensors from fit holds model.safetensors' weights: the float layers bit for
    bit, the quantized ones exactly as quantizing those weights again gives them; and it
    reloads to a network that computes nearly what the float one does."""
    _, run, metrics = deploy_run()
    assert "model.nf4.safetensors" in metrics["files"]
    quantized, meta = bnb.load_quantized(run / "model.nf4.safetensors")
    assert meta["quantized_layers"] == LINEARS
    float_net, float_meta = load_weights(run / "model.safetensors")
    again, report = bnb.quantize_linears(float_net, "nf4")
    path = bnb.save_quantized(
        tmp_path / "again.safetensors", again, report, "cnn", float_meta["net"], meta["labels"]
    )
    with (
        safe_open(str(run / "model.nf4.safetensors"), "pt") as fit,
        safe_open(str(path), "pt") as redo,
        safe_open(str(run / "model.safetensors"), "pt") as plain,
    ):
        assert set(fit.keys()) == set(redo.keys())
        for key in list(fit.keys()):
            assert torch.equal(fit.get_tensor(key), redo.get_tensor(key)), key
            if not key.startswith(tuple(f"{name}." for name in LINEARS)):
                assert torch.equal(fit.get_tensor(key), plain.get_tensor(key)), key
    x = inputs(8)
    with torch.no_grad():
        cosine = nn.functional.cosine_similarity(quantized(x), float_net(x), dim=1)
    assert cosine.min() > 0.9


def test_unknown_bnb_type(net):
    with pytest.raises(ValueError, match="unknown bitsandbytes type"):
        bnb.quantize_linears(net, "int3")


def test_qat_prepare_shares_parameters_and_converts():
    torch.manual_seed(0)
    net = build_network("cnn", LABELS[:10], width=8, features=32)
    qat = QuantizationAwareTraining()
    graph = qat.prepare(net)
    names = {type(m).__name__ for m in graph.modules()}
    assert {"ConvBnReLU2d", "FusedMovingAvgObsFakeQuantize"} <= names
    # the optimiser's parameters are the graph's: training the graph trains the network
    assert {id(p) for p in graph.parameters()} == {id(p) for p in net.parameters()}
    assert "activation_post_process_0.scale" not in net.state_dict()  # plain layout kept
    x = inputs(8)
    net.train()
    net(x).sum().backward()
    assert net.features[0][0].weight.grad is not None
    qat.set_observers(False)
    qat.freeze_bn()
    net.eval()
    with torch.no_grad():
        fake = net(x)
        converted = qat.convert()(x)
    assert any("quantized" in type(m).__module__ for m in qat.convert().modules())
    assert torch.equal(converted.argmax(1), fake.argmax(1))
    qat.release()
    with torch.no_grad():
        assert not torch.equal(net(x), fake)  # the float forward is back


def test_qat_run_freezes_and_deploys_through_int8(tmp_path, tmp_cache):
    overrides = [
        *tiny_overrides(),
        "debug=limit",
        "trainer.max_epochs=3",
        "quantization=qat",
        "quantization.start_epoch=1",
        "quantization.freeze_bn_epoch=2",
        "quantization.freeze_observer_epoch=2",
    ]
    run = tmp_path / "run"
    metrics = train(compose_train(overrides, run, tmp_cache))
    assert {"model.onnx", "model.int8.onnx"} <= set(metrics["files"])
    load_weights(run / "model.safetensors")  # the float layout survived QAT
    # the best checkpoint (what was exported) is a quantization-aware epoch
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["epoch"] >= 1
    # the fake-quantization state travels in the checkpoint; observers were frozen at epoch 2
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    state = last["callbacks"]["QuantizationAwareTraining"]
    enabled = [v for k, v in state.items() if k.endswith("observer_enabled")]
    assert enabled and all(int(v) == 0 for v in enabled)
    assert any(k.endswith(".scale") for k in state)
