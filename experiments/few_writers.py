"""Few real writers, with and without synthetic samples mixed in: test top-1 by writer count.

Does ``data.extra=[synthetic]`` help a small real training set, and by how much? For each count
of training writers (``data.train_writers``; ``all`` for every one) this trains the model on
that many writers of an ETL-format source alone, then with synthetic samples of the same
classes from every style family mixed into training, and scores both on the source's own
writer-disjoint test split (the same writers for every row).

    python experiments/few_writers.py --etl-root ~/etl data=etl9g data.classes=hiragana
    python experiments/etl_like.py /tmp/etl_like      # ETL9G-format files from synthetic writers
    python experiments/few_writers.py --etl-root /tmp/etl_like --name few_writers_like data=etl9g

Writes experiments/results/<name>.json and .md (and the block in experiments/README.md).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.harness import budget, epoch_val_top1, largest_drop, workspace  # noqa: E402
from experiments.results_io import record  # noqa: E402

MIXES = {"alone": [], "with synthetic": ["data.extra=[synthetic]"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--etl-root", required=True, help="a folder of ETL files")
    parser.add_argument("--writers", default="20,all", help="training writer counts, or 'all'")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--settle", type=int, default=3, help="epochs left out of the drop")
    parser.add_argument("--name", default="few_writers", help="results file name")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args()
    if not Path(args.etl_root).is_dir():
        parser.error(f"--etl-root {args.etl_root}: no such folder")
    counts = [c.strip() for c in args.writers.split(",")]
    if bad := [c for c in counts if c != "all" and not c.isdigit()]:
        parser.error(f"--writers: {', '.join(bad)} is not a count of writers or 'all'")
    common = [
        f"model={args.model}",
        f"data.root={args.etl_root}",
        *budget(None, args.epochs),
        *args.overrides,
    ]
    rows = []
    with workspace() as ws:
        for count in counts:
            limit = [] if count == "all" else [f"data.train_writers={count}"]
            for mix, extra in MIXES.items():
                trained = ws.train([*common, *limit, *extra])
                curve = epoch_val_top1(trained.run_dir)
                rows.append(
                    {
                        "writers": count,
                        "mix": mix,
                        "train_samples": train_samples(trained.run_dir),
                        "test_top1": trained.metrics.get("test/acc"),
                        "largest_drop": round(largest_drop(curve, args.settle), 4),
                        "seconds": round(trained.seconds, 1),
                    }
                )
                print(rows[-1], flush=True)
    result = {"command_overrides": common, "settle": args.settle, "rows": rows}
    record(args.name, result, markdown(result))


def train_samples(run_dir: Path) -> int | None:
    """The training split's size, from the run's log line ``samples: train N, ...``."""
    found = re.search(r"samples: train (\d+)", (run_dir / "train.log").read_text())
    return int(found[1]) if found else None


def markdown(result: dict) -> str:
    lines = [
        "Test top-1 on the source's own test writers, trained on some of its writers alone and "
        "with `data.extra=[synthetic]`, "
        f"`python -m kanji_lab {' '.join(result['command_overrides'])} data.train_writers=N`:",
        "",
        f"| training writers | training samples | test top-1 | largest validation drop after "
        f"epoch {result['settle']} | wall |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['writers']}, {r['mix']} | {r['train_samples']:,} | {100 * r['test_top1']:.2f}% "
            f"| {100 * r['largest_drop']:.1f} points | {r['seconds']:.0f} s |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
