"""``python -m kanji_lab.dump data=<etl source> data.root=<dir> out=<dir> [limit=N]``.

Writes decoded samples as PNG files (dark ink on white, native resolution) plus ``labels.csv``
(``path,char,jis,part,writer,sheet``), read through the same readers as training. The folder is a
valid ``data=folder`` root.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig
from PIL import Image

import kanji_lab.config
from kanji_lab.data import etl
from kanji_lab.data.etl import source as etl_source
from kanji_lab.errors import DataSourceError, reports_user_errors

log = logging.getLogger(__name__)

COLUMNS = ("path", "char", "jis", "part", "writer", "sheet")


def dump_parts(data: DictConfig) -> tuple[str, ...]:
    """The ETL parts a data config reads."""
    source = data.get("source")
    if source == "auto":
        source = etl_source.choose_auto(data)
    if source not in etl_source.SOURCE_PARTS:
        raise DataSourceError(
            f"dump reads ETL sources ({', '.join(etl_source.SOURCE_PARTS)}), not "
            f"data={data.get('source')} (with no ETL files found for auto)"
        )
    return tuple(data.get("parts") or etl_source.SOURCE_PARTS[source])


def paper_white(pixels: np.ndarray, layout: etl.Layout) -> np.ndarray:
    """Packed records -> native-resolution images, dark ink on white (uint8)."""
    levels = np.arange(layout.max_level + 1)
    scale = 255 - np.rint(levels * 255 / layout.max_level).astype(np.uint8)
    return scale[etl.unpack_levels(pixels, layout)]


def code_text(records: etl.Records, index: int) -> str:
    width = 4 if records.part.labels == "jis0208" else 2
    return f"0x{int(records.codes[index]):0{width}X}"


def dump(data: DictConfig, out: Path, limit: int | None = None) -> int:
    """Write the samples of ``data`` under ``out``; return how many were written."""
    files = etl_source.locate(data, dump_parts(data), require_all=False)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        table = csv.writer(fh)
        table.writerow(COLUMNS)
        for f in files:
            if limit is not None and written >= limit:
                break
            records = etl.read_file(f.path, f.part, f.include_models)
            take = len(records) if limit is None else min(len(records), limit - written)
            written += write_records(records, take, out, table)
    log.info("Wrote %d samples to %s", written, out)
    return written


def write_records(records: etl.Records, take: int, out: Path, table) -> int:
    """Write the first ``take`` records of one file as PNGs and rows of ``labels.csv``."""
    folder = out / records.part.name
    folder.mkdir(exist_ok=True)
    images = paper_white(records.pixels[:take], records.part.layout)
    for i in range(take):
        rel = f"{records.part.name}/{records.path.name}_{i:06d}.png"
        Image.fromarray(images[i]).save(out / rel)
        table.writerow(
            [
                rel,
                chr(records.codepoints[i]),
                code_text(records, i),
                records.part.name,
                int(records.writers[i]),
                int(records.sheets[i]),
            ]
        )
    return take


@hydra.main(config_path=kanji_lab.config.config_dir(), config_name="dump", version_base="1.3")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    dump(cfg.data, Path(str(cfg.out)).expanduser(), cfg.get("limit"))


if __name__ == "__main__":
    main()
