"""``python -m kanji_lab.report <multirun dir>``: one table and two plots for a whole sweep.

Reads every job directory of a Hydra multirun (``config.yaml`` and ``metrics.json``, written by
the train task) and writes into the multirun directory:

- ``report.md`` and ``report.csv``: one row per job, with the config keys that differ between the
  jobs, accuracy, parameters, training time and energy (jobs without ``metrics.json`` are listed
  as unfinished);
- ``acc_vs_params.png`` and ``acc_vs_time.png``: test accuracy (else best validation accuracy)
  against model size and against training time, one colour per configuration (seeds together).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from kanji_lab.run_dir import CONFIG_FILE

METRICS_FILE = "metrics.json"
# config keys that differ between jobs without describing the experiment
IGNORED_PREFIXES = ("paths.", "resume", "hydra.")
SEED_KEYS = ("seed",)
# (column, how to read it from metrics.json, how to show it)
METRIC_COLUMNS: list[tuple[str, tuple[str, ...], str]] = [
    ("test top-1", ("test/acc",), "pct"),
    ("test top-5", ("test/acc_top5",), "pct"),
    ("best val top-1", ("val/acc_best",), "pct"),
    ("parameters", ("parameters",), "int"),
    ("epochs", ("epochs",), "int"),
    ("train s", ("timings", "train_s"), "float"),
    ("kWh", ("emissions", "kwh"), "sci"),
    ("g CO2e", ("emissions", "kg_co2e"), "gram"),
]


class ReportError(ValueError):
    """The directory is not a multirun with finished jobs."""


@dataclass
class Job:
    name: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    overrides: list[str] = field(default_factory=list)

    def metric(self, keys: Sequence[str]) -> Any:
        value: Any = self.metrics
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    @property
    def accuracy(self) -> float | None:
        value = self.metric(("test/acc",))
        return value if value is not None else self.metric(("val/acc_best",))


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def _job_order(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (sys.maxsize, path.name)


def load_jobs(sweep_dir: Path) -> list[Job]:
    """Every job directory (one with ``config.yaml``) of a multirun, in job order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ReportError(f"{sweep_dir}: no such directory")
    jobs = []
    for path in sorted((p.parent for p in sweep_dir.glob(f"*/{CONFIG_FILE}")), key=_job_order):
        config = OmegaConf.to_container(OmegaConf.load(path / CONFIG_FILE), resolve=False)
        metrics_path = path / METRICS_FILE
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
        overrides_path = path / ".hydra" / "overrides.yaml"
        overrides = list(OmegaConf.load(overrides_path)) if overrides_path.is_file() else []
        jobs.append(Job(path.name, path, flatten(config), metrics, overrides))
    if not jobs:
        raise ReportError(
            f"{sweep_dir}: no job directories with {CONFIG_FILE}; pass a multirun directory, e.g. "
            "outputs/train/multiruns/<date>_<time>"
        )
    return jobs


def _in_job_dir(job: Job, key: str) -> bool:
    """Whether the value is a path inside the job's own directory (checkpoint dirs and the like)."""
    own = job.config.get("paths.output_dir")
    return bool(own) and str(own) in str(job.config.get(key))


def varying_keys(jobs: list[Job]) -> list[str]:
    """Config keys whose value differs between jobs (the swept ones, in config order); values
    that differ only because they point into each job's own directory are left out."""
    keys: dict[str, None] = {}
    for job in jobs:
        keys.update(dict.fromkeys(job.config))
    return [
        key
        for key in keys
        if not key.startswith(IGNORED_PREFIXES)
        and len({json.dumps(job.config.get(key), sort_keys=True) for job in jobs}) > 1
        and not all(_in_job_dir(job, key) for job in jobs)
    ]


def _show(value: Any, style: str) -> str:
    if value is None:
        return ""
    if style == "pct":
        return f"{100 * value:.2f}%"
    if style == "int":
        return f"{int(value):,}"
    if style == "float":
        return f"{value:.0f}"
    if style == "sci":
        return f"{value:.3g}"
    if style == "gram":
        return f"{1000 * value:.3g}"
    return str(value)


