"""How well the KanjiVG radical data covers the class sets, and what HierCode makes of it.

For the 3,036 ETL9G classes and the combined ETL vocabulary: characters decomposed, atomic
(their own single component: kana, 一, 日, ...), without any KanjiVG file, distinct components and
structures, characters whose trees collide; for HierCode (default depth): distinct slots and
characters whose codes collide (they get a slot of their own); for the zero-shot split: how many
of the unseen kanji's slots the seen kanji provide.

    python experiments/radical_coverage.py

The combined vocabulary is built from the class lists in kanji_lab.data.charsets (ETL9G classes,
the hiragana row, katakana, digits, Latin capitals, ゛゜), not read from ETL files: it approximates
the ``combined_all_etl`` label set (about 3.2k classes). Writes experiments/results/
radical_coverage.json / .md and its results block in experiments/README.md.
"""

from __future__ import annotations

import argparse
import string
from typing import Any

if not __package__:  # run as a file: make `experiments` importable
    import _bootstrap  # noqa: F401
from experiments.results_io import record  # noqa: E402
from kanji_lab.data import radicals
from kanji_lab.data.charsets import etl9g_classes, hiragana_row, katakana, zero_shot_split
from kanji_lab.models.hiercode import code_slots, label_codes


def combined_vocabulary() -> list[str]:
    extra = [*hiragana_row(), *katakana(), *string.digits, *string.ascii_uppercase, "゛", "゜"]
    return list(dict.fromkeys([*etl9g_classes(), *extra]))


def hiercode_report(chars: list[str]) -> dict[str, Any]:
    codes = label_codes(chars, depth=2, max_children=4)
    own = [c for c, slots in codes.items() if slots[-1] == f"self:{c}"]
    slots = {s for code in codes.values() for s in code if not s.startswith("self:")}
    return {"slots": len(slots), "colliding_codes": "".join(own)}


def zero_shot_report() -> dict[str, Any]:
    seen, unseen = zero_shot_split()
    known = {s for code in label_codes(seen, 2, 4).values() for s in code}
    fractions = [
        sum(s in known for s in code) / len(code) for code in (code_slots(c) for c in unseen)
    ]
    return {
        "seen": len(seen),
        "unseen": len(unseen),
        "unseen_fully_covered": sum(f == 1 for f in fractions),
        "mean_known_slot_fraction": sum(fractions) / len(fractions),
    }


def report(name: str, chars: list[str]) -> dict[str, Any]:
    return {"set": name, **radicals.coverage(chars), "hiercode": hiercode_report(chars)}


def markdown(rows: list[dict[str, Any]], zs: dict[str, Any]) -> str:
    lines = [
        "Radical data (KanjiVG, CC BY-SA 3.0): `python experiments/radical_coverage.py`. The "
        "combined set is built from the class lists, not read from ETL files.",
        "",
        "| set | characters | decomposed | atomic (own component) | no KanjiVG file | distinct "
        "components | colliding trees | HierCode slots | colliding codes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        collide = " ".join(r["collisions"]) or "none"
        lines.append(
            f"| {r['set']} | {r['characters']:,} | {r['decomposed']:,} | {r['atomic']:,} | "
            f"{r['atomic_without_svg']} | {r['distinct_components']:,} | {collide} | "
            f"{r['hiercode']['slots']:,} | {r['hiercode']['colliding_codes'] or 'none'} |"
        )
    lines += [
        "",
        f"Zero-shot split: {zs['unseen']} unseen kanji, {zs['unseen_fully_covered']} of them "
        f"built only from slots that the {zs['seen']} seen kanji have; on average "
        f"{100 * zs['mean_known_slot_fraction']:.1f}% of an unseen kanji's slots are known.",
    ]
    return "\n".join(lines)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    rows = [report("ETL9G", etl9g_classes()), report("combined ETL", combined_vocabulary())]
    zs = zero_shot_report()
    for r in rows:
        print(f"{r['set']}: {r['decomposed']}/{r['characters']} decomposed, atomic: "
              f"{r['atomic_characters']}")  # fmt: skip
    record("radical_coverage", {"sets": rows, "zero_shot": zs}, markdown(rows, zs))
    print(markdown(rows, zs))


if __name__ == "__main__":
    main()
