"""Ablation of the real-writing work: one row per change, scored on several sets at once.

Each call trains one row, exactly as ``python -m kanji_lab`` would with the given overrides, on a
reduced class set (the 71 ETL9G hiragana, the kanji of the known confusions and hash-chosen
level-1 kanji up to ``--classes``), then scores it with the current code on:

- the synthetic test split, per style family (writers training never saw);
- ``tomoe``: the real stroke development set (``shared/realdev/tomoe``), ``data=strokes``;
- ``tegaki``: one writer's real tablet hiragana (``shared/realdev/tegaki``), ``data=strokes``;
- ``pad``: the Tomoe strokes drawn as a phone pad would store them (thin line of a fixed width on a
  large canvas, the character written large or small), read back as PNG files through
  ``data=folder``: the raster path with thin, sparse writing (a held-out style of our own).
- ``cells``: the Tomoe characters written in the cells of a sheet and cut out with fragments of
  their neighbours and sometimes the grid (:func:`kanji_lab.data.forms.cut_cells`), as dark ink
  on white PNG files through ``data=folder``: characters cut from a form, like ETL's scans.
- ``scans``: the Tomoe characters in faint pencil on grainy, unevenly lit paper, blurred and saved
  as JPEG (:func:`experiments.realsets.make_scan_folder`): a phone photo or a cheap scan.

Only characters in the row's vocabulary are scored (the rest are counted apart by ``evaluate``).

    python experiments/ablation_real.py --row baseline --code /path/to/old/checkout
    python experiments/ablation_real.py --row normalisation
    python experiments/ablation_real.py --row thin-pen data.writers.touch=8
    python experiments/ablation_real.py --row "brush held out" --hold-out brush

``--hold-out FAMILY`` trains without that style family and scores it on writers of a generator
seed the run never saw (``held_out``): a style the model has not met, like real writing, but
measured on every class of the row.

Writes experiments/results/ablation_real.json (every row so far) and .md (the table, and the
means of rows repeated at other seeds: a row named "<change>, seed N" is "<change>" at seed N);
``--render`` writes the tables anew from the .json without training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.harness import Workspace, workspace  # noqa: E402
from experiments.realsets import (  # noqa: E402
    TEGAKI_HIRAGANA,
    TOMOE,
    folder_data,
    make_cells_folder,
    make_pad_folder,
    make_scan_folder,
    stroke_data,
)
from experiments.results_io import RESULTS, ROOT, provenance, record, render  # noqa: E402
from kanji_lab.data.charsets import etl9g_classes, jis_level1_kanji
from kanji_lab.data.synthetic.render import FAMILIES

CONFUSED = "亡二主庁上台け方合せこまよは"


def class_set(count: int) -> str:
    hira = etl9g_classes()[-71:]
    kanji = sorted(jis_level1_kanji(), key=lambda c: hashlib.sha1(c.encode()).hexdigest())
    chosen = list(dict.fromkeys(hira + [c for c in CONFUSED if c not in hira] + kanji))
    return "".join(sorted(chosen[:count]))


def has_stroke_source(code: Path) -> bool:
    """Whether the checkout at ``code`` reads stroke files (before or after the data split)."""
    data = code / "kanji_lab" / "data"
    return (data / "stroke_source.py").is_file() or (data / "strokes" / "__init__.py").is_file()


def evaluate(ws: Workspace, run_dir: Path, data: list[str], code: Path = ROOT) -> dict:
    """The figures of one set: ``python -m kanji_lab.evaluate`` with the kanji_lab of ``code``."""
    metrics = ws.evaluate(run_dir, data, code)
    return {
        "top1": metrics["top1"],
        "top5": metrics["top5"],
        "n": metrics.get("scored"),
        "per_source": {k: round(v["acc"], 4) for k, v in metrics["per_source"].items()},
        "confused": metrics["confused_pairs"][:8],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", help="name of this ablation row (required unless --render)")
    parser.add_argument(
        "--render", action="store_true", help="only write the tables anew from the results file"
    )
    parser.add_argument("--code", help="train with the kanji_lab of another checkout (baseline)")
    parser.add_argument("--classes", type=int, default=500)
    parser.add_argument("--cache", help="cache folder to reuse between rows of equal data")
    parser.add_argument("--hold-out", choices=FAMILIES, help="a style family to train without")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the training run")
    args = parser.parse_args()
    if args.render:
        if not (rows := _rows()):
            parser.error(f"--render: no results file {RESULTS / 'ablation_real.json'}")
        render("ablation_real", _markdown(rows))
        return
    if not args.row:
        parser.error("--row NAME is required (or --render)")
    classes = class_set(args.classes)
    with workspace(cache=args.cache) as ws:
        code = Path(args.code).resolve() if args.code else ROOT
        train_args = [f'data.classes="{classes}"', "export.onnx=false", *args.overrides]
        if args.hold_out:
            train_args.append(f"data.writers.{args.hold_out}=0")
        trained = ws.train(train_args, code)
        run_dir = trained.run_dir
        pad = make_pad_folder(ws.folder / "pad", classes)
        cells = make_cells_folder(ws.folder / "cells", classes)
        scans = make_scan_folder(ws.folder / "scans", classes)
        # real sets are read by the training code when it can (the same normalisation settings)
        reader = code if has_stroke_source(code) else ROOT
        real = {
            "tomoe": stroke_data(TOMOE),
            "tegaki": stroke_data(TEGAKI_HIRAGANA),
            "pad": folder_data(pad),
            "cells": folder_data(cells),
            "scans": folder_data(scans),
        }
        sets = {"synthetic": evaluate(ws, run_dir, [], code)}  # by the code that trained
        for name, data in real.items():
            sets[name] = evaluate(ws, run_dir, [*data, "split=all"], reader)
        if args.hold_out:
            held = held_out_data(classes, args.hold_out)
            sets["held_out"] = {"family": args.hold_out, **evaluate(ws, run_dir, held, code)}
    row = {
        "row": args.row,
        "overrides": args.overrides,
        "code": "baseline checkout" if args.code else "this checkout",
        "classes": len(classes),
        "train_s": round(trained.seconds, 1),
        "epochs": trained.metrics.get("epochs"),
        "sets": sets,
        "measured": provenance(),
    }
    rows = [r for r in _rows() if r["row"] != args.row] + [row]
    record("ablation_real", {"rows": rows}, _markdown(rows))
    print(json.dumps(row, ensure_ascii=False, indent=2))


def held_out_data(classes: str, family: str, writers: int = 4) -> list[str]:
    """Evaluation data: ``writers`` new writers (generator seed 1) of ``family`` only."""
    others = [f"data.writers.{f}=0" for f in FAMILIES if f != family]
    return ["data=synthetic", f'data.classes="{classes}"', "data.seed=1", *others,
            f"data.writers.{family}={writers}", "split=all"]  # fmt: skip


def _rows() -> list[dict]:
    path = RESULTS / "ablation_real.json"
    return json.loads(path.read_text())["rows"] if path.is_file() else []


REAL = ["tomoe", "tegaki", "pad", "cells", "scans"]
SEED = re.compile(r", seed \d+$")  # rows named "<change>, seed N" repeat "<change>" at seed N


def _markdown(rows: list[dict]) -> str:
    families = sorted({k for r in rows for k in r["sets"]["synthetic"]["per_source"]})
    head = ["synthetic test", *[f.split("/")[-1] for f in families], *REAL]
    lines = _table(["row", *head, "held out", "train s"])
    for r in rows:
        held = r["sets"].get("held_out")
        held_text = f"{held['family']} {100 * held['top1']:.1f}" if held else ""
        lines.append(_line([r["row"], *_percent(_scores(r, families)), held_text,
                            f"{r['train_s']:.0f}"]))  # fmt: skip
    means = _table(["row (mean over seeds)", "seeds", *head])
    for name, group in _seed_groups(rows):
        scores = [_scores(r, families) for r in group]
        columns = zip(*scores, strict=True)
        mean = [None if None in column else sum(column) / len(column) for column in columns]
        means.append(_line([name, str(len(group)), *_percent(mean, 2)]))
    return (
        "Ablation on a reduced class set (`python experiments/ablation_real.py`), top-1 %, "
        f"{rows[-1]['classes']} classes:\n\n"
        + "\n".join(lines)
        + "\n\nRows repeated at other seeds, their mean top-1 % (a set missing from one of "
        "them: blank):\n\n" + "\n".join(means)
    )


def _scores(row: dict, families: list[str]) -> list[float | None]:
    """Top-1 of the synthetic test, of each family of it and of each real set (None: not run)."""
    s = row["sets"]
    fam = [s["synthetic"]["per_source"].get(f) for f in families]
    return [s["synthetic"]["top1"], *fam, *(s.get(k, {}).get("top1") for k in REAL)]


def _seed_groups(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """The rows grouped by their change (the name less ", seed N"), groups of two or more."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(SEED.sub("", r["row"]), []).append(r)
    return [(name, group) for name, group in groups.items() if len(group) > 1]


def _percent(values: list[float | None], digits: int = 1) -> list[str]:
    return ["" if v is None else f"{100 * v:.{digits}f}" for v in values]


def _table(head: list[str]) -> list[str]:
    return [_line(head), "|" + "---|" * len(head)]


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
