"""The package's layers import one way: errors below everything, data below models, and the
library never installs system packages."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kanji_lab"
ABOVE_DATA = ("models", "deploy", "callbacks", "train", "evaluate", "predict", "export", "web")


def imports(path: Path) -> set[str]:
    """The kanji_lab modules a file imports (``from kanji_lab.data import x`` counts as
    ``kanji_lab.data.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return {name for name in found if name.startswith("kanji_lab")}


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def test_errors_import_no_feature_module():
    assert imports(PACKAGE / "errors.py") == set()


@pytest.mark.parametrize("path", modules("data"), ids=lambda p: p.name)
def test_data_imports_nothing_above_it(path):
    above = {f"kanji_lab.{name}" for name in ABOVE_DATA}
    assert not {m for m in imports(path) if any(m.startswith(a) for a in above)}


@pytest.mark.parametrize("path", modules("models"), ids=lambda p: p.name)
def test_models_take_only_the_radical_trees_from_data(path):
    """Networks are built from KanjiVG's trees when new; nothing else of data/ is theirs."""
    taken = {m for m in imports(path) if m.startswith("kanji_lab.data")}
    assert taken <= {"kanji_lab.data", "kanji_lab.data.radicals"}


def test_cache_modules_import_one_way():
    assert not {m for m in imports(PACKAGE / "data" / "cache.py") if "cache_writer" in m}


def test_the_package_never_runs_a_system_package_manager():
    """Readying Chromium for the tests is tests/ready_browser.py's, outside the package."""
    managers = {"apt-get", "apt", "dnf", "yum", "apk"}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert not literals & managers, path
