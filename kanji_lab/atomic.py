"""The one way kanji_lab writes a file or a folder: atomically, so a kill never leaves half of one.

Everything is written under a temporary name next to its target (``.<name>.tmp<pid>`` for
files, ``<name>.tmp<pid>`` for folders), flushed to disk and renamed over the target: a reader
sees the old file or the new one, never a mix. A kill leaves only the temporary behind;
:func:`remove_stale` deletes those whose process is gone (each command calls it for the folders
it writes into before it starts).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_TMP = re.compile(r"\.tmp(\d+)")


def temporary_file(path: Path) -> Path:
    """The temporary name :func:`atomic_file` writes ``path`` under (same folder; another
    suffix, so that no glob for the target's kind, e.g. ``*.ckpt``, takes it for one)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def temporary_dir(path: Path) -> Path:
    """The temporary name :func:`atomic_dir` builds the folder ``path`` under."""
    path = Path(path)
    return path.with_name(f"{path.name}.tmp{os.getpid()}")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on success it is synced and renamed
    over ``path``, on an error it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_file(path)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder to fill; on success it replaces the folder ``path``, on
    an error it is removed."""
    path = Path(path)
    tmp = temporary_dir(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(tmp: Path, path: Path) -> None:
    """Sync the files of the finished folder ``tmp`` and rename it over ``path``."""
    for child in Path(tmp).iterdir():
        if child.is_file():
            with open(child, "rb+") as fh:
                os.fsync(fh.fileno())
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, payload: Any, indent: int | None = 2) -> Path:
    """``payload`` as UTF-8 JSON (non-ASCII kept), written atomically."""
    return write_text(path, json.dumps(payload, ensure_ascii=False, indent=indent) + "\n")


def _owner_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale(folder: Path, stem: str | None = None) -> list[Path]:
    """Delete the temporaries in ``folder`` (only those of ``stem``, when given: the name of the
    file or folder they stand in for) whose writing process no longer runs; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        match = _TMP.search(entry.name)
        if match is None:
            continue
        base = entry.name[: match.start()].lstrip(".")
        if stem is not None and base != stem:
            continue
        if _owner_alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
