"""Where the Hydra configs live, and the resolvers they use.

Configs are the top-level ``conf/`` folder of a checkout; an installed wheel carries the same files
as ``kanji_lab/conf``. Every entry point imports this module before Hydra composes a config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

_PACKAGE = Path(__file__).resolve().parent


def config_dir() -> str:
    """Absolute path of the config folder, from a wheel or from a checkout."""
    for candidate in (_PACKAGE / "conf", _PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"kanji_lab configs not found next to {_PACKAGE}: reinstall the package "
        "(pip install '.[train]')"
    )


def data_options() -> list[str]:
    """The names of ``conf/data/`` (what ``data=<name>`` accepts)."""
    return sorted(p.stem for p in (Path(config_dir()) / "data").glob("*.yaml"))


def data_config(name: str, **values: Any) -> DictConfig:
    """``data=<name>`` as Hydra composes it for the train command (defaults, interpolations
    resolved), with ``values`` set first (e.g. ``cache_dir``); KeyError for an unknown name."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if name not in data_options():
        raise KeyError(name)
    overrides = [f"data={name}"]
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app (or a test's compose)
        cfg = compose("train", overrides=overrides)
    else:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
    data = cfg.data
    with open_dict(data):
        for key, value in values.items():
            data[key] = value
    return OmegaConf.create(OmegaConf.to_container(data, resolve=True))


def user_cache_dir() -> str:
    """``$KANJI_LAB_CACHE``, else ``$XDG_CACHE_HOME/kanji_lab``, else ``~/.cache/kanji_lab``."""
    if os.environ.get("KANJI_LAB_CACHE"):
        return os.environ["KANJI_LAB_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "kanji_lab")


def first_set(*values: object) -> object:
    """The first value that is not None (``${kl.first:${resume},default}``)."""
    return next((v for v in values if v is not None), None)


for _name, _fn in {"kl.user_cache": user_cache_dir, "kl.first": first_set}.items():
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
