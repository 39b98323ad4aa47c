"""Deployment figures per architecture: sizes of every file, top-1 of every variant on the test
split, ONNX Runtime latency (batch 1, one thread) and throughput (batch 256), and QAT against
post-training INT8 on the same data and schedule.

    python experiments/bench_deploy.py                          # quick: trains a CNN on kana
    python experiments/bench_deploy.py --run-dir outputs/train/runs/<run> [--run-dir ...]
    python experiments/bench_deploy.py --run-dir <float run> --qat-run-dir <qat run>

Without ``--run-dir`` it trains small models itself (``model=cnn`` on the synthetic kana set,
``--epochs`` epochs, once plain and once with ``quantization=qat``), because a full default run
(3,036 classes) takes too long to repeat here; the output says which data was used. Missing
deployable files of a run (model.onnx, model.int8.onnx, model.nf4.safetensors) are written into it.

Writes experiments/results/bench_deploy.json and .md, and the README's results block.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from kanji_lab.data.datamodule import CharacterDataModule, model_input
from kanji_lab.deploy import bnb
from kanji_lab.deploy.onnx_export import run_session, session
from kanji_lab.deploy.pipeline import (
    INT8_FILE,
    ONNX_FILE,
    ExportSettings,
    Model,
    bnb_file,
    export_all,
)
from kanji_lab.deploy.weights import load_weights, read_metadata

sys.path.insert(0, str(Path(__file__).parent))
from results_io import ROOT, record  # noqa: E402

TARGETS = {"int8_top1_drop_pts": 0.5, "cnn_int8_mb": 2.0, "cnn_b1_latency_ms": 2.0}
VARIANTS = ("torch", "onnx", "int8", "nf4")


def train_quick(out: Path, epochs: int, classes: str, qat: bool) -> Path:
    """A small run through the real command; returns its directory."""
    run = out / ("cnn_qat" if qat else "cnn")
    if (run / "model.safetensors").is_file():
        return run
    args = [f"data.classes={classes}", f"trainer.max_epochs={epochs}", f"hydra.run.dir={run}"]
    args += ["callbacks.early_stopping=null", "callbacks.progress_bar=null"]
    if qat:
        start = max(1, epochs - 3)
        args += ["quantization=qat", f"quantization.start_epoch={start}"]
        args += [f"quantization.freeze_bn_epoch={start + 1}"]
        args += [f"quantization.freeze_observer_epoch={start + 2}"]
    print(f"training {run.name}: python -m kanji_lab {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "kanji_lab", *args], cwd=ROOT, check=True)
    return run


def test_split(run: Path, labels: list[str]) -> CharacterDataModule:
    cfg = OmegaConf.load(run / "config.yaml")
    cache = os.environ.get("KANJI_LAB_CACHE") or cfg.data.cache_dir
    data = OmegaConf.merge(cfg.data, {"cache_dir": cache})
    dm = CharacterDataModule(data, batch_size=cfg.batch_size, eval_batch_size=512, labels=labels)
    dm.setup("fit")
    return dm


def ensure_files(run: Path, dm: CharacterDataModule) -> None:
    """Write the deployable files a run lacks (older runs, or runs trained without them)."""
    missing = [f for f in (ONNX_FILE, INT8_FILE, bnb_file("nf4")) if not (run / f).is_file()]
    if not missing:
        return
    net, meta = load_weights(run / "model.safetensors")
    settings = ExportSettings(bnb=["nf4"])
    export_all(run, Model(net, meta["arch"], meta["net"], meta["labels"]), settings, dm)


def accuracies(run: Path, dm: CharacterDataModule) -> dict[str, float]:
    """Top-1 on the test split of each variant."""
    predictors = {
        "torch": _torch(load_weights(run / "model.safetensors")[0]),
        "onnx": _onnx(run / ONNX_FILE),
        "int8": _onnx(run / INT8_FILE),
        "nf4": _torch(bnb.load_quantized(run / bnb_file("nf4"))[0]),
    }
    hits = dict.fromkeys(predictors, 0)
    total = 0
    for images, targets in dm.loader("test", resident=False):
        x = model_input(images).numpy()
        y = targets.numpy()
        keep = y >= 0
        total += int(keep.sum())
        for name, fn in predictors.items():
            hits[name] += int((fn(x).argmax(1) == y)[keep].sum())
    return {name: hits[name] / max(1, total) for name in predictors}


def _torch(net: torch.nn.Module):
    @torch.no_grad()
    def fn(x: np.ndarray) -> np.ndarray:
        return net(torch.from_numpy(x)).float().numpy()

    return fn


def _onnx(path: Path):
    sess = session(path)
    return lambda x: run_session(sess, x)


def latency_ms(path: Path, runs: int = 300) -> dict[str, float]:
    """Batch-1 latency on one thread: median and p95 in milliseconds."""
    sess = session(path, threads=1)
    x = np.zeros((1, 1, 64, 64), np.float32)
    for _ in range(30):
        run_session(sess, x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run_session(sess, x)
        times.append(1000 * (time.perf_counter() - start))
    return {"median": float(np.median(times)), "p95": float(np.percentile(times, 95))}


def throughput(path: Path, threads: int | None, batch: int = 256, repeats: int = 5) -> float:
    """Images per second at batch 256 (best of ``repeats``)."""
    sess = session(path, threads=threads)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 1, 64, 64)).astype(np.float32)
    run_session(sess, x)
    best = min(_timed(sess, x) for _ in range(repeats))
    return batch / best


def _timed(sess, x: np.ndarray) -> float:
    start = time.perf_counter()
    run_session(sess, x)
    return time.perf_counter() - start


def sizes_mb(run: Path) -> dict[str, float | None]:
    files = {
        "ckpt": run / "checkpoints" / "best.ckpt",
        "safetensors": run / "model.safetensors",
        "onnx": run / ONNX_FILE,
        "int8": run / INT8_FILE,
        "nf4": run / bnb_file("nf4"),
    }
    return {k: (p.stat().st_size / 1e6 if p.is_file() else None) for k, p in files.items()}


def measure(run: Path) -> dict[str, Any]:
    """Every figure of one run directory."""
    meta = read_metadata(run / "model.safetensors")
    dm = test_split(run, meta["labels"])
    ensure_files(run, dm)
    net, _ = load_weights(run / "model.safetensors")
    cfg = OmegaConf.load(run / "config.yaml")
    print(f"measuring {run} ...", flush=True)
    return {
        "run_dir": str(run),
        "arch": meta["arch"],
        "data": f"{cfg.data.name} classes={cfg.data.get('classes')}",
        "quantization": cfg.get("quantization", {}).get("name", "none"),
        "classes": len(meta["labels"]),
        "test_samples": len(dm.splits["test"]),
        "parameters": sum(p.numel() for p in net.parameters()),
        "size_mb": sizes_mb(run),
        "top1": accuracies(run, dm),
        "latency_b1_1thread_ms": {k: latency_ms(run / f) for k, f in _onnx_files()},
        "throughput_b256_1thread": {k: throughput(run / f, 1) for k, f in _onnx_files()},
        "throughput_b256_all_threads": {k: throughput(run / f, None) for k, f in _onnx_files()},
    }


def _onnx_files() -> list[tuple[str, str]]:
    return [("onnx", ONNX_FILE), ("int8", INT8_FILE)]


def check_targets(row: dict[str, Any]) -> dict[str, bool]:
    drop = 100 * (row["top1"]["onnx"] - row["top1"]["int8"])
    checks = {"int8_top1_drop_within_0.5_pts": drop <= TARGETS["int8_top1_drop_pts"]}
    if row["arch"] == "cnn":
        checks["int8_file_under_2_mb"] = row["size_mb"]["int8"] <= TARGETS["cnn_int8_mb"]
        median = row["latency_b1_1thread_ms"]["onnx"]["median"]
        checks["b1_latency_under_2_ms"] = median < TARGETS["cnn_b1_latency_ms"]
    return checks


def markdown(rows: list[dict[str, Any]], note: str, command: str) -> str:
    def mb(v: float | None) -> str:
        return f"{v:.2f}" if v is not None else "n/a"

    def pct(v: float) -> str:
        return f"{100 * v:.2f}"

    head = (
        "| arch | quantization | data | params | MB ckpt / safetensors / ONNX / INT8 / NF4 | "
        "top-1 % torch / ONNX / INT8 / NF4 | b1 1-thread ms fp32 (p95) / INT8 (p95) | "
        "b256 img/s 1 thread fp32 / INT8 | targets met |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        s, t, lat = r["size_mb"], r["top1"], r["latency_b1_1thread_ms"]
        tp = r["throughput_b256_1thread"]
        failed = [k for k, ok in r["targets"].items() if not ok]
        lines.append(
            f"| {r['arch']} | {r['quantization']} | {r['data']} ({r['classes']} classes) | "
            f"{r['parameters']:,} | "
            + " / ".join(mb(s[k]) for k in ("ckpt", "safetensors", "onnx", "int8", "nf4"))
            + " | "
            + " / ".join(pct(t[k]) for k in VARIANTS)
            + f" | {lat['onnx']['median']:.2f} ({lat['onnx']['p95']:.2f}) / "
            f"{lat['int8']['median']:.2f} ({lat['int8']['p95']:.2f}) | "
            f"{tp['onnx']:.0f} / {tp['int8']:.0f} | "
            + ("all" if not failed else "missed: " + ", ".join(failed))
            + " |"
        )
    return "\n".join([*lines, "", note, "", f"Command: `{command}`"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", action="append", type=Path, default=[])
    parser.add_argument("--qat-run-dir", type=Path, help="a quantization=qat twin of --run-dir")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--classes", default="kana")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench_deploy")
    parser.add_argument("--name", default="bench_deploy", help="results file / README block name")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    runs, note = list(args.run_dir), "Runs given on the command line."
    if args.qat_run_dir:
        runs.append(args.qat_run_dir)
    if not runs:
        runs = [train_quick(args.out, args.epochs, args.classes, qat) for qat in (False, True)]
        note = (
            f"Quick figures: model=cnn trained {args.epochs} epochs on the synthetic "
            f"`{args.classes}` set (not the default 3,036-class data), plain and with "
            "quantization=qat (same data, seed and schedule); rerun with --run-dir on a default "
            "run for the full table."
        )
    rows = [measure(run) for run in runs]
    for row in rows:
        row["targets"] = check_targets(row)
    qat = [r for r in rows if r["quantization"] == "qat"]
    plain = [r for r in rows if r["quantization"] != "qat"]
    if qat and plain:
        note += (
            f" QAT vs post-training INT8: INT8 top-1 {100 * qat[0]['top1']['int8']:.2f}% "
            f"(QAT) vs {100 * plain[0]['top1']['int8']:.2f}% (post-training), float "
            f"{100 * qat[0]['top1']['onnx']:.2f}% vs {100 * plain[0]['top1']['onnx']:.2f}%."
        )
    command = "python experiments/bench_deploy.py " + " ".join(sys.argv[1:])
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "onnxruntime_threads_latency": 1,
        "targets": TARGETS,
        "runs": rows,
        "note": note,
        "command": command.strip(),
    }
    md = markdown(rows, note, command.strip())
    print(md)
    record(args.name, result, md)


if __name__ == "__main__":
    main()
