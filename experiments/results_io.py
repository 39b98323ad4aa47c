"""Shared by the experiment scripts: write a results file and copy its table into the README."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kanji_lab.atomic import write_json, write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"


def record(name: str, result: dict[str, Any], markdown: str, readme: bool = True) -> None:
    """Write ``results/<name>.json`` and ``results/<name>.md`` and (unless ``readme`` is false)
    replace the README block between ``<!-- results:<name> -->`` and ``<!-- /results:<name> -->``
    with ``markdown``."""
    write_json(RESULTS / f"{name}.json", result)
    write_text(RESULTS / f"{name}.md", markdown.strip() + "\n")
    if not readme:
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    pattern = re.compile(rf"(<!-- results:{name} -->\n).*?(<!-- /results:{name} -->)", re.S)
    if pattern.search(text):
        write_text(readme, pattern.sub(lambda m: m[1] + markdown.strip() + "\n" + m[2], text))


def table(rows: list[tuple[str, Any]]) -> str:
    """A two-column markdown table."""
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)
