"""Reading latency dataset CSVs (column ``arch`` plus latency columns in ms), gzipped or not.

Only the standard ``csv`` and ``gzip`` modules and NumPy are used.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from esm.errors import InputError
from esm.spaces.base import SearchSpace


@dataclass
class LatencyData:
    """One latency column of a dataset file, with the unusable rows dropped.

    Attributes
    ----------
    archs : list of str
        Architecture text forms of the kept rows.
    latency_ms : np.ndarray
        Their latencies ``[N]`` (finite, positive).
    rows : np.ndarray
        0-based data-row numbers (in the file) of the kept rows.
    dropped : int
        Rows dropped because the latency was missing, not a number, NaN, infinite or <= 0.
    columns : list of str
        Every column of the file.
    """

    archs: list[str]
    latency_ms: np.ndarray
    rows: np.ndarray
    dropped: int
    columns: list[str]


@contextmanager
def open_csv(path: str | os.PathLike[str], what: str = "dataset CSV") -> Iterator[TextIO]:
    """A dataset CSV opened as UTF-8 text, gzipped (by its first bytes) or not.

    A file that cannot be opened or read (a directory, a cut gzip, not UTF-8) is an InputError
    naming ``what`` it should have been; a missing one is FileNotFoundError.
    """
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        fh = gzip.open(path, "rt", newline="", encoding="utf-8") if gz else \
            open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise
    except OSError as err:
        raise InputError(f"{path}: cannot be read: {err}") from None
    try:
        with fh:
            yield fh
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise InputError(f"{path}: not a readable {what}: {err}") from None


def read_latency_csv(path: str | os.PathLike[str], target: str) -> LatencyData:
    """Read column ``target`` of a dataset CSV (``.csv`` or ``.csv.gz``); refuse unknown
    columns with the known ones."""
    try:
        with open_csv(path) as fh:
            return _read_column(path, fh, target)
    except FileNotFoundError:
        raise InputError(f"{path}: no such data file") from None


def _read_column(path: str | os.PathLike[str], fh: TextIO, target: str) -> LatencyData:
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path}: empty file") from None
    except csv.Error as err:
        raise InputError(f"{path}: not a CSV file: {err}") from None
    if "arch" not in header:
        raise InputError(f"{path}: no 'arch' column (columns: {', '.join(header)})")
    if target not in header:
        lat = [c for c in header if c != "arch"]
        raise InputError(f"{path}: unknown column {target!r}; columns: {', '.join(lat)}")
    ia, it = header.index("arch"), header.index(target)
    archs: list[str] = []
    values: list[float] = []
    rows: list[int] = []
    dropped = 0
    try:
        for i, row in enumerate(reader):
            if not row:
                continue
            try:
                v = float(row[it])
            except (ValueError, IndexError):
                v = math.nan
            if not (math.isfinite(v) and v > 0):
                dropped += 1
                continue
            archs.append(row[ia])
            values.append(v)
            rows.append(i)
    except csv.Error as err:
        raise InputError(f"{path}: bad CSV: {err}") from None
    return LatencyData(archs, np.asarray(values, dtype=np.float64),
                       np.asarray(rows, dtype=np.int64), dropped, header)


def parse_archs(space: SearchSpace, archs: list[str], path: str | os.PathLike[str]
                ) -> np.ndarray:
    """Genomes of ``archs``; a row that is not an architecture of ``space`` is refused."""
    out = np.zeros((len(archs), space.genome_length), dtype=np.int32)
    for i, text in enumerate(archs):
        try:
            out[i] = space.from_str(text)
        except InputError:
            short = text if len(text) <= 80 else text[:77] + "..."
            raise InputError(
                f"{path}: data row {i + 1} is not a {space.name} architecture: {short!r}"
            ) from None
    return out
