"""Checks that data can be learned from: a source whose images are blank after normalisation
(an inverted file, a wrong format read as another) trains at chance without any error."""

from __future__ import annotations

import numpy as np

# an ink-bright uint8 image whose levels span less than this holds no character
MIN_SPAN = 32
SAMPLE = 2000


def blank_counts(
    images: np.ndarray, sources: np.ndarray, names: list[str], sample: int = SAMPLE
) -> dict[str, tuple[int, int]]:
    """Per source name: (blank or uniform images, images checked), from an even sample of at
    most ``sample`` images of each source."""
    counts = {}
    for code, name in enumerate(names):
        rows = np.flatnonzero(sources == code)
        if not len(rows):
            continue
        rows = rows[np.linspace(0, len(rows) - 1, min(sample, len(rows))).astype(int)]
        picked = np.asarray(images[rows]).reshape(len(rows), -1)
        span = picked.max(axis=1).astype(int) - picked.min(axis=1).astype(int)
        counts[name] = (int((span < MIN_SPAN).sum()), len(rows))
    return counts


def blank_warnings(counts: dict[str, tuple[int, int]], most: float = 0.5) -> list[str]:
    """One warning per source where more than ``most`` of the images checked are blank."""
    return [
        f"{blank:,} of {checked:,} images checked of {name} are blank or uniform after "
        "normalisation: the model cannot learn from them (an inverted or misread file? for "
        "image folders see data.invert)"
        for name, (blank, checked) in counts.items()
        if blank > most * checked
    ]
