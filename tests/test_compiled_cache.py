"""The normalisation's compiled steps follow an edited clutter.py (numba's cache does not)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kanji_lab.data import normalize
from kanji_lab.data.normalize import drop_stale_compiled

# normalise a cell with a neighbour's fragment; print the input's ink (the fragment, when kept,
# shrinks the character)
PROBE = """
import numpy as np
from kanji_lab.data.normalize import normalize_ink
cell = np.zeros((128, 128), np.uint8)
cell[40:90, 60:66] = 255  # the character: one stroke
cell[0:4, 10:30] = 255  # a neighbour's stroke end at the top edge
print(int(normalize_ink(cell).astype(int).sum()))
"""


def test_cache_files_older_than_the_callee_are_dropped(tmp_path):
    names = ("normalize.f-1.py311.nbi", "normalize.f-1.py311.1.nbc", "clutter.g-2.py311.nbi")
    old, new, other = (tmp_path / n for n in names)
    for path in (old, new, other):
        path.write_bytes(b"x")
    now = time.time()
    os.utime(old, (now - 100, now - 100))
    os.utime(other, (now - 100, now - 100))
    drop_stale_compiled(tmp_path, "normalize", now - 50)
    assert not old.exists() and new.exists() and other.exists()
    drop_stale_compiled(tmp_path / "missing", "normalize", now)  # no cache folder: nothing to do


@pytest.mark.slow
def test_an_edited_clutter_step_is_compiled_anew(tmp_path):
    """Before the fix the second run printed the first run's figure: normalize.py's cached code
    still held the clutter step it was compiled with."""
    data = tmp_path / "kanji_lab" / "data"
    data.mkdir(parents=True)
    (tmp_path / "kanji_lab" / "__init__.py").write_text("")
    (data / "__init__.py").write_text("")
    source = Path(normalize.__file__).parent
    for name in ("normalize.py", "clutter.py"):
        shutil.copy(source / name, data / name)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def ink() -> int:
        done = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tmp_path,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return int(done.stdout.split()[-1])

    cleaned = ink()
    assert list((data / "__pycache__").glob("normalize.*.nbi"))  # it was cached
    edited = (data / "clutter.py").read_text()
    off = edited.replace("    if rules.band <= 0:\n        return scratch", "    return scratch", 1)
    assert off != edited
    (data / "clutter.py").write_text(off)
    later = time.time() + 5
    os.utime(data / "clutter.py", (later, later))
    assert ink() < cleaned  # the fragment now stays
