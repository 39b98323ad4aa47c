"""Deployment figures per architecture: sizes of every file, top-1 of every variant on the test
split, ONNX Runtime latency (batch 1, one thread) and throughput (batch 256), and QAT against
post-training INT8 on the same data and schedule; with ``--rnn-int8``, model=rnn's INT8 file
with the LSTM quantized against the static-only INT8 file and the float model.

    python experiments/bench_deploy.py                          # quick: trains a CNN on kana
    python experiments/bench_deploy.py --run-dir outputs/train/runs/<run> [--run-dir ...]
    python experiments/bench_deploy.py --run-dir <float run> --qat-run-dir <qat run>
    python experiments/bench_deploy.py --rnn-int8               # trains a small model=rnn run first
    python experiments/bench_deploy.py --rnn-int8 --run-dir outputs/train/runs/<rnn run>

Without ``--run-dir`` it trains small models itself (``model=cnn`` on the synthetic kana set,
``--epochs`` epochs (8), once plain and once with ``quantization=qat``), because a full default
run (3,036 classes) takes too long to repeat here; the output says which data was used. Missing
deployable files of a run (model.onnx, model.int8.onnx, model.nf4.safetensors) are written into it.

``--rnn-int8`` compares, from the same run and the same calibration batches, the INT8 file with
the LSTM quantized (dynamic int8 weights, the export's path), the static-only INT8 file (LSTM left
in float, the path before) and the float model: file size, top-1 on the run's test split,
agreement with the float model, and ONNX Runtime batch-1 latency on one thread. Without
``--run-dir`` a small ``model=rnn`` run is trained first (``--classes`` 100, spread over ETL9G's
3,036, synthetic data, ``--epochs`` 15), and the output says so. The three files are written
under ``--out``; latency rounds alternate between them, so a busy machine slows each alike.

``--classes`` is a class count (that many spread over ETL9G's classes) or a name of
``data.classes`` (``kana``, ``etl9g``, ...).

Writes experiments/results/bench_deploy.json and .md (``--name``; ``--rnn-int8``:
bench_rnn_int8), and its results block in experiments/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from omegaconf import OmegaConf

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.harness import evenly, train_into  # noqa: E402
from experiments.results_io import ROOT, record  # noqa: E402
from kanji_lab.data.charsets import etl9g_classes
from kanji_lab.data.datamodule import CharacterDataModule, model_input
from kanji_lab.deploy import bnb
from kanji_lab.deploy.int8 import quantize_int8
from kanji_lab.deploy.onnx_export import export_onnx, run_session, session
from kanji_lab.deploy.onnx_export import read_metadata as onnx_metadata
from kanji_lab.deploy.pipeline import (
    INT8_FILE,
    ONNX_FILE,
    ExportSettings,
    Model,
    bnb_file,
    calibration_batches,
    export_all,
)
from kanji_lab.deploy.weights import load_weights, read_metadata

TARGETS = {"int8_top1_drop_pts": 0.5, "cnn_int8_mb": 2.0, "cnn_b1_latency_ms": 2.0}
VARIANTS = ("torch", "onnx", "int8", "nf4")
# --rnn-int8: the three files compared, and their names in the table
RNN_FILES = {
    "float": "model.onnx",
    "int8_static_only": "model.int8.static-only.onnx",
    "int8": "model.int8.onnx",
}
RNN_TITLES = {
    "float": "float",
    "int8_static_only": "INT8, static QDQ only (LSTM float)",
    "int8": "INT8, static QDQ + int8 LSTM",
}


def classes_override(spec: str) -> str:
    """``data.classes`` of ``spec``: a count (that many spread over ETL9G's classes) or a name."""
    if spec.isdigit():
        return f"data.classes='{''.join(evenly(etl9g_classes(), int(spec)))}'"
    return f"data.classes={spec}"


def train_quick(out: Path, epochs: int, classes: str, qat: bool) -> Path:
    """A small run through the real command; returns its directory."""
    args = [classes_override(classes), f"trainer.max_epochs={epochs}"]
    args += ["callbacks.early_stopping=null", "callbacks.progress_bar=null"]
    if qat:
        start = max(1, epochs - 3)
        args += ["quantization=qat", f"quantization.start_epoch={start}"]
        args += [f"quantization.freeze_bn_epoch={start + 1}"]
        args += [f"quantization.freeze_observer_epoch={start + 2}"]
    return train_into(out / ("cnn_qat" if qat else "cnn"), args)


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


def train_rnn(out: Path, classes: str, epochs: int) -> Path:
    """A small model=rnn run through the real command; returns its directory."""
    args = ["model=rnn", classes_override(classes), f"trainer.max_epochs={epochs}"]
    args += [
        "callbacks.progress_bar=null",
        "callbacks.carbon=null",
        "callbacks.early_stopping=null",
    ]
    return train_into(out / "run", args)


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
    static = quantize_int8(fp32, out / RNN_FILES["int8_static_only"], calibration, recurrent=False)
    return {
        "float": fp32,
        "int8_static_only": static,
        "int8": quantize_int8(fp32, out / RNN_FILES["int8"], calibration),
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


def measure_rnn_int8(run: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of ``--rnn-int8`` for one model=rnn run."""
    fp32 = float_model(run, out)
    labels = onnx_metadata(fp32)["labels"]
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


def rnn_int8_markdown(result: dict[str, Any]) -> str:
    lines = [
        "| model file | MB | test top-1 | top-1 agreement with float | "
        "b1 1-thread ms median (p95) |",
        "|---|---|---|---|---|",
    ]
    for k, v in result["variants"].items():
        lat = v["latency_b1_1thread_ms"]
        lines.append(
            f"| {RNN_TITLES[k]} | {v['bytes'] / 1e6:.2f} | {100 * v['top1']:.2f}% | "
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
    parser.add_argument("--run-dir", action="append", type=Path, default=[])
    parser.add_argument("--qat-run-dir", type=Path, help="a quantization=qat twin of --run-dir")
    parser.add_argument(
        "--rnn-int8",
        action="store_true",
        help="instead: a model=rnn run's INT8 file with the LSTM quantized against the "
        "static-only INT8 file and the float model",
    )
    parser.add_argument(
        "--epochs", type=int, help="epochs of a quick run (default 8; --rnn-int8: 15)"
    )
    parser.add_argument(
        "--classes",
        help="classes of a quick run: a count spread over ETL9G's classes or a name of "
        "data.classes (default kana; --rnn-int8: 100)",
    )
    parser.add_argument("--calibration-batches", type=int, default=8, help="--rnn-int8")
    parser.add_argument("--rounds", type=int, default=10, help="--rnn-int8: latency rounds")
    parser.add_argument("--runs", type=int, default=100, help="--rnn-int8: timed calls per round")
    parser.add_argument("--out", type=Path, help="where quick runs and files go")
    parser.add_argument("--name", help="results name (default bench_deploy; --rnn-int8: its own)")
    args = parser.parse_args()
    if args.rnn_int8:
        if len(args.run_dir) > 1 or args.qat_run_dir:
            parser.error("--rnn-int8 takes one --run-dir and no --qat-run-dir")
        rnn_int8(args)
    else:
        deployment(args)


def deployment(args: argparse.Namespace) -> None:
    """Every figure of the runs given, or of a quick plain and QAT pair trained here."""
    args.epochs = args.epochs or 8
    args.classes = args.classes or "kana"
    out = args.out or ROOT / "outputs" / "bench_deploy"
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    runs, note = list(args.run_dir), "Runs given on the command line."
    if args.qat_run_dir:
        runs.append(args.qat_run_dir)
    if not runs:
        runs = [train_quick(out, args.epochs, args.classes, qat) for qat in (False, True)]
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
    record(args.name or "bench_deploy", result, md)


def rnn_int8(args: argparse.Namespace) -> None:
    """``--rnn-int8``: the three files of the run given, or of a small model=rnn run."""
    epochs, classes = args.epochs or 15, args.classes or "100"
    out = args.out or ROOT / "outputs" / "bench_deploy" / "rnn_int8"
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    run = args.run_dir[0] if args.run_dir else train_rnn(out, classes, epochs)
    result = measure_rnn_int8(run, out, args)
    result["note"] = (
        f"Run given on the command line ({run})."
        if args.run_dir
        else f"Quick figures: model=rnn trained {epochs} epochs here on synthetic data."
    )
    result["onnxruntime"] = ort.__version__
    result["machine"] = f"{platform.processor() or platform.machine()}, 1 thread"
    result["command"] = " ".join(["python experiments/bench_deploy.py", *sys.argv[1:]])
    md = rnn_int8_markdown(result)
    print(md)
    record(args.name or "bench_rnn_int8", result, md)


if __name__ == "__main__":
    main()
