"""bitsandbytes weights: ``nn.Linear`` layers -> NF4 / FP4 (``Linear4bit``) or LLM.int8
(``Linear8bitLt``) for PyTorch inference on the CPU or a CUDA GPU.

Files are honest: a layer is stored as what bitsandbytes computes with (packed 4-bit codes plus the
quantization state: block absmax, code book, nested statistics; or int8 rows plus row scales), in
safetensors next to the float tensors of every other layer, and reloaded into the same layer types
without ever holding float weights for the quantized layers. Convolutions stay float: bitsandbytes
only quantizes linear layers.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from kanji_lab.deploy.weights import read_metadata, rebuild, save_weights

log = logging.getLogger(__name__)
QUANT_TYPES = ("nf4", "fp4", "llm_int8")  # "int8" alone is ONNX Runtime's (model.int8.onnx)
# bitsandbytes' AVX512-BF16 CPU path repacks 4-bit weights in blocks of 32 output features and
# asserts on other sizes (e.g. 3,036 classes); such layers use its generic kernel instead
CPU_PACK_BLOCK = 32


def _bnb():
    """Import bitsandbytes quietly (it warns about optional CPU kernel packages)."""
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import bitsandbytes

    return bitsandbytes


@dataclass
class QuantReport:
    """Which layers were quantized and what it saved (bytes of those layers' tensors)."""

    quant_type: str
    layers: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0

    @property
    def bytes_saved(self) -> int:
        return self.bytes_before - self.bytes_after

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bytes_saved": self.bytes_saved}

    def summary(self) -> str:
        return (
            f"{self.quant_type}: {len(self.layers)} Linear layers ({', '.join(self.layers)}), "
            f"{self.bytes_before / 1e6:.2f} MB -> {self.bytes_after / 1e6:.2f} MB"
        )


def check_quant_type(quant_type: str) -> str:
    if quant_type not in QUANT_TYPES:
        raise ValueError(f"unknown bitsandbytes type {quant_type!r}; choose from {QUANT_TYPES}")
    return quant_type


def quantize_linears(
    net: nn.Module, quant_type: str, device: str = "cpu", skip: tuple[str, ...] = ()
) -> tuple[nn.Module, QuantReport]:
    """A copy of ``net`` in eval mode on ``device`` whose ``nn.Linear`` layers (except the names
    in ``skip``) are bitsandbytes layers of ``quant_type``."""
    check_quant_type(quant_type)
    net = copy.deepcopy(net).eval()
    report = QuantReport(quant_type)
    for name, module in list(net.named_modules()):
        if type(module) is not nn.Linear or name in skip:
            continue
        layer = _quantized_layer(module, quant_type, device)
        _set_module(net, name, layer)
        report.layers.append(name)
        report.bytes_before += _nbytes(module.state_dict())
        report.bytes_after += _nbytes(layer.state_dict())
    return net.to(device), report


def _quantized_layer(linear: nn.Linear, quant_type: str, device: str) -> nn.Module:
    bnb = _bnb()
    weight = linear.weight.detach().float().cpu().clone()
    if quant_type == "llm_int8":
        layer = bnb.nn.Linear8bitLt(*_features(linear), has_fp16_weights=False, threshold=0.0)
        layer.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
    else:
        layer = _linear4bit(linear, quant_type)
        layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type=quant_type)
    if linear.bias is not None:
        layer.bias = nn.Parameter(linear.bias.detach().float().cpu().clone(), requires_grad=False)
    return layer.to(device)  # moving to a device is what quantizes in bitsandbytes


def _linear4bit(linear: nn.Linear, quant_type: str, device: str | None = None) -> nn.Module:
    layer = _bnb().nn.Linear4bit(
        *_features(linear), quant_type=quant_type, compute_dtype=torch.float32, device=device
    )
    if linear.out_features % CPU_PACK_BLOCK:
        layer.support_avx512bf16_for_cpu = False
    return layer


def _features(linear: nn.Linear) -> tuple[int, int, bool]:
    return linear.in_features, linear.out_features, linear.bias is not None


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, module)


def _nbytes(state: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in state.values())


def save_quantized(
    path: Path, net: nn.Module, report: QuantReport, arch: str, net_cfg: dict, labels: list[str]
) -> Path:
    """Write a quantized network (from :func:`quantize_linears`) as safetensors with the packed
    weights, their quantization state and the usual metadata plus the quantized layer names."""
    extra = {"quantization": report.quant_type, "quantized_layers": json.dumps(report.layers)}
    cpu = copy.deepcopy(net).cpu() if _on_cuda(net) else net
    return save_weights(path, cpu, arch, net_cfg, labels, extra_metadata=extra)


def _on_cuda(net: nn.Module) -> bool:
    return any(p.is_cuda for p in net.parameters())


def load_quantized(path: Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a file written by :func:`save_quantized` on ``device``, in eval mode."""
    meta = read_metadata(path)
    quant_type = check_quant_type(meta.get("quantization") or "")
    net = rebuild(meta)
    tensors = load_file(str(path))
    for name in meta["quantized_layers"]:
        linear = net.get_submodule(name)
        layer_tensors = _pop_prefix(tensors, f"{name}.")
        _set_module(net, name, _prequantized_layer(linear, quant_type, layer_tensors, device))
    net.load_state_dict(tensors, strict=False)
    missing = _float_keys(net) - set(tensors)
    if missing:
        raise ValueError(f"{path}: tensors missing for {sorted(missing)[:5]}")
    return net.to(device).eval(), meta


def _pop_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    keys = [k for k in tensors if k.startswith(prefix)]
    return {k[len(prefix) :]: tensors.pop(k) for k in keys}


def _float_keys(net: nn.Module) -> set[str]:
    bnb = _bnb()
    quantized = (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    prefixes = tuple(f"{n}." for n, m in net.named_modules() if isinstance(m, quantized))
    return {k for k in net.state_dict() if not k.startswith(prefixes)}


def _prequantized_layer(
    linear: nn.Linear, quant_type: str, tensors: dict[str, torch.Tensor], device: str
) -> nn.Module:
    """A bitsandbytes layer holding the stored packed weights (no float weights involved)."""
    bnb = _bnb()
    if quant_type == "llm_int8":
        layer = bnb.nn.Linear8bitLt(*_features(linear), has_fp16_weights=False, threshold=0.0)
        data, scales = tensors["weight"].to(device), tensors["SCB"].to(device)
        layer.weight = bnb.nn.Int8Params(
            data, requires_grad=False, has_fp16_weights=False, CB=data, SCB=scales
        )
    else:
        layer = _linear4bit(linear, quant_type, device="meta")
        stats = {k[len("weight.") :]: v for k, v in tensors.items() if k.startswith("weight.")}
        layer.weight = bnb.nn.Params4bit.from_prequantized(
            tensors["weight"], stats, requires_grad=False, device=device, module=layer
        )
    if "bias" in tensors:
        layer.bias = nn.Parameter(tensors["bias"].to(device), requires_grad=False)
    return layer
