"""Where the Hydra configs live, and the resolvers they use.

Configs are the top-level ``conf/`` folder of a checkout; an installed wheel carries the same files
as ``kanji_lab/conf``. Every entry point imports this module before Hydra composes a config.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

_PACKAGE = Path(__file__).resolve().parent


def config_dir() -> str:
    """Absolute path of the config folder, from a wheel or from a checkout."""
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"kanji_lab configs not found next to {_PACKAGE}: reinstall the package (pip install .)"
    )


def user_cache_dir() -> str:
    """``$XDG_CACHE_HOME/kanji_lab``, else ``~/.cache/kanji_lab``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "kanji_lab")


def first_set(*values: object) -> object:
    """The first value that is not None (``${kl.first:${resume},default}``)."""
    return next((v for v in values if v is not None), None)


for _name, _fn in {"kl.user_cache": user_cache_dir, "kl.first": first_set}.items():
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
