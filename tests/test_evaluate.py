import json

import pytest

from kanji_lab.data.sources import DataSourceError
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
