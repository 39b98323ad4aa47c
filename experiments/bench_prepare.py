"""Benchmark ETL9G decoding: vectorised readers and `prepare` vs a per-record struct + PIL loop.

Generates an ETL9G-format file set (607,200 records, 5 GB by default; --records N for a quick run)
under --workdir (never the repository), then measures:
  1. decode + resize alone, one core, in this process (records/s);
  2. the whole `python -m kanji_lab.prepare data=etl9g` command (start-up included), wall time and
     peak memory (ru_maxrss of the largest child process);
  3. the per-record struct.unpack + PIL decode/pad/resize baseline on a subset, extrapolated.
Writes experiments/results/bench_prepare.json.

    python experiments/bench_prepare.py --records 60720        # quick
    python experiments/bench_prepare.py                        # full size (5 GB in --workdir)
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from kanji_lab.data import etl
from kanji_lab.data.charsets import etl9g_classes

sys.path.insert(0, str(Path(__file__).parent))
from results_io import ROOT as REPO  # noqa: E402
from results_io import record, table  # noqa: E402

FULL = 607_200
PER_FILE = 12_144
G9_STRUCT = ">2H8sI4B4H2B34x8128s7x"


def glyph_bank(count: int, seed: int = 0) -> np.ndarray:
    """``count`` packed 128x127 4-bit images: scanner noise plus a few ink strokes."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, 3, (count, 127, 128), dtype=np.uint8)
    for i in range(count):
        r, c = rng.integers(10, 90, 2)
        levels[i, r : r + 30, c : c + 4] = 15
        levels[i, 40:44, 20 + i % 30 : 100] = 12
    return (levels[..., 0::2] << 4 | levels[..., 1::2]).reshape(count, -1)


def jis_codes() -> np.ndarray:
    """The 3,036 ETL9G JIS X 0208 codes, from the class list through EUC-JP."""
    return np.array(
        [int.from_bytes(c.encode("euc_jp"), "big") & 0x7F7F for c in etl9g_classes()], np.uint16
    )


def generate(folder: Path, records: int) -> list[Path]:
    """ETL9G_01.. files of up to 12,144 records each (4 writers x 3,036 characters)."""
    folder.mkdir(parents=True, exist_ok=True)
    layout, bank, codes = etl.LAYOUTS["G9"], glyph_bank(256), jis_codes()
    paths = []
    for f, start in enumerate(range(0, records, PER_FILE)):
        index = np.arange(start, min(start + PER_FILE, records))
        raw = np.zeros((len(index), layout.record_length), np.uint8)
        header = raw.reshape(-1).view(layout.header_dtype)
        header["sheet"] = index // 152 + 1  # 20 sheets per writer of 3,036 characters
        header["jis"] = codes[index % len(codes)]
        header["reading"] = b"A.TSUGU "
        header["serial"] = index + 1
        header["gathered"], header["scanned"] = 8212, 8310
        raw[:, 64 : 64 + 8128] = bank[index % len(bank)]
        path = folder / f"ETL9G_{f + 1:02d}"
        raw.tofile(path)
        paths.append(path)
    return paths


def bench_decode(paths: list[Path], limit: int) -> dict[str, float]:
    """Decode + resize alone on one core (file already read), and read + decode."""
    decode_s = total_s = 0.0
    count = 0
    for path in paths:
        t0 = time.perf_counter()
        records = etl.read_file(path, "ETL9G")
        t1 = time.perf_counter()
        records.images()
        t2 = time.perf_counter()
        decode_s += t2 - t1
        total_s += t2 - t0
        count += len(records)
        if count >= limit:
            break
    return {
        "records": count,
        "decode_resize_records_per_s": count / decode_s,
        "read_decode_resize_records_per_s": count / total_s,
    }


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


def run_prepare(root: Path, cache_dir: Path, workers: int) -> dict[str, float]:
    """Wall time and peak RSS of the whole prepare command (fresh cache)."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    cmd = [
        sys.executable, "-m", "kanji_lab.prepare", "data=etl9g", f"data.root={root}",
        f"paths.cache_dir={cache_dir}", f"data.workers={workers}", "progress=false",
        f"hydra.run.dir={cache_dir.parent / 'run'}",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, capture_output=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"workers": workers, "wall_s": wall, "peak_rss_mib": max(peak, before) / 1024}


def _markdown(r: dict) -> str:
    rows = [
        ("decode + resize, one core",
         f"{r['decode']['decode_resize_records_per_s']:,.0f} records/s"),
        *[
            (f"`prepare`, workers={p['workers']} (0 = all cores)",
             f"{p['wall_s']:.1f} s, peak RSS {p['peak_rss_mib']:,.0f} MiB")
            for p in r["prepare"]
        ],
        ("per-record struct + PIL loop (extrapolated)", f"{r['baseline']['extrapolated_s']:.1f} s"),
        ("`prepare` speed-up over that loop", f"{r['speedup_prepare_vs_baseline']:.1f}x"),
    ]  # fmt: skip
    size = f"{r['records']:,} records, {r['bytes'] / 1e9:.2f} GB"
    return f"ETL9G-format files of full size ({size}), `{r['command']}`:\n\n" + table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=FULL, help="records to generate")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kanji_lab_bench"))
    parser.add_argument("--baseline-records", type=int, default=3000)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    root, cache_dir = args.workdir / "etl", args.workdir / "cache"
    t0 = time.perf_counter()
    paths = generate(root / "ETL9G", args.records)
    gen_s = time.perf_counter() - t0
    print(f"generated {args.records:,} records in {len(paths)} files in {gen_s:.1f} s")
    decode = bench_decode(paths, limit=min(args.records, 4 * PER_FILE))
    print(f"decode+resize, one core: {decode['decode_resize_records_per_s']:,.0f} records/s")
    prepares = [run_prepare(root, cache_dir, w) for w in (1, 0)]
    for p in prepares:
        rate = args.records / p["wall_s"]
        print(f"prepare workers={p['workers']}: {p['wall_s']:.1f} s ({rate:,.0f} records/s), "
              f"peak RSS {p['peak_rss_mib']:,.0f} MiB")  # fmt: skip
    per_record = bench_baseline(paths[0], min(args.baseline_records, args.records))
    baseline_s = per_record * args.records
    best = min(p["wall_s"] for p in prepares)
    print(f"baseline struct+PIL loop: {1 / per_record:,.0f} records/s -> {baseline_s:.1f} s "
          f"extrapolated from {min(args.baseline_records, args.records):,} records; "
          f"prepare is {baseline_s / best:.1f}x faster")  # fmt: skip
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "records": args.records,
        "files": len(paths),
        "bytes": sum(p.stat().st_size for p in paths),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "generate_s": gen_s,
        "decode": decode,
        "prepare": prepares,
        "baseline": {
            "records_timed": min(args.baseline_records, args.records),
            "records_per_s": 1 / per_record,
            "extrapolated_s": baseline_s,
        },
        "speedup_prepare_vs_baseline": baseline_s / best,
    }
    record("bench_prepare", result, _markdown(result))
    print("wrote experiments/results/bench_prepare.json")
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
