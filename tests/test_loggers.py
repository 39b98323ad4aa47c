"""Loggers: CSV always, W&B offline without an account, one W&B run per job."""

import json
import struct
import time
from pathlib import Path

import pytest
import wandb
from wandb.proto import wandb_internal_pb2 as pb

from kanji_lab.train import train
from kanji_lab.wandb_setup import flat_numbers, has_api_key, wandb_mode
from tests.conftest import compose_train, tiny_overrides


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """W&B with no credentials, its caches in tmp_path, quiet."""
    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for key in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(key, str(tmp_path / "wandb-home" / key.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield
    wandb.finish()


def test_mode_offline_unless_logged_in_or_set(tmp_path):
    netrc = tmp_path / "netrc"
    assert wandb_mode({"NETRC": str(netrc)}) == "offline"
    assert wandb_mode({"NETRC": str(netrc), "WANDB_API_KEY": "x" * 40}) == "online"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    netrc.chmod(0o600)
    assert has_api_key({"NETRC": str(netrc)})
    assert wandb_mode({"NETRC": str(netrc)}) == "online"
    assert not has_api_key({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.org"})
    assert wandb_mode({"NETRC": str(netrc), "WANDB_MODE": "disabled"}) == "disabled"


def test_flat_numbers_keeps_scalars_with_paths():
    flat = flat_numbers({"test/acc": 0.5, "timings": {"train_s": 3.0}, "best": None, "ok": True})
    assert flat == {"test/acc": 0.5, "timings/train_s": 3.0}


def _offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def _records(path: Path) -> list[pb.Record]:
    """The records of an offline ``run-*.wandb`` file: a 7-byte W&B header, then a LevelDB log
    (32 KiB blocks; each chunk: crc32, length, type 1 full / 2 first / 3 middle / 4 last)."""
    raw, block = path.read_bytes(), 32768
    assert raw[:4] == b":W&B"
    pos, chunks, records = 7, b"", []
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", raw[pos + 4 : pos + 7])
        chunks += raw[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunks)
            records.append(record)
            chunks = b""
    return records


def _config_and_summary(run: Path) -> tuple[dict, dict]:
    config, summary = {}, {}
    for record in _records(next(run.glob("run-*.wandb"))):
        kind = record.WhichOneof("record_type")
        updates = {
            "run": lambda r: r.run.config.update,
            "config": lambda r: r.config.update,
            "summary": lambda r: r.summary.update,
        }
        if kind in updates:
            target = summary if kind == "summary" else config
            for item in updates[kind](record):
                target[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return config, summary


def test_many_writes_csv_and_one_offline_wandb_run_per_job(tmp_path, tmp_cache, wandb_env):
    overrides = [*tiny_overrides(), "debug=limit", "logger=many"]
    for job in ("0", "1"):  # like two multirun jobs in one process
        metrics = train(compose_train(overrides, tmp_path / job, tmp_cache))
        assert wandb.run is None, "the W&B run must be finished at the end of each job"
        assert (tmp_path / job / "csv" / "metrics.csv").is_file()
        runs = _offline_runs(tmp_path / job)
        assert len(runs) == 1, runs
        for _ in range(50):  # wandb-core may still be writing the last records
            config, summary = _config_and_summary(runs[0])
            if "parameters" in summary:
                break
            time.sleep(0.2)
        assert config["model"]["net"]["width"] == 8, "the resolved Hydra config"
        assert config["data"]["name"] == "tiny"
        assert summary["parameters"] == metrics["parameters"]
        assert summary["test/acc"] == pytest.approx(metrics["test/acc"])
    ids = {_offline_runs(tmp_path / job)[0].name.rsplit("-", 1)[1] for job in ("0", "1")}
    assert len(ids) == 2


def test_wandb_disabled_mode_writes_no_run(tmp_path, tmp_cache, wandb_env, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    train(compose_train([*tiny_overrides(), "debug=fdr", "logger=wandb"], tmp_path, tmp_cache))
    assert not _offline_runs(tmp_path)


def test_resumed_run_continues_the_same_wandb_run(tmp_path, tmp_cache, wandb_env):
    run = tmp_path / "run"
    overrides = [*tiny_overrides(), "debug=limit", "logger=wandb", "export.onnx=false"]
    train(compose_train([*overrides, "trainer.max_epochs=1"], run, tmp_cache))
    assert len(_offline_runs(run)) == 1
    # resumed (here: with nothing left to train) into the same directory
    train(compose_train([*overrides, "trainer.max_epochs=1", f"resume={run}"], run, tmp_cache))
    runs = _offline_runs(run)
    # offline-run-<time>-<id>, and W&B adds -1 when both starts fall in the same second
    ids = {p.name.split("-")[3] for p in runs}
    assert len(runs) == 2 and len(ids) == 1, "one W&B run id for the whole run, resume included"
    assert ids == {(run / "wandb" / "run_id").read_text().strip()}
