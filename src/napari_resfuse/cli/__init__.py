"""The ``resfuse`` command-line tool: a thin argparse front end over the public API.

Each sub-command lives in its own module with a ``register(subparsers)`` function that adds its
parser and sets ``func`` (called with the parsed arguments, returning an exit code).

Exit codes, the same for every sub-command: 0 everything was done; 1 some items (pairs, frame
blocks, unmatched images) failed and are listed at the end (stderr; batch: its summary), the
others were done; 2 a usage, input or file-system error (one line on stderr, nothing fused);
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

# Sub-command modules, in the order ``resfuse --help`` lists them.
_SUBCOMMANDS = ("fuse", "register", "metrics", "compare", "batch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resfuse",
        description="Infrared and visible image fusion with ResNet-152 features.",
        epilog="exit codes: 0 all done; 1 some items failed (listed); 2 usage, input or file "
        "error; 130 interrupted",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _SUBCOMMANDS:
        importlib.import_module(f"napari_resfuse.cli.{name}").register(sub)
    return parser


def report_failures(command: str, failed: dict[str, str], limit: int = 50) -> int:
    """Print each failed item on stderr (``resfuse CMD: failed NAME: REASON``); return the exit
    code: 1 if anything failed, else 0."""
    for n, (name, error) in enumerate(failed.items()):
        if n == limit:
            print(
                f"resfuse {command}: ... and {len(failed) - limit} more failures", file=sys.stderr
            )
            break
        print(f"resfuse {command}: failed {name}: {error}", file=sys.stderr)
    return 1 if failed else 0


def _one_line_warnings(command: str):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"resfuse {command}: warning: {message}", file=sys.stderr)

    return show


def main(argv: list[str] | None = None) -> int:
    from ..io import os_error_text

    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(args.command)
        try:
            return int(args.func(args) or 0)
        except (ValueError, FileNotFoundError, OSError) as exc:
            # User and file-system errors: one clear line, no traceback.
            text = os_error_text(exc) if isinstance(exc, OSError) and exc.filename else str(exc)
            print(f"resfuse {args.command}: error: {text}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"resfuse {args.command}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
