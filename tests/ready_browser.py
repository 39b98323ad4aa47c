"""``python -m tests.ready_browser``: the test command's set-up step for the browser tests.

Installs Debian's ``chromium`` with apt-get when it is missing and this is a root shell on
Debian/Ubuntu (otherwise it says how), and fetches the pinned ONNX Runtime Web into the npm cache
(what ``python -m kanji_lab.web`` does on its first run), so that missing npm or an unreachable
registry is reported here. It fails when such an install fails, or when something stays missing
and ``CI`` is set (the browser tests must run there); elsewhere the browser tests then skip with
a reason. A development step: the installed package never runs apt-get.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from kanji_lab.web.browser import INSTALL_HINT, chromium_path, fetch_runtime


def _can_apt() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt_install() -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            return False
    return chromium_path() is not None


def main() -> int:
    """0 when the browser tests can run or may skip; 1 when they must run and cannot: an
    install that was possible here failed (apt-get as root, npm on PATH), or ``CI`` is set."""
    from kanji_lab.web import WebError

    problems: list[tuple[str, bool]] = []  # (what, whether it fails the step everywhere)
    try:
        folder, version = fetch_runtime()
        print(f"tests.ready_browser: ONNX Runtime Web {version} in {folder}", file=sys.stderr)
    except WebError as exc:
        problems.append((str(exc), shutil.which("npm") is not None))
    if chromium_path() is None:
        tried = _can_apt()
        if not (tried and _apt_install()):
            failed = " (apt-get install chromium failed)" if tried else ""
            problems.append((f"no Chromium{failed}: {INSTALL_HINT}", tried))
    if chromium_path() is not None:
        print(f"tests.ready_browser: Chromium at {chromium_path()}", file=sys.stderr)
    for problem, _ in problems:
        print(f"tests.ready_browser: {problem}", file=sys.stderr)
    if any(hard for _, hard in problems) or (problems and os.environ.get("CI")):
        return 1
    if problems:
        print("  (the browser tests will be skipped)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
