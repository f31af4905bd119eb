"""The ``esm`` command line: one module per area, each adding its subcommands.

Exit codes: 0 success, 2 bad input (one-line message, no traceback), 1 failure. Set
``ESM_DEBUG=1`` to see the traceback of a failure.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from esm.errors import InputError

# Modules under esm.cli that define ``register(subparsers)``.
_AREAS = ("basics", "measure", "surrogate", "build", "check", "predict", "search")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    p = _Parser(prog="esm", description="Latency surrogate models for hardware-aware NAS.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for area in _AREAS:
        importlib.import_module(f"esm.cli.{area}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    p = parser()
    args = p.parse_args(argv)
    if args.version:
        from esm import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        p.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (InputError, FileNotFoundError, PermissionError, IsADirectoryError) as err:
        print(f"esm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"esm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("ESM_DEBUG"):
            raise
        print(f"esm {args.command}: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
