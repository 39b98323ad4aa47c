import pytest
import torch

from kanji_lab.run_dir import RunDirError
from kanji_lab.train import train
from tests.conftest import compose_train, tiny_overrides
from tests.crash import Interrupted

EPOCHS = ["trainer.max_epochs=3", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]


def _weights(run_dir):
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt


def test_interrupted_run_resumes_where_it_stopped(tmp_path, tmp_cache):
    base = [*tiny_overrides(), *EPOCHS]
    straight = tmp_path / "straight"
    train(compose_train(base, straight, tmp_cache))

    run = tmp_path / "interrupted"
    crash = ["+callbacks.crash._target_=tests.crash.CrashAt", "+callbacks.crash.epoch=2"]
    with pytest.raises(Interrupted):
        train(compose_train([*base, *crash], run, tmp_cache))
    before = _weights(run)
    assert before["epoch"] == 1

    metrics = train(compose_train([*base, f"resume={run}"], run, tmp_cache))
    after, reference = _weights(run), _weights(straight)
    assert metrics["epochs"] == 3
    assert after["global_step"] == reference["global_step"]
    opt_after = after["optimizer_states"][0]["state"]
    opt_ref = reference["optimizer_states"][0]["state"]
    assert opt_after[0]["step"] == opt_ref[0]["step"]
    assert after["lr_schedulers"][0]["last_epoch"] == reference["lr_schedulers"][0]["last_epoch"]
    # same batches, same augmentation draws, same optimizer state: the same weights
    for key, value in reference["state_dict"].items():
        torch.testing.assert_close(after["state_dict"][key], value, rtol=1e-4, atol=1e-5)
    assert (
        after["state_dict"]["val_acc_best.max_value"]
        == reference["state_dict"]["val_acc_best.max_value"]
    )


def test_fresh_run_refuses_a_directory_with_checkpoints(tmp_path, tmp_cache):
    run = tmp_path / "run"
    cfg = compose_train([*tiny_overrides(), "debug=limit", "trainer.max_epochs=1"], run, tmp_cache)
    train(cfg)
    with pytest.raises(RunDirError, match="resume="):
        train(cfg)


def test_resume_errors_name_the_problem(tmp_path, tmp_cache):
    missing = tmp_path / "nope"
    cfg = compose_train([*tiny_overrides(), f"resume={missing}"], missing, tmp_cache)
    with pytest.raises(RunDirError, match="no such run directory"):
        train(cfg)
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = compose_train([*tiny_overrides(), f"resume={empty}"], empty, tmp_cache)
    with pytest.raises(RunDirError, match="last.ckpt"):
        train(cfg)


def test_resume_with_another_model_is_refused(tmp_path, tmp_cache):
    run = tmp_path / "run"
    base = [*tiny_overrides(), "debug=limit", "trainer.max_epochs=1"]
    train(compose_train(base, run, tmp_cache))
    cfg = compose_train([*base, "model.net.width=16", f"resume={run}"], run, tmp_cache)
    with pytest.raises(RunDirError, match="'model' differs"):
        train(cfg)


def test_checkpoints_load_with_weights_only(tmp_path, tmp_cache):
    run = tmp_path / "run"
    train(compose_train([*tiny_overrides(), "debug=limit"], run, tmp_cache))
    names = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert {"best.ckpt", "last.ckpt", "epoch001.ckpt"} <= set(names)
    for name in names:
        ckpt = torch.load(run / "checkpoints" / name, weights_only=True)
        assert ckpt["hyper_parameters"]["labels"] == sorted("亜唖娃阿哀")
    assert not list((run / "checkpoints").glob(".*tmp*"))
