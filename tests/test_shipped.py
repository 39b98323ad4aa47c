"""The recogniser shipped in the package: its registry entry says what it is and what was
measured of it, it stays within the size budget, and it reads characters out of the box."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kanji_lab.data.charsets import resolve_classes
from kanji_lab.data.kanjivg import load_strokes
from kanji_lab.recognizer import REGISTRY, Recognizer, shipped_models

MODELS = shipped_models()
pytestmark = pytest.mark.skipif(not MODELS, reason="no model is shipped in this checkout")
# a spread of the default set: kanji, hiragana, katakana, digits and Latin capitals
SAMPLE = "日本語学校電車右左森林あいうえおがぱアイウエオガパヴー0123ABCZ"


def strokes(char: str) -> list[np.ndarray]:
    ch = load_strokes(char)
    return [ch.points[s:e] for s, e in zip(ch.starts, ch.ends, strict=True)]


def test_the_default_entry_describes_its_file():
    model = MODELS[0]
    assert model.file.is_file() and model.file.parent == REGISTRY.parent
    assert model.file.stat().st_size < 2_000_000  # every committed file stays under 2 MB
    assert model.recipe.startswith("python -m kanji_lab") and len(model.commit) >= 7
    assert model.metrics["test_top1"] >= 0.95 and model.metrics["data"] == "synthetic"
    rec = Recognizer()
    assert rec.path == model.file and len(rec.labels) == model.classes
    assert set(rec.labels) == set(resolve_classes("combined"))  # the default class set


def test_it_reads_clean_traces_of_every_script():
    rec = Recognizer()
    readings = [rec.read_strokes(strokes(c), k=5) for c in SAMPLE]
    top1 = np.mean([r.char == c for r, c in zip(readings, SAMPLE, strict=True)])
    top5 = np.mean(
        [c in [x.char for x in r.candidates] for r, c in zip(readings, SAMPLE, strict=True)]
    )
    assert top1 >= 0.85 and top5 >= 0.95, [r.char for r in readings]


def test_the_read_command_uses_it(tmp_path):
    from PIL import Image, ImageDraw

    image = Image.new("L", (96, 96), 255)
    draw = ImageDraw.Draw(image)
    draw.line([(20, 48), (76, 48)], fill=0, width=6)  # 一
    path = tmp_path / "一.png"
    image.save(path)
    done = subprocess.run(
        [sys.executable, "-m", "kanji_lab.read", str(path), "--k", "5"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}\t") and "一" in done.stdout
