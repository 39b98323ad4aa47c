"""model=rnn's INT8 file with the LSTM quantized (dynamic int8 weights, the export's path) against
the static-only INT8 file (LSTM left in float, the path before) and the float model, from the same
run and the same calibration batches: file size, top-1 on the run's test split, agreement with
the float model, and ONNX Runtime batch-1 latency on one thread.

    python experiments/bench_rnn_int8.py                                 # trains a small run first
    python experiments/bench_rnn_int8.py --run-dir outputs/train/runs/<run>

Without ``--run-dir`` a small ``model=rnn`` run is trained first (``--classes`` classes spread
over ETL9G's 3,036, synthetic data, ``--epochs`` epochs), and the output says so. The three files
are written under ``--out``; latency rounds alternate between them, so a busy machine slows each
alike.

Writes experiments/results/bench_rnn_int8.json and .md, and the README's results block.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from omegaconf import OmegaConf

from kanji_lab.data.charsets import etl9g_classes
from kanji_lab.data.datamodule import CharacterDataModule, model_input
from kanji_lab.deploy.int8 import quantize_int8
from kanji_lab.deploy.onnx_export import export_onnx, read_metadata, run_session, session
from kanji_lab.deploy.pipeline import ONNX_FILE, calibration_batches
from kanji_lab.deploy.weights import load_weights

sys.path.insert(0, str(Path(__file__).parent))
from bench_deploy import test_split  # noqa: E402
from bench_models import evenly  # noqa: E402
from results_io import ROOT, record  # noqa: E402

VARIANTS = {
    "float": "model.onnx",
    "int8_static_only": "model.int8.static-only.onnx",
    "int8": "model.int8.onnx",
}
TITLES = {
    "float": "float",
    "int8_static_only": "INT8, static QDQ only (LSTM float)",
    "int8": "INT8, static QDQ + int8 LSTM",
}


def train_small(out: Path, classes: int, epochs: int) -> Path:
    """A small model=rnn run through the real command; returns its directory."""
    run = out / "run"
    if (run / "model.safetensors").is_file():
        return run
    args = ["model=rnn", f"data.classes='{''.join(evenly(etl9g_classes(), classes))}'"]
    args += [f"trainer.max_epochs={epochs}", f"hydra.run.dir={run}"]
    args += [
        "callbacks.progress_bar=null",
        "callbacks.carbon=null",
        "callbacks.early_stopping=null",
    ]
    print(f"training: python -m kanji_lab {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "kanji_lab", *args], cwd=ROOT, check=True)
    return run


def float_model(run: Path, out: Path) -> Path:
    """The run's model.onnx, exported from its weights into ``out`` when the run has none."""
    if (run / ONNX_FILE).is_file():
        return run / ONNX_FILE
    net, meta = load_weights(run / "model.safetensors")
    extra = {"arch": meta["arch"], "net": meta["net"]}
    return export_onnx(net, out / ONNX_FILE, meta["labels"], None, extra)


def write_variants(fp32: Path, out: Path, dm: CharacterDataModule, batches: int) -> dict[str, Path]:
    """The float file and both INT8 files, calibrated on the same training batches."""
    calibration = list(calibration_batches(dm, batches))
    static = quantize_int8(fp32, out / VARIANTS["int8_static_only"], calibration, recurrent=False)
    return {
        "float": fp32,
        "int8_static_only": static,
        "int8": quantize_int8(fp32, out / VARIANTS["int8"], calibration),
    }


def scores(paths: dict[str, Path], dm: CharacterDataModule) -> dict[str, dict[str, float]]:
    """Top-1 on the test split and top-1 agreement with the float model, per file."""
    sessions = {k: session(p) for k, p in paths.items()}
    hits, agree, total = dict.fromkeys(paths, 0), dict.fromkeys(paths, 0), 0
    for images, targets in dm.loader("test", resident=False):
        keep = targets.numpy() >= 0
        x = model_input(images).numpy()[keep]
        y = targets.numpy()[keep]
        top = {k: run_session(s, x).argmax(1) for k, s in sessions.items()}
        total += len(y)
        for k in paths:
            hits[k] += int((top[k] == y).sum())
            agree[k] += int((top[k] == top["float"]).sum())
    return {
        k: {"top1": hits[k] / max(1, total), "agreement_with_float": agree[k] / max(1, total)}
        for k in paths
    }


