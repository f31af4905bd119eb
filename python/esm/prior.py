"""Priors: latency data of *other* devices for the same search space.

A prior is what a new device's surrogate can learn from before a single network is measured
on it (:mod:`esm.transfer` turns it into a prior over the new device's latency function). It
is read from dataset CSVs (column ``arch`` plus latency columns in ms, optionally gzipped) and
esm stores (every run of the store is a column), any number of files; the columns of all of
them are merged by canonical architecture (an architecture missing from a file has no value
in its columns).

Every built-in space with public data has a packaged prior (:func:`packaged`): the HELP /
HW-NAS-Bench latency tables of ``../shared/data`` (MIT license) and Accel-NASBench's FPGA and
TPU timings (Apache-2.0), gzipped; ``esm/data/priors/NOTICE`` credits them.

Columns named for a property of the networks (:data:`NETWORK_PROPERTY`: MACs, FLOPs,
parameters, accuracy) are not devices, and :func:`load` leaves them out. A device given twice
(a file and its gzipped copy, or a store it was imported into) is one column
(:meth:`PriorData.drop_copies`): counted twice, it would pull the prior's mean device towards
it. The prior must never contain the device being modelled: :func:`load` drops the columns
named in ``exclude``, and :meth:`PriorData.drop_duplicates_of` drops columns whose values
equal a given target's on the rows they share (the same measurements under another name).
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError

if TYPE_CHECKING:
    from esm.spaces import SearchSpace

__all__ = ["NETWORK_PROPERTY", "PriorData", "load", "n_devices", "packaged", "packaged_unusable",
           "read_table"]

#: Packaged prior file of each built-in space (gzipped dataset CSVs in ``esm/data/priors``).
PACKAGED = {"nb201": "nb201.csv.gz", "fbnet": "fbnet.csv.gz", "ofa-mbv3": "ofa_mbv3.csv.gz",
            "anb-mnasnet": "anb_mnasnet.csv.gz"}
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Column names that hold a property of the networks, not a device's latency (Accel-NASBench's
#: ``macs_m`` and ``params_m``, an ``accuracy`` or ``flops`` column); a prior never reads them.
#: Read as devices, ``mnasnet_anb.csv``'s two cost columns made its leave-one-out targets'
#: MAPE at 10 networks 6.82 % instead of 6.20 % (3 seeds).
NETWORK_PROPERTY = re.compile(r"(macs|flops|params|parameters|acc|accuracy|top[15])(\W|_|$)",
                              re.IGNORECASE)


@dataclass
class PriorData:
    """Latencies of other devices for one space.

    Attributes
    ----------
    space : SearchSpace
    genomes : np.ndarray
        ``int32 [N, G]`` canonical genomes, each architecture once.
    latency : np.ndarray
        ``float64 [N, K]`` latency in ms of every row on every prior column (NaN: not
        measured there).
    columns : list of str
        The K column names (prefixed with the file name where two files share a name).
    sources : list of str
        The file each column came from.
    dropped : list of str
        Columns left out (excluded by name, duplicates of the target or of another column,
        network properties, too few rows), each with the reason.
    """

    space: SearchSpace
    genomes: np.ndarray
    latency: np.ndarray
    columns: list[str]
    sources: list[str]
    dropped: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return int(self.genomes.shape[0])

    def drop(self, keep: np.ndarray, why: str | list[str]) -> None:
        """Keep only the columns where ``keep`` is true; record the others as dropped, for
        the reason ``why`` (one, or one per column)."""
        keep = np.asarray(keep, bool)
        whys = [why] * len(keep) if isinstance(why, str) else why
        self.dropped += [f"{c} ({w})" for c, k, w in zip(self.columns, keep, whys, strict=True)
                         if not k]
        self.latency = self.latency[:, keep]
        self.columns = [c for c, k in zip(self.columns, keep, strict=True) if k]
        self.sources = [s for s, k in zip(self.sources, keep, strict=True) if k]
        rows = np.isfinite(self.latency).any(axis=1)
        self.genomes, self.latency = self.genomes[rows], self.latency[rows]

    def drop_duplicates_of(self, genomes: np.ndarray, latency: np.ndarray,
                           rtol: float = 1e-6) -> list[str]:
        """Drop prior columns that hold the target's own measurements.

        A column is a duplicate when, on the architectures it shares with ``genomes``
        (at least 3), at least 90 % of its values equal ``latency`` within ``rtol``: the
        device being modelled must not be its own prior. Returns the dropped names.
        """
        from esm.store import genome_key

        where = {genome_key(g): i for i, g in enumerate(self.space.canonical(genomes))}
        pairs = [(i, where[genome_key(g)]) for i, g in enumerate(self.genomes)
                 if genome_key(g) in where]
        if len(pairs) < 3:
            return []
        mine = np.asarray([p[0] for p in pairs])
        theirs = np.asarray(latency, np.float64)[[p[1] for p in pairs]]
        keep = np.ones(len(self.columns), bool)
        for j in range(len(self.columns)):
            v = self.latency[mine, j]
            ok = np.isfinite(v) & np.isfinite(theirs)
            if ok.sum() >= 3 and np.mean(np.isclose(v[ok], theirs[ok], rtol=rtol,
                                                    atol=0.0)) >= 0.9:
                keep[j] = False
        names = [c for c, k in zip(self.columns, keep, strict=True) if not k]
        if names:
            self.drop(keep, "same values as the target")
        return names

    def drop_copies(self, rtol: float = 1e-6) -> None:
        """Drop columns that repeat another's measurements (the same file given twice, or
        as a CSV and as a store it was imported into): a device counted twice would pull the
        prior's mean device towards it. A column is a copy when, on the architectures it
        shares with another (at least 3), at least 90 % of its values equal that column's
        within ``rtol``; of the two, the one with more rows stays (the first on a tie)."""
        fin = np.isfinite(self.latency)
        order = sorted(range(len(self.columns)), key=lambda j: -int(fin[:, j].sum()))
        keep = np.ones(len(self.columns), bool)
        why = [""] * len(self.columns)
        for a, j in enumerate(order):
            for i in order[:a]:
                ok = fin[:, i] & fin[:, j]
                if keep[i] and ok.sum() >= 3 and np.mean(np.isclose(
                        self.latency[ok, j], self.latency[ok, i], rtol=rtol, atol=0.0)) >= 0.9:
                    keep[j] = False
                    why[j] = f"a copy of {self.columns[i]} in {Path(self.sources[i]).name}"
                    break
        if not keep.all():
            self.drop(keep, why)

    def describe(self) -> dict[str, Any]:
        """What the prior is, for results and model files."""
        return {"columns": list(self.columns), "sources": sorted(set(self.sources)),
                "rows": self.n_rows, "dropped": list(self.dropped)}


def read_table(path: str | os.PathLike[str]) -> tuple[list[str], list[str], np.ndarray]:
    """``(archs, columns, values [N, K])`` of a dataset CSV (``.gz`` too) or an esm store.

    Empty, non-numeric, non-finite and non-positive cells are NaN. Raises InputError for a
    missing file, no ``arch`` column or no latency column.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such prior file: {p}")
    with open(p, "rb") as fh:
        head = fh.read(16)
    if head == _SQLITE_MAGIC:
        from esm.store import Store

        with Store(p) as store:
            header, rows = store.export_table()
        values = np.asarray([[np.nan if v is None else float(v) for v in r[1:]] for r in rows],
                            np.float64).reshape(len(rows), len(header) - 1)
        return [str(r[0]) for r in rows], header[1:], _positive(values)
    from esm.surrogate.dataset import open_csv

    try:
        with open_csv(p) as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            if "arch" not in header:
                raise InputError(f"{p}: no 'arch' column (a prior is a dataset CSV or an "
                                 "esm store)")
            ia = header.index("arch")
            cols = [i for i in range(len(header)) if i != ia]
            if not cols:
                raise InputError(f"{p}: no latency columns")
            archs: list[str] = []
            vals: list[list[float]] = []
            for row in reader:
                if not row:
                    continue
                archs.append(row[ia])
                vals.append([_num(row[i]) if i < len(row) else math.nan for i in cols])
    except csv.Error as err:
        raise InputError(f"{p}: not a readable dataset CSV: {err}") from None
    values = np.asarray(vals, np.float64).reshape(len(archs), len(cols))
    return archs, [header[i] for i in cols], _positive(values)


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _positive(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def load(space: SearchSpace, paths: list[str | os.PathLike[str]], *,
         exclude: tuple[str, ...] | list[str] = (), min_rows: int = 50) -> PriorData:
    """Read and merge prior files for ``space``.

    Parameters
    ----------
    space : SearchSpace
    paths : list of paths
        Dataset CSVs (``.csv`` or ``.csv.gz``) or esm stores.
    exclude : sequence of str
        Column names never to use (the target column when the prior file also holds it).
    min_rows : int
        Columns with fewer measured architectures are dropped (too few to learn a device).

    Raises InputError when a file cannot be read, an architecture is not of ``space``, or
    no usable column is left.
    """
    if not paths:
        raise InputError("no prior files given")
    key_of: dict[bytes, int] = {}
    genomes: list[np.ndarray] = []
    columns: list[tuple[str, str, dict[int, float]]] = []
    for path in paths:
        archs, names, values = read_table(path)
        try:
            g = space.canonical(space.from_strs(archs)) if archs else np.zeros(
                (0, space.genome_length), np.int32)
        except InputError as err:
            raise InputError(f"{path}: architectures are not of space {space.name!r}: "
                             f"{err}") from None
        rows = []
        for row in g:
            k = row.tobytes()
            if k not in key_of:
                key_of[k] = len(genomes)
                genomes.append(row)
            rows.append(key_of[k])
        for j, name in enumerate(names):
            vals = {r: float(v) for r, v in zip(rows, values[:, j], strict=True)
                    if math.isfinite(v)}
            columns.append((name, str(path), vals))
    names = [c[0] for c in columns]
    lat = np.full((len(genomes), len(columns)), np.nan)
    for j, (_, _, vals) in enumerate(columns):
        if vals:
            lat[list(vals), j] = list(vals.values())
    prior = PriorData(space, np.asarray(genomes, np.int32).reshape(-1, space.genome_length),
                      lat, names, [c[1] for c in columns])
    ex = set(exclude)
    prior.drop(np.asarray([n not in ex and o not in ex for n, o in
                           zip(names, _file_names(prior), strict=True)], bool),
               "the target column")
    prior.drop(np.asarray([not NETWORK_PROPERTY.match(c) for c in prior.columns], bool),
               "a network property, not a device")
    prior.drop(np.isfinite(prior.latency).sum(axis=0) >= min_rows,
               f"fewer than {min_rows} rows")
    prior.drop_copies()
    prior.columns = _file_names(prior)
    if not prior.columns:
        raise InputError(f"no usable prior column in {', '.join(map(str, paths))}"
                         + (f" (dropped: {', '.join(prior.dropped)})" if prior.dropped else ""))
    return prior


def n_devices(k: int) -> str:
    """``"1 device"``, ``"15 devices"``: how a build's output counts its prior's columns."""
    return f"{k} device{'s' * (k != 1)}"


def _file_names(prior: PriorData) -> list[str]:
    """The prior's column names, prefixed with their file's name where two share a name."""
    return [n if prior.columns.count(n) == 1 else f"{Path(src).name.split('.')[0]}:{n}"
            for n, src in zip(prior.columns, prior.sources, strict=True)]


def packaged(space_name: str) -> Path | None:
    """Path of the packaged prior of a built-in space, or None where there is none."""
    name = PACKAGED.get(space_name)
    if name is None:
        return None
    p = Path(__file__).resolve().parent / "data" / "priors" / name
    return p if p.is_file() else None


def packaged_unusable(space_name: str) -> str | None:
    """Why a built-in space's packaged prior cannot be used in this installation.

    Parameters
    ----------
    space_name : str
        Registered name of the space.

    Returns
    -------
    str or None
        The reason (its file is not installed, or scipy, which fits the transfer model, is
        missing); None where the prior can be used or where the space has none.
    """
    name = PACKAGED.get(space_name)
    if name is None:
        return None
    if packaged(space_name) is None:
        return f"the packaged {space_name} prior (esm/data/priors/{name}) is not installed"
    if importlib.util.find_spec("scipy") is None:
        return "scipy, which fits the transfer model, is not installed (pip install " \
            "'esm-nas[train]')"
    return None
