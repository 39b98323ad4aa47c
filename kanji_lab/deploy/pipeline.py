"""Write the deployable files of one set of weights: ``model.onnx`` (checked against PyTorch),
``model.int8.onnx`` (calibrated, agreement measured), ``model.<nf4|fp4|llm_int8>.safetensors``
(bitsandbytes), and ``export.json`` with every check's figures.

Used at the end of a training run (:mod:`kanji_lab.deploy.run_files`, settings from ``export:``)
and by ``python -m kanji_lab.export``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kanji_lab.atomic import write_json
from kanji_lab.data.datamodule import CharacterDataModule, model_input
from kanji_lab.deploy import bnb
from kanji_lab.deploy.int8 import quantize_int8, top1_agreement
from kanji_lab.deploy.onnx_export import check_onnx, export_onnx
from kanji_lab.inference import INT8_FILE, ONNX_FILE

log = logging.getLogger(__name__)
REPORT_FILE = "export.json"
# torch.onnx logs a warning per torchvision operator it cannot register, the ONNX optimiser and
# the quantizer an INFO line per rewrite
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
for _name in ("onnx_ir", "onnxscript", "onnxruntime.quantization"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def bnb_file(quant_type: str) -> str:
    return f"model.{quant_type}.safetensors"


@dataclass
class ExportSettings:
    """What to write: ``opset`` None = the dynamo exporter's default; ``int8``: also the INT8
    file, calibrated on ``calibration_batches`` training batches; ``bnb``: bitsandbytes types."""

    opset: int | None = None
    int8: bool = True
    calibration_batches: int = 8
    min_agreement: float = 0.9
    bnb: list[str] = field(default_factory=list)


def settings_from(spec: Mapping[str, Any], bnb: list[str] | None = None) -> ExportSettings:
    """The :class:`ExportSettings` of an ``export:`` config block (plain values); ``bnb``: the
    bitsandbytes types a quantization group adds to its own."""
    return ExportSettings(
        opset=spec.get("opset"),
        int8=spec.get("int8", True),
        calibration_batches=spec.get("calibration_batches", 8),
        min_agreement=spec.get("min_agreement", 0.9),
        bnb=list(dict.fromkeys([*(spec.get("bnb") or []), *(bnb or [])])),
    )


@dataclass
class Model:
    """A network with what its files need: architecture name, net config and labels."""

    net: nn.Module
    arch: str
    net_cfg: dict[str, Any]
    labels: list[str]


def export_all(
    out_dir: Path,
    model: Model,
    settings: ExportSettings,
    datamodule: CharacterDataModule | None = None,
) -> dict[str, Any]:
    """Write and check every file ``settings`` asks for; returns (and writes) the report."""
    out_dir = Path(out_dir)
    net = model.net.cpu().eval()
    sample = sample_inputs(datamodule)
    onnx_path = export_onnx(net, out_dir / ONNX_FILE, model.labels, settings.opset, _meta(model))
    report: dict[str, Any] = {"onnx": check_onnx(onnx_path, net, sample)}
    files = [onnx_path]
    if settings.int8:
        int8_path, report["int8"] = _int8(onnx_path, out_dir, settings, datamodule, sample)
        files.append(int8_path)
    for quant_type in settings.bnb:
        path, report[f"bnb_{quant_type}"] = _bnb(net, model, quant_type, out_dir)
        files.append(path)
    report["files"] = [p.name for p in files]
    files.append(write_json(out_dir / REPORT_FILE, report))
    report["paths"] = files
    return report


def _meta(model: Model) -> dict[str, Any]:
    return {"arch": model.arch, "net": model.net_cfg}


def _int8(
    onnx_path: Path,
    out_dir: Path,
    settings: ExportSettings,
    datamodule: CharacterDataModule | None,
    sample: np.ndarray | None,
) -> tuple[Path, dict[str, Any]]:
    if datamodule is None:
        raise ValueError("INT8 export needs training batches to calibrate on (a datamodule)")
    batches = calibration_batches(datamodule, settings.calibration_batches)
    path = quantize_int8(onnx_path, out_dir / INT8_FILE, batches)
    agreement = top1_agreement(path, onnx_path, sample) if sample is not None else None
    if agreement is not None and agreement < settings.min_agreement:
        log.warning(
            "INT8 model agrees with the float model on only %.1f%% of %d validation images "
            "(expected at least %.0f%%)",
            100 * agreement,
            len(sample),
            100 * settings.min_agreement,
        )
    return path, {"file": path.name, "top1_agreement": agreement, "checked_on": _n(sample)}


def _n(sample: np.ndarray | None) -> int:
    return 0 if sample is None else len(sample)


def _bnb(net: nn.Module, model: Model, quant_type: str, out_dir: Path) -> tuple[Path, dict]:
    quantized, qreport = bnb.quantize_linears(net, quant_type)
    path = bnb.save_quantized(
        out_dir / bnb_file(quant_type), quantized, qreport, model.arch, model.net_cfg, model.labels
    )
    log.info("bitsandbytes %s", qreport.summary())
    return path, {"file": path.name, **qreport.as_dict()}


def calibration_batches(datamodule: CharacterDataModule, count: int) -> Iterator[np.ndarray]:
    """The first ``count`` shuffled training batches (no augmentation) as model inputs."""
    loader = datamodule.loader("train", shuffle=True, resident=False)
    for images, _ in itertools.islice(loader, count):
        yield model_input(images).numpy()


def sample_inputs(datamodule: CharacterDataModule | None, size: int = 256) -> np.ndarray | None:
    """Up to ``size`` validation images as model inputs (parity and agreement checks)."""
    if datamodule is None:
        return None
    split = "val" if len(datamodule.splits.get("val", [])) else "train"
    rows = np.sort(datamodule.splits[split][:size])
    return model_input(torch.from_numpy(np.ascontiguousarray(datamodule.data.images[rows]))).numpy()


def summary(report: dict[str, Any]) -> str:
    """One line per file: the checks that passed."""
    onnx = report["onnx"]
    lines = [
        f"  {onnx['file']}: opset {onnx['opset']}, ONNX Runtime vs PyTorch max abs logit diff "
        f"{max(v for k, v in onnx.items() if k.startswith('max_abs_diff')):.2g}"
    ]
    if "int8" in report:
        agree = report["int8"]["top1_agreement"]
        text = f"{100 * agree:.1f}%" if agree is not None else "n/a"
        lines.append(f"  {report['int8']['file']}: top-1 agreement with float {text}")
    lines += [
        f"  {v['file']}: {v['quant_type']} layers {', '.join(v['layers'])}, "
        f"{v['bytes_saved'] / 1e6:.2f} MB saved"
        for k, v in report.items()
        if k.startswith("bnb_")
    ]
    return "\n".join(lines)
