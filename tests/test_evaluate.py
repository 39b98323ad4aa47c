import json

import pytest

from kanji_lab.errors import DataSourceError
from kanji_lab.evaluate import evaluate
from kanji_lab.run_dir import RunDirError
from kanji_lab.train import train
from tests.conftest import compose_app, compose_train, tiny_overrides


def _eval_cfg(root, overrides):
    return compose_app("evaluate", overrides, root / "eval", root / "cache")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalrun")
    run = root / "run"
    train(compose_train([*tiny_overrides(), "debug=limit"], run, root / "cache"))
    return root, run


def test_evaluate_defaults_to_test_split_of_training_data(finished_run, tmp_path):
    root, run = finished_run
    cfg = _eval_cfg(root, [f"run_dir={run}"])
    metrics = evaluate(cfg)
    assert metrics["split"] == "test"
    assert metrics["out_of_vocabulary"]["samples"] == 0
    assert 0 <= metrics["top1"] <= metrics["top5"] <= 1
    assert set(metrics["per_class"]) <= set("亜唖娃阿哀")
    assert set(metrics["per_source"]) <= {"tiny/a", "tiny/b"}
    assert sum(v["n"] for v in metrics["per_source"].values()) == metrics["scored"]
    assert metrics["look_alikes"] == {}  # none of its classes has a look-alike twin among them
    written = json.loads((root / "eval" / "metrics.json").read_text())
    assert written["top1"] == metrics["top1"]


def test_evaluate_on_other_data_uses_all_samples_and_counts_unknown_characters(finished_run):
    root, run = finished_run
    overrides = [
        f"run_dir={run}",
        "data=synthetic",
        "data.source=tiny",
        "data.name=tiny-other",
        "data.classes='亜唖愛'",
        "++data.writers=3",
    ]
    metrics = evaluate(_eval_cfg(root, overrides))
    assert metrics["split"] == "all"
    assert metrics["samples"] == 9
    # 愛 is not among the model's classes: reported apart, not scored
    assert metrics["out_of_vocabulary"] == {"samples": 3, "characters": {"愛": 3}}
    assert metrics["scored"] == 6


def test_evaluate_bad_input(finished_run, tmp_path):
    root, run = finished_run
    with pytest.raises(RunDirError, match="no such directory"):
        evaluate(_eval_cfg(root, [f"run_dir={tmp_path / 'missing'}"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="model.safetensors"):
        evaluate(_eval_cfg(root, [f"run_dir={tmp_path / 'empty'}"]))
    with pytest.raises(DataSourceError, match="unknown data source"):
        evaluate(_eval_cfg(root, [f"run_dir={run}", "data=synthetic", "data.source=nope"]))


def _etl_root(root):
    """ETL9G and ETL9B files of the same ten writers (sheets 1, 21, .., 181)."""
    from tests.etl_fixtures import ETL9_CODES, b_file, g_file, write

    sheets = [1 + 20 * w for w in range(10)]
    write(root / "ETL9G" / "ETL9G_01", g_file("9G", sheets, ETL9_CODES))
    write(root / "ETL9B" / "ETL9B_1", b_file("9B", sheets, ETL9_CODES))
    return root


def test_evaluate_on_a_source_sharing_writers_scores_only_unseen_writers(tmp_path, caplog):
    import logging

    import numpy as np

    from kanji_lab.data import cache, sources

    root = _etl_root(tmp_path / "etl")
    split = ["data.split.val=0.2", "data.split.test=0.2"]
    tiny = ["model.net.width=8", "model.net.features=32", "trainer.accelerator=cpu"]
    data = ["data=etl9g", f"data.root={root}", "data.workers=1", *split]
    run = tmp_path / "run"
    overrides = [*data, *tiny, "debug=fdr", "callbacks.progress_bar=null"]
    train(compose_train([*overrides, "export.onnx=false"], run, tmp_path / "cache"))

    # the run's test writers, from its own data and split
    trained = compose_train(data, run, tmp_path / "cache").data
    dm_g = cache.open_cache(sources.build_cache(trained, False))
    from kanji_lab.data.splits import split_indices

    parts = split_indices(dm_g.writers, dm_g.sources, val=0.2, test=0.2)
    test_writers = set(np.asarray(dm_g.writers)[parts["test"]].tolist())
    assert len(test_writers) == 2

    cfg = _eval_cfg(tmp_path, [f"run_dir={run}", "data=etl9b", f"data.root={root}"])
    with caplog.at_level(logging.WARNING):
        metrics = evaluate(cfg)
    assert metrics["split"] == "unseen_writers"
    assert metrics["samples"] == 2 * 3, "2 test writers x 3 characters, not all 30 samples"
    assert "shares the ETL9 writers" in caplog.text and "scoring only the 6 of 30" in caplog.text
    assert "scoring only the 6 of 30" in metrics["writers_note"]
    # an explicit split=all scores every sample, and says that 8 of the writers were seen
    everything = evaluate(_eval_cfg(tmp_path, [*cfg_overrides(run, root), "split=all"]))
    assert everything["samples"] == 30
    assert (
        "24 of the 30 samples of split=all are by writers the run trained or validated on"
        in (everything["writers_note"])
    )


def cfg_overrides(run, root):
    return [f"run_dir={run}", "data=etl9b", f"data.root={root}"]


def test_look_alikes_are_printed_when_written():
    from kanji_lab.evaluate import _look_alike_line

    pairs = {
        "カ/力": {"n_a": 3, "n_b": 2, "a_as_b": 2, "b_as_a": 0},
        "ニ/二": dict.fromkeys(("n_a", "n_b", "a_as_b", "b_as_a"), 0),
    }
    line = "\n  look-alikes read as their twin: カ->力 2 of 3, 力->カ 0 of 2"
    assert _look_alike_line(pairs) == line
    assert _look_alike_line({}) == ""


def test_prior_figures_sit_beside_the_model_alone(finished_run):
    """``prior=[...]`` adds one top-1 per weight; ``top1`` stays the model alone, the default
    reports no prior figure, and a huge weight reads every image as the class most frequent in
    text."""
    from kanji_lab.prior import frequencies

    root, run = finished_run
    plain = evaluate(_eval_cfg(root, [f"run_dir={run}"]))
    assert "prior" not in plain
    weighted = evaluate(_eval_cfg(root, [f"run_dir={run}", "prior=[0.5,1000]"]))
    assert weighted["top1"] == plain["top1"]
    assert [p["weight"] for p in weighted["prior"]] == [0.5, 1000.0]
    labels = json.loads((run / "labels.json").read_text())["labels"]
    common = max(labels, key=lambda c: frequencies().get(c, 0.0))
    share = plain["per_class"].get(common, {"n": 0})["n"] / plain["scored"]
    assert weighted["prior"][1]["top1"] == pytest.approx(share)
