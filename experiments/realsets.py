"""The real writing of ``../shared/realdev`` (evaluation only, never training data) and the image
sets the experiments build from it: Tomoe's strokes drawn on a phone pad (``pad``) and written in
the cells of a sheet, cut out with their neighbours (``cells``), and written in faint pencil on
grainy, unevenly lit paper photographed as JPEG (``scans``). The one place the experiments name
the development set's paths."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from kanji_lab.data.forms import cut_cells
from kanji_lab.data.normalize import SETTINGS, linear, strokes_input
from kanji_lab.data.strokes.files import read_stroke_file

REALDEV = Path(__file__).resolve().parents[2] / "shared" / "realdev"
TOMOE = REALDEV / "tomoe"
TEGAKI_HIRAGANA = REALDEV / "tegaki" / "hiragana-writer1.charcol.gz"
TEGAKI_KATAKANA = REALDEV / "tegaki" / "katakana-writer1.charcol.gz"
PAD_SIDE = 400  # pixels of the simulated phone pad


def stroke_data(path: Path = TOMOE) -> list[str]:
    """Overrides that read a stroke file or folder of the development set (``data=strokes``)."""
    return ["data=strokes", f"data.root={path}"]


def folder_data(folder: Path) -> list[str]:
    """Overrides that read an image folder with a labels.csv (``data=folder``)."""
    return ["data=folder", f"data.root={folder}"]


def tomoe_traces(classes: str | None = None) -> list:
    """Tomoe's characters (all, or those in ``classes``)."""
    traces = read_stroke_file(TOMOE / "all.tdic")
    return [t for t in traces if classes is None or t.char in classes]


def _write_labels(folder: Path, rows: list[str]) -> Path:
    (folder / "labels.csv").write_text("\n".join(["path,char,writer", *rows]) + "\n", "utf-8")
    return folder


def make_pad_folder(folder: Path, classes: str | None = None) -> Path:
    """Tomoe characters of ``classes`` drawn thin on a pad, as PNGs with a labels.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i, trace in enumerate(tomoe_traces(classes)):
        fill = rng.uniform(0.35, 0.95)  # how much of the pad the character covers
        width = int(rng.integers(4, 9))  # a fixed pen of a few pixels, as on a phone
        points = np.concatenate(trace.strokes)
        lo, span = points.min(axis=0), max(float(np.ptp(points, axis=0).max()), 1.0)
        scale = fill * PAD_SIDE / span
        offset = rng.uniform(0, PAD_SIDE * (1 - fill), 2)
        image = Image.new("L", (PAD_SIDE, PAD_SIDE), 255)
        draw = ImageDraw.Draw(image)
        for stroke in trace.strokes:
            xy = [tuple(p) for p in ((stroke - lo) * scale + offset).tolist()]
            draw.line(xy if len(xy) > 1 else xy * 2, fill=0, width=width, joint="curve")
        image.save(folder / f"{i:05d}.png")
        rows.append(f"{i:05d}.png,{trace.char},tomoe")
    return _write_labels(folder, rows)


# the sets' glyphs framed by the ink's extent (as version 4 framed them) and resized linearly, so
# that a set stays the same whatever frame and resize the model under test reads with
DRAWN = {**linear(SETTINGS), "frame_sd": 0.0}


def sheet_glyphs(traces: list) -> np.ndarray:
    """The 64x64 ink-bright glyphs of ``traces`` that the cells set writes on its sheet."""
    return np.stack([strokes_input(t.strokes, settings=DRAWN) for t in traces])


def make_cells_folder(folder: Path, classes: str | None = None) -> Path:
    """Tomoe characters of ``classes`` cut from a sheet with their neighbours, as PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    traces = tomoe_traces(classes)
    glyphs = sheet_glyphs(traces)
    rows = []
    for i, (cell, trace) in enumerate(zip(cut_cells(glyphs, np.random.default_rng(0)), traces,
                                          strict=True)):  # fmt: skip
        Image.fromarray(255 - cell).save(folder / f"{i:05d}.png")
        rows.append(f"{i:05d}.png,{trace.char},tomoe")
    return _write_labels(folder, rows)


def make_scan_folder(folder: Path, classes: str | None = None) -> Path:
    """Tomoe characters of ``classes`` in faint pencil on grainy, unevenly lit paper, blurred and
    saved as JPEG, as a phone photo or a cheap scan gives them. Paper and ink are modelled here,
    apart from the generator's scan simulation: Gaussian grain on a grey paper tone, a lighting
    gradient across the sheet, grey ink, a slight blur and JPEG compression."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    side = 96
    yy, xx = np.mgrid[0:side, 0:side] / side
    rows = []
    for i, trace in enumerate(tomoe_traces(classes)):
        ink = strokes_input(trace.strokes, settings=DRAWN)  # 64x64, ink bright, its own strokes
        ink = np.asarray(Image.fromarray(ink).resize((side, side), Image.Resampling.BILINEAR))
        darkness = rng.uniform(0.25, 0.6)  # pencil: grey, not black
        angle = rng.uniform(0, 2 * np.pi)
        light = rng.uniform(0.72, 0.9) + rng.uniform(0.0, 0.15) * (
            np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)
        )
        grain = rng.normal(0.0, rng.uniform(0.02, 0.06), (side, side))
        page = light + grain - darkness * ink / 255.0
        image = Image.fromarray(np.clip(page * 255, 0, 255).astype(np.uint8))
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(50, 90)))
        (folder / f"{i:05d}.jpg").write_bytes(buffer.getvalue())
        rows.append(f"{i:05d}.jpg,{trace.char},tomoe")
    return _write_labels(folder, rows)
