"""The browser app in headless Chromium: page weight, time to ``ready``, time per recognition,
and agreement with Python on the same drawings, for the INT8 and the float model.

    python experiments/bench_web.py                                 # trains a tiny run first
    python experiments/bench_web.py --run-dir outputs/train/runs/<run>

Drawings: the KanjiVG strokes of the run's classes (``--sample`` of them, evenly spread), each
written ``--variants`` times with a random affine distortion per drawing and point jitter,
recognised after every stroke as the page does (each prefix of strokes is one recognition). The
browser side is ``window.kanjiLab`` (``preprocess`` and ``recognize``) on a site built by
:mod:`kanji_lab.web.site`, served on 127.0.0.1; the Python side is
:func:`kanji_lab.data.normalize.strokes_input` and predict's ONNX Runtime backend (``onnx`` /
``int8``). Without ``--run-dir`` a tiny model is trained first (``--classes`` of the synthetic
data, ``debug=limit``: 2 short epochs), and the output says so.

Writes experiments/results/bench_web.json and .md, and its results block in experiments/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.harness import train_into  # noqa: E402
from experiments.results_io import ROOT, record, table  # noqa: E402
from kanji_lab.data.kanjivg import load_strokes
from kanji_lab.data.normalize import strokes_input
from kanji_lab.predict import load_backend
from kanji_lab.web import browser
from kanji_lab.web.serve import Background
from kanji_lab.web.site import build_site

TARGETS = {"ready_ms": 1000.0, "recognition_ms": 30.0, "float_agreement": 1.0, "int8_agree": 0.99}
PAD, MARGIN = 320.0, 30.0
CLASSES = "一二三十口日月山川田人大小中上下木水火土"
BACKENDS = {"int8": "int8", "float": "onnx"}  # site variant -> predict backend


def train_tiny(out: Path, classes: str) -> Path:
    args = [f"data.classes='{classes}'", "debug=limit"]
    args += ["callbacks.progress_bar=null", "callbacks.carbon=null"]
    return train_into(out / "tiny", args, done="model.int8.onnx")


def drawings(labels: list[str], variants: int, seed: int = 0) -> list[list[list[list[float]]]]:
    """Every stroke prefix of ``variants`` distorted copies of each label's KanjiVG strokes,
    in pad pixels."""
    rng = np.random.default_rng(seed)
    out = []
    for char in labels:
        ch = load_strokes(char)
        if ch is None:
            continue
        for _ in range(variants):
            a = np.eye(2) + rng.normal(0, 0.08, (2, 2))
            points = ch.points @ a.T + rng.normal(0, 0.6, ch.points.shape)
            lo, hi = points.min(0), points.max(0)
            points = (points - lo) * (PAD - 2 * MARGIN) / (hi - lo).max() + MARGIN
            strokes = [
                points[s:e].round(1).tolist() for s, e in zip(ch.starts, ch.ends, strict=True)
            ]
            out += [strokes[:n] for n in range(1, len(strokes) + 1)]
    return out


def python_side(run: Path, backend: str, inputs: np.ndarray) -> list[str]:
    logits, labels = load_backend(run, backend, threads=1)
    return [labels[i] for i in logits(inputs).argmax(1)]


# bytes of every response the page loaded (navigation included), from the Resource Timing API
FETCHED = """() => [...performance.getEntriesByType('navigation'),
                    ...performance.getEntriesByType('resource')]
                   .map(e => [e.name, e.encodedBodySize])"""
PREPROCESS = "ds => ds.map(d => Array.from(window.kanjiLab.preprocess(d)))"
CHUNK = 500  # drawings per call into the page
PAGE_RUN = """async ds => {
  const k = window.kanjiLab; const tops = [], times = [];
  for (const d of ds) { const r = await k.recognize(d, 10); tops.push(r[0].char);
                        times.push(k.lastTiming.total_ms); }
  return {tops, times};
}"""


def measure_site(chrome, folder: Path, draws: list, loads: int) -> dict[str, Any]:
    """Time to ready over ``loads`` first visits (a fresh browser context each, nothing cached)
    and ``loads`` repeat visits (reloads in one context: the HTTP cache and the compiled WASM
    code are reused), then every drawing in one tab."""
    with Background(folder) as url:
        first, phases, fetched = [], [], {}
        for _ in range(loads):
            context = chrome.new_context()
            tab = context.new_page()
            tab.goto(url)
            tab.evaluate("() => window.kanjiLab.ready")
            first.append(tab.evaluate("() => window.kanjiLab.readyMs"))
            phases.append(tab.evaluate("() => window.kanjiLab.loadMs"))
            fetched = dict(tab.evaluate(FETCHED))
            context.close()
        context = chrome.new_context()
        tab = context.new_page()
        repeat = []
        for _ in range(loads + 1):
            tab.goto(url)
            tab.evaluate("() => window.kanjiLab.ready")
            repeat.append(tab.evaluate("() => window.kanjiLab.readyMs"))
        inputs = [  # in chunks: all of them at once is a message too large for the driver
            row
            for i in range(0, len(draws), CHUNK)
            for row in tab.evaluate(PREPROCESS, draws[i : i + CHUNK])
        ]
        got = tab.evaluate(PAGE_RUN, draws)
        context.close()
    steps = list(phases[0])
    return {
        "ready_ms": first,
        "ready_repeat_ms": repeat[1:],  # the first goto of that context is a first visit
        "load_steps_ms": {k: float(np.median([p[k] for p in phases])) for k in steps},
        "fetched": {u.removeprefix(url): n for u, n in fetched.items()},
        "inputs": np.asarray(inputs, np.float32),
        **got,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--classes", default=CLASSES)
    parser.add_argument("--variants", type=int, default=5)
    parser.add_argument(
        "--sample", type=int, default=300, help="draw this many of the run's classes, evenly spread"
    )
    parser.add_argument("--loads", type=int, default=5, help="fresh page loads timed")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench_web")
    args = parser.parse_args()
    reason = browser.missing()
    if reason:
        raise SystemExit(f"bench_web: {reason}")
    load_start = list(os.getloadavg())
    run, note = args.run_dir, f"Run: `{args.run_dir}`."
    if run is None:
        run = train_tiny(args.out, args.classes)
        note = (
            f"Tiny model: model=cnn trained with debug=limit (2 epochs of 8 batches) on the "
            f"synthetic data of {len(args.classes)} classes (`{args.classes}`), so its accuracy "
            "means nothing; the figures are those of the page and the runtime. Rerun with "
            "--run-dir on a default run (3,036 classes) for the real page weight."
        )
    runtime, version = browser.fetch_runtime()  # the version conf/web.yaml pins
    labels = load_backend(run, "int8")[1]
    step = max(1, len(labels) // max(args.sample, 1))
    draws = drawings(labels[::step][: args.sample], args.variants)
    want = np.stack([strokes_input([np.asarray(s) for s in d]) for d in draws])
    want = (want.astype(np.float32) / 127.5 - 1).reshape(len(draws), 1, 64, 64)
    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {"run_dir": str(run), "drawings": len(draws), "sites": {}}
    result["arguments"] = " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        chrome = browser.launch(p)
        result["chromium"], result["onnxruntime_web"] = chrome.version, version
        for variant, backend in BACKENDS.items():
            folder = Path(tmp) / variant
            info = build_site(run, folder, runtime, variant, version)
            print(f"measuring the {variant} site ({len(draws)} drawings) ...", flush=True)
            page = measure_site(chrome, folder, draws, args.loads)
            diff = np.abs(page.pop("inputs") - want.reshape(len(draws), -1))
            python = python_side(run, backend, want)
            sizes = info["site_bytes"]
            result["sites"][variant] = {
                "classes": info["classes"],
                "site_bytes": sizes,
                "total_bytes": sum(sizes.values()),
                "model_bytes": info["bytes"],
                "fetched_bytes": sum(page["fetched"].values()),
                "fetched_files": sorted(page["fetched"]),
                "ready_ms": latency_stats(page["ready_ms"]),
                "ready_repeat_ms": latency_stats(page["ready_repeat_ms"]),
                "load_steps_ms": page["load_steps_ms"],
                "recognition_ms": latency_stats(page["times"]),
                "input_max_abs_diff": float(diff.max()),
                "input_mean_abs_diff": float(diff.mean()),
                "top1_agreement": float(
                    np.mean([a == b for a, b in zip(page["tops"], python, strict=True)])
                ),
            }
        chrome.close()
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    result["load_average"] = {"start": load_start, "end": list(os.getloadavg())}
    result["targets"] = check(result["sites"])
    print(markdown(result, note))
    record("bench_web", result, markdown(result, note))


def latency_stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, float)
    return {"median": float(np.median(v)), "p95": float(np.percentile(v, 95)), "n": len(v)}


def check(sites: dict[str, Any]) -> dict[str, bool]:
    int8, flt = sites["int8"], sites["float"]
    return {
        "ready_under_1_s (first visit)": int8["ready_ms"]["median"] < TARGETS["ready_ms"],
        "recognition_under_30_ms": int8["recognition_ms"]["median"] < TARGETS["recognition_ms"],
        "float_agreement_100%": flt["top1_agreement"] >= TARGETS["float_agreement"],
        "int8_agreement_99%": int8["top1_agreement"] >= TARGETS["int8_agree"],
    }


def markdown(r: dict[str, Any], note: str) -> str:
    i8, fl = r["sites"]["int8"], r["sites"]["float"]

    def mb(n: int) -> str:
        return f"{n / 1e6:.2f} MB"

    def ms(s: dict[str, float]) -> str:
        return f"{s['median']:.1f} ms (p95 {s['p95']:.1f} ms, n={s['n']})"

    wasm = next(n for k, n in i8["site_bytes"].items() if k.endswith(".wasm"))
    steps = i8["load_steps_ms"]
    rows = [
        ("page weight, INT8 site", f"{mb(i8['total_bytes'])} in {len(i8['site_bytes'])} files"),
        (
            "of which the model / the ONNX Runtime WASM binary",
            f"{mb(i8['model_bytes'])} ({100 * i8['model_bytes'] / i8['total_bytes']:.1f}%) / "
            f"{mb(wasm)} ({100 * wasm / i8['total_bytes']:.1f}%)",
        ),
        ("page weight, float site", f"{mb(fl['total_bytes'])} (model {mb(fl['model_bytes'])})"),
        (
            "navigation to `ready`, first visit, INT8 / float",
            f"{ms(i8['ready_ms'])} / {ms(fl['ready_ms'])}",
        ),
        (
            "of which ONNX Runtime session start (WASM compile + model), INT8",
            f"{steps['session'] - steps['model']:.0f} ms (median)",
        ),
        (
            "navigation to `ready`, repeat visit (cached), INT8 / float",
            f"{ms(i8['ready_repeat_ms'])} / {ms(fl['ready_repeat_ms'])}",
        ),
        ("recognition per stroke, INT8", ms(i8["recognition_ms"])),
        ("recognition per stroke, float", ms(fl["recognition_ms"])),
        (
            "top-1 agreement browser vs Python predict, float / INT8",
            f"{100 * fl['top1_agreement']:.1f}% / {100 * i8['top1_agreement']:.1f}% "
            f"({r['drawings']} drawings)",
        ),
        (
            "model input, browser vs Python: max / mean abs difference",
            f"{i8['input_max_abs_diff']:.2g} / {i8['input_mean_abs_diff']:.2g} (in [-1, 1]; "
            f"one grey level is {1 / 127.5:.4f})",
        ),
    ]
    failed = [k for k, ok in r["targets"].items() if not ok]
    head = (
        f"Browser app in headless Chromium {r['chromium']} on this machine ({r['machine']}), "
        f"ONNX Runtime Web {r['onnxruntime_web']} (WASM, 1 thread), page served from 127.0.0.1, "
        f"`python experiments/bench_web.py {r['arguments']}`:"
    )
    targets = "Targets (ready < 1 s, < 30 ms per stroke, agreement 100% float / 99% INT8): " + (
        "all met." if not failed else "missed: " + ", ".join(failed) + "."
    )
    load = r["load_average"]
    busy = (
        f"Load average (1 min) {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the "
        f"end, on {r['machine'].split(', ')[1]}"
    )
    busy += ": other jobs shared the machine, so times are upper bounds." if shared(r) else "."
    return "\n".join([head, "", table(rows), "", note, busy, targets])


def shared(r: dict[str, Any]) -> bool:
    """Whether other work was running when the benchmark started (a load of one core or more)."""
    return r["load_average"]["start"][0] >= 1.0


if __name__ == "__main__":
    main()
