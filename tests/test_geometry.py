"""The synthetic hands' compiled stroke geometry (kanji_lab.data.synthetic.geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from kanji_lab.data.kanjivg import HARAI, TOME, VIEWBOX, Character, load_strokes
from kanji_lab.data.synthetic import geometry, render


def _char(*strokes: list[tuple[float, float]], ending: int = TOME) -> Character:
    return Character.pack([(np.array(s, dtype=float), ending) for s in strokes])


def _still(char: Character, size: float = 0.8, centre=(64.0, 64.0)) -> geometry.Draws:
    """Draws that leave a character's shape alone: no jitter, turn, tremor or pressure."""
    n = len(char)
    return geometry.Draws(
        dot_scale=np.empty(0), stroke_scale=np.empty(0), shift=np.zeros((n, 2, 2)),
        bend=np.zeros(n), angle=np.zeros(n), stretch=np.zeros(n), proportion=np.zeros((2, 4)),
        wobble=np.empty((0, 2)), affine=np.eye(2), size=size, centre=np.array(centre),
        thickness=4.0, pressure=np.zeros((n, 4)),
    )  # fmt: skip


def _place(char: Character, draws: geometry.Draws, passes: int = 0, brushiness: float = 0.0):
    return geometry.place(
        char.points, char.starts, char.ends, char.endings, passes, brushiness, draws,
        float(render.CANVAS), VIEWBOX,
    )  # fmt: skip


def test_still_draws_only_scale_and_centre_the_ink_box() -> None:
    char = _char([(10, 20), (60, 20), (100, 20)], [(30, 10), (30, 90)])
    points, widths = _place(char, _still(char, centre=(70.0, 60.0)))
    scale = geometry.frame_scale(90.0, 0.8, float(render.CANVAS), VIEWBOX)
    expected = (char.points - [55.0, 50.0]) * scale + [70.0, 60.0]
    np.testing.assert_allclose(points, expected, atol=1e-9)
    np.testing.assert_allclose(widths, 4.0)  # a pen (brushiness 0) draws an even line


def test_smoothing_keeps_stroke_ends_and_rounds_corners() -> None:
    corner = np.array([[0, 0], [10, 0], [10, 10], [20, 20], [30, 20]], dtype=float)
    starts, ends = np.array([0, 3]), np.array([3, 5])
    out = geometry.smooth(corner, starts, ends, 1)
    np.testing.assert_array_equal(out[[0, 2, 3, 4]], corner[[0, 2, 3, 4]])
    np.testing.assert_allclose(out[1], [7.5, 2.5])  # (0 + 2 * 10 + 10) / 4, (0 + 0 + 10) / 4


def test_arc_fraction_runs_from_zero_to_one_along_each_stroke() -> None:
    points = np.array([[0, 0], [3, 4], [6, 8], [0, 0], [0, 1]], dtype=float)
    t = geometry.arc_fraction(points, np.array([0, 3]), np.array([3, 5]))
    np.testing.assert_allclose(t, [0.0, 0.5, 1.0, 0.0, 1.0])


def test_a_brush_swells_at_the_entry_and_tapers_a_harai() -> None:
    char = _char([(10, 10), (40, 40), (70, 70), (100, 100)], ending=HARAI)
    _, widths = _place(char, _still(char), brushiness=1.0)
    assert widths[0] > widths[1] > widths[-1]
    assert widths[-1] == pytest.approx(4.0 * 0.2)  # 1 - (0.3 + 0.62) at the end, floored at 0.2


def test_the_outline_splits_where_a_stroke_turns_sharply() -> None:
    points = np.array([[0, 0], [10, 0], [20, 0], [20, 10], [20, 20], [0, 0], [9, 9]], float)
    widths = np.full(len(points), 2.0)
    starts, ends = np.array([0, 5]), np.array([5, 7])
    coords, bounds, caps, first = geometry.outlines(points, widths, starts, ends)
    assert first.tolist() == [0, 2, 3]  # the right angle cuts stroke 0 in two
    assert bounds.tolist() == [0, 12, 24, 32]  # 3 + 3 points (the corner twice) and 2, both sides
    piece = coords[: bounds[1]].reshape(-1, 2)
    np.testing.assert_allclose(piece, [[0, 1], [10, 1], [20, 1], [20, -1], [10, -1], [0, -1]])
    np.testing.assert_allclose(caps[1], [[20, 0, 1], [20, 20, 1]])


def test_rendering_is_deterministic_for_a_seed_and_differs_between_seeds() -> None:
    char = load_strokes("永")
    style = render.writer_style("cursive", np.random.default_rng(0))
    first, again, other = (
        render.render_strokes(char, style, np.random.default_rng(seed)) for seed in (1, 1, 2)
    )
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
