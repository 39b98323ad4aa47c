"""Why RNN, HierCode and ViT lagged the CNN: one short budget, one change at a time.

Every row trains ``python -m kanji_lab model=<arch>`` on the same classes (spread over ETL9G),
writers, epochs and seed, with the shipped defaults plus the row's overrides, and reports the
writer-disjoint synthetic test top-1 / top-5 and parameters (no timings: rows may run beside
other work; ``bench_models.py`` times the models). The
"before" rows rebuild the settings each architecture shipped with before issue 11; the rows after
them add the changes one by one. The budget is short on purpose: it is where the architectures
differ most in how fast they learn (``bench_models.py`` compares them at a fair budget).
Rows recorded for options since removed (HierCode's cosine margin, slot loss and factored
codebook, the ViT's convolutional and patch stems, all below the shipped default) stay in the
results file as measured; they run only at the commits that had those options.

    python experiments/parity_probe.py                       # 300 classes, 4 epochs
    python experiments/parity_probe.py --rows vit            # only the rows whose label starts so,
                                                             # merged into the recorded table

Writes experiments/results/parity_probe.json / .md and its results block in experiments/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.harness import Workspace, budget, evenly, workspace  # noqa: E402
from experiments.results_io import RESULTS, record  # noqa: E402
from kanji_lab.data.charsets import etl9g_classes

RNN_BEFORE = ["model=rnn", "model.net.features=0", "model.net.pool=0"]
HIERCODE_CODE = ["model=hiercode"]
HIERCODE_SLOTS = [*HIERCODE_CODE, "model.optim.lr=0.003"]  # the learning rate before lr 0.008
HIERCODE_BEFORE = [
    *HIERCODE_SLOTS,
    "model.net.scale=16",
    "model.net.pool=0",
    "model.net.dim=192",
    "model.net.features=384",
]
HIERCODE_192 = [*HIERCODE_SLOTS, "model.net.dim=192", "model.net.features=384"]
VIT_OLD_OPTIM = [
    "model.net.dropout=0.1",
    "model.net.depth=4",
    "model.optim.lr=0.001",
    "model.optim.warmup_epochs=1.0",
]
ROWS = {
    "cnn before (global average pooling)": ["model=cnn", "model.net.pool=0"],
    "cnn positional pooling (shipped)": ["model=cnn"],
    "rnn before": RNN_BEFORE,
    "rnn before, aux loss off": [*RNN_BEFORE, "model.net.aux_weight=0"],
    "rnn + feature layer": ["model=rnn", "model.net.pool=0"],
    "rnn + feature layer, positional pooling (shipped)": ["model=rnn"],
    "hiercode before (scale 16, dim 192, features 384)": HIERCODE_BEFORE,
    "hiercode scale 32": [*HIERCODE_192, "model.net.pool=0"],
    "hiercode scale 32, no label smoothing": [
        *HIERCODE_192,
        "model.net.pool=0",
        "model.optim.label_smoothing=0",
    ],
    "hiercode scale 32, positional pooling": HIERCODE_192,
    "hiercode scale 32, positional pooling, dim 128": [*HIERCODE_SLOTS, "model.net.features=384"],
    "hiercode ... dim 128, features 256 (INT8 <= 1 MB)": HIERCODE_SLOTS,
    "hiercode ... logit scale 64": [*HIERCODE_SLOTS, "model.net.scale=64"],
    "hiercode ... dropout 0": [*HIERCODE_SLOTS, "model.net.dropout=0"],
    "hiercode ... lr 0.005": [*HIERCODE_CODE, "model.optim.lr=0.005"],
    "hiercode ... no label smoothing": [*HIERCODE_SLOTS, "model.optim.label_smoothing=0"],
    "hiercode ... lr 0.005, dropout 0": [
        *HIERCODE_CODE,
        "model.optim.lr=0.005",
        "model.net.dropout=0",
    ],
    "hiercode ... lr 0.008 (shipped: INT8 <= 1 MB)": HIERCODE_CODE,
    "vit hybrid stem": ["model=vit", "model.net.features=0", "model.net.pool=0", *VIT_OLD_OPTIM],
    "vit hybrid + feature layer": ["model=vit", "model.net.pool=0", *VIT_OLD_OPTIM],
    "vit + lr 3e-3, warm-up 0.5, no dropout": [
        "model=vit",
        "model.net.pool=0",
        "model.net.depth=4",
    ],
    "vit ... depth 2": ["model=vit", "model.net.pool=0"],
    "vit ... positional pooling (shipped)": ["model=vit"],
}


def probe(label: str, overrides: list[str], common: list[str], ws: Workspace) -> dict:
    m = ws.train([*overrides, *common]).metrics
    row = {
        "row": label,
        "overrides": overrides,
        "top1": m["test/acc"],
        "top5": m["test/acc_top5"],
        "parameters": m["parameters"],
    }
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def markdown(rows: list[dict], setup: str) -> str:
    lines = [setup, "", "| row | top-1 | top-5 | parameters |", "|---|---|---|---|"]
    lines += [
        f"| {r['row']} | {100 * r['top1']:.1f}% | {100 * r['top5']:.1f}% | {r['parameters']:,} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rows", nargs="*", help="only rows whose label starts with one of these")
    parser.add_argument("--cache", help="cache folder to reuse (default: a fresh temporary one)")
    args = parser.parse_args()
    chosen = [k for k in ROWS if not args.rows or any(k.startswith(p) for p in args.rows)]
    common = budget(evenly(etl9g_classes(), args.classes), args.epochs, args.seed, 256)
    with workspace(cache=args.cache) as ws:
        rows = [probe(label, ROWS[label], common, ws) for label in chosen]
    setup = (
        f"{args.classes} classes (spread over ETL9G's 3,036), default synthetic writers, "
        f"{args.epochs} epochs, batch 256, seed {args.seed}, on a {os.cpu_count()}-core machine; "
        f"command: `python experiments/parity_probe.py {shlex.join(sys.argv[1:])}`."
    )
    if args.rows:
        rows = merged_with_recorded(rows, args)
        setup += " Rows starting with " + ", ".join(f"`{r}`" for r in args.rows) + " rerun later."
    record("parity_probe", {"args": vars(args), "rows": rows}, markdown(rows, setup))


def merged_with_recorded(rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """The recorded rows with ``rows`` replacing or joining them, in the order of ``ROWS``."""
    recorded = json.loads((RESULTS / "parity_probe.json").read_text())
    same = ("classes", "epochs", "seed")
    if any(recorded["args"][k] != getattr(args, k) for k in same):
        sys.exit(f"--rows: {same} differ from the recorded run {recorded['args']}")
    by_label = {r["row"]: r for r in recorded["rows"]} | {r["row"]: r for r in rows}
    return [by_label[label] for label in ROWS if label in by_label]


if __name__ == "__main__":
    main()