def latencies(paths: dict[str, Path], rounds: int, runs: int) -> dict[str, dict[str, float]]:
    """Batch-1, one-thread latency per file (ms): median and p95 over ``rounds`` alternating
    rounds of ``runs`` calls each."""
    sessions = {k: session(p, threads=1) for k, p in paths.items()}
    x = np.zeros((1, 1, 64, 64), np.float32)
    times: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(30):
        for s in sessions.values():
            run_session(s, x)
    for _ in range(rounds):
        for k, s in sessions.items():
            for _ in range(runs):
                start = time.perf_counter()
                run_session(s, x)
                times[k].append(1000 * (time.perf_counter() - start))
    return {
        k: {"median": float(np.median(t)), "p95": float(np.percentile(t, 95))}
        for k, t in times.items()
    }


def measure(run: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    fp32 = float_model(run, out)
    labels = read_metadata(fp32)["labels"]
    dm = test_split(run, labels)
    paths = write_variants(fp32, out, dm, args.calibration_batches)
    print(f"measuring {', '.join(str(p) for p in paths.values())} ...", flush=True)
    score = scores(paths, dm)
    latency = latencies(paths, args.rounds, args.runs)
    variants = {
        k: {
            "file": str(p),
            "bytes": p.stat().st_size,
            **score[k],
            "latency_b1_1thread_ms": latency[k],
            "recurrent_ops": sorted(_op_types(p) & {"LSTM", "DynamicQuantizeLSTM"}),
        }
        for k, p in paths.items()
    }
    cfg = OmegaConf.load(run / "config.yaml")
    return {
        "run_dir": str(run),
        "arch": cfg.model.arch,
        "net": OmegaConf.to_container(cfg.model.net),
        "classes": len(labels),
        "test_samples": len(dm.splits["test"]),
        "calibration_batches": args.calibration_batches,
        "variants": variants,
        "ratios": ratios(variants),
    }


def _op_types(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def ratios(v: dict[str, dict[str, Any]]) -> dict[str, float]:
    """New INT8 over the static-only INT8 and over float: size and median latency."""

    def lat(k: str) -> float:
        return v[k]["latency_b1_1thread_ms"]["median"]

    return {
        "int8_vs_static_only_bytes": v["int8"]["bytes"] / v["int8_static_only"]["bytes"],
        "int8_vs_static_only_latency": lat("int8") / lat("int8_static_only"),
        "int8_vs_float_bytes": v["int8"]["bytes"] / v["float"]["bytes"],
        "int8_vs_float_latency": lat("int8") / lat("float"),
        "static_only_vs_float_latency": lat("int8_static_only") / lat("float"),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| model file | MB | test top-1 | top-1 agreement with float | "
        "b1 1-thread ms median (p95) |",
        "|---|---|---|---|---|",
    ]
    for k, v in result["variants"].items():
        lat = v["latency_b1_1thread_ms"]
        lines.append(
            f"| {TITLES[k]} | {v['bytes'] / 1e6:.2f} | {100 * v['top1']:.2f}% | "
            f"{100 * v['agreement_with_float']:.2f}% | {lat['median']:.3f} ({lat['p95']:.3f}) |"
        )
    r = result["ratios"]
    lines += [
        "",
        "INT8 with the LSTM quantized vs static-only INT8: size "
        f"x{r['int8_vs_static_only_bytes']:.2f}, median latency "
        f"x{r['int8_vs_static_only_latency']:.2f}; vs float: size "
        f"x{r['int8_vs_float_bytes']:.2f}, latency x{r['int8_vs_float_latency']:.2f}.",
        "",
        f"{result['note']} {result['classes']} classes, {result['test_samples']} test images, "
        f"{result['calibration_batches']} calibration batches; ONNX Runtime "
        f"{result['onnxruntime']} on {result['machine']}. Command: `{result['command']}`",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, help="a finished model=rnn run")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--calibration-batches", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10, help="alternating latency rounds")
    parser.add_argument("--runs", type=int, default=100, help="timed calls per file and round")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench_rnn_int8")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    run = args.run_dir or train_small(args.out, args.classes, args.epochs)
    result = measure(run, args.out, args)
    result["note"] = (
        f"Run given on the command line ({run})."
        if args.run_dir
        else f"Quick figures: model=rnn trained {args.epochs} epochs here on synthetic data."
    )
    result["onnxruntime"] = ort.__version__
    result["machine"] = f"{platform.processor() or platform.machine()}, 1 thread"
    result["command"] = " ".join(["python experiments/bench_rnn_int8.py", *sys.argv[1:]])
    md = markdown(result)
    print(md)
    record("bench_rnn_int8", result, md)


if __name__ == "__main__":
    main()
