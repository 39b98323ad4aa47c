"""Where the shared normalisation spends its time: each compiled step's cost per ETL9G-like record,
one core, against the budget a decode rate leaves.

Records: ``bench_prepare``'s handwriting-like glyphs in the 128x127 ETL9G cell (4-bit levels,
scanner noise, specks, one cell in six cut from a sheet with its neighbours' fragments). A compiled
harness runs the steps of ``normalize._normalize_batch`` in their order (its images must equal
``normalize_ink``'s, or the script stops) and repeats one step ``--repeat`` times per record; the
step's cost is the extra time over a plain run divided by the extra repeats, best of ``--rounds``.
The budget: ``cores / rate`` seconds per record per core for the whole decode (reading, unpacking
and writing included) at ``--rate`` records per second on every core of this machine.

    python experiments/profile_normalize.py
    python experiments/profile_normalize.py --records 256 --rounds 3    # quick

Writes experiments/results/profile_normalize.json and .md, and its results block in
experiments/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from numba import njit

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.bench_prepare import glyph_bank  # noqa: E402
from experiments.results_io import record, table  # noqa: E402
from kanji_lab.data import normalize as nz
from kanji_lab.data.clutter import _dropped, _line_flags, _pieces, _runs, clean_ink, run_scratch

STEPS = (
    "flatten (step 0)",
    "contrast: paper and ink level",
    "stretch and mask",
    "clutter: ruled lines",
    "clutter: runs and pieces",
    "clutter: masses and boxes",
    "clutter: suspects",
    "box (step 3)",
    "line width and thickening",
    "linear resample",
    "linear frame's mask",
    "line density",
    "density resample (step 5)",
    "store",
)


@njit
def _harness(images, out, p, rank, scratch, which, repeat):  # pragma: no cover - compiled
    """``normalize._normalize_batch`` (density on) with step ``which`` (1-based, :data:`STEPS`;
    0: none) run ``repeat`` times per record."""
    height, width = images.shape[1:]
    ink = np.empty((height, width), np.float32)
    mask = np.empty((height, width), np.bool_)
    inked = np.empty(out.shape[1:], np.bool_)
    flat = np.zeros(0)
    size = out.shape[1]
    for i in range(len(images)):
        for _ in range(repeat if which == 1 else 1):
            image = nz._flatten(images[i], p.flatten)
        for _ in range(repeat if which == 2 else 1):
            paper, gain = nz._contrast(image, rank, p.peak_floor)
        for _ in range(repeat if which == 3 else 1):
            nz._stretch(image, paper, gain, p.limit, ink, mask)
        for _ in range(repeat - 1 if which == 4 else 0):  # (read-only parts of clean_ink)
            _line_flags(mask, p.clutter)
        for _ in range(repeat - 1 if which == 5 else 0):
            run_row, run_first, run_last, piece, count, scratch = _runs(mask, scratch)
        for _ in range(repeat - 1 if which in (6, 7) else 0):
            run_row, run_first, run_last, piece, count, scratch = _runs(mask, scratch)
            if count > 1:
                mass, boxes = _pieces(ink, run_row, run_first, run_last, piece, count)
                if which == 7:
                    _dropped(mass, boxes, run_row, run_first, run_last, piece, height, width,
                             p.clutter)  # fmt: skip
        scratch = clean_ink(ink, mask, p.clutter, scratch)
        for _ in range(repeat if which == 8 else 1):
            box = nz._ink_box(ink, mask, p.trim, p.frame_sd, p.frame_cap)
        side = nz._frame_side(box, p.margin)
        for _ in range(repeat if which == 9 else 1):
            thick = nz._thicken(ink, mask, side / size, p.min_width)
        for _ in range(repeat if which == 10 else 1):
            shown = nz._resample(thick, box, side, size, flat, flat, 0.0)
        for _ in range(repeat if which == 11 else 1):
            nz._over_half(shown, inked)
        for _ in range(repeat if which == 12 else 1):
            rows, cols = nz._gap_profiles(inked)
        for _ in range(repeat if which == 13 else 1):
            final = nz._resample(thick, box, side, size, rows, cols, p.density)
        for _ in range(repeat if which == 14 else 1):
            nz._store(final, out[i])


def normalised(images: np.ndarray, which: int = 0, repeat: int = 1) -> np.ndarray:
    """The harness's images of ``images`` (step ``which`` run ``repeat`` times per record)."""
    s = nz.SETTINGS
    out = np.empty((len(images), int(s["size"]), int(s["size"])), np.uint8)
    params, rank = nz._Params.of(s), nz._peak_rank(images, s)
    _harness(images, out, params, rank, run_scratch(*images.shape[1:]), which, repeat)
    return out


