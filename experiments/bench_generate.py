"""Benchmark the synthetic generator: images per second per style family, this tree against a
baseline commit, one core.

Each style family writes the same characters (``--classes`` of the default class set, spread
over kanji and kana), through the generator's own per-writer task
(``kanji_lab.data.synthetic.render_task``: drawing, scan simulation, normalisation; for form
writers the sheet and its cut cells too), in one process. The baseline is the code at
``--baseline`` (a git worktree in a temporary folder) run by the same measuring snippet in a
process of its own; baseline and this tree alternate ``--rounds`` times, so that a change in the
machine's load hits both, and the best round of each counts. Writes
experiments/results/bench_generate.json and its block in experiments/README.md.

    python experiments/bench_generate.py                     # against BASELINE
    python experiments/bench_generate.py --baseline HEAD~3 --classes 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.results_io import ROOT, git, record, table  # noqa: E402
from kanji_lab.data.charsets import combined_classes
from kanji_lab.data.synthetic import _font_files, render

# the last commit before the compiled normalisation (numpy passes over each image)
BASELINE = "456ae402e2b632cceaaca3c7bfe6c80d5f554efc"
# run with the tree under test first on sys.path: imports kanji_lab from there, times each family
MEASURE = """
import json, sys, time
from kanji_lab.data import kanjivg, synthetic
from kanji_lab.data.synthetic import render
chars, fonts = json.loads(sys.argv[1])
strokes = {c: s for c in chars if (s := kanjivg.load_strokes(c)) is not None}
synthetic._init_worker(strokes, fonts)
def task(writer, family, chars):
    font = fonts[writer % len(fonts)] if family in render.FONT_FAMILIES else ""
    return (0, writer, family, font, tuple((c, 0) for c in chars))
synthetic.render_task(task(0, "form", chars[:8]))  # warm-up: imports, compiled code
rates = {}
for writer, family in enumerate(render.FAMILIES):
    start = time.perf_counter()
    images, _ = synthetic.render_task(task(writer, family, chars))
    rates[family] = len(images) / (time.perf_counter() - start)
print(json.dumps(rates))
"""


def characters(count: int, seed: int = 0) -> list[str]:
    """``count`` classes of the default set, drawn at random (kanji and kana alike)."""
    classes = combined_classes()
    rng = np.random.default_rng(seed)
    return [classes[i] for i in sorted(rng.choice(len(classes), count, replace=False))]


def font_files() -> list[str]:
    """The default data's fonts (conf/data/synthetic.yaml), as files."""
    return _font_files(OmegaConf.load(ROOT / "conf" / "data" / "synthetic.yaml"))


def measure(tree: Path, chars: list[str], fonts: list[str]) -> dict[str, float]:
    """Images per second per family of the code in ``tree``, one process, one core."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps([chars, fonts])],
        cwd=tree, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        sys.exit(f"bench_generate: measuring {tree} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worktree(commit: str, folder: Path) -> Path:
    """A checkout of ``commit`` in ``folder``; exits saying why when git cannot make one."""
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), commit],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        sys.exit(f"bench_generate: no checkout of {commit}: {done.stderr.strip()}")
    return folder


def _markdown(r: dict) -> str:
    rows = [
        (family, f"{r['baseline'][family]:,.0f}", f"{r['new'][family]:,.0f}",
         f"{r['new'][family] / r['baseline'][family]:.2f}x")
        for family in r["new"]
    ]  # fmt: skip
    rows.append(("all families (harmonic mean)", f"{r['baseline_all']:,.0f}",
                 f"{r['new_all']:,.0f}", f"{r['new_all'] / r['baseline_all']:.2f}x"))  # fmt: skip
    head = ("family", *(f"images/s at {r[c][:7]}" for c in ("baseline_commit", "commit")), "ratio")
    return (
        f"Synthetic generation, one core, {r['classes']} classes per family, best of "
        f"{r['rounds']} alternating rounds, `{r['command']}`:\n\n" + table(rows, head)
    )


def _overall(rates: dict[str, float]) -> float:
    """Images per second over one image of each family (harmonic mean)."""
    return len(rates) / sum(1 / r for r in rates.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare with")
    parser.add_argument("--classes", type=int, default=150, help="characters per family")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.classes < 8 or args.rounds < 1:
        parser.error("--classes must be at least 8 and --rounds at least 1")
    chars, fonts = characters(args.classes), font_files()
    best: dict[str, dict[str, float]] = {"baseline": {}, "new": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = worktree(args.baseline, Path(tmp) / "base")
        try:
            for round_ in range(args.rounds):
                for name, tree in (("baseline", base), ("new", ROOT)):
                    rates = measure(tree, chars, fonts)
                    for family, rate in rates.items():
                        best[name][family] = max(best[name].get(family, 0.0), rate)
                    print(f"round {round_ + 1} {name}: "
                          + ", ".join(f"{f} {r:,.0f}" for f, r in rates.items()))  # fmt: skip
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "baseline_commit": git("rev-parse", args.baseline),
        "commit": git("rev-parse", "HEAD"),
        "classes": args.classes,
        "rounds": args.rounds,
        "families": list(render.FAMILIES),
        "baseline": best["baseline"],
        "new": best["new"],
        "baseline_all": _overall(best["baseline"]),
        "new_all": _overall(best["new"]),
    }
    record("bench_generate", result, _markdown(result))
    print(f"all families: {result['baseline_all']:,.0f} -> {result['new_all']:,.0f} images/s "
          f"({result['new_all'] / result['baseline_all']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
