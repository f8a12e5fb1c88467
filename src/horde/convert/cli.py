"""``horde convert SRC [-o DEST | --in-place] [--format]``: rewrite a Locust locustfile for horde.

Without ``-o`` or ``--in-place`` it prints a unified diff and changes nothing. What needs a person is
listed on stderr as ``file:line: message``. Exit codes: 0 converted (or nothing to change), 1 something
needs manual attention, 2 bad input (a missing file, a syntax error).
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from horde.convert.transform import ConvertError, ConvertResult, convert_source

EXIT_OK, EXIT_ATTENTION, EXIT_BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="horde convert",
        description="Rewrite a Locust locustfile into a horde one (prints a unified diff by default).",
    )
    parser.add_argument("src", metavar="SRC", help="the Locust locustfile to convert")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="DEST", help="write the converted file to DEST")
    where.add_argument("--in-place", action="store_true", help="overwrite SRC with the converted file")
    parser.add_argument(
        "--format", action="store_true", help="run `ruff format` on the result (when ruff is installed)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print notes, only problems")
    return parser


def find_ruff() -> list[str] | None:
    beside = Path(sys.executable).with_name("ruff")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ruff")
    return [found] if found else None


def ruff_format(code: str, filename: str) -> str | None:
    """``code`` formatted by ``ruff format``, or None when ruff is missing or fails."""
    ruff = find_ruff()
    if ruff is None:
        return None
    proc = subprocess.run(
        [*ruff, "format", "--stdin-filename", filename, "-"],
        input=code,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def convert_file(path: str, *, fmt: bool = False) -> ConvertResult:
    """Convert the file at ``path``; raises ConvertError (with ``line``) or OSError."""
    source = Path(path).read_text(encoding="utf-8")
    result = convert_source(source)
    if fmt and result.changed:
        formatted = ruff_format(result.code, path)
        if formatted is None:
            print("horde convert: ruff is not available, the output is not reformatted", file=sys.stderr)
        else:
            result.code = formatted
    return result


def main(argv: list[str]) -> int:
    """Entry point of ``horde convert``; ``argv`` excludes the program and the ``convert`` word."""
    args = build_parser().parse_args(argv)
    src: str = args.src
    try:
        result = convert_file(src, fmt=args.format)
    except FileNotFoundError:
        print(f"{src}: no such file", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, UnicodeDecodeError) as e:
        print(f"{src}: cannot read: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConvertError as e:
        print(f"{src}:{e.line or 0}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if args.in_place:
        if result.changed:
            Path(src).write_text(result.code, encoding="utf-8")
    elif args.output:
        Path(args.output).write_text(result.code, encoding="utf-8")
    else:
        diff = difflib.unified_diff(
            result.source.splitlines(keepends=True),
            result.code.splitlines(keepends=True),
            fromfile=src if Path(src).is_absolute() else f"a/{src}",
            tofile=src if Path(src).is_absolute() else f"b/{src}",
        )
        try:
            sys.stdout.writelines(diff)
            sys.stdout.flush()
        except BrokenPipeError:  # `horde convert f.py | head`: the reader has seen enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    manual = [f for f in result.findings if f.manual]
    for f in result.findings:
        if f.manual or not args.quiet:
            print(f"{src}:{f.line}: {'' if f.manual else 'note: '}{f.message}", file=sys.stderr)
    if manual:
        print(
            f"horde convert: {len(manual)} {'places need' if len(manual) != 1 else 'place needs'} manual attention "
            f"(marked `# horde convert:` in the output)",
            file=sys.stderr,
        )
        return EXIT_ATTENTION
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
