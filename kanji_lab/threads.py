"""Image files decoded and normalised on every core: Pillow's decoders and the compiled
normalisation run without the GIL, so threads suffice (no processes, nothing to pickle)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def ordered_map(
    fn: Callable[[Item], Result], items: Iterable[Item], workers: int | None = None
) -> Iterator[Result]:
    """``fn`` of each item on ``workers`` threads (None: one per core), results in the items'
    order; an exception of ``fn`` is raised where its result would come. One worker: in this
    thread (no pool to pay for on one core)."""
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        yield from pool.map(fn, items)
