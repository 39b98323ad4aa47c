"""The browser page's preprocessing (``normalize.js``: strokes -> the model's 64x64 input), timed in
Node's V8 (the JavaScript engine of Chromium) per drawing, against the module of a baseline
commit in the same run, and checked pixel for pixel against Python's ``strokes_input``.

Drawings: the KanjiVG strokes of ``--sample`` classes of the default class set, each written
``--variants`` times with a random affine distortion and point jitter, every prefix of strokes
one drawing (as the page recognises after every stroke; :func:`experiments.bench_web.drawings`).
The two modules run in alternating blocks, so a change of load hits both alike; the load average
is recorded. The whole recognition in Chromium (preprocessing and model) is ``bench_web``'s.

    python experiments/bench_web_preprocess.py
    python experiments/bench_web_preprocess.py --baseline 006161f --sample 200

Writes experiments/results/bench_web_preprocess.json and .md, and its results block in
experiments/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.bench_web import drawings, latency_stats  # noqa: E402
from experiments.results_io import ROOT, record, table  # noqa: E402
from kanji_lab.data.charsets import resolve_classes
from kanji_lab.data.normalize import SETTINGS, strokes_input

MODULE = "kanji_lab/web/static/normalize.js"
# the module before its typed-array rewrite (the commit this benchmark was added after)
BASELINE = "006161f87935189a8b7575514ce76a1878c254c0"
TARGET_P95_MS = 5.0
# timed by node: each module on every drawing, in alternating blocks, after a warm-up pass
RUNNER = """
import fs from 'fs';
import * as base from './base.mjs';
import * as now from './now.mjs';
const { draws, settings, block, rounds } = JSON.parse(fs.readFileSync('./draws.json'));
const modules = { base, now };
const times = { base: [], now: [] };
for (const m of Object.values(modules)) for (const d of draws) m.strokesInput(d, settings);
for (let r = 0; r < rounds; r++) {
  for (let start = 0; start < draws.length; start += block) {
    for (const [name, m] of Object.entries(modules)) {
      for (const d of draws.slice(start, start + block)) {
        const t0 = performance.now();
        m.strokesInput(d, settings);
        times[name].push(performance.now() - t0);
      }
    }
  }
}
const images = draws.map((d) => Array.from(now.strokesInput(d, settings).image));
const differ = draws.filter((d, i) => {
  const old = base.strokesInput(d, settings).image;
  return old.some((v, k) => v !== images[i][k]);
}).length;
fs.writeFileSync('./out.json', JSON.stringify({ times, images, differ }));
"""


def run_node(folder: Path, draws: list, baseline: str, rounds: int) -> dict:
    """Time both modules on ``draws`` in ``folder``; the runner's output."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench_web_preprocess: needs Node.js (Debian: apt-get install nodejs)")
    old = subprocess.run(
        ["git", "show", f"{baseline}:{MODULE}"], cwd=ROOT, capture_output=True, text=True
    )
    if old.returncode:
        raise SystemExit(f"bench_web_preprocess: no {MODULE} at {baseline}: {old.stderr.strip()}")
    (folder / "base.mjs").write_text(old.stdout)
    shutil.copy(ROOT / MODULE, folder / "now.mjs")
    (folder / "runner.mjs").write_text(RUNNER)
    job = {"draws": draws, "settings": SETTINGS, "block": 50, "rounds": rounds}
    (folder / "draws.json").write_text(json.dumps(job))
    subprocess.run([node, "runner.mjs"], cwd=folder, check=True)
    return json.loads((folder / "out.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=100, help="classes, evenly spread")
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the drawings")
    parser.add_argument("--baseline", default=BASELINE, help="commit of the baseline module")
    args = parser.parse_args()
    labels = resolve_classes("combined")
    step = max(1, len(labels) // args.sample)
    draws = drawings(labels[::step][: args.sample], args.variants)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = run_node(Path(tmp), draws, args.baseline, args.rounds)
    load_after = os.getloadavg()[0]
    python = [strokes_input([np.asarray(s) for s in d]).ravel() for d in draws]
    levels = [
        np.abs(np.asarray(i, np.int16) - p).max()
        for i, p in zip(out["images"], python, strict=True)
    ]
    base, now = latency_stats(out["times"]["base"]), latency_stats(out["times"]["now"])
    result = {
        "drawings": len(draws),
        "baseline_commit": args.baseline,
        "baseline": base,
        "now": now,
        "speedup_median": base["median"] / now["median"],
        "differ_from_baseline": out["differ"],
        "max_grey_levels_from_python": int(max(levels)),
        "drawings_differing_from_python": int(sum(v > 0 for v in levels)),
        "target_p95_ms": TARGET_P95_MS,
        "load_average": [load_before, load_after],
    }
    record("bench_web_preprocess", result, markdown(result, args))
    print(json.dumps(result, indent=2))


def markdown(r: dict, args: argparse.Namespace) -> str:
    base, now = r["baseline"], r["now"]
    ms = "{0[median]:.2f} / {0[p95]:.2f} ms".format
    rows = [
        ("drawings (every stroke prefix)", f"{r['drawings']:,}"),
        ("baseline module (commit)", f"`{r['baseline_commit'][:7]}`"),
        ("per drawing, baseline: median / p95", ms(base)),
        ("per drawing, now: median / p95", ms(now)),
        ("speed-up (median)", f"{r['speedup_median']:.2f}x"),
        ("inputs differing from the baseline's", f"{r['differ_from_baseline']} drawings"),
        (
            "inputs differing from Python's `strokes_input`",
            f"{r['drawings_differing_from_python']} drawings "
            f"(at most {r['max_grey_levels_from_python']} grey levels)",
        ),
    ]
    met = "met" if now["p95"] < r["target_p95_ms"] else "missed"
    return (
        "Browser preprocessing (`normalize.js`) in Node's V8 on this machine (2 cores), "
        f"`python experiments/bench_web_preprocess.py --sample {args.sample} --variants "
        f"{args.variants} --rounds {args.rounds} --baseline {args.baseline}`:\n\n"
        + table(rows)
        + "\n\n"
        f"Load average (1 min) {r['load_average'][0]:.1f} at the start, "
        f"{r['load_average'][1]:.1f} at the end. Target (p95 under {r['target_p95_ms']:.0f} ms "
        f"per drawing): {met}."
    )


if __name__ == "__main__":
    main()
