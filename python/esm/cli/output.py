"""Shared output helpers of the command line."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on stdout (NumPy values converted)."""
    json.dump(_plain(obj), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def add_json_flag(p: Any) -> None:
    """Add ``--json`` to a subcommand."""
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
