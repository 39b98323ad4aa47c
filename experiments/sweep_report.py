"""A two-model, two-seed sweep through Hydra's basic launcher, summarised by kanji_lab.report.

Runs ``python -m kanji_lab -m <sweep> <overrides>`` exactly as a user would, then
``python -m kanji_lab.report <multirun dir>``, and records the table, the plots and the carbon
figure of the first job (with the method that measured it).

    python experiments/sweep_report.py                                   # the reduced default
    python experiments/sweep_report.py --sweep model=cnn,vit seed=1,2    # other models
    python experiments/sweep_report.py -- data.classes=etl9g             # overrides pass through

The default is reduced to fit a 2-core CPU machine: the kana classes of the built-in synthetic
data and the default 6 epochs, two CNN widths as the two models. Writes
experiments/results/sweep_report.{json,md}, the plots next to them, and its results block in
experiments/README.md (which links the plots relative to itself).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.harness import run_module  # noqa: E402
from experiments.results_io import DOC, RESULTS, ROOT, provenance, record  # noqa: E402

DEFAULT_SWEEP = ["model.net.width=16,32", "seed=1,2"]
DEFAULT_OVERRIDES = ["data.classes=kana", "callbacks.progress_bar=null"]


def git_state() -> str:
    """The commit the code came from, marked when the working tree differs from it."""
    measured = provenance()
    commit = measured["commit"][:7] or "unknown"
    return commit + (" (working tree modified)" if measured["dirty"] else "")


def plot_link(path: Path) -> str:
    """``path`` as the results book links it: relative to experiments/README.md."""
    return os.path.relpath(path, (ROOT / DOC).parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", nargs="+", default=DEFAULT_SWEEP, help="swept overrides")
    parser.add_argument("--cache", help="cache folder (default: the user's kanji_lab cache)")
    parser.add_argument("overrides", nargs="*", default=DEFAULT_OVERRIDES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "KANJI_LAB_OUTPUT": str(Path(tmp) / "outputs")}
        if args.cache:
            env["KANJI_LAB_CACHE"] = args.cache
        train_args = ["-m", *args.sweep, *args.overrides]
        wall, _ = run_module("kanji_lab", train_args, env)
        sweep_dir = next((Path(tmp) / "outputs" / "train" / "multiruns").iterdir())
        _, printed = run_module("kanji_lab.report", [str(sweep_dir)], env)
        out = RESULTS / "sweep_report"
        out.mkdir(parents=True, exist_ok=True)
        for name in ("report.md", "report.csv", "acc_vs_params.png", "acc_vs_time.png"):
            shutil.copy(sweep_dir / name, out / name)
        jobs = sorted(
            (p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        metrics = [json.loads((job / "metrics.json").read_text()) for job in jobs]
    table = (out / "report.md").read_text().split("\n\n")[1]
    carbon = metrics[0]["emissions"]
    command = "python -m kanji_lab " + " ".join(train_args)
    result = {
        "command": command,
        "report_command": "python -m kanji_lab.report <multirun dir>",
        "code": git_state(),
        "sweep_wall_s": round(wall, 1),
        "jobs": [
            {
                "job": job.name,
                "test_top1": m.get("test/acc"),
                "parameters": m["parameters"],
                "train_s": m["timings"]["train_s"],
                "emissions": m.get("emissions"),
            }
            for job, m in zip(jobs, metrics, strict=True)
        ],
        "carbon_job0": carbon,
    }
    markdown = "\n".join(
        [
            f"Sweep: `{command}` (code {result['code']}; {len(jobs)} jobs in "
            f"{wall / 60:.1f} min on this machine), then `python -m kanji_lab.report`:",
            "",
            table,
            "",
            f"![accuracy vs parameters]({plot_link(out / 'acc_vs_params.png')})",
            f"![accuracy vs training time]({plot_link(out / 'acc_vs_time.png')})",
            "",
            f"Energy of job 0 (fit + test, {carbon['duration_s']:.0f} s): "
            f"{carbon['kwh']:.3g} kWh, {1000 * carbon['kg_co2e']:.3g} g CO2e at "
            f"{carbon['intensity']} kg/kWh ({carbon['region'] or 'configured'}); "
            f"method: {carbon['method']}.",
        ]
    )
    record("sweep_report", result, markdown)
    print(printed)
    print(markdown)


if __name__ == "__main__":
    main()
