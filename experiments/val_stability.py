"""Validation stability on a small training set: validation top-1 epoch by epoch, per model.

On real ETL9G hiragana (71 classes, 160 training writers, tens of steps per epoch) validation
accuracy of some models fell by up to 40 points from one epoch to the next while training
accuracy rose smoothly. This trains each model with its shipped defaults on a set of that size,
every epoch kept (no early stopping), and reports each epoch's validation top-1 and the largest
drop between consecutive epochs after the first ``--settle`` epochs.

    python experiments/val_stability.py                              # built-in data
    python experiments/val_stability.py --etl-root ~/etl data=etl9g  # real-format files
    python experiments/val_stability.py --models cnn,vit --epochs 8 seed=1     # overrides pass
    python experiments/etl_like.py /tmp/etl_like    # ETL9G-format files from synthetic writers
    python experiments/val_stability.py --etl-root /tmp/etl_like --name val_stability_etl data=etl9g
    python experiments/val_stability.py --code /tmp/old --name ... # another checkout's kanji_lab
    python experiments/val_stability.py --render --name val_stability_etl  # its table, anew

Writes experiments/results/val_stability.json and .md (and the block in experiments/README.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.harness import early_stop, epoch_val_top1, largest_drop, workspace  # noqa: E402
from experiments.results_io import RESULTS, git, record, render  # noqa: E402

MODELS = ("cnn", "rnn", "hiercode", "vit")
PATIENCE = (5, 10)  # early stopping replayed on each curve (conf/callbacks/default.yaml: 5)
# the built-in data at the size of the real-data report: 71 hiragana, 44 writers (~9k images)
SMALL_SYNTHETIC = ["data=synthetic", "data.classes=hiragana"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--settle", type=int, default=3, help="epochs left out of the drop")
    parser.add_argument("--etl-root", help="a folder of ETL files (with data=etl9g or similar)")
    parser.add_argument("--name", default="val_stability", help="results file name")
    parser.add_argument("--code", type=Path, help="train with the kanji_lab of another checkout")
    parser.add_argument(
        "--render", action="store_true", help="rewrite the table of --name from its results file"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args()
    if args.render:
        path = RESULTS / f"{args.name}.json"
        if not path.is_file():
            parser.error(f"--render: no results file {path}")
        render(args.name, markdown(json.loads(path.read_text())))
        return
    if args.code and not (args.code / "kanji_lab" / "__init__.py").is_file():
        parser.error(f"--code {args.code}: not a checkout of kanji_lab (no kanji_lab/__init__.py)")
    data = [f"data.root={args.etl_root}"] if args.etl_root else SMALL_SYNTHETIC
    common = [
        *data,
        *args.overrides,
        f"trainer.max_epochs={args.epochs}",
        "callbacks.early_stopping=null",
        "callbacks.progress_bar=null",
        "++export.onnx=false",  # ++: a checkout from before the switch takes it too
    ]
    rows = {}
    with workspace() as ws:
        for model in args.models.split(","):
            trained = ws.train([f"model={model}", *common], code=args.code)
            curve = epoch_val_top1(trained.run_dir)
            rows[model] = {
                "val_top1": [round(v, 4) for v in curve],
                "largest_drop": round(largest_drop(curve, args.settle), 4),
                "test_top1": trained.metrics.get("test/acc"),
                "seconds": round(trained.seconds, 1),
            }
            print(model, rows[model], flush=True)
    code = git("rev-parse", "HEAD", cwd=args.code) if args.code else None
    result = {"command_overrides": common, "code": code, "settle": args.settle, "models": rows}
    record(args.name, result, markdown(result))


def markdown(result: dict) -> str:
    code = f" with the kanji_lab of commit {result['code'][:7]}" if result.get("code") else ""
    lines = [
        "Validation top-1 epoch by epoch on a small training set, "
        f"`python -m kanji_lab {' '.join(result['command_overrides'])}`{code}:",
        "",
        f"| model | test top-1 | largest drop after epoch {result['settle']} "
        f"| best validation (epoch) | early stopping, patience {' / '.join(map(str, PATIENCE))}: "
        "last epoch, best validation by then | validation top-1 per epoch |",
        "|---|---|---|---|---|---|",
    ]
    for model, r in result["models"].items():
        values = r["val_top1"]
        curve = " ".join(f"{v:.3f}" for v in values)
        drop = f"{100 * r['largest_drop']:.1f} points"
        peak = max(range(len(values)), key=values.__getitem__) if values else -1
        best = f"{values[peak]:.3f} ({peak + 1})" if values else ""
        stops = " / ".join(
            f"{epoch}, {value:.3f}" for epoch, value in (early_stop(values, p) for p in PATIENCE)
        )
        lines.append(
            f"| {model} | {100 * r['test_top1']:.2f}% | {drop} | {best} | {stops} | {curve} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
