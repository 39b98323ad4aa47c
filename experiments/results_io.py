"""Shared by the experiment scripts: write a results file and copy its table into the README."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"


def record(name: str, result: dict[str, Any], markdown: str) -> None:
    """Write ``results/<name>.json`` and ``results/<name>.md`` and replace the README block
    between ``<!-- results:<name> -->`` and ``<!-- /results:<name> -->`` with ``markdown``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown.strip() + "\n")
    readme = ROOT / "README.md"
    text = readme.read_text()
    pattern = re.compile(rf"(<!-- results:{name} -->\n).*?(<!-- /results:{name} -->)", re.S)
    if pattern.search(text):
        readme.write_text(pattern.sub(lambda m: m[1] + markdown.strip() + "\n" + m[2], text))


def table(rows: list[tuple[str, Any]]) -> str:
    """A two-column markdown table."""
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)
