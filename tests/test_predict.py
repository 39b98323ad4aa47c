"""``python -m kanji_lab.predict``: real-world images through every backend."""

import json
import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from kanji_lab.config import config_dir
from kanji_lab.predict import PredictError, predict, render
from kanji_lab.run_dir import RunDirError
from tests.deploy_run import deploy_run

GOOD = ["plain.png", "inverted.png", "offcentre.png", "colour.jpg", "tiny.png"]
BAD = {"corrupt.png": "not a readable image", "empty.png": "empty file", "blank.png": "no ink"}


def ink(k: int = 2) -> np.ndarray:
    """A tiny-data character (bars), ink = 1."""
    img = np.zeros((64, 64), np.float32)
    img[16 + 6 * k : 20 + 6 * k, 10:54] = 1.0
    img[10:54, 12 + 8 * k : 16 + 8 * k] = 1.0
    return img


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    mask = ink()
    paper = (255 - 255 * mask).astype(np.uint8)  # dark ink on white
    Image.fromarray(paper).save(folder / "plain.png")
    Image.fromarray(255 - paper).save(folder / "inverted.png")
    canvas = np.full((150, 220), 255, np.uint8)
    canvas[70:134, 130:194] = paper
    Image.fromarray(canvas).save(folder / "offcentre.png")
    rgb = np.stack([250 - 230 * mask, 245 - 200 * mask, 230 - 60 * mask], axis=-1)
    Image.fromarray(rgb.astype(np.uint8)).save(folder / "colour.jpg", quality=90)
    Image.fromarray(paper).resize((20, 20), Image.BILINEAR).save(folder / "tiny.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (folder / "empty.png").write_bytes(b"")
    Image.new("L", (64, 64), 255).save(folder / "blank.png")
    return folder


def predict_cfg(overrides):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("predict", overrides=overrides)


def run_predict(images, *extra, files=None):
    _, run, _ = deploy_run()
    paths = [str(images / f) for f in (files or GOOD)]
    cfg = predict_cfg([f"run_dir={run}", f"images=[{','.join(paths)}]", *extra])
    return {r["path"].rsplit("/", 1)[-1]: r for r in predict(cfg)}


def test_real_world_variants_agree(images):
    results = run_predict(images)
    tops = {name: r["topk"][0]["char"] for name, r in results.items()}
    # inverted and off-centre images normalise to the same input as the plain one
    assert tops["inverted.png"] == tops["plain.png"] == tops["offcentre.png"]
    for r in results.values():
        probs = [t["prob"] for t in r["topk"]]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert r["backend"] == "onnx"


@pytest.mark.parametrize("backend", ["int8", "torch", "nf4"])
def test_backends_agree_with_onnx(images, backend):
    onnx = run_predict(images, files=["plain.png"])["plain.png"]
    other = run_predict(images, f"backend={backend}", "topk=2", files=["plain.png"])["plain.png"]
    assert other["backend"] == backend and len(other["topk"]) == 2
    assert other["topk"][0]["char"] == onnx["topk"][0]["char"]


def test_bad_images_fail_alone(images):
    results = run_predict(images, files=[*BAD, "plain.png", "missing.png"])
    assert "topk" in results["plain.png"]
    for name, message in {**BAD, "missing.png": "no such file"}.items():
        assert message in results[name]["error"], results[name]


def test_folder_and_jsonl(images):
    _, run, _ = deploy_run()
    results = predict(predict_cfg([f"run_dir={run}", f"images={images}", "format=jsonl"]))
    assert len(results) == len(GOOD) + len(BAD)
    line = json.loads(render(results[0], "jsonl"))
    assert set(line) >= {"path", "backend"}
    assert render(next(r for r in results if "error" in r), "text").count(": error: ") == 1


def test_bad_options(images, tmp_path):
    with pytest.raises(PredictError, match="unknown backend"):
        run_predict(images, "backend=tensorrt")
    with pytest.raises(RunDirError, match="no such directory"):
        predict(predict_cfg([f"run_dir={tmp_path / 'nope'}", "images=[a.png]"]))
    with pytest.raises(RunDirError, match="kanji_lab.export"):
        predict(predict_cfg([f"run_dir={tmp_path}", "images=[a.png]"]))


def test_command_line_exit_status_and_jsonl(images, tmp_path):
    _, run, _ = deploy_run()
    files = f"[{images / 'plain.png'},{images / 'corrupt.png'}]"
    command = [sys.executable, "-m", "kanji_lab.predict", f"run_dir={run}", f"images={files}"]
    done = subprocess.run([*command, "format=jsonl"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [("topk" in r, "error" in r) for r in lines] == [(True, False), (False, True)]
    assert not any(tmp_path.iterdir())  # predict writes nothing
