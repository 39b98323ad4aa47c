"""``kanji-lab read scan.png 字.jpg folder/ [--model <run dir or .onnx>] [--k 5] [--json]``
(also ``python -m kanji_lab.read ...``): the characters of image files, through
:class:`kanji_lab.Recognizer` (no PyTorch needed).

Folders are searched recursively for image files. Text output, one line per image on stdout:
``path<TAB>char<TAB>prob``, and with ``--k`` above 1 a fourth field, the candidates in order as
``char:prob`` separated by spaces. ``--json``: one JSON object per line, ``{path, char, prob}``
plus ``candidates`` (``[{char, prob}]``) when ``--k`` is above 1, or ``{path, error}``. A file
that cannot be read gets one error line (stderr in text mode) and the others still run; the exit
status is then 1. A model that cannot be loaded ends the command with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from kanji_lab.errors import USER_ERRORS
from kanji_lab.inference import IMAGE_SUFFIXES, collect_images
from kanji_lab.recognizer import Reading, Recognizer


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    suffixes = " ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
    p = argparse.ArgumentParser(
        prog=prog,
        description="Read handwritten Japanese characters from image files.",
        epilog=f"Folders are searched recursively for {suffixes} files.",
    )
    p.add_argument("paths", nargs="+", help="image files and folders")
    p.add_argument(
        "--model",
        help="a run directory (its model.onnx), an .onnx file or a shipped model's name "
        "(default: the default shipped model)",
    )
    p.add_argument("--k", type=positive, default=1, help="candidates per image (default 1)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--batch-size", type=positive, default=256, help="images per model run")
    p.add_argument(
        "--threads",
        type=positive,
        help="ONNX Runtime threads (default: the runtime's own choice, every core)",
    )
    p.add_argument(
        "--prior",
        type=float,
        default=0.0,
        help="weight of the character-frequency prior (default 0: the model alone)",
    )
    return p


def render(path: str, reading: Reading, as_json: bool) -> str:
    """One output line for one image."""
    if as_json:
        return json.dumps({"path": path, **reading.to_dict()}, ensure_ascii=False)
    if reading.error is not None:
        return f"{path}: error: {reading.error}"
    line = f"{path}\t{reading.char}\t{reading.prob:.4f}"
    if len(reading.candidates) > 1:
        line += "\t" + " ".join(f"{c.char}:{c.prob:.4f}" for c in reading.candidates)
    return line


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the command; returns the exit status (0, 1 when an image failed, 2 for bad usage or
    a model that cannot be loaded)."""
    args = parser(prog).parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # file names and characters the console cannot show
            stream.reconfigure(errors="backslashreplace")
    name = prog or parser().prog
    try:
        rec = Recognizer(args.model, prior=args.prior, threads=args.threads)
    except (*USER_ERRORS, ValueError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    paths = collect_images(args.paths)
    failed = 0
    for path, reading in zip(
        paths, rec.read_iter(paths, k=args.k, batch_size=args.batch_size), strict=True
    ):
        failed += reading.error is not None
        stream = sys.stderr if reading.error is not None and not args.json else sys.stdout
        print(render(str(path), reading, args.json), file=stream, flush=True)
    if failed:
        print(f"{name}: {failed} of {len(paths)} images failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(prog="python -m kanji_lab.read"))
