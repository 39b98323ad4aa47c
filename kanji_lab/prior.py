"""A character-frequency prior for inference: how often each character occurs in Japanese text.

A recogniser that loses top-1 to a near neighbour (そ read as 千, へ as 八) can be helped by how
likely each candidate is in real text. With weight ``w``, a class's score becomes

    log p_model(c | image) + w * log p_text(c)

and the probabilities are the softmax of those scores: ``w = 0`` is the model alone, ``w = 1`` a
full Bayes posterior under the text distribution. Test sets are not drawn by frequency (every
class equally often), so ``evaluate`` reports its plain ``top1`` with the model alone and the
prior's figure beside it.

``p_text`` comes from :data:`TABLE`, character frequencies summed over the words of the
Japanese "best" word list of `wordfreq <https://github.com/rspeer/wordfreq>`_ (data CC BY-SA 4.0,
credited in the README), shipped in the package so that inference needs no extra install. A class
the table lacks gets the frequency of :data:`FLOOR`. ``python -m kanji_lab.prior`` rewrites the
table (needs ``pip install wordfreq``).
"""

from __future__ import annotations

import argparse
import json
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

from kanji_lab.errors import UserError

TABLE = Path(__file__).parent / "data" / "char_frequency.json"
FLOOR = 1e-8  # frequency given to a character the table lacks (rarer than any listed)


class PriorError(UserError, ValueError):
    """A prior weight that is not 0 or positive."""


def checked_weight(value: float | str | None) -> float:
    """The prior's weight from a config value (None: 0, off); negative weights are refused."""
    try:
        weight = float(value or 0.0)
    except (TypeError, ValueError):
        raise PriorError(
            f"prior={value}: the prior's weight must be a number, 0 (off) or more"
        ) from None
    if not weight >= 0:
        raise PriorError(f"prior={value}: the prior's weight must be 0 (off) or positive")
    return weight


@lru_cache(maxsize=1)
def frequencies() -> dict[str, float]:
    """Character -> its share of the characters of Japanese text."""
    return json.loads(TABLE.read_text(encoding="utf-8"))["frequency"]


def log_prior(labels: list[str]) -> np.ndarray:
    """``log p_text`` of each class, normalised over ``labels`` (float32)."""
    table = frequencies()
    freq = np.array([table.get(c, 0.0) for c in labels], np.float64) + FLOOR
    return np.log(freq / freq.sum()).astype(np.float32)


def rescore(logits: np.ndarray, prior: np.ndarray, weight: float) -> np.ndarray:
    """Scores ``log_softmax(logits) + weight * prior`` (rows of ``logits``); ``weight = 0``
    leaves the model's ranking as it is."""
    weight = checked_weight(weight)
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    z = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return z + weight * prior.astype(np.float64)


def build_table() -> dict[str, object]:
    """Character frequencies from wordfreq's Japanese list (letters, digits and marks only)."""
    import importlib.metadata

    import wordfreq

    counts: dict[str, float] = {}
    for word, freq in wordfreq.get_frequency_dict("ja", wordlist="best").items():
        for char in word:
            if unicodedata.category(char)[0] in "LN" or char in "ー々〆ゝゞヽヾ":
                counts[char] = counts.get(char, 0.0) + freq
    total = sum(counts.values())
    return {
        "source": f"wordfreq {importlib.metadata.version('wordfreq')}, Japanese 'best' word "
        "list, character frequencies summed over words (data CC BY-SA 4.0, Robyn Speer)",
        "frequency": {c: float(f"{v / total:.4g}") for c, v in sorted(counts.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Rewrite the character-frequency table.")
    parser.add_argument("--out", type=Path, default=TABLE)
    args = parser.parse_args()
    table = build_table()
    args.out.write_text(json.dumps(table, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{len(table['frequency'])} characters -> {args.out}")


if __name__ == "__main__":
    main()
