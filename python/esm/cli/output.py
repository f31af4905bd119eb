"""Shared output helpers of the command line."""

from __future__ import annotations

import json
import sys
from typing import Any

from esm.jsonable import to_jsonable


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on stdout (NumPy values converted)."""
    json.dump(to_jsonable(obj), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def add_json_flag(p: Any) -> None:
    """Add ``--json`` to a subcommand."""
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
