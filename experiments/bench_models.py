"""The model zoo on the same synthetic data and budget, and HierCode's zero-shot study.

Part 1 trains cnn, rnn (auxiliary component loss on and off), hiercode (as shipped, and with the
wider code of the zero-shot recipe) and vit with
``python -m kanji_lab`` and each model's shipped defaults on the same classes, writers, epochs and
seed, and reports the writer-disjoint synthetic test top-1 / top-5, top-1 on the real stroke
development set (``shared/realdev/tomoe``, the characters among the classes), parameters, MACs per
image, training time per epoch, CPU latency at batch 1, the INT8 ONNX size and, for hiercode, how
much of its codebook belongs to one class only. A model within a point of the CNN is trained
again, with the CNN, on a second seed. Part 2 is the reduced zero-shot check as a user runs it
through the command line: ``model=hiercode`` as shipped (``--zero-shot-model`` for the wider
code) trained on the first ``--seen`` of the ``zeroshot_seen`` kanji for ``--epochs``, and
scored on the first ``--unseen`` of the ``zeroshot_unseen`` kanji, which it never saw, with
``python -m kanji_lab.evaluate ... zero_shot.classes=...``: on synthetic writers that training
never saw (the evaluation keeps only the run's test writers), on its training writers, and on
the development set's samples of those kanji.

    python experiments/bench_models.py                          # 1,000 classes, 5 epochs
    python experiments/bench_models.py --classes 3036 --seen 2000 --unseen 965   # full scale
    python experiments/bench_models.py --classes 3036 --skip zero-shot --one-seed \
        --record bench_models_full --models cnn rnn hiercode vit   # the full-scale table
    python experiments/bench_models.py --etl-root ~/etl --etl-data etl9g --epochs 15 \
        --etl-classes hiragana --record bench_models_etl9g   # part 1 on ETL-format files

Each row also carries validation top-1 epoch by epoch and its largest fall from one epoch to the
next after ``--settle`` epochs: on a real-format set of tens of steps per epoch, validation that
swings while training is smooth shows there first. With ``--etl-root`` part 1 trains on the ETL
files of ``--etl-data`` under that folder (``--etl-classes``: a subset of their classes) instead
of the synthetic data (part 2 stays synthetic).

Writes experiments/results/bench_models*.json / .md and their results blocks in
experiments/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.harness import (  # noqa: E402
    Workspace,
    budget,
    epoch_val_top1,
    evenly,
    largest_drop,
    workspace,
)
from experiments.realsets import TOMOE, stroke_data  # noqa: E402
from experiments.results_io import RESULTS, record  # noqa: E402
from kanji_lab.data.charsets import etl9g_classes, zero_shot_split
from kanji_lab.deploy.weights import load_weights

FAMILIES = ("pen", "pencil", "brush", "cursive", "font")
MODELS = {
    "cnn": ["model=cnn"],
    "rnn": ["model=rnn", "model.net.aux_weight=0.5"],
    "rnn (aux off)": ["model=rnn", "model.net.aux_weight=0"],
    "hiercode": ["model=hiercode"],
    # larger than the shipped size (INT8 over 1 MB at 3,036 classes), for the accuracy it buys
    "hiercode (dim 192, features 384)": [
        "model=hiercode",
        "model.net.dim=192",
        "model.net.features=384",
    ],
    "vit": ["model=vit"],
}
# part 2 only: how much of each character's tree becomes positional slots
ZERO_SHOT_VARIANTS = {
    f"hiercode (depth {d})": ["model=hiercode", f"model.net.depth={d}"] for d in (0, 1, 3)
}
ALL_MODELS = {**MODELS, **ZERO_SHOT_VARIANTS}


def latency_ms(weights: Path, repeats: int = 50) -> float:
    """Median time of one batch-1 forward pass of the saved network on one CPU thread (a shared
    machine makes multi-threaded timings of such small models meaningless)."""
    net, _ = load_weights(weights)
    x = torch.zeros(1, 1, 64, 64)
    times = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.inference_mode():
        for _ in range(5):
            net(x)
        for _ in range(repeats):
            start = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    return 1000 * float(np.median(times))


def int8_bytes(weights: Path, out: Path) -> int | None:
    """Size of the INT8 ONNX file of the saved network (kanji_lab.deploy), None without it."""
    try:
        from kanji_lab.deploy.int8 import quantize_int8
        from kanji_lab.deploy.onnx_export import export_onnx
    except ImportError:
        return None
    net, meta = load_weights(weights)
    fp32 = export_onnx(net, out / "model.onnx", meta["labels"])
    rng = np.random.default_rng(0)
    calib = [rng.uniform(-1, 1, (16, 1, 64, 64)).astype(np.float32) for _ in range(2)]
    return quantize_int8(fp32, out / "model.int8.onnx", calib).stat().st_size


def realdev_top1(run_dir: Path, ws: Workspace) -> dict[str, Any]:
    """Top-1 on the development set's samples of the run's classes (None without the set)."""
    if not TOMOE.is_dir():
        return {"realdev_top1": None, "realdev_samples": 0}
    m = ws.evaluate(run_dir, stroke_data(TOMOE))
    return {"realdev_top1": m["top1"], "realdev_samples": m["scored"]}


def train_model(
    name: str, extra: list[str], common: list[str], ws: Workspace, settle: int = 3
) -> dict:
    trained = ws.train([*ALL_MODELS[name], *common, *extra])
    run_dir, m = trained.run_dir, trained.metrics
    weights = run_dir / "model.safetensors"
    curve = epoch_val_top1(run_dir)
    row = {
        "model": name,
        "top1": m.get("test/acc"),
        "top5": m.get("test/acc_top5"),
        "val_top1": [round(v, 4) for v in curve],
        "largest_val_drop": round(largest_drop(curve, settle), 4),
        **realdev_top1(run_dir, ws),
        "codebook": m.get("codebook"),
        "parameters": m["parameters"],
        "macs": m.get("macs_per_image"),
        "weights_bytes": m.get("weights_bytes"),
        "epochs": m["epochs"],
        "train_s_per_epoch": m["timings"]["train_s"] / max(1, m["epochs"]),
        "latency_ms": latency_ms(weights),
        "int8_onnx_bytes": int8_bytes(weights, run_dir),
        "wall_s": trained.seconds,
        "run_dir": str(run_dir),
    }
    print(json.dumps(row), flush=True)
    return row


def common_overrides(classes: list[str] | None, args: argparse.Namespace) -> list[str]:
    """The overrides every run shares: ``classes`` of the synthetic data, or (``classes``
    None) every class of the ETL files under ``--etl-root``."""
    out = budget(classes, args.epochs, args.seed, args.batch_size)
    if classes is None:
        kept = [f"data.classes='{args.etl_classes}'"] if args.etl_classes else []
        return [f"data={args.etl_data}", f"data.root={args.etl_root}", *kept, *out]
    if args.writers:
        out += [f"data.writers.{family}={args.writers}" for family in FAMILIES]
    return out


def bench(args: argparse.Namespace, ws: Workspace) -> list[dict]:
    classes = None if args.etl_root else evenly(etl9g_classes(), args.classes)
    common = common_overrides(classes, args)
    rows = [train_model(name, [], common, ws, args.settle) for name in args.models]
    reference = next((r for r in rows if r["model"] == "cnn"), None)
    close = [r for r in rows if reference and r is not reference and near(r, reference)]
    if close and not args.one_seed:  # under a point apart: one more seed for it and for the CNN
        again = [f"seed={args.seed + 1}"]
        for row in [reference, *close]:
            second = train_model(row["model"], again, common, ws, args.settle)
            row["top1_second_seed"] = second["top1"]
    return rows


def near(row: dict, reference: dict) -> bool:
    return abs(row["top1"] - reference["top1"]) < 0.01


def zero_shot(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    seen_all, unseen_all = zero_shot_split()
    seen, unseen = seen_all[: args.seen], unseen_all[: args.unseen]  # the CLI check's classes
    common = common_overrides(seen, args)
    row = train_model(args.zero_shot_model, args.zero_shot_set, common, ws)
    data = [f"data.classes='{''.join(unseen)}'"]
    if args.writers:
        data += [f"data.writers.{family}={args.writers}" for family in FAMILIES]
    unseen_spec = f"zero_shot.classes='{''.join(unseen)}'"
    metrics = ws.evaluate(row["run_dir"], ["data=synthetic", *data, unseen_spec])
    zs = metrics["zero_shot"]
    zs["slots_unknown_characters"] = len(zs.pop("unknown_slots"))
    zs["split"], zs["writers_note"] = metrics["split"], metrics["writers_note"]
    known = ws.evaluate(row["run_dir"], ["data=synthetic", *data, unseen_spec, "split=train"])
    zs["training_writers_unseen_only_top1"] = known["zero_shot"]["unseen_only_top1"]
    result = {"seen_classes": len(seen), "seen_test_top1": row["top1"], **zs}
    if TOMOE.is_dir():
        real = ws.evaluate(row["run_dir"], [*stroke_data(TOMOE), unseen_spec])["zero_shot"]
        result["realdev"] = {k: real[k] for k in ("samples", "unseen_only_top1", "top1")}
    return result


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def bench_table(rows: list[dict], setup: str) -> str:
    lines = [
        setup,
        "",
        "| model | top-1 (second seed) | top-5 | real dev top-1 (samples) | parameters | "
        "MACs / image | train s / epoch | latency ms (batch 1, 1 thread) | INT8 ONNX | "
        "largest validation fall | validation top-1 by epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = f"{r['int8_onnx_bytes'] / 1e6:.2f} MB" if r["int8_onnx_bytes"] else "n/a"
        second = f" ({pct(r['top1_second_seed'])})" if "top1_second_seed" in r else ""
        lines.append(
            f"| {r['model']} | {pct(r['top1'])}{second} | {pct(r['top5'])} | "
            f"{pct(r.get('realdev_top1'))} ({r.get('realdev_samples', 0)}) | "
            f"{r['parameters']:,} | {r['macs'] / 1e6:.1f} M | {r['train_s_per_epoch']:.0f} | "
            f"{r['latency_ms']:.2f} | {size} | {validation_fall(r)} | "
            f"{' '.join(f'{v:.3f}' for v in r.get('val_top1', []))} |"
        )
    lines += [codebook_line(r) for r in rows if r.get("codebook")]
    return "\n".join(lines)


def validation_fall(row: dict) -> str:
    """The largest fall of validation top-1 between epochs, in points (rows recorded before it
    was measured: n/a)."""
    drop = row.get("largest_val_drop")
    return "n/a" if drop is None else f"{100 * drop:.1f} pts"


def codebook_line(row: dict) -> str:
    c = row["codebook"]
    return (
        f"\n{row['model']} codebook: {c['slots']:,} slots for {c['classes']:,} classes; "
        f"{c['single_class_slots']:,} slots belong to one class only (a weight row of that class "
        f"under another name), held by {c['classes_with_a_single_class_slot']:,} classes; "
        f"{c['collision_slots']} slots tell apart colliding codes; {c['atomic_classes']} classes "
        "are atomic (KanjiVG cannot split them)."
    )


def zero_shot_table(zs: dict, setup: str) -> str:
    real = zs.get("realdev")
    rows = [
        setup,
        "",
        "| figure | value |",
        "|---|---|",
        f"| seen classes (trained) / their test top-1 | {zs['seen_classes']} / "
        f"{pct(zs['seen_test_top1'])} |",
        f"| unseen classes / samples (split `{zs['split']}`) | {zs['classes']} / {zs['samples']} |",
        f"| unseen top-1 / top-5 among unseen only | {pct(zs['unseen_only_top1'])} / "
        f"{pct(zs['unseen_only_top5'])} (chance {pct(zs['unseen_only_chance_top1'])}) |",
        "| unseen top-1 among unseen only, written by the training writers | "
        f"{pct(zs.get('training_writers_unseen_only_top1'))} |",
        f"| unseen top-1 / top-5 among seen + unseen | {pct(zs['top1'])} / "
        f"{pct(zs['top5'])} (chance {pct(zs['chance_top1'])}) |",
        f"| unseen characters with a slot never trained | {zs['slots_unknown_characters']} |",
    ]
    if real:
        rows.append(
            f"| real dev set: samples of unseen kanji / top-1 among unseen / among all | "
            f"{real['samples']} / {pct(real['unseen_only_top1'])} / {pct(real['top1'])} |"
        )
    return "\n".join([*rows, "", f"Writers: {zs['writers_note']}"])


def merged_with_recorded(args: argparse.Namespace, rows: list[dict], text: str) -> tuple[dict, str]:
    """The recorded table with the rows of ``args.models`` replaced by ``rows``."""
    before = json.loads((RESULTS / f"{args.record}.json").read_text())
    ignored = {"models", "update", "skip", "cache", "zero_shot_record", "zero_shot_model"}
    mine = {k: v for k, v in vars(args).items() if k not in ignored}
    theirs = {k: v for k, v in before["args"].items() if k not in ignored}
    if mine != theirs:
        sys.exit(f"--update: settings differ from the recorded run: {theirs} vs {mine}")
    fresh = {r["model"]: r for r in rows}
    merged = [fresh.pop(r["model"], r) for r in before["rows"]] + list(fresh.values())
    note = f" Rows {', '.join(args.models)} rerun later with `--update`."
    # the recorded table's first paragraph says how it was run
    old_text = before.get("text") or (RESULTS / f"{args.record}.md").read_text().split("\n\n")[0]
    return {"args": before["args"], "rows": merged, "text": old_text + note}, old_text + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1000, help="classes for part 1")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--writers", type=int, help="writers per style family (default: config)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seen", type=int, default=500, help="zero-shot: kanji trained on")
    parser.add_argument("--unseen", type=int, default=200, help="zero-shot: kanji never seen")
    parser.add_argument(
        "--zero-shot-model",
        default="hiercode",  # as experiment=synthetic_hiercode_zeroshot
        choices=[m for m in ALL_MODELS if m.startswith("hiercode")],
        help="part 2: the model trained on the seen kanji",
    )
    parser.add_argument(
        "--zero-shot-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="part 2: a Hydra override added to the model's (repeatable), e.g. "
        "model.optim.label_smoothing=0",
    )
    parser.add_argument(
        "--zero-shot-record",
        default="bench_models_zeroshot",
        help="results name of part 2 (another name keeps the recorded study)",
    )
    parser.add_argument(
        "--record", default="bench_models", help="results name of part 1 (as --zero-shot-record)"
    )
    parser.add_argument(
        "--one-seed",
        action="store_true",
        help="part 1 without the second seeds (a full-scale check, where they double the time)",
    )
    parser.add_argument("--skip", choices=["bench", "zero-shot"], help="run only the other part")
    parser.add_argument(
        "--etl-root",
        type=Path,
        help="part 1 on the ETL-format files under this folder (every class they hold, or "
        "--etl-classes) instead of synthetic data; part 2 is skipped",
    )
    parser.add_argument("--etl-data", default="etl9g", help="the data config of those files")
    parser.add_argument(
        "--etl-classes", help="only these classes of the files (data.classes: hiragana, ...)"
    )
    parser.add_argument(
        "--settle", type=int, default=3, help="epochs left out of the largest validation fall"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads per run (OMP_NUM_THREADS)"
    )
    parser.add_argument("--cache", help="cache folder to reuse (default: a fresh temporary one)")
    parser.add_argument(
        "--update",
        action="store_true",
        help="rerun only --models and replace their rows in the recorded table (the other "
        "settings must match the recorded run)",
    )
    args = parser.parse_args()
    bad = [o for o in args.zero_shot_set if "=" not in o and not o.startswith("~")]  # ~KEY: delete
    if bad:
        parser.error(f"--zero-shot-set {bad[0]}: give KEY=VALUE (a Hydra override)")
    if args.etl_root:
        check_etl_root(parser, args)
    elif args.etl_classes:
        parser.error("--etl-classes needs --etl-root (the synthetic data takes --classes)")
    with workspace(cache=args.cache, threads=args.threads) as ws:
        writers = f"{args.writers} writers per style family" if args.writers else "default writers"
        classes = f"classes `{args.etl_classes}`" if args.etl_classes else "every class they hold"
        data = (
            f"ETL-format files (`data={args.etl_data}`, {classes})"
            if args.etl_root
            else f"Synthetic data, {writers}"
        )
        setup = (
            f"{data}, {args.epochs} epochs each, batch {args.batch_size}, "
            f"seed {args.seed}, {args.threads} CPU thread(s) per run on a {os.cpu_count()}-core "
            "machine; command: `python experiments/bench_models.py "
            f"{shlex.join(sys.argv[1:])}`."
        )
        if args.skip != "bench":
            rows = bench(args, ws)
            spread = f"{args.classes} classes (spread over ETL9G's 3,036). "
            text = setup if args.etl_root else spread + setup
            recorded = {"args": vars(args), "rows": rows, "text": text}
            if args.update:
                recorded, text = merged_with_recorded(args, rows, text)
            record(args.record, recorded, bench_table(recorded["rows"], text))
        if args.skip != "zero-shot":
            zs = zero_shot(args, ws)
            text = (
                f"{args.zero_shot_model}{variant(args.zero_shot_set)} trained on {args.seen} of "
                f"the 2,000 `zeroshot_seen` kanji, scored on {args.unseen} of the 965 "
                f"`zeroshot_unseen` kanji. {setup}"
            )
            result = {"args": vars(args), **zs}
            record(args.zero_shot_record, result, zero_shot_table(zs, text))


def variant(overrides: list[str]) -> str:
    """How part 2's model differs from its row, for the table's text."""
    return f" with {', '.join(f'`{o}`' for o in overrides)}" if overrides else ""


def check_etl_root(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--etl-root`` must be a folder; part 2 (synthetic zero-shot) does not run with it."""
    if not args.etl_root.expanduser().is_dir():
        parser.error(f"--etl-root {args.etl_root}: no such folder (the ETL files' folder)")
    if args.skip == "bench":
        parser.error("--etl-root trains part 1; it cannot be skipped")
    if args.writers:
        parser.error("--writers sets synthetic writers; ETL files have their own")
    args.skip = "zero-shot"
    args.etl_root = str(args.etl_root.expanduser().resolve())  # recorded in the JSON


if __name__ == "__main__":
    main()
