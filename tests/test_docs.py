"""The documents: the README stays a short manual whose two commands work, and every results
block (README or experiments/README.md) is what its script wrote into experiments/results/."""

import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXPERIMENTS = ROOT / "experiments" / "README.md"
MAIN_JOB = (
    "python3 -m venv .venv && .venv/bin/pip install -q torch==2.13.0 -e '.[train]' "
    "&& .venv/bin/python -m kanji_lab"
)


@pytest.fixture(scope="module")
def results_io():
    return importlib.import_module("experiments.results_io")


def _fenced_lines(text: str) -> list[str]:
    """The lines inside the document's code fences."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    return lines


@pytest.mark.parametrize("doc", [README, EXPERIMENTS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_results_block_equals_its_results_file(doc, results_io):
    blocks = results_io.blocks(doc.read_text())
    stale = [name for name, text in blocks.items() if text != results_io.block(name)]
    assert not stale, (
        f"{doc.name}: blocks {stale} differ from experiments/results/<name>.md; rerun their "
        "scripts, never edit a block by hand"
    )


def test_every_results_file_records_the_commit_it_measured(results_io):
    """A figure is only worth keeping with the code that produced it (ablation rows, each
    measured apart, record theirs per row)."""
    import json

    unproven = []
    for path in sorted(results_io.RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        records = result["rows"] if path.stem == "ablation_real" else [result]
        if not all(len(r.get("measured", {}).get("commit") or "") == 40 for r in records):
            unproven.append(path.name)
    assert not unproven, f"{unproven} record no commit: rerun their scripts or remove them"


def test_the_results_book_holds_the_blocks_and_the_readme_none(results_io):
    assert not results_io.blocks(README.read_text()), "figures live in experiments/README.md"
    names = results_io.blocks(EXPERIMENTS.read_text())
    assert {"default_run", "ablation_real", "bench_models", "bench_web"} <= set(names)


def test_results_io_writes_its_blocks_into_the_results_book(results_io):
    assert results_io.ROOT / results_io.DOC == EXPERIMENTS


def test_readme_is_a_short_manual():
    import re

    text = README.read_text()
    assert len(text.splitlines()) <= 350
    # measured figures live in experiments/README.md, written by the scripts
    assert not re.findall(r"\d+(?:\.\d+)? ?%", text)


def test_readme_keeps_the_two_commands_of_a_fresh_machine():
    fenced = _fenced_lines(README.read_text())
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert MAIN_JOB in fenced
    assert ci[-1] in fenced, "the README's test command must be .ci/run's last line, verbatim"


def test_readme_links_resolve():
    import re

    for target in re.findall(r"\]\(([^)#:]+)\)", README.read_text()):
        assert (ROOT / target).exists(), target


HYDRA_COMMANDS = {"kanji_lab": "train", **{f"kanji_lab.{m}": m for m in (
    "evaluate", "predict", "export", "web", "prepare", "dump")}}  # fmt: skip


def _readme_commands() -> list[list[str]]:
    """The README's ``python -m kanji_lab[.<command>] <overrides>`` lines (continuations joined,
    comments dropped), split as a shell would."""
    import shlex

    lines, joined = _fenced_lines(README.read_text()), []
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        else:
            joined.append(line)
    found = []
    for line in joined:
        command = line.split(" #")[0].strip()
        if command.startswith("python -m kanji_lab"):
            found.append(shlex.split(command)[2:])
    return found


def test_every_readme_command_composes_its_config():
    """Each Hydra command of the README, placeholders filled, composes with the shipped configs:
    no key, group or option in the manual that the code does not have. Multiruns (``-m``) are
    composed with the first value of each swept key; launcher and sweeper plugins are left to
    the tests that install them. (It found ``data.root=~/etl``, which Hydra cannot parse where
    the shell leaves the ``~``, as zsh does.)"""
    from kanji_lab.notebook import compose_config

    commands = _readme_commands()
    assert len(commands) >= 20
    for module, *args in commands:
        if module not in HYDRA_COMMANDS or any("launcher" in a or "hparams" in a for a in args):
            continue
        args = [os.path.expandvars(a) for a in args]
        overrides = [a.replace("<run>", "r").replace("...", "r") for a in args if a != "-m"]
        if "-m" in args:
            overrides = [a.split(",")[0] if "[" not in a else a for a in overrides]
        compose_config(overrides, HYDRA_COMMANDS[module])
