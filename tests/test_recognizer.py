"""``kanji_lab.Recognizer`` and ``kanji-lab read``: every input type, batching, per-input errors,
the registry of shipped models, agreement with ``predict``, and use without PyTorch."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
import textwrap
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kanji_lab import Recognizer, recognizer
from kanji_lab.data.normalize import strokes_input
from kanji_lab.inference import INT8_FILE, ONNX_FILE, model_batch, open_onnx, top_k
from kanji_lab.read import main as read_main
from kanji_lab.recognizer import ModelError, ReadError
from tests.deploy_run import deploy_run

ROOT = Path(__file__).resolve().parents[1]
STROKES = [[(10, 22), (54, 22)], [(30, 10), (30, 54)], [(12, 40), (50, 44), (52, 46)]]


def character(k: int) -> np.ndarray:
    """Dark ink on white paper, in the tiny data's bar patterns."""
    img = np.full((64, 64), 255, np.uint8)
    img[16 + 6 * k : 20 + 6 * k, 10:54] = 0
    img[10:54, 12 + 8 * k : 16 + 8 * k] = 0
    return img


@pytest.fixture(scope="module")
def run() -> Path:
    return deploy_run()[1]


@pytest.fixture(scope="module")
def rec(run) -> Recognizer:
    return Recognizer(run)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """A folder of good images (one with a Japanese name, one in a sub-folder) and bad files."""
    folder = tmp_path_factory.mktemp("scans")
    for k in range(5):
        Image.fromarray(character(k)).save(folder / f"c{k}.png")
    Image.fromarray(character(1)).save(folder / "字.png")
    (folder / "sub").mkdir()
    Image.fromarray(255 - character(3)).save(folder / "sub" / "inverted.jpg", quality=95)
    (folder / "sub" / "notes.txt").write_text("not an image, not collected")
    return folder


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (folder / "empty.png").write_bytes(b"")
    Image.new("L", (64, 64), 255).save(folder / "blank.png")
    return folder


def same(a, b) -> bool:
    """Two readings agree: the same characters in order, probabilities to float precision."""
    return [c.char for c in a.candidates] == [c.char for c in b.candidates] and np.allclose(
        [c.prob for c in a.candidates], [c.prob for c in b.candidates], rtol=1e-5, atol=1e-7
    )


def test_every_input_type_reads_the_same(rec, images):
    img = character(2)
    Image.fromarray(img).save(images / "two.png")
    want = rec.read(images / "two.png", k=5)
    assert want.ok and want.source.endswith("two.png") and len(want.candidates) == 5
    assert want.char == want.candidates[0].char and want.prob == want.candidates[0].prob
    probs = [c.prob for c in want.candidates]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    variants = {
        "str path": str(images / "two.png"),
        "PIL grey": Image.fromarray(img),
        "PIL RGB": Image.fromarray(img).convert("RGB"),
        "numpy grey": img,
        "numpy RGB": np.stack([img] * 3, axis=-1),
        "numpy RGBA": np.dstack([img] * 3 + [np.full_like(img, 255)]),
        "numpy (H, W, 1)": img[:, :, None],
        "numpy float 0..1": img / 255.0,
        "numpy int64": img.astype(np.int64),
        "inverted polarity": 255 - img,
        "larger, off-centre": np.pad(img, ((40, 5), (70, 12)), constant_values=255),
    }
    for name, value in variants.items():
        got = rec.read(value, k=5)
        assert same(got, want), (name, got, want)
    assert rec.read(img).source == "<array #0>" and len(rec.read(img).candidates) == 1


def test_strokes_are_drawn_like_the_browser(rec):
    got = rec.read_strokes(STROKES, k=3)
    # the model's own normalisation settings, the canonical pen: kanji_lab.data.normalize
    model = open_onnx(rec.path)
    image = strokes_input([np.array(s, float) for s in STROKES], settings=model.normalization)
    (want,) = top_k(model.logits(model_batch(image[None])), model.labels, 3)
    assert got.source == "<strokes>"
    assert [(c.char, c.prob) for c in got.candidates] == [(t["char"], t["prob"]) for t in want]
    # numpy strokes, scaled and shifted (pad coordinates in any unit) read the same
    scaled = [np.array(s, float) * 7.5 + 100 for s in STROKES]
    assert same(rec.read_strokes(scaled, k=3), got)
    for strokes in ([], [[]], [[(1, 2, 3)]], [[(0, 0), (np.nan, 1)]], 5):
        with pytest.raises(ReadError, match="^strokes: "):
            rec.read_strokes(strokes)


