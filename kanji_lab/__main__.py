"""``kanji-lab`` / ``python -m kanji_lab``: training with Hydra overrides, or, with ``read`` as
the first argument, the character reader (``kanji-lab read scan.png --k 5``,
:mod:`kanji_lab.read`)."""

from __future__ import annotations

import importlib.util
import sys

# what training imports that the base install (reading only) lacks
TRAINING_STACK = ("torch", "lightning", "hydra", "omegaconf", "safetensors", "torchmetrics")


def main() -> None:
    if sys.argv[1:2] == ["read"]:
        from kanji_lab.read import main as read

        raise SystemExit(read(sys.argv[2:], prog="kanji-lab read"))
    missing = missing_training_stack()
    if missing:
        raise SystemExit(
            f"error: training needs {', '.join(missing)}, which this install lacks (the base "
            "install only reads characters: kanji-lab read). Install the training stack with "
            "pip install 'kanji-lab[train]' (from a checkout: pip install -e '.[train]')"
        )
    from kanji_lab.entry import main as train

    train()


def missing_training_stack() -> list[str]:
    """The packages of :data:`TRAINING_STACK` that cannot be imported here."""
    return [name for name in TRAINING_STACK if importlib.util.find_spec(name) is None]


if __name__ == "__main__":
    main()
