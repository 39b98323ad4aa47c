"""kanji_lab.threads: file loading on every core keeps the files' order and their errors."""

from __future__ import annotations

import threading
import time

import pytest

from kanji_lab.threads import ordered_map


def test_results_come_in_order_from_several_threads():
    seen = set()

    def slow_square(n: int) -> int:
        time.sleep(0.02 * (n % 3))  # later items finish first
        seen.add(threading.get_ident())
        return n * n

    assert list(ordered_map(slow_square, range(12), workers=4)) == [n * n for n in range(12)]
    assert len(seen) > 1


def test_an_error_is_raised_where_its_result_would_come():
    def check(n: int) -> int:
        if n == 3:
            raise ValueError("bad item 3")
        return n

    results = ordered_map(check, range(6), workers=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="bad item 3"):
        next(results)


def test_one_worker_runs_in_the_calling_thread():
    here = threading.get_ident()
    assert (
        list(ordered_map(lambda n: threading.get_ident() == here, range(3), workers=1))
        == [True] * 3
    )