def test_read_many_batches_like_one_by_one(rec, images):
    inputs = [images / f"c{k}.png" for k in range(5)]
    inputs += [character(4), Image.fromarray(255 - character(0)), 255 - character(2)]
    one_by_one = [rec.read(x, k=3) for x in inputs]
    for batch_size in (1, 3, 256):
        batched = rec.read_many(iter(inputs), k=3, batch_size=batch_size)
        assert len(batched) == len(inputs)
        assert all(same(a, b) for a, b in zip(batched, one_by_one, strict=True)), batch_size
    sources = [r.source for r in rec.read_many(inputs, batch_size=3)]
    assert sources[:5] == [str(p) for p in inputs[:5]]
    assert sources[5:] == ["<array #5>", "<PIL image #6>", "<array #7>"]
    assert rec.read_many([]) == []
    with pytest.raises(TypeError, match="read\\(\\) takes one"):
        rec.read_many(str(inputs[0]))
    with pytest.raises(ValueError, match="batch_size"):
        rec.read_many(inputs, batch_size=0)
    with pytest.raises(ValueError, match="k must"):
        rec.read(inputs[0], k=0)


def test_read_iter_takes_a_stream_batch_by_batch_and_any_thread_count_reads_the_same(run, images):
    """A stream is taken one batch at a time (an endless one works), and the model's thread
    count does not change what it reads."""
    taken = []

    def stream():
        for i in itertools.count():
            taken.append(i)
            yield images / f"c{i % 5}.png"

    readings = Recognizer(run, threads=3).read_iter(stream(), k=2, batch_size=2)
    first = [next(readings) for _ in range(3)]
    assert all(r.ok for r in first) and len(taken) == 4
    inputs = [images / f"c{k}.png" for k in range(5)] * 3
    one = Recognizer(run, threads=1).read_many(inputs, k=3, batch_size=4)
    many = Recognizer(run, threads=4).read_many(inputs, k=3, batch_size=4)
    assert all(same(a, b) for a, b in zip(one, many, strict=True))
    assert [r.source for r in many] == [str(p) for p in inputs]


def test_bad_inputs_fail_alone(rec, images, bad):
    good = images / "c1.png"
    inputs = [
        bad / "missing.png",
        good,
        bad / "corrupt.png",
        bad / "empty.png",
        bad / "blank.png",
        images / "sub" / "notes.txt",
        np.zeros((30, 30), np.uint8),
        np.zeros(5),
        np.full((8, 8), 300),
        42,
        None,
        b"bytes",
        images,
        character(1),
    ]
    readings = rec.read_many(inputs, k=2, batch_size=4)
    errors = {i: r.error for i, r in enumerate(readings) if not r.ok}
    assert set(errors) == set(range(len(inputs))) - {1, len(inputs) - 1}
    expected = {
        0: "no such file",
        2: "not a readable image",
        3: "empty file",
        4: "no ink",
        5: "not a readable image",
        6: "no ink",
        7: "not an image",
        8: "outside 0..255",
        9: "unsupported input type int",
        10: "unsupported input type NoneType",
        11: "unsupported input type bytes",
        12: "a folder",
    }
    for i, message in expected.items():
        assert message in errors[i] and "\n" not in errors[i], (i, errors[i])
        assert readings[i].char is None and readings[i].prob is None
        assert readings[i].to_dict() == {"error": errors[i]}
    assert same(readings[1], readings[-1]) and readings[1].ok
    for value, message in ((bad / "missing.png", "missing.png: no such file"), (42, "#0")):
        with pytest.raises(ReadError, match=message):
            rec.read(value)


