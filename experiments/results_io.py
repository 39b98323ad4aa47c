"""Shared by the experiment scripts: write a results file and copy its table into
``experiments/README.md`` (the results book; the top-level README holds no figures). Running
kanji_lab commands is :mod:`experiments.harness`.

A results block is the text between ``<!-- results:<name> -->`` and ``<!-- /results:<name> -->``;
it always equals :func:`block` of its name (``tests/test_docs.py`` checks every one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kanji_lab.atomic import write_json, write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
# the document whose results blocks the scripts rewrite, relative to ROOT
DOC = Path("experiments") / "README.md"
# a block whose results file does not exist yet
NOT_MEASURED = "Not measured yet (no `experiments/results/{name}.json`): its script writes this."


def record(name: str, result: dict[str, Any], markdown: str, readme: bool = True) -> None:
    """Write ``results/<name>.json`` and ``results/<name>.md`` and (unless ``readme`` is false)
    replace the block between ``<!-- results:<name> -->`` and ``<!-- /results:<name> -->`` of
    ``experiments/README.md`` with :func:`block` (``markdown``). The JSON also records what was
    measured where (:func:`provenance`)."""
    write_json(RESULTS / f"{name}.json", {**result, "measured": provenance()})
    render(name, markdown, readme)


def render(name: str, markdown: str, readme: bool = True) -> None:
    """Write ``results/<name>.md`` (and the README block) anew from ``markdown``, leaving
    ``results/<name>.json`` and its provenance as measured: for a table whose columns change."""
    write_text(RESULTS / f"{name}.md", markdown.strip() + "\n")
    if not readme:
        return
    doc = ROOT / DOC
    text = doc.read_text()
    pattern = _pattern(re.escape(name))
    if pattern.search(text):
        write_text(doc, pattern.sub(lambda m: m[1] + block(name) + m[4], text))


def block(name: str) -> str:
    """What the results block ``name`` holds: the markdown :func:`record` wrote with
    ``results/<name>.json`` (``results/<name>.md``), or :data:`NOT_MEASURED` while there is no
    such results file."""
    if not (RESULTS / f"{name}.json").is_file():
        return NOT_MEASURED.format(name=name) + "\n"
    return (RESULTS / f"{name}.md").read_text().strip() + "\n"


def blocks(text: str) -> dict[str, str]:
    """The results blocks of a document: name -> the text between its two markers."""
    return {m[2]: m[3] for m in _pattern(r"\w+").finditer(text)}


def _pattern(name: str) -> re.Pattern[str]:
    """Groups: the opening marker line, the name, the block, the closing marker."""
    return re.compile(rf"(<!-- results:({name}) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)


def git(*args: str, cwd: Path = ROOT) -> str:
    """The output of ``git args`` in ``cwd`` (the repository by default), stripped."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    return done.stdout.strip()


def provenance() -> dict[str, Any]:
    """The commit (and whether the tree was dirty), date, machine, package versions and the
    exact command of a measurement."""
    import importlib.metadata
    import platform

    packages = ("torch", "numpy", "onnxruntime", "lightning", "numba")
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}",
        "packages": {p: importlib.metadata.version(p) for p in packages},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def table(rows: list[tuple[Any, ...]], head: tuple[str, ...] = ("figure", "value")) -> str:
    """A markdown table of ``rows`` under the column names ``head``."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
