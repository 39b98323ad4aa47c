"""The training harness of the experiment scripts: train one configuration exactly as a user
would (``python -m kanji_lab`` with overrides, in a scratch folder of its own), read the
``metrics.json`` of the run it wrote, and score a run with ``python -m kanji_lab.evaluate``.

    with workspace(cache=args.cache) as ws:
        trained = ws.train(["model=cnn", *budget(evenly(etl9g_classes(), 300), epochs=4)])
        scores = ws.evaluate(trained.run_dir, ["data=strokes", f"data.root={TOMOE}"])

Also: :func:`train_into` (a small run trained once into a folder given, its output shown), the
classes of a reduced set (:func:`evenly`) and the overrides of a fixed budget (:func:`budget`).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.results_io import ROOT


def evenly(chars: list[str], n: int) -> list[str]:
    """``n`` characters spread evenly over ``chars``."""
    n = min(n, len(chars))
    return [chars[i * len(chars) // n] for i in range(n)]


def budget(
    classes: list[str] | None, epochs: int, seed: int = 42, batch_size: int = 256
) -> list[str]:
    """Training overrides of a fixed budget: ``classes`` (None: the source's own, as for ETL
    files), epochs, seed and batch, every epoch trained (no early stopping), no progress bar and
    no ONNX export."""
    return [
        *([f"data.classes='{''.join(classes)}'"] if classes is not None else []),
        f"trainer.max_epochs={epochs}",
        f"seed={seed}",
        f"batch_size={batch_size}",
        "callbacks.progress_bar=null",
        "export.onnx=false",
        "callbacks.early_stopping=null",
    ]


def epoch_val_top1(run_dir: Path) -> list[float]:
    """Validation top-1 of each epoch, from the run's CSV log."""
    (log,) = (run_dir / "csv").glob("**/metrics.csv")
    with log.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/acc")]
    return [float(r["val/acc"]) for r in sorted(rows, key=lambda r: int(r["epoch"]))]


def largest_drop(curve: list[float], settle: int) -> float:
    """The largest fall of validation top-1 from one epoch to the next, after ``settle`` epochs."""
    tail = curve[settle:]
    return max([0.0, *(a - b for a, b in zip(tail[:-1], tail[1:], strict=True))])


def early_stop(curve: list[float], patience: int) -> tuple[int, float]:
    """Where early stopping on validation top-1 (Lightning's ``EarlyStopping``, mode max, no
    ``min_delta``) with ``patience`` would have ended this run: the last epoch trained (1-based;
    the whole curve when it never triggers) and the best validation top-1 by then, which the
    best checkpoint keeps."""
    best, wait = float("-inf"), 0
    for epoch, value in enumerate(curve, 1):
        if value > best:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best
    return len(curve), best


def run_module(
    module: str, args: list[str], env: dict[str, str], cwd: Path = ROOT
) -> tuple[float, str]:
    """Run ``python -m module args`` in ``cwd``; wall seconds and the combined output. Exits with
    the end of the output when the command fails."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode:
        tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        sys.exit(f"{module} {' '.join(args)} failed:\n{tail}")
    return seconds, proc.stdout + proc.stderr


def newest(folder: Path) -> Path:
    """The most recently modified entry of ``folder`` (the run a command just wrote)."""
    return max(Path(folder).iterdir(), key=lambda p: p.stat().st_mtime)


@dataclass
class Trained:
    """A finished training run: its directory, its ``metrics.json`` and the command's wall time."""

    run_dir: Path
    metrics: dict[str, Any]
    seconds: float


@dataclass
class Workspace:
    """A folder whose ``outputs/`` receive the runs, and the environment that sends them there
    (``KANJI_LAB_OUTPUT``, ``KANJI_LAB_CACHE``)."""

    folder: Path
    env: dict[str, str]

    @property
    def outputs(self) -> Path:
        return self.folder / "outputs"

    def train(self, overrides: list[str], code: Path | None = None) -> Trained:
        """``python -m kanji_lab overrides`` (with the kanji_lab of the checkout ``code``, when
        given) and the run it wrote."""
        seconds, _ = run_module("kanji_lab", overrides, *self._at(code))
        run_dir = newest(self.outputs / "train" / "runs")
        return Trained(run_dir, json.loads((run_dir / "metrics.json").read_text()), seconds)

    def evaluate(self, run_dir: Path, data: list[str], code: Path | None = None) -> dict[str, Any]:
        """The ``metrics.json`` of ``python -m kanji_lab.evaluate run_dir=<run_dir> data...``
        (``data``: none scores the run's own test split)."""
        run_module("kanji_lab.evaluate", [f"run_dir={run_dir}", *data], *self._at(code))
        return json.loads((newest(self.outputs / "evaluate" / "runs") / "metrics.json").read_text())

    def _at(self, code: Path | None) -> tuple[dict[str, str], Path]:
        if code is None:
            return self.env, ROOT
        return {**self.env, "PYTHONPATH": str(code)}, code


@contextmanager
def workspace(
    cache: str | None = None, keep: str | None = None, threads: int | None = None
) -> Iterator[Workspace]:
    """A :class:`Workspace` in a temporary folder (``keep``: in that folder instead, left in
    place), with the cache in ``cache`` (default: a fresh one inside the folder) and, given
    ``threads``, that many CPU threads per run (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep or tmp)
        env = {
            **os.environ,
            "KANJI_LAB_CACHE": cache or str(folder / "cache"),
            "KANJI_LAB_OUTPUT": str(folder / "outputs"),
        }
        if threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        yield Workspace(folder, env)


def train_into(run: Path, overrides: list[str], done: str = "model.safetensors") -> Path:
    """A small run trained through ``python -m kanji_lab overrides`` into ``run``
    (``hydra.run.dir``), its output shown; a ``run`` that already holds ``done`` is reused."""
    if (run / done).is_file():
        return run
    args = [*overrides, f"hydra.run.dir={run}"]
    print(f"training {run.name}: python -m kanji_lab {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "kanji_lab", *args], cwd=ROOT, check=True)
    return run