def test_recognizer_top1_agrees_with_predict(rec, run, images, tmp_path):
    command = [
        sys.executable,
        "-m",
        "kanji_lab.predict",
        f"run_dir={run}",
        f"images={images}",
        "format=jsonl",
        "topk=3",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    predicted = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(predicted) >= 7
    readings = rec.read_many([r["path"] for r in predicted], k=3)
    for p, r in zip(predicted, readings, strict=True):
        assert r.char == p["topk"][0]["char"], (p, r)
        assert np.allclose([c.prob for c in r.candidates], [t["prob"] for t in p["topk"]])


def test_model_files_and_names(run, tmp_path):
    int8 = Recognizer(run / INT8_FILE)
    assert int8.path == run / INT8_FILE and int8.labels == Recognizer(run).labels
    assert int8.read(character(0)).ok
    assert repr(int8).startswith("Recognizer(")
    with pytest.raises(ModelError, match="kanji_lab.export"):
        Recognizer(tmp_path)  # a folder without model.onnx
    with pytest.raises(ModelError, match="no such run directory"):
        Recognizer(tmp_path / "nope")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a model"):
        Recognizer(tmp_path / "junk.onnx")
    with pytest.raises(ValueError, match="invert"):
        Recognizer(run, invert="sometimes")
    # prior= as in predict: a positive weight changes the scores, a negative one is refused
    assert Recognizer(run, prior=1.0).read(character(0)).ok
    with pytest.raises(ValueError, match="prior"):
        Recognizer(run, prior=-1)


def write_registry(folder: Path, run: Path, classes: int = 5) -> Path:
    shutil.copy(run / INT8_FILE, folder / "tiny.int8.onnx")
    entry = {
        "name": "tiny",
        "file": "tiny.int8.onnx",
        "classes": classes,
        "description": "the test suite's tiny model",
        "recipe": "tests/deploy_run.py",
        "commit": "0000000",
        "metrics": {"test_top1": 0.5},
    }
    path = folder / "registry.json"
    path.write_text(json.dumps({"models": [entry]}), encoding="utf-8")
    return path


def test_shipped_registry(run, tmp_path, monkeypatch, capsys):
    # the registry in the package: valid, and empty until a model ships
    assert isinstance(Recognizer.models(), list)
    monkeypatch.setattr(recognizer, "REGISTRY", tmp_path / "registry.json")
    (tmp_path / "registry.json").write_text('{"models": []}')
    assert Recognizer.models() == []
    with pytest.raises(ModelError, match="no model is shipped .* run directory"):
        Recognizer()
    assert read_main([str(tmp_path)]) == 2
    assert "no model is shipped" in capsys.readouterr().err
    # one entry and its file: Recognizer() and Recognizer(name) load it
    write_registry(tmp_path, run)
    (shipped,) = Recognizer.models()
    assert (shipped.name, shipped.file, shipped.classes) == ("tiny", tmp_path / "tiny.int8.onnx", 5)
    assert shipped.metrics == {"test_top1": 0.5} and shipped.commit == "0000000"
    for rec in (Recognizer(), Recognizer("tiny")):
        assert rec.shipped == shipped and rec.path == shipped.file
        assert same(rec.read(character(1), k=3), Recognizer(shipped.file).read(character(1), k=3))
    Image.fromarray(character(1)).save(tmp_path / "a.png")
    assert read_main([str(tmp_path / "a.png")]) == 0  # the CLI's default model
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'a.png'}\t")
    with pytest.raises(ModelError, match=r"shipped: tiny\)"):
        Recognizer("other")
    write_registry(tmp_path, run, classes=3000)
    with pytest.raises(ModelError, match="3000 classes"):
        Recognizer()
    (tmp_path / "registry.json").write_text('{"models": [{"name": "x"}]}')
    with pytest.raises(ModelError, match="not a valid registry"):
        Recognizer.models()


def test_package_data_ships_the_registry_and_models():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # (no tomllib in 3.10)
    assert '\nkanji-lab = "kanji_lab.__main__:main"\n' in pyproject
    (listed,) = re.findall(r'^"kanji_lab" = (\[.*\])$', pyproject, re.MULTILINE)
    patterns = json.loads(listed)
    for name in ("shipped/registry.json", "shipped/kanji-2965.int8.onnx"):
        assert any(fnmatch(name, p) for p in patterns), name
    assert recognizer.REGISTRY == ROOT / "kanji_lab" / "shipped" / "registry.json"
    assert "models" in json.loads(recognizer.REGISTRY.read_text(encoding="utf-8"))


