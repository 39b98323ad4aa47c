"""Ship a trained run's INT8 model inside the package: copy ``model.int8.onnx`` into
``kanji_lab/shipped/`` and write its registry entry with what was measured of it.

The figures come from the run itself (its ``metrics.json``: test split of the data it trained on)
and from ``experiments/results/<--results>.json`` when that file measured the same run
(``experiments/default_run.py --keep``: real writing of the development set, which was never
trained on; the recipe's command). Nothing is typed by hand.

    python experiments/ship_model.py --run-dir /tmp/kl_default/runs/<run> --name kanji-combined
    python experiments/ship_model.py --run-dir DIR/runs/<run> --name kanji-combined \
        --results shipped_run      # the run of experiment=shipped
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.results_io import RESULTS, provenance  # noqa: E402
from kanji_lab.inference import INT8_FILE, open_onnx  # noqa: E402
from kanji_lab.recognizer import REGISTRY  # noqa: E402

MAX_BYTES = 2_000_000  # every committed file stays under 2 MB


def entry(run_dir: Path, name: str, description: str, results: str = "default_run") -> dict:
    """The registry entry of ``run_dir``'s INT8 model, shipped as ``<name>.int8.onnx``, with the
    figures of ``results/<results>.json`` where that measured this run."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    labels = open_onnx(run_dir / INT8_FILE).labels
    measured = {
        "data": metrics["data"],
        "test_top1": metrics.get("test/acc"),
        "test_top5": metrics.get("test/acc_top5"),
        "epochs": metrics["epochs"],
        "parameters": metrics["parameters"],
    }
    commit = provenance()["commit"]
    recipe = "python -m kanji_lab"
    timed = RESULTS / f"{results}.json"
    recorded = json.loads(timed.read_text()) if timed.is_file() else {}
    if recorded.get("run_dir") == str(run_dir):  # the recipe's timed run, on real writing
        measured["real_writing_top1"] = {k: v["top1"] for k, v in recorded["real_writing"].items()}
        measured["top1_per_script"] = recorded.get("top1_per_script")
        commit, recipe = recorded["measured"]["commit"], recorded["command"].strip()
    return {
        "name": name,
        "file": f"{name}.int8.onnx",
        "classes": len(labels),
        "description": description,
        "recipe": recipe,
        "commit": commit,
        "metrics": measured,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path, help="a finished training run")
    parser.add_argument("--name", required=True, help="the shipped model's name")
    parser.add_argument(
        "--description", help="one line on what it reads (default: the replaced entry's)"
    )
    parser.add_argument(
        "--results", default="default_run", help="the default_run.py --record that timed the run"
    )
    args = parser.parse_args()
    source = args.run_dir / INT8_FILE
    if source.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{source} is {source.stat().st_size:,} bytes, over {MAX_BYTES:,}")
    registry = json.loads(REGISTRY.read_text(encoding="utf-8"))
    replaced = next((m for m in registry["models"] if m["name"] == args.name), {})
    description = replaced.get("description", "") if args.description is None else args.description
    new = entry(args.run_dir, args.name, description, args.results)
    shutil.copyfile(source, REGISTRY.parent / new["file"])
    registry["models"] = [new, *(m for m in registry["models"] if m["name"] != args.name)]
    REGISTRY.write_text(json.dumps(registry, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(json.dumps(new, ensure_ascii=False, indent=2))
    print(f"shipped {new['file']} in {REGISTRY.parent}")


if __name__ == "__main__":
    main()