def seconds(images: np.ndarray, which: int, repeat: int, rounds: int) -> float:
    """Best of ``rounds`` harness runs over ``images``, in seconds."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        normalised(images, which, repeat)
        best = min(best, time.perf_counter() - t0)
    return best


def check(images: np.ndarray) -> None:
    """The harness draws what ``normalize_ink`` draws, or this profile is not of it."""
    if not np.array_equal(normalised(images), nz.normalize_ink(images)):
        sys.exit("profile_normalize: the harness no longer follows normalize._normalize_batch")


def profile(images: np.ndarray, repeat: int, rounds: int) -> dict[str, float]:
    """Microseconds per record: the whole normalisation and each step."""
    n = len(images)
    seconds(images[:2], 0, 1, 1)  # compiled untimed
    plain = seconds(images, 0, 1, rounds)
    costs = {"all steps (the harness)": plain / n * 1e6}
    cumulative = 0.0  # steps 5..7 repeat the clutter's parts up to theirs
    for which, name in enumerate(STEPS, 1):
        extra = max(seconds(images, which, repeat, rounds) - plain, 0.0) / (repeat - 1) / n * 1e6
        costs[name] = max(extra - cumulative, 0.0) if which in (6, 7) else extra
        cumulative = extra if which in (5, 6) else 0.0
    t0 = time.perf_counter()
    for _ in range(rounds):
        nz.normalize_ink(images)
    costs["normalize_ink (for comparison)"] = (time.perf_counter() - t0) / rounds / n * 1e6
    return costs


def markdown(r: dict) -> str:
    steps = {k: v for k, v in r["us_per_record"].items() if k in STEPS}
    rows = [(name, f"{us:.1f} us") for name, us in r["us_per_record"].items()]
    rows.append(("sum of the steps", f"{sum(steps.values()):.1f} us"))
    rows.append(
        (
            f"budget for {r['rate']:,} records/s on {r['cores']} cores, whole decode",
            f"{r['budget_us']:.1f} us per record per core",
        )
    )
    return (
        f"The normalisation per ETL9G-like record, one core, {r['records']:,} records "
        f"(`{r['command']}`; a step's cost is its extra time when repeated):\n\n"
        + table(rows, ("step", "per record"))
        + f"\n\nLoad average (1 min) {r['load_average'][0]:.1f} at the start, "
        f"{r['load_average'][1]:.1f} at the end."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5, help="runs of the step timed")
    parser.add_argument("--rounds", type=int, default=7, help="best of this many")
    parser.add_argument("--rate", type=int, default=60_000, help="records/s the budget is for")
    args = parser.parse_args()
    if args.repeat < 2:
        parser.error("--repeat must be at least 2")
    start = os.getloadavg()[0]
    images = glyph_bank(args.records) * np.uint8(17)  # 4-bit levels -> 0..255, as etl does
    check(images)
    costs = profile(images, args.repeat, args.rounds)
    cores = os.cpu_count() or 1
    result = {
        "command": " ".join(["python", "experiments/profile_normalize.py", *sys.argv[1:]]),
        "records": len(images),
        "us_per_record": costs,
        "rate": args.rate,
        "cores": cores,
        "budget_us": cores / args.rate * 1e6,
        "load_average": [start, os.getloadavg()[0]],
    }
    print(markdown(result))
    record("profile_normalize", result, markdown(result))


if __name__ == "__main__":
    main()
