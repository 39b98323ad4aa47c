"""Why RNN, HierCode and ViT lagged the CNN: one short budget, one change at a time.

Every row trains ``python -m kanji_lab model=<arch>`` on the same classes (spread over ETL9G),
writers, epochs and seed, with the shipped defaults plus the row's overrides, and reports the
writer-disjoint synthetic test top-1 / top-5 and parameters (no timings: rows may run beside
other work; ``bench_models.py`` times the models). The
"before" rows rebuild the settings each architecture shipped with before issue 11; the rows after
them add the changes one by one. The budget is short on purpose: it is where the architectures
differ most in how fast they learn (``bench_models.py`` compares them at a fair budget).

    python experiments/parity_probe.py                       # 300 classes, 4 epochs
    python experiments/parity_probe.py --rows vit            # only the rows whose label starts so

Writes experiments/results/parity_probe.json / .md and the README's results block.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_models import evenly  # noqa: E402
from results_io import newest, record, run_module  # noqa: E402

from kanji_lab.data.charsets import etl9g_classes  # noqa: E402

RNN_BEFORE = ["model=rnn", "model.net.features=0", "model.net.pool=0"]
HIERCODE_BEFORE = [
    "model=hiercode",
    "model.net.scale=16",
    "model.net.pool=0",
    "model.net.dim=192",
    "model.net.features=384",
]
HIERCODE_192 = ["model=hiercode", "model.net.dim=192", "model.net.features=384"]
VIT_OLD_OPTIM = [
    "model.net.dropout=0.1",
    "model.net.depth=4",
    "model.optim.lr=0.001",
    "model.optim.warmup_epochs=1.0",
]
VIT_BEFORE = ["model=vit", "model.net.stem=conv", "model.net.features=0", "model.net.pool=0"]
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
    "hiercode scale 32, positional pooling, dim 128": ["model=hiercode", "model.net.features=384"],
    "hiercode ... dim 128, features 256 (shipped: INT8 <= 1 MB)": ["model=hiercode"],
    "vit before": [*VIT_BEFORE, *VIT_OLD_OPTIM],
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


def probe(label: str, overrides: list[str], common: list[str], env: dict, out: Path) -> dict:
    run_module("kanji_lab", [*overrides, *common], env)
    m = json.loads((newest(out / "train" / "runs") / "metrics.json").read_text())
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
    classes = "".join(evenly(etl9g_classes(), args.classes))
    common = [
        f"data.classes='{classes}'",
        f"trainer.max_epochs={args.epochs}",
        f"seed={args.seed}",
        "batch_size=256",
        "callbacks.progress_bar=null",
        "++callbacks.onnx_export=null",
        "callbacks.early_stopping=null",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "outputs"
        env = {**os.environ, "KANJI_LAB_CACHE": args.cache or str(Path(tmp) / "cache")}
        env["KANJI_LAB_OUTPUT"] = str(out)
        rows = [probe(label, ROWS[label], common, env, out) for label in chosen]
    setup = (
        f"{args.classes} classes (spread over ETL9G's 3,036), default synthetic writers, "
        f"{args.epochs} epochs, batch 256, seed {args.seed}, on a {os.cpu_count()}-core machine; "
        f"command: `python experiments/parity_probe.py {' '.join(sys.argv[1:])}`."
    )
    record("parity_probe", {"args": vars(args), "rows": rows}, markdown(rows, setup))


if __name__ == "__main__":
    main()
