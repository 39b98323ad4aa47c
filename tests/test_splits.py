import numpy as np
import pytest

from kanji_lab.data.splits import limit_train_writers, split_indices


def _data():
    rng = np.random.default_rng(0)
    writers = np.repeat(np.arange(40), 7)  # 40 writers, 7 samples each
    sources = (writers % 4).astype(np.int16)  # 4 style families
    order = rng.permutation(len(writers))
    return writers[order], sources[order]


def test_writer_split_is_disjoint_complete_and_stratified():
    writers, sources = _data()
    splits = split_indices(writers, sources, val=0.1, test=0.1, seed=3)
    seen = [set(writers[idx]) for idx in splits.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sorted(np.concatenate(list(splits.values()))) == list(range(len(writers)))
    for name in ("val", "test"):  # every family is represented in evaluation
        assert set(sources[splits[name]]) == {0, 1, 2, 3}


def test_writer_split_is_deterministic_and_seeded():
    writers, sources = _data()
    a = split_indices(writers, sources, seed=1)
    b = split_indices(writers, sources, seed=1)
    c = split_indices(writers, sources, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_writer_in_two_parts_stays_on_one_side():
    writers = np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    sources = np.array([0, 1] * 5)  # e.g. ETL9G and ETL9B samples of the same writers
    splits = split_indices(writers, sources, val=0.2, test=0.2, seed=0)
    for idx in splits.values():
        others = np.setdiff1d(np.arange(len(writers)), idx)
        assert not set(writers[idx]) & set(writers[others])


def test_sample_split_only_by_name_and_bad_fractions_rejected():
    writers, sources = _data()
    splits = split_indices(writers, sources, by="sample", seed=0)
    assert sum(len(v) for v in splits.values()) == len(writers)
    # ascending, as for writer splits: evaluation pairs predictions with cache rows in this order
    for by in ("sample", "writer"):
        for idx in split_indices(writers, sources, by=by, seed=0).values():
            assert np.all(np.diff(idx) > 0)
    with pytest.raises(ValueError, match="split.by"):
        split_indices(writers, sources, by="random")
    with pytest.raises(ValueError, match="fractions"):
        split_indices(writers, sources, val=0.6, test=0.5)


def test_every_small_family_is_validated_and_tested_and_keeps_training_writers():
    """Seven families of 4-7 writers: one test and one validation writer each (checkpoint
    selection sees every family), never the last training writers of a family."""
    writers = np.arange(42)
    families = np.repeat(np.arange(7), [7, 5, 7, 7, 7, 5, 4])
    parts = split_indices(writers, families, val=0.1, test=0.1, seed=3)
    per = {k: np.bincount(families[v], minlength=7) for k, v in parts.items()}
    assert per["test"].tolist() == [1] * 7
    assert per["val"].tolist() == [1] * 7
    assert per["train"].min() >= 2 and per["train"].sum() == 28
    two = split_indices(np.arange(4), np.array([0, 0, 1, 1]), val=0.1, test=0.1, seed=0)
    assert {k: len(v) for k, v in two.items()} == {"train": 2, "val": 0, "test": 2}


def test_the_default_synthetic_writers_put_every_family_in_validation_and_test(tmp_path):
    from tests.conftest import compose_train

    cfg = compose_train([], tmp_path, tmp_path).data
    counts = [n for n in cfg.writers.values() if n]
    families = np.repeat(np.arange(len(counts)), counts)
    parts = split_indices(np.arange(len(families)), families, cfg.split.val, cfg.split.test)
    for name in ("val", "test"):
        assert set(families[parts[name]]) == set(range(len(counts))), name


def test_fewer_training_writers_keeps_whole_writers_and_the_exempt_samples():
    writers, sources = _data()
    splits = split_indices(writers, sources)
    exempt = sources == 3  # e.g. samples mixed in by data.extra
    fewer = limit_train_writers(splits, writers, 5, seed=1, exempt=exempt)
    kept = fewer["train"]
    assert len(np.unique(writers[kept[~exempt[kept]]])) == 5
    assert set(kept) <= set(splits["train"])
    chosen = np.unique(writers[kept[~exempt[kept]]])
    whole = splits["train"][np.isin(writers[splits["train"]], chosen)]
    assert set(whole) <= set(kept)  # every sample of a chosen writer stays
    assert exempt[splits["train"]].sum() == exempt[kept].sum()
    assert fewer["val"] is splits["val"] and fewer["test"] is splits["test"]
    again = limit_train_writers(splits, writers, 5, seed=1, exempt=exempt)["train"]
    assert np.array_equal(kept, again)
    other = limit_train_writers(splits, writers, 5, seed=2, exempt=exempt)["train"]
    assert not np.array_equal(kept, other)


@pytest.mark.parametrize("count", [0, 41])
def test_fewer_training_writers_than_possible_is_an_error_naming_the_range(count):
    writers, sources = _data()
    splits = split_indices(writers, sources)
    n = len(np.unique(writers[splits["train"]]))
    message = f"train_writers={count}, .* has {n} writers; choose 1 to {n}"
    with pytest.raises(ValueError, match=message):
        limit_train_writers(splits, writers, count)