def build_table(
    jobs: list[Job],
) -> tuple[list[str], list[str], list[list[Any]], list[list[str]]]:
    """Markdown header, CSV header (metric keys as in metrics.json), raw rows (for CSV) and
    shown rows (for markdown)."""
    keys = varying_keys(jobs)
    header = ["job", *keys, *(name for name, _, _ in METRIC_COLUMNS), "status"]
    csv_header = ["job", *keys, *("/".join(path) for _, path, _ in METRIC_COLUMNS), "status"]
    raw, shown = [], []
    for job in jobs:
        values = [job.metric(path) if job.metrics else None for _, path, _ in METRIC_COLUMNS]
        status = "done" if job.metrics else "unfinished"
        config = [job.config.get(key) for key in keys]
        raw.append([job.name, *config, *values, status])
        shown.append(
            [
                job.name,
                *(str(v) for v in config),
                *(_show(v, style) for v, (_, _, style) in zip(values, METRIC_COLUMNS, strict=True)),
                status,
            ]
        )
    return header, csv_header, raw, shown


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _configuration(job: Job, keys: list[str]) -> str:
    """The job's setting of the swept keys other than the seed: jobs that differ only by seed
    share a colour."""
    parts = [f"{k}={job.config.get(k)}" for k in keys if k not in SEED_KEYS]
    return ", ".join(parts) or "all jobs"


def plot(jobs: list[Job], x_keys: tuple[str, ...], x_label: str, path: Path, log_x: bool) -> Path:
    """Accuracy against a metric, one colour per configuration, each point labelled by its job."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = varying_keys(jobs)
    done = [j for j in jobs if j.metrics and j.accuracy is not None and j.metric(x_keys)]
    groups: dict[str, list[Job]] = {}
    for job in done:
        groups.setdefault(_configuration(job, keys), []).append(job)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, members in groups.items():
        xs = [j.metric(x_keys) for j in members]
        ys = [100 * j.accuracy for j in members]
        ax.scatter(xs, ys, label=name, s=36)
        for job, x, y in zip(members, xs, ys, strict=True):
            ax.annotate(job.name, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if log_x:
        ax.set_xscale("log")
    uses_test = all(j.metric(("test/acc",)) is not None for j in done)
    ax.set_ylabel("test top-1 (%)" if uses_test else "best validation top-1 (%)")
    ax.set_xlabel(x_label)
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=7, loc="best")
    ax.set_title(f"{len(done)} of {len(jobs)} jobs", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(sweep_dir: Path) -> dict[str, Path]:
    """Write the table (markdown, CSV) and the plots into ``sweep_dir``; returns their paths."""
    sweep_dir = Path(sweep_dir)
    jobs = load_jobs(sweep_dir)
    header, csv_header, raw, shown = build_table(jobs)
    out = {
        "markdown": sweep_dir / "report.md",
        "csv": sweep_dir / "report.csv",
        "acc_vs_params": sweep_dir / "acc_vs_params.png",
        "acc_vs_time": sweep_dir / "acc_vs_time.png",
    }
    out["markdown"].write_text(
        f"# Sweep {sweep_dir.name}\n\n{markdown_table(header, shown)}\n\n"
        f"![accuracy vs parameters]({out['acc_vs_params'].name})\n"
        f"![accuracy vs training time]({out['acc_vs_time'].name})\n"
    )
    with out["csv"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header)
        writer.writerows([["" if v is None else v for v in row] for row in raw])
    plot(jobs, ("parameters",), "parameters", out["acc_vs_params"], log_x=True)
    plot(jobs, ("timings", "train_s"), "training time (s)", out["acc_vs_time"], log_x=False)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kanji_lab.report", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="a multirun directory")
    args = parser.parse_args(argv)
    try:
        out = write_report(args.sweep_dir)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out["markdown"].read_text().split("\n\n")[1])
    print("\n".join(f"wrote {path}" for path in out.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
