"""``python -m kanji_lab.web [run_dir=<run>] out=site [serve=true] [variant=float]``: without a
run, the site runs the model shipped in the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from kanji_lab.config import config_dir
from kanji_lab.errors import reports_user_errors
from kanji_lab.prior import checked_weight
from kanji_lab.web.npm import runtime_dir
from kanji_lab.web.serve import server, url_of
from kanji_lab.web.site import build_site, describe


def build(cfg: DictConfig) -> dict[str, Any]:
    """Build the site ``cfg`` describes; returns what :func:`build_site` returns."""
    runtime = runtime_dir(Path(cfg.npm.cache_dir), str(cfg.npm.version), cfg.get("ort_dir"))
    return build_site(
        Path(cfg.run_dir) if cfg.get("run_dir") else None,
        Path(cfg.out),
        runtime,
        str(cfg.variant),
        cfg.npm.version,
        checked_weight(cfg.get("prior")),
    )


def serve_forever(folder: Path, host: str, port: int) -> None:
    httpd = server(folder, host, port)
    print(f"serving {folder} at {url_of(httpd)} (Ctrl-C stops)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


@hydra.main(config_path=config_dir(), config_name="web", version_base="1.3")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    info = build(cfg)
    print(f"wrote {Path(cfg.out).resolve()}: {describe(info)}", flush=True)
    if cfg.serve:
        serve_forever(Path(cfg.out), str(cfg.host), int(cfg.port))
