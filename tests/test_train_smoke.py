from kanji_lab.train import train
from tests.conftest import compose_train, tiny_overrides


def test_fast_dev_run(tmp_path, tmp_cache):
    cfg = compose_train([*tiny_overrides(), "debug=fdr"], tmp_path / "run", tmp_cache)
    metrics = train(cfg)
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert metrics["num_classes"] == 5


def test_resident_images_path_trains(tmp_path, tmp_cache):
    cfg = compose_train(
        [*tiny_overrides(), "debug=limit", "perf.in_memory=true"], tmp_path, tmp_cache
    )
    metrics = train(cfg)
    assert metrics["epochs"] == 2 and metrics["test/acc"] is not None
