"""Benchmark ETL9G decoding: the per-record struct + PIL loop, the previous normalisation and
today's, in this process on one core and as the whole `python -m kanji_lab.prepare` command.

Generates an ETL9G-format file set (607,200 records, 5 GB by default; --records N for a quick run)
under --workdir (never the repository) from handwriting-like glyphs: KanjiVG characters drawn with
pens of several widths, placed off centre in the 128x127 sheet cell at 4-bit depth with the
G-type scanner noise, specks, and in one cell in six the fragments of neighbouring cells and a grid
cut in with it (kanji_lab.data.forms.cut_cells). No real ETL bytes. Then measures:
  1. the per-record struct.unpack + PIL decode/pad/resize loop (records/s, one core);
  2. decode + normalisation in this process, one core, with the previous normalisation (its
     normalize.py and clutter.py read from git at --old-commit into a temporary module, after
     today's unpacking of the records) and with today's, on the same records in alternating
     blocks (so a load change hits both alike), and the largest difference between their images
     in grey levels;
  3. the whole `python -m kanji_lab.prepare data=etl9g` command (start-up included), wall time and
     peak memory (ru_maxrss of the command's process and its workers), with 1 worker and with
     every core;
     with --old-prepare also with the previous normalisation patched in (minutes at full size).
Times are ratios to figures taken in the same run: the machine may be shared, the load average
is printed (and recorded) before and after. Writes experiments/results/bench_prepare.json.

    python experiments/bench_prepare.py --records 60720        # quick
    python experiments/bench_prepare.py --old-prepare          # full size (5 GB in --workdir)
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.etl_files import jis_codes, pack4, to_levels, write_etl9g  # noqa: E402
from experiments.results_io import ROOT as REPO  # noqa: E402
from experiments.results_io import record, table  # noqa: E402
from kanji_lab.data import etl
from kanji_lab.data.charsets import etl9g_classes
from kanji_lab.data.forms import cut_cells
from kanji_lab.data.kanjivg import load_strokes
from kanji_lab.data.normalize import SETTINGS, draw_strokes, linear, normalize_ink

FULL = 607_200
PER_FILE = 12_144
G9_STRUCT = ">2H8sI4B4H2B34x8128s7x"
BANK = 1024  # distinct glyph records, repeated through the files
# the last commit with the numpy normalisation (before the compiled per-image loops)
OLD_COMMIT = "456ae402e2b632cceaaca3c7bfe6c80d5f554efc"


# ---------------------------------------------------------------- data


def glyph_bank(count: int = BANK, seed: int = 0) -> np.ndarray:
    """``count`` raw 127x128 4-bit level images (0 = paper) of handwriting-like glyphs."""
    rng = np.random.default_rng(seed)
    classes = etl9g_classes()
    drawings = []
    for index in rng.choice(len(classes), count, replace=False):
        char = load_strokes(classes[index])
        strokes = [char.points[a:b] for a, b in zip(char.starts, char.ends, strict=True)]
        drawings.append(draw_strokes(strokes, {**SETTINGS, "pen": rng.uniform(0.025, 0.065)}))
    levels = np.stack([to_levels(_in_cell(d, rng), rng) for d in drawings])
    # one cell in six cut from a sheet with its neighbours' fragments (and a grid, at times)
    glyphs = normalize_ink(np.stack([_in_cell(d, rng) for d in drawings[:64]]), settings=linear())
    for i in range(0, count, 6):
        cell = cut_cells(glyphs[rng.permutation(len(glyphs))[:2]], rng)[0]
        cell = np.asarray(Image.fromarray(cell).resize((128, 127), Image.Resampling.BILINEAR))
        levels[i] = to_levels(cell, rng)
    return levels


def _in_cell(drawing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The drawing at 50..90% of a 127x128 cell, off centre by up to 10% of the side."""
    scale = rng.uniform(0.5, 0.9) * 127 / max(drawing.shape)
    shape = (max(1, round(drawing.shape[1] * scale)), max(1, round(drawing.shape[0] * scale)))
    small = np.asarray(Image.fromarray(drawing).resize(shape, Image.Resampling.BOX))
    cell = np.zeros((127, 128), np.uint8)
    y = int(np.clip((127 - small.shape[0]) // 2 + rng.integers(-12, 13), 0, 127 - small.shape[0]))
    x = int(np.clip((128 - small.shape[1]) // 2 + rng.integers(-12, 13), 0, 128 - small.shape[1]))
    cell[y : y + small.shape[0], x : x + small.shape[1]] = small
    return cell


def generate(folder: Path, records: int) -> list[Path]:
    """ETL9G_01.. files of up to 12,144 records each (4 writers x 3,036 characters)."""
    bank, codes = pack4(glyph_bank()), jis_codes(etl9g_classes())
    paths = []
    for f, start in enumerate(range(0, records, PER_FILE)):
        index = np.arange(start, min(start + PER_FILE, records))
        sheets = index // 152 + 1  # 20 sheets per writer of 3,036 characters
        path = folder / f"ETL9G_{f + 1:02d}"
        images, labels = bank[index % len(bank)], codes[index % len(codes)]
        paths.append(write_etl9g(path, images, sheets, labels, first_serial=start + 1))
    return paths


# ---------------------------------------------------------------- the three implementations


def baseline_image(record: bytes) -> np.ndarray:
    """The classic loop body: struct.unpack, PIL 4-bit decode, invert, pad, resize."""
    fields = struct.unpack(G9_STRUCT, record)
    img = Image.frombytes("F", (128, 127), fields[14], "bit", 4).convert("L")
    img = img.point(lambda v: v * 17)
    square = Image.new("L", (128, 128), 0)
    square.paste(img, (0, 0))
    return np.asarray(square.resize((64, 64), Image.BOX), dtype=np.uint8)


def bench_baseline(path: Path, count: int) -> float:
    """Seconds per record of the per-record baseline (including the file read)."""
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        out = [baseline_image(fh.read(8199)) for _ in range(count)]
    assert len(out) == count
    return (time.perf_counter() - t0) / count


def old_module(commit: str, folder: Path) -> ModuleType:
    """The normalisation as of ``commit`` (normalize.py and clutter.py), importable as
    ``old_normalize`` from ``folder``."""

    def show(path: str) -> str:
        done = subprocess.run(
            ["git", "show", f"{commit}:{path}"], cwd=REPO, capture_output=True, text=True
        )
        if done.returncode:
            sys.exit(f"git show {commit}:{path} failed: {done.stderr.strip()}")
        return done.stdout

    (folder / "old_clutter.py").write_text(show("kanji_lab/data/clutter.py"))
    source = show("kanji_lab/data/normalize.py")
    (folder / "old_normalize.py").write_text(
        source.replace("from kanji_lab.data.clutter import", "from old_clutter import")
    )
    for name in ("old_clutter", "old_normalize"):  # old_normalize imports old_clutter
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules["old_normalize"]


def old_decode(pixels: np.ndarray, layout: etl.Layout, old: ModuleType) -> np.ndarray:
    """Today's unpacking with the previous normalisation: the comparison isolates the latter."""
    return old.normalize_ink(etl.unpack_levels(pixels, layout, 255 // layout.max_level))


def bench_in_process(path: Path, count: int, old: ModuleType) -> dict[str, float]:
    """Decode + normalise the first ``count`` records of ``path`` both ways, one core, in
    alternating blocks of 512; their largest difference in grey levels."""
    records = etl.read_file(path, "ETL9G")
    pixels = np.ascontiguousarray(records.pixels[:count])
    layout = records.part.layout
    old_decode(pixels[:8], layout, old)  # compiled code (a baseline from git) is compiled untimed
    etl.decode_images(pixels[:8], layout)
    seconds = {"old": 0.0, "new": 0.0}
    differ = largest = 0
    for start in range(0, len(pixels), 512):
        block = pixels[start : start + 512]
        t0 = time.perf_counter()
        before = old_decode(block, layout, old)
        t1 = time.perf_counter()
        after = etl.decode_images(block, layout)
        t2 = time.perf_counter()
        seconds["old"] += t1 - t0
        seconds["new"] += t2 - t1
        gap = np.abs(before.astype(np.int16) - after).reshape(len(block), -1).max(axis=1)
        differ += int(np.count_nonzero(gap))
        largest = max(largest, int(gap.max()))
    return {
        "records": len(pixels),
        "old_records_per_s": len(pixels) / seconds["old"],
        "new_records_per_s": len(pixels) / seconds["new"],
        "max_grey_level_difference": largest,
        "images_that_differ": differ,
    }


# shim: `python -m kanji_lab.prepare` with the previous normalisation patched into the readers
OLD_PREPARE = """
import sys
sys.path.insert(0, {folder!r})
import old_normalize
from kanji_lab.data import etl
etl.normalize_ink = old_normalize.normalize_ink  # what etl.decode_images calls
from kanji_lab import prepare
sys.argv = ["prepare", *{args!r}]
prepare.main()
"""


def run_prepare(
    root: Path, cache_dir: Path, workers: int, old_folder: Path | None = None
) -> dict[str, float]:
    """Wall time and peak RSS of the whole prepare command (fresh cache)."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    args = [
        "data=etl9g", f"data.root={root}", f"paths.cache_dir={cache_dir}",
        f"data.workers={workers}", "progress=false", f"hydra.run.dir={cache_dir.parent / 'run'}",
    ]  # fmt: skip
    if old_folder is None:
        cmd = [sys.executable, "-m", "kanji_lab.prepare", *args]
    else:
        cmd = [sys.executable, "-c", OLD_PREPARE.format(folder=str(old_folder), args=args)]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        # this child's own usage: the largest resident set of it and the workers it waited for
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            log.seek(0)
            sys.exit(f"{' '.join(cmd[:3])} failed:\n{log.read()[-6000:].decode(errors='replace')}")
    return {
        "implementation": "previous" if old_folder else "new",
        "workers": workers,
        "wall_s": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


# ---------------------------------------------------------------- report


def _markdown(r: dict) -> str:
    n, c, loop = r["records"], r["in_process"], r["baseline"]["records_per_s"]
    rows = [
        ("per-record struct + PIL loop, one core", f"{loop:,.0f} records/s"),
        ("today's decode + previous normalisation, one core",
         f"{c['old_records_per_s']:,.0f} records/s"),
        ("today's decode + new normalisation, one core",
         f"{c['new_records_per_s']:,.0f} records/s ({r['ratios']['new_vs_old_one_core']:.1f}x the "
         f"previous, {r['ratios']['new_vs_loop_one_core']:.2f}x the loop)"),
        ("largest difference new vs previous",
         f"{c['max_grey_level_difference']} grey level(s), {c['images_that_differ']} of "
         f"{c['records']:,} images differ"),
        *[
            (f"`prepare` ({p['implementation']}), workers={p['workers']} (0 = all cores)",
             f"{p['wall_s']:.1f} s = {n / p['wall_s']:,.0f} records/s "
             f"({n / p['wall_s'] / loop:.2f}x the loop), "
             f"peak RSS {p['peak_rss_mib']:,.0f} MiB")
            for p in r["prepare"]
        ],
        ("load average before / after", f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}"),
    ]  # fmt: skip
    size = f"{n:,} records, {r['bytes'] / 1e9:.2f} GB"
    return (
        f"ETL9G-format synthetic files ({size}) on {r['cpu_count']} cores, `{r['command']}`:\n\n"
        + table(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=FULL, help="records to generate")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kanji_lab_bench"))
    parser.add_argument("--baseline-records", type=int, default=3000)
    parser.add_argument(
        "--compare-records", type=int, default=6072, help="records decoded both ways in-process"
    )
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    parser.add_argument(
        "--old-prepare", action="store_true", help="also time the whole command, previous code"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    load_before = os.getloadavg()
    print(f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    root, cache_dir = args.workdir / "etl", args.workdir / "cache"
    t0 = time.perf_counter()
    paths = generate(root / "ETL9G", args.records)
    gen_s = time.perf_counter() - t0
    print(f"generated {args.records:,} records in {len(paths)} files in {gen_s:.1f} s")
    n_base = min(args.baseline_records, args.records)
    loop_rate = 1 / bench_baseline(paths[0], n_base)
    print(f"baseline struct+PIL loop, one core: {loop_rate:,.0f} records/s ({n_base:,} records)")
    with tempfile.TemporaryDirectory() as tmp:
        old = old_module(args.old_commit, Path(tmp))
        compared = bench_in_process(paths[0], min(args.compare_records, PER_FILE), old)
        print(
            f"decode + normalisation, one core, {compared['records']:,} records: previous "
            f"{compared['old_records_per_s']:,.0f} records/s, new "
            f"{compared['new_records_per_s']:,.0f} records/s "
            f"({compared['new_records_per_s'] / compared['old_records_per_s']:.1f}x); largest "
            f"difference {compared['max_grey_level_difference']} grey level(s) "
            f"({compared['images_that_differ']} images differ)"
        )
        prepares = [run_prepare(root, cache_dir, w) for w in (1, 0)]
        if args.old_prepare:
            prepares.append(run_prepare(root, cache_dir, 0, Path(tmp)))
    for p in prepares:
        rate = args.records / p["wall_s"]
        print(f"prepare ({p['implementation']}) workers={p['workers']}: {p['wall_s']:.1f} s "
              f"({rate:,.0f} records/s, {rate / loop_rate:.2f}x the loop), "
              f"peak RSS {p['peak_rss_mib']:,.0f} MiB")  # fmt: skip
    load_after = os.getloadavg()
    print(f"load average {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    new_all = next(p for p in prepares if p["implementation"] == "new" and p["workers"] == 0)
    old_all = [p for p in prepares if p["implementation"] == "previous"]
    ratios = {
        "new_vs_old_one_core": compared["new_records_per_s"] / compared["old_records_per_s"],
        "new_vs_loop_one_core": compared["new_records_per_s"] / loop_rate,
        "old_vs_loop_one_core": compared["old_records_per_s"] / loop_rate,
        "prepare_all_cores_vs_loop": args.records / new_all["wall_s"] / loop_rate,
    }
    if old_all:
        ratios["prepare_new_vs_old_all_cores"] = old_all[0]["wall_s"] / new_all["wall_s"]
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "records": args.records,
        "files": len(paths),
        "bytes": sum(p.stat().st_size for p in paths),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_before": list(load_before),
        "load_after": list(load_after),
        "old_commit": args.old_commit,
        "generate_s": gen_s,
        "baseline": {"records_timed": n_base, "records_per_s": loop_rate},
        "in_process": compared,
        "prepare": prepares,
        "ratios": ratios,
    }
    record("bench_prepare", result, _markdown(result))
    print("wrote experiments/results/bench_prepare.json")
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