def test_shared_pieces_match_training():
    from kanji_lab.data.datamodule import model_input
    from kanji_lab.deploy import pipeline

    assert (ONNX_FILE, INT8_FILE) == (pipeline.ONNX_FILE, pipeline.INT8_FILE)
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    want = model_input(torch.from_numpy(images)).numpy()
    assert np.array_equal(model_batch(images), want)


def run_cli(*args: str, module: str = "kanji_lab.read", cwd: Path | None = None):
    command = [sys.executable, "-m", *module.split(), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cli_text_folder_and_japanese_names(run, images):
    done = run_cli(str(images / "字.png"), str(images / "sub"), "--model", str(run), "--k", "3")
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert [fields[0] for fields in lines] == [
        str(images / "字.png"),
        str(images / "sub" / "inverted.jpg"),
    ]
    for path, char, prob, candidates in lines:
        first = candidates.split(" ")[0]
        assert first == f"{char}:{prob}" and len(candidates.split(" ")) == 3
        assert Recognizer(run).read(path).char == char
    # `kanji-lab read` is the same command (the console script runs kanji_lab.__main__)
    again = run_cli("read", str(images / "字.png"), "--model", str(run), module="kanji_lab")
    assert again.returncode == 0, again.stderr
    assert again.stdout.rstrip("\n").split("\t") == lines[0][:3]  # k = 1: no candidates


def test_cli_json_and_exit_status(run, images, bad, tmp_path):
    done = run_cli(
        str(images),
        str(bad / "corrupt.png"),
        str(bad / "missing.png"),
        "--model",
        str(run / INT8_FILE),
        "--json",
        "--k",
        "2",
        "--batch-size",
        "2",
        "--threads",
        "2",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(r["path"]).name for r in rows[-2:]] == ["corrupt.png", "missing.png"]
    assert all(set(r) == {"path", "error"} for r in rows[-2:])
    good = rows[:-2]
    assert len(good) == len(list(images.rglob("*.png"))) + 1  # and sub/inverted.jpg
    assert all(set(r) == {"path", "char", "prob", "candidates"} for r in good)
    assert any(r["path"].endswith("字.png") for r in good)
    assert "2 of" in done.stderr and not any(tmp_path.iterdir())
    # bad usage and a model that cannot be loaded end with status 2, one line
    assert run_cli("a.png", "--k", "0").returncode == 2
    assert run_cli("a.png", "--threads", "0").returncode == 2
    done = run_cli("a.png", "--model", str(tmp_path / "nope"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


def test_works_without_torch(run, images):
    """Import and use with torch, Lightning, Hydra, OmegaConf and onnx unimportable."""
    script = textwrap.dedent(
        f"""
        import json, sys
        blocked = ("torch", "lightning", "hydra", "omegaconf", "onnx")
        for name in blocked:
            sys.modules[name] = None  # `import torch` raises ImportError
        import kanji_lab
        assert "onnxruntime" not in sys.modules  # the package itself loads no runtime
        from kanji_lab import Recognizer
        import numpy as np
        rec = Recognizer({str(run)!r})
        out = {{
            "path": rec.read({str(images / "字.png")!r}, k=2).to_dict(),
            "array": rec.read(np.asarray(255 - np.eye(40, dtype=np.uint8) * 255)).char,
            "strokes": rec.read_strokes({STROKES!r}).char,
            "many": [r.ok for r in rec.read_many([{str(images / "c0.png")!r}, 3])],
        }}
        from kanji_lab.read import main
        status = main([{str(images / "c0.png")!r}, "--model", {str(run)!r}])
        loaded = [m for m in sys.modules if m.split(".")[0] in blocked and sys.modules[m]]
        print(json.dumps({{**out, "status": status, "loaded": loaded}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["path"]["char"] in Recognizer(run).labels and len(out["path"]["candidates"]) == 2
    assert out["array"] and out["strokes"] and out["many"] == [True, False]
    assert out["status"] == 0 and out["loaded"] == []


def test_best_first_equals_a_full_stable_sort():
    from kanji_lab.inference import best_first

    scores = np.random.default_rng(0).random((16, 300))
    scores[:, 7] = scores[:, 9] = 2.0  # a tie: the lower index first
    for k in (1, 2, 5, 300):
        want = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        assert np.array_equal(best_first(scores, k), want), k
    assert best_first(scores, 2)[0].tolist() == [7, 9]
