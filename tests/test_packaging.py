"""Packaging: the configs ship inside the wheel, and the base install is the reader alone."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from kanji_lab.config import config_dir

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_every_config(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("kanji_lab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    conf = Path(config_dir())
    expected = {f"kanji_lab/conf/{p.relative_to(conf)}" for p in conf.rglob("*.yaml")}
    assert "kanji_lab/conf/train.yaml" in expected
    assert expected <= names
    assert {"kanji_lab/data/joyo.txt", "kanji_lab/data/char_frequency.json"} <= names
    # the web page's files ship as package data of kanji_lab.web
    static = ROOT / "kanji_lab" / "web" / "static"
    assert {f"kanji_lab/web/static/{p.name}" for p in static.iterdir()} <= names


def test_the_base_install_reads_and_the_train_extra_trains():
    """``pip install kanji-lab`` brings what reading needs; torch and the rest come with
    ``[train]``, which every extra that trains includes."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {req.split(">")[0].split("=")[0] for req in project["dependencies"]}
    assert base == {"onnxruntime", "numpy", "numba", "pillow"}
    extras = project["optional-dependencies"]
    assert {"torch>=2.6,<2.15", "lightning>=2.4,<2.8", "hydra-core>=1.3,<1.4"} <= set(
        extras["train"]
    )
    for extra in ("dev", "sweep", "slurm", "notebooks", "gpu"):
        assert "kanji-lab[train]" in extras[extra], extra


def test_training_without_the_train_extra_says_how_to_install_it():
    blocked = "import sys; sys.modules['torch'] = None; sys.argv = ['kanji-lab', 'model=cnn']; "
    run = "from kanji_lab.__main__ import main; main()"
    done = subprocess.run([sys.executable, "-c", blocked + run], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: training needs torch, which this install lacks (the base install only reads "
        "characters: kanji-lab read). Install the training stack with pip install "
        "'kanji-lab[train]' (from a checkout: pip install -e '.[train]')"
    ]


@pytest.mark.slow  # a fresh virtual environment and the base install: about a minute
def test_a_fresh_base_install_reads_without_torch(tmp_path):
    from PIL import Image, ImageDraw

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    install = [str(bin_dir / "pip"), "install", "-q", str(ROOT)]
    subprocess.run(install, check=True, capture_output=True, cwd=tmp_path)
    image = Image.new("L", (96, 96), 255)
    ImageDraw.Draw(image).line([(30, 12), (30, 84)], fill=0, width=7)  # 丨-like: one stroke
    image.save(tmp_path / "字.png")
    read = [str(bin_dir / "kanji-lab"), "read", str(tmp_path / "字.png"), "--k", "3", "--json"]
    done = subprocess.run(read, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (result,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert result["path"].endswith("字.png") and len(result["candidates"]) == 3
    no_torch = subprocess.run([str(bin_dir / "python"), "-c", "import torch"], capture_output=True)
    assert no_torch.returncode == 1
    train = subprocess.run([str(bin_dir / "kanji-lab")], capture_output=True, text=True)
    assert train.returncode == 1 and "kanji-lab[train]" in train.stderr
