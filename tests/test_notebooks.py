"""The notebooks: committed without outputs; executed top to bottom in the slow tier."""

import json
from pathlib import Path

import pytest

from kanji_lab.train import train
from tests.conftest import compose_train

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
# the default synthetic source, cut to a few classes so that generating it takes seconds
FEW_CLASSES = 'data.classes="亜唖娃阿哀"'


def test_notebooks_are_committed_without_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01_data_source.ipynb", "02_inspect_run.ipynb"]
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def _execute(path: Path, cwd: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="extra 'notebooks'")
    nbclient = pytest.importorskip("nbclient", reason="extra 'notebooks'")
    book = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()


@pytest.mark.slow
def test_notebooks_run_top_to_bottom(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("KANJI_LAB_NB_DATA", f"{FEW_CLASSES} paths.cache_dir={cache}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    _execute(NOTEBOOKS[0], tmp_path)

    run = tmp_path / "run"
    overrides = [FEW_CLASSES, "debug=limit", "callbacks.progress_bar=null"]
    train(compose_train(overrides, run, cache))
    monkeypatch.setenv("KANJI_LAB_RUN_DIR", str(run))
    _execute(NOTEBOOKS[1], tmp_path)


def test_load_run_in_two_lines(tmp_path, tmp_cache):
    from kanji_lab.notebook import load_run
    from tests.conftest import tiny_overrides

    train(compose_train([*tiny_overrides(), "debug=limit"], tmp_path / "run", tmp_cache))
    run = load_run(tmp_path / "run")
    scores = run.score("test")
    assert run.labels == sorted(run.labels) and len(run.labels) == 5
    assert scores["scored"] == len(run.images("test")) > 0
    assert set(scores["per_class"]) <= set(run.labels)
    assert not run.model.training
