"""Makes ``import experiments`` work in a script run as a file (``python experiments/<x>.py``).

Python puts the script's folder, ``experiments/``, first on ``sys.path``, so ``experiments``
itself is not importable there; importing this module puts the repository root in front. Every
script starts its imports of shared code with::

    if not __package__:  # run as a file: make `experiments` importable
        import _bootstrap  # noqa: F401

``python -m experiments.<x>`` (from the repository root) needs none of it. This is the only place
in ``experiments/`` that changes ``sys.path``.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
