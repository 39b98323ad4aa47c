"""``kanji-lab`` / ``python -m kanji_lab``: training with Hydra overrides, or, with ``read`` as
the first argument, the character reader (``kanji-lab read scan.png --k 5``,
:mod:`kanji_lab.read`)."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["read"]:
        from kanji_lab.read import main as read

        raise SystemExit(read(sys.argv[2:], prog="kanji-lab read"))
    from kanji_lab.train import main as train

    train()


if __name__ == "__main__":
    main()
