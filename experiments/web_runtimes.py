"""ONNX Runtime Web releases on npm and the size of their WASM binaries: the runtime is most of
the browser page's weight (``bench_web``), so this lists what a lighter page could take, against
the page target of at most 8 MB uncompressed with the shipped model.

Each version is fetched with ``npm pack onnxruntime-web@<version>`` into a temporary folder
(network needed, nothing installed) and the ``.wasm`` files of its tarball are listed: the page
loads one of them (which one depends on the browser's SIMD and threads), so the smallest is the
most a lighter page could save. The page estimate adds the shipped INT8 model to that binary and
leaves out the page's own JavaScript and the runtime's loader (tens of kB); it is given as is
(target at most 8 MB) and gzipped at level 9 as a static host serves it (target at most 3 MB
transferred on a first visit).

    python experiments/web_runtimes.py
    python experiments/web_runtimes.py --versions 1.30.0 1.11.0

Writes experiments/results/web_runtimes.json and .md, and its results block in
experiments/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.results_io import record, table  # noqa: E402
from kanji_lab.recognizer import shipped_models

PACKAGE = "onnxruntime-web"
# the page's pinned version (conf/web.yaml), the latest surveyed, and older lines down to the
# last ones whose binaries come near the target
VERSIONS = ["1.31.1", "1.30.0", "1.20.1", "1.17.3", "1.14.0", "1.13.1", "1.11.0"]
PAGE_TARGET_BYTES = 8_000_000
TRANSFER_TARGET_BYTES = 3_000_000


def wasm_sizes(tarball: Path) -> dict[str, tuple[int, int]]:
    """Bytes of each ``.wasm`` file in an npm tarball, as is and gzipped, by file name."""
    with tarfile.open(tarball) as tar:
        return {
            Path(m.name).name: (m.size, gzipped(tar.extractfile(m).read()))
            for m in tar.getmembers()
            if m.name.endswith(".wasm")
        }


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def pack(version: str, folder: Path) -> Path:
    """``npm pack`` of one release into ``folder``; its tarball. SystemExit without npm or for a
    version npm does not have."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("web_runtimes: npm not found: install Node.js (npm) to fetch the releases")
    done = subprocess.run(
        [npm, "pack", f"{PACKAGE}@{version}", "--silent"],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    name = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode or not (folder / name).is_file():
        reason = (done.stderr.strip().splitlines() or ["no tarball"])[-1]
        raise SystemExit(f"web_runtimes: npm pack {PACKAGE}@{version} failed: {reason}")
    return folder / name


def row(version: str, sizes: dict[str, tuple[int, int]], model: tuple[int, int]) -> dict:
    """One release: its smallest and largest binary and the page estimate with the model (as is,
    gzipped)."""
    if not sizes:
        raise SystemExit(f"web_runtimes: {PACKAGE}@{version} holds no .wasm file")
    smallest = min(sizes, key=sizes.__getitem__)
    page, sent = (sizes[smallest][i] + model[i] for i in (0, 1))
    return {
        "version": version,
        "wasm": sizes,
        "smallest": smallest,
        "smallest_bytes": sizes[smallest][0],
        "largest_bytes": max(size for size, _ in sizes.values()),
        "page_bytes": page,
        "page_gzip_bytes": sent,
        "meets_target": page <= PAGE_TARGET_BYTES and sent <= TRANSFER_TARGET_BYTES,
    }


def markdown(rows: list[dict], model: tuple[int, int], command: str) -> str:
    mb = 1e6
    lines = [
        (
            r["version"],
            f"{r['smallest']} {r['smallest_bytes'] / mb:.2f} MB",
            f"{r['largest_bytes'] / mb:.2f} MB",
            f"{r['page_bytes'] / mb:.2f} MB / {r['page_gzip_bytes'] / mb:.2f} MB",
            "yes" if r["meets_target"] else "no",
        )
        for r in rows
    ]
    head = (
        "onnxruntime-web", "smallest WASM binary", "largest", "it + the model: as is / gzipped",
        "meets 8 MB / 3 MB",
    )  # fmt: skip
    return (
        f"WASM binaries of ONNX Runtime Web releases (`npm pack`), with the shipped INT8 model "
        f"({model[0] / mb:.2f} MB, {model[1] / mb:.2f} MB gzipped); command: `{command}`:\n\n"
        + table(lines, head)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", nargs="+", default=VERSIONS)
    args = parser.parse_args()
    data = shipped_models()[0].file.read_bytes()
    model = (len(data), gzipped(data))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for version in args.versions:
            rows.append(row(version, wasm_sizes(pack(version, Path(tmp))), model))
            print(rows[-1]["version"], rows[-1]["smallest_bytes"], flush=True)
    command = "python experiments/web_runtimes.py" + (
        f" --versions {' '.join(args.versions)}" if args.versions != VERSIONS else ""
    )
    text = markdown(rows, model, command)
    sizes = {"model_bytes": model[0], "model_gzip_bytes": model[1]}
    record("web_runtimes", {"rows": rows, **sizes}, text)
    print(text)


if __name__ == "__main__":
    main()
