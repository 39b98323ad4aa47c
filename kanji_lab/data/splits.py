"""Train / validation / test splits by writer, so that no hand appears in two splits."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def split_indices(
    writers: np.ndarray,
    sources: np.ndarray,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    by: str = "writer",
) -> dict[str, np.ndarray]:
    """Sample indices of each split.

    ``by="writer"`` (the default) assigns whole writers to splits, stratified by the source in
    which each writer first appears: every style family or part has test writers (at least one)
    and validation writers (at least one where it has three writers or more; about ``val`` of all
    writers in all), and a writer seen in two
    parts (ETL9G and ETL9B) stays on one side. ``by="sample"`` is a random per-sample
    split, which lets one hand appear in training and evaluation; use it only knowingly.
    Each split's indices are in ascending order (unshuffled loaders keep cache order).
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"split fractions val={val}, test={test} must be in [0, 1) and sum < 1")
    rng = np.random.default_rng(seed)
    if by == "sample":
        return {k: np.sort(v) for k, v in _cut(rng.permutation(len(writers)), val, test).items()}
    if by != "writer":
        raise ValueError(f"split.by must be 'writer' or 'sample', got {by!r}")
    unique, first = np.unique(np.asarray(writers), return_index=True)
    strata = np.asarray(sources)[first]
    orders = [rng.permutation(np.flatnonzero(strata == s)) for s in np.unique(strata)]
    tests = [_count(len(order), test) for order in orders]
    vals = _val_counts([len(o) - t for o, t in zip(orders, tests, strict=True)], val, len(unique))
    assignment = np.zeros(len(unique), dtype=np.int8)
    for order, n_test, n_val in zip(orders, tests, vals, strict=True):
        n_train = len(order) - n_test - n_val
        assignment[order[n_train : n_train + n_val]] = 1
        assignment[order[n_train + n_val :]] = 2
    of_sample = assignment[np.searchsorted(unique, writers)]
    return {name: np.flatnonzero(of_sample == code) for code, name in enumerate(SPLITS)}


def _val_counts(left: list[int], val: float, total: int) -> list[int]:
    """Validation writers per stratum: one for each stratum that can spare one (so checkpoint
    selection sees every style family or part), then up to ``val`` of all writers shared out in
    proportion to the writers each stratum has left after its test writers (largest remainders
    first); never a stratum's last training writer."""
    if val <= 0:
        return [0] * len(left)
    room = np.array([max(n - 1, 0) for n in left])  # keep one writer of each stratum for training
    counts = np.minimum(room, 1)
    wanted = min(max(int(counts.sum()), round(total * val)), int(room.sum()))
    quota = np.array(left, dtype=float) * wanted / max(sum(left), 1)
    counts = np.maximum(counts, np.minimum(np.floor(quota).astype(int), room))
    for i in np.argsort(-(quota - np.floor(quota)), kind="stable"):
        if counts.sum() >= wanted:
            break
        if counts[i] < room[i]:
            counts[i] += 1
    return counts.tolist()


def _cut(order: np.ndarray, val: float, test: float) -> dict[str, np.ndarray]:
    """Cut a permutation into train/val/test; each non-zero fraction gets at least one item
    while at least one item is left for training."""
    n = len(order)
    n_test = _count(n, test)
    n_val = _count(n - n_test, val * n / max(n - n_test, 1))
    n_train = n - n_val - n_test
    return {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }


def limit_train_writers(
    splits: dict[str, np.ndarray],
    writers: np.ndarray,
    count: int,
    seed: int = 0,
    exempt: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Keep the training samples of ``count`` of the training writers (drawn at random with
    ``seed``), e.g. to ask how a model does with 20 real writers; validation and test are
    unchanged. Samples where ``exempt`` is true (those of ``data.extra`` sources) all stay and do
    not count as writers. ValueError when ``count`` is not between 1 and the writers there are."""
    train = splits["train"]
    free = np.ones(len(train), dtype=bool) if exempt is None else ~np.asarray(exempt)[train]
    pool = np.unique(np.asarray(writers)[train[free]])
    if not 1 <= count <= len(pool):
        raise ValueError(
            f"train_writers={count}, but the training split has {len(pool)} writers; "
            f"choose 1 to {len(pool)}, or null for all of them"
        )
    chosen = np.random.default_rng(seed).permutation(pool)[:count]
    keep = ~free | np.isin(np.asarray(writers)[train], chosen)
    return {**splits, "train": train[keep]}


def _count(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 2:
        return 0
    return min(max(1, round(n * fraction)), n - 1)


def train_only(splits: dict[str, np.ndarray], named: np.ndarray) -> dict[str, np.ndarray]:
    """Move the samples where ``named`` is true (e.g. synthetic samples mixed into real data)
    from validation and test into training."""
    if not named.any():
        return splits
    moved = {k: v[named[v]] for k, v in splits.items()}
    kept = {k: v[~named[v]] for k, v in splits.items()}
    kept["train"] = np.sort(np.concatenate([splits["train"], moved["val"], moved["test"]]))
    return kept


def of_sources(sources: np.ndarray, names: list[str], only: list[str]) -> np.ndarray:
    """A boolean mask of the samples whose source is named in ``only``."""
    codes = [i for i, name in enumerate(names) if name in set(only)]
    return np.isin(np.asarray(sources), codes)
