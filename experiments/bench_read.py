"""Reading a folder of image files: images per second of ``Recognizer.read_many`` (file decode,
normalisation and the INT8 model counted), on one core and on all of them, for the shipped model
or a run's.

The images are glyphs of the model's own classes written as PNG files (a pip font through the
synthetic generator's print writer), so the figure is that of real files on disk. The model-only
rate in the same run is the baseline the ratios compare with. Also timed: a new process's first
read, once with numba's compiled-code cache empty (the normalisation compiles: what the first
use after installing costs) and once with it filled.

    python experiments/bench_read.py                       # the shipped model, 2,000 images
    python experiments/bench_read.py --model outputs/train/runs/<run> --images 5000

Writes experiments/results/bench_read.json and .md, and its results block in experiments/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.results_io import record, table  # noqa: E402
from kanji_lab.inference import model_batch, open_onnx  # noqa: E402
from kanji_lab.recognizer import Recognizer  # noqa: E402


def write_images(folder: Path, labels: list[str], n: int) -> list[Path]:
    """``n`` PNG files of dark glyphs on white, cycling through ``labels``."""
    from kanji_lab.data.synthetic import fonts

    font = fonts.resolve_font("pylopdf_fonts_cjk", "NotoSansJP-Regular.otf")
    paths = []
    for i in range(n):
        glyph = fonts.glyph_image(str(font), labels[i % len(labels)], 3)
        if glyph is None:
            continue
        path = folder / f"{i:05d}.png"
        Image.fromarray(255 - np.asarray(glyph, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def rate(rec: Recognizer, paths: list[Path], batch: int) -> float:
    start = time.perf_counter()
    readings = rec.read_many(paths, batch_size=batch)
    seconds = time.perf_counter() - start
    if any(r.error for r in readings):
        raise SystemExit(f"an image failed: {next(r.error for r in readings if r.error)}")
    return len(paths) / seconds


def model_rate(model: Path, threads: int, n: int, batch: int) -> float:
    """The model alone on ready inputs (no file decode, no normalisation): the baseline."""
    onnx = open_onnx(model, threads)
    inputs = model_batch(np.zeros((batch, 64, 64), np.uint8), onnx.value_range)
    rounds = max(1, n // batch)
    start = time.perf_counter()
    for _ in range(rounds):
        onnx.logits(inputs)
    return rounds * batch / (time.perf_counter() - start)


# a new process's first read (of the model ``sys.argv[1]``, "" for the shipped one)
FIRST_READ = """
import sys, time
import numpy as np
from kanji_lab import Recognizer
rec = Recognizer(sys.argv[1] or None)
image = np.zeros((48, 48), np.uint8)
image[8:40, 22:26] = 255
start = time.perf_counter()
rec.read(image)
print(time.perf_counter() - start)
"""


def first_read(model: str | None, cache: Path) -> float:
    """Seconds of a new process's first read with numba's cache in ``cache`` (an empty folder:
    the normalisation compiles; a filled one: it loads)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", FIRST_READ, model or ""],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"first read failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a run directory or .onnx file (default: the shipped one)")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows, result = [], {"images": args.images, "batch_size": args.batch_size, "cores": cores}
    with tempfile.TemporaryDirectory() as tmp:
        labels = Recognizer(args.model).labels
        paths = write_images(Path(tmp), labels, args.images)
        for threads in (1, cores):
            rec = Recognizer(args.model, threads=threads)
            rate(rec, paths[: args.batch_size], args.batch_size)  # warm-up
            files = rate(rec, paths, args.batch_size)
            model = model_rate(rec.path, threads, len(paths), args.batch_size)
            result[f"threads_{threads}"] = {"files_per_s": files, "model_per_s": model}
            rows.append((f"{threads} thread(s): files read / model alone", f"{files:,.0f} / "
                         f"{model:,.0f} images/s ({files / model:.2f}x)"))  # fmt: skip
        result["model"] = str(rec.path.name)
        cold = first_read(args.model, Path(tmp) / "numba")
        warm = first_read(args.model, Path(tmp) / "numba")
        result["first_read_s"] = {"compiling": cold, "cached": warm}
        rows.append(("a new process's first read: compiling the normalisation (once per "
                     "install) / from numba's cache", f"{cold:.1f} s / {warm:.2f} s"))  # fmt: skip
    text = (
        f"`Recognizer.read_many` on {len(paths):,} PNG files ({result['model']}, batch "
        f"{args.batch_size}; decode, normalisation and model counted), this machine ({cores} "
        f"cores), `python experiments/bench_read.py`:\n\n" + table(rows)
    )
    record("bench_read", result, text)
    print(text)


if __name__ == "__main__":
    main()
