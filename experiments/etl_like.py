"""ETL9G-format files written by synthetic writers: a stand-in for real ETL data of a given size.

Each writer is a synthetic hand (pen, pencil, cursive or brush, in turn) that writes every class
once in the cells of a form sheet; each cell is cut out with fragments of its neighbours and
sometimes the grid (:func:`kanji_lab.data.forms.cut_cells`, the character at 40-70% of the cell),
scaled to ETL9G's 128x127 cell and stored at 4-bit depth with the scanner's paper noise and specks,
four writers to a file, 20 sheets per writer as ETL9G numbers them. Read through ``data=etl9g``
like the real archive: decoding, the shared normalisation and the writer split are the real path.

    python experiments/etl_like.py /tmp/etl_like                      # 200 writers, 71 hiragana
    python experiments/etl_like.py /tmp/etl_small --writers 20 --classes etl9g
    python experiments/val_stability.py --etl-root /tmp/etl_like --name val_stability_etl data=etl9g

No real ETL bytes: everything comes from KanjiVG strokes through the built-in generator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.etl_files import first_sheet, jis_codes, pack4, to_levels, write_etl9g  # noqa: E402
from kanji_lab.data import kanjivg
from kanji_lab.data.charsets import etl9g_classes, resolve_classes
from kanji_lab.data.forms import cut_cells
from kanji_lab.data.normalize import linear
from kanji_lab.data.synthetic import render

WRITERS_PER_FILE = 4  # as in the ETL9G archive
CELL = (128, 127)  # ETL9G's image: width, height


def writer_cells(
    chars: list[str], strokes: list[kanjivg.Character], writer: int, seed: int
) -> np.ndarray:
    """4-bit ``(len(chars), 127, 128)`` levels: one writer's form cells, one per class."""
    rng = np.random.default_rng([seed, writer])
    hand = render.FORM_HANDS[writer % len(render.FORM_HANDS)]
    style = render.writer_style(hand, rng)
    glyphs = np.stack([render.render_strokes(s, style, rng, linear()) for s in strokes])
    cells = cut_cells(glyphs, rng)
    sized = [Image.fromarray(c).resize(CELL, Image.Resampling.BILINEAR) for c in cells]
    return np.stack([to_levels(np.asarray(c), rng) for c in sized])


def write(folder: Path, chars: list[str], writers: int, seed: int = 0) -> list[Path]:
    """``ETL9G_01..`` files under ``folder``: ``writers`` writers, every one writing ``chars``."""
    strokes = [kanjivg.load_strokes(c) for c in chars]
    missing = "".join(c for c, s in zip(chars, strokes, strict=True) if s is None)
    if missing:
        raise SystemExit(f"no KanjiVG strokes for {missing!r}: choose classes that have them")
    codes = jis_codes(chars)
    paths, serial = [], 1
    with tqdm(total=writers * len(chars), desc="ETL-format records", unit="rec") as bar:
        for f, start in enumerate(range(1, writers + 1, WRITERS_PER_FILE)):
            group = np.arange(start, min(start + WRITERS_PER_FILE, writers + 1))
            levels = []
            for writer in group:
                levels.append(writer_cells(chars, strokes, int(writer), seed))
                bar.update(len(chars))
            sheets = np.repeat(first_sheet(group), len(chars))
            path = folder / "ETL9G" / f"ETL9G_{f + 1:02d}"
            packed = pack4(np.concatenate(levels))
            paths.append(write_etl9g(path, packed, sheets, np.tile(codes, len(group)), serial))
            serial += len(packed)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="data root to write (ETL9G/ETL9G_01.. inside)")
    parser.add_argument("--writers", type=int, default=200)
    parser.add_argument(
        "--classes", default="hiragana",
        help="a class set of data.classes (ETL9G characters only); default: ETL9G's 71 hiragana",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.writers < 1:
        parser.error(f"--writers {args.writers}: at least one writer")
    chars = resolve_classes(args.classes)
    outside = "".join(c for c in chars if c not in set(etl9g_classes()))
    if outside:
        parser.error(f"--classes has characters ETL9G does not hold: {outside[:20]!r}")
    paths = write(args.out, chars, args.writers, args.seed)
    print(f"wrote {len(paths)} files, {args.writers * len(chars):,} records, under {args.out}")


if __name__ == "__main__":
    main()
