"""Characters cut from a form: each written in a cell of a sheet and cut out with its surroundings.

Real scans of forms (ETL's sheets, questionnaires, grid paper) give cells in which the character
fills about half of the side and fragments of the neighbouring cells' characters (a stroke end, a
dot, a short bar) and of the printed grid reach in at the edges. :func:`cut_cells` lays
characters out like that and cuts them out again; the synthetic ``form`` family trains on such
cells and ``experiments/`` scores models on real strokes laid out the same way.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PITCH = 128  # cell side in pixels (ETL9G's cells are 128 x 127)


def cut_cells(
    glyphs: np.ndarray,
    rng: np.random.Generator,
    fill: tuple[float, float] = (0.4, 0.7),
    grid: float = 0.3,
) -> list[np.ndarray]:
    """Ink-bright glyphs ``(N, S, S)`` (the character framed with a margin, e.g. normalised model
    images) -> one ink-bright cut cell per glyph, each about ``PITCH`` pixels a side.

    Glyph ``i`` is written at ``fill`` of the cell (its frame's side), off centre by a little;
    its eight neighbours are other glyphs of the batch written larger and less centred, so that
    parts of them cross into the cell; with chance ``grid`` the sheet has grid lines along the
    cell edges. The cut follows the cell's edges, each side off by -3% to +10% of the pitch.
    """
    return [cut for cut, _ in cut_cell_pairs(glyphs, rng, fill, grid)]


def cut_cell_pairs(
    glyphs: np.ndarray,
    rng: np.random.Generator,
    fill: tuple[float, float] = (0.4, 0.7),
    grid: float = 0.3,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`cut_cells` (the same cells for the same ``rng``), each with the same cut of the
    character alone, without neighbours or grid: what clutter removal should give back."""
    if len(glyphs) < 2:
        raise ValueError("cut_cells needs at least two glyphs (a character and a neighbour)")
    return [_cell(glyphs, i, rng, fill, grid) for i in range(len(glyphs))]


def _cell(
    glyphs: np.ndarray, i: int, rng: np.random.Generator, fill: tuple[float, float], grid: float
) -> tuple[np.ndarray, np.ndarray]:
    sheet = np.zeros((3 * PITCH, 3 * PITCH), np.uint8)
    alone = np.zeros_like(sheet)
    others = rng.choice(np.delete(np.arange(len(glyphs)), i), size=8)
    cells = [(r, c) for r in range(3) for c in range(3) if (r, c) != (1, 1)]
    for (r, c), other in zip(cells, others, strict=True):
        _write(sheet, glyphs[other], r, c, rng.uniform(0.7, 1.0), 0.12 * PITCH, rng)
    at = _write(alone, glyphs[i], 1, 1, rng.uniform(*fill), 0.06 * PITCH, rng)
    np.maximum(sheet[at], alone[at], out=sheet[at])
    if rng.random() < grid:
        level = int(rng.uniform(0.35, 1.0) * 255 + 0.5)
        width = int(rng.integers(1, 4))
        for edge in (PITCH, 2 * PITCH):
            sheet[edge - width // 2 : edge - width // 2 + width, :] = level
            sheet[:, edge - width // 2 : edge - width // 2 + width] = level
    top, left = (PITCH + rng.uniform(-0.10, 0.03, 2) * PITCH).astype(int)
    bottom, right = (2 * PITCH + rng.uniform(-0.03, 0.10, 2) * PITCH).astype(int)
    cut = (slice(top, bottom), slice(left, right))
    return sheet[cut].copy(), alone[cut].copy()


def _write(
    sheet: np.ndarray,
    glyph: np.ndarray,
    row: int,
    col: int,
    fill: float,
    spread: float,
    rng: np.random.Generator,
) -> tuple[slice, slice]:
    """Draw ``glyph`` scaled to ``fill`` of a cell, centred on cell (row, col) off by ``spread``;
    returns where it went."""
    side = max(8, int(round(fill * PITCH)))
    image = Image.fromarray(glyph).resize((side, side), Image.Resampling.BILINEAR)
    centre = (np.array([row, col]) + 0.5) * PITCH + rng.normal(0.0, spread / 2, 2)
    y, x = np.clip(np.round(centre - side / 2).astype(int), 0, 3 * PITCH - side)
    at = (slice(y, y + side), slice(x, x + side))
    np.maximum(sheet[at], np.asarray(image), out=sheet[at])
    return at
