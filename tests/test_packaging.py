"""The configs must ship inside the wheel, not only live in a checkout."""

import subprocess
import sys
import zipfile
from pathlib import Path

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
    # the web page's files ship as package data of kanji_lab.web
    static = ROOT / "kanji_lab" / "web" / "static"
    assert {f"kanji_lab/web/static/{p.name}" for p in static.iterdir()} <= names
