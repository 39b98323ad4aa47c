"""Clutter removal measured without training a model.

Each Tomoe character of the development set is written in a cell of a sheet and cut out with its
neighbours and the sheet's grid (the ``cells`` set, :func:`kanji_lab.data.forms.cut_cell_pairs`),
and the same cut of the character alone; both are normalised, and a cell whose input overlaps the
alone one's by under half (intersection over union of the pixels above a quarter of full ink) is
a cell that the clutter step failed. Against that, how many clean inputs the settings change
from the defaults': Tomoe's drawings (the strokes drawn as ``strokes_input`` draws them) and
the same strokes drawn thin anywhere on a large pad (the ``pad`` set). A rule that fixes cells by
damaging clean writing shows up in the second pair of columns. Writes
experiments/results/clutter_fidelity.json and its block in experiments/README.md.

    python experiments/clutter_fidelity.py                                   # the defaults
    python experiments/clutter_fidelity.py --variant clutter_bar=0 --variant clutter_band=0.16
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments import realsets  # noqa: E402
from experiments.results_io import record  # noqa: E402
from kanji_lab.data.forms import cut_cell_pairs
from kanji_lab.data.normalize import SETTINGS, draw_strokes, normalize_ink

INK = 64  # a pixel counts as ink above this level of the normalised input


def variant(text: str) -> dict[str, float]:
    """``KEY=VALUE[,KEY=VALUE...]`` -> settings that differ from the defaults."""
    out = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq or key not in SETTINGS:
            raise argparse.ArgumentTypeError(
                f"{part!r}: give KEY=VALUE with KEY one of the normalisation's settings "
                f"({', '.join(sorted(SETTINGS))})"
            )
        out[key] = float(value)
    return out


def spelled(change: dict[str, float], sep: str) -> str:
    return sep.join(f"{k}={v:g}" for k, v in change.items())


def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair of normalised inputs: intersection over union of their ink."""
    ink_a, ink_b = a > INK, b > INK
    return (ink_a & ink_b).sum((1, 2)) / np.maximum((ink_a | ink_b).sum((1, 2)), 1)


def normalised(images: list[np.ndarray], settings: dict[str, float]) -> np.ndarray:
    return np.stack([normalize_ink(image, settings=settings) for image in images])


def changed(images: list[np.ndarray], settings: dict[str, float], base: np.ndarray) -> int:
    """How many of ``images`` normalise differently (by over a grey level) from ``base``."""
    diff = np.abs(normalised(images, settings).astype(int) - base).max(axis=(1, 2))
    return int((diff > 1).sum())


def measure(changes: list[dict[str, float]]) -> dict[str, Any]:
    traces = realsets.tomoe_traces()
    glyphs = realsets.sheet_glyphs(traces)
    pairs = cut_cell_pairs(glyphs, np.random.default_rng(0))  # the cells set's layout
    drawings = [draw_strokes(t.strokes) for t in traces]
    with tempfile.TemporaryDirectory() as tmp:
        folder = realsets.make_pad_folder(Path(tmp) / "pad")
        pads = [255 - np.asarray(Image.open(p).convert("L")) for p in sorted(folder.glob("*.png"))]
    clean = [{"images": drawings}, {"images": pads}]
    for group in clean:
        group["base"] = normalised(group["images"], SETTINGS).astype(int)
    rows = []
    for change in [{}, *changes]:
        settings = {**SETTINGS, **change}
        iou = overlap(normalised([c for c, _ in pairs], settings),
                      normalised([a for _, a in pairs], settings))  # fmt: skip
        rows.append({
            "change": change,
            "cells": len(pairs),
            "cells_iou_under_half": int((iou < 0.5).sum()),
            "cells_iou_under_0_9": int((iou < 0.9).sum()),
            "cells_mean_iou": float(iou.mean()),
            "drawings_changed": changed(drawings, settings, clean[0]["base"]),
            "pad_changed": changed(pads, settings, clean[1]["base"]),
        })  # fmt: skip
        print(rows[-1], flush=True)
    return {"drawings": len(drawings), "pad": len(pads), "rows": rows}


def markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        f"Clutter removal without training (`{command}`): the {result['rows'][0]['cells']:,} "
        "Tomoe cells cut with their neighbours, normalised, against the same cut of the "
        f"character alone; clean inputs changed from the defaults' reading: Tomoe's "
        f"{result['drawings']:,} drawings and the {result['pad']:,} pad images.",
        "",
        "| settings | cells overlapping the character alone by under half | under 0.9 | mean "
        "overlap | drawings changed | pad images changed |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        name = spelled(row["change"], ", ") or "defaults"
        lines.append(
            f"| {name} | {row['cells_iou_under_half']} | {row['cells_iou_under_0_9']} | "
            f"{row['cells_mean_iou']:.4f} | {row['drawings_changed']} | {row['pad_changed']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant", type=variant, action="append", default=[], metavar="KEY=VALUE[,...]",
        help="a row with these settings changed (repeatable), e.g. clutter_bar=0",
    )  # fmt: skip
    parser.add_argument("--record", default="clutter_fidelity", help="results name")
    args = parser.parse_args()
    result = measure(args.variant)
    command = "python experiments/clutter_fidelity.py" + "".join(
        f" --variant {spelled(change, ',')}" for change in args.variant
    )
    text = markdown(result, command)
    record(args.record, result, text)
    print(text)


if __name__ == "__main__":
    main()
