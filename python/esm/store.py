"""The measurement store: an SQLite database (WAL) of runs and their measurements.

Every measurement is committed as soon as it is done, so a collection that is killed loses at
most the network it was timing and can be resumed; a ``UNIQUE(run_id, key)`` constraint makes
sure that no architecture is stored twice in a run.

Schema (version 1)
------------------
``meta(key TEXT PRIMARY KEY, value TEXT)``
    ``schema_version`` (an integer; a store with a newer version is refused), ``created``.
``runs``
    One row per measurement campaign (or per imported latency column): ``id``, ``identity``
    (SHA-256 of the fields that define the run; UNIQUE), ``created`` (UTC ISO time),
    ``source`` (``"measured"`` or ``"import:<file name>"``), ``space``, ``space_params`` (JSON),
    ``device``, ``column_name`` (the Dataset CSV column, ``lat_<device>_<batch>``),
    ``batch_size``, ``dtype``, ``threads``, ``node`` (host name), ``provenance`` (JSON),
    ``settings`` (JSON of :class:`esm.measure.Settings`; ``{}`` for imports).
``measurements``
    One row per architecture and run: ``run_id``, ``arch`` (text form), ``key`` (canonical
    genome, comma-separated indices), ``genome`` (JSON list of indices), ``batch_size``,
    ``input_shape`` (JSON), ``status`` (``ok`` / ``failed``), ``error``, the statistics
    ``median_ms, mean_ms, min_ms, q05_ms, q25_ms, q75_ms, q95_ms, cv, ci_low_ms, ci_high_ms,
    rel_ci``, ``n_samples``, ``inner``, ``warmup_s``, ``warmup_iters``, ``total_s``,
    ``cpu_share`` (CPU time / wall time of the timing thread while sampling), flags
    ``unstable``, ``outliers``, ``throttled``, ``drift``, ``samples`` (raw samples in ms,
    little-endian float64 blob), ``measured_at`` (UTC ISO time), ``node``. Imported rows have
    only ``median_ms`` (the CSV value). ``UNIQUE(run_id, key)``.
``reference_checks``
    Drift-guard re-measurements of fixed reference architectures: ``run_id``, ``key``,
    ``arch``, ``seq`` (check number within the run), ``done`` (dataset rows stored when
    checked), ``median_ms``, ``ci_low_ms``, ``ci_high_ms``, ``rel_ci``, ``n_samples``,
    ``rel_change`` (vs. the run's first check of that reference), ``drift`` (0/1),
    ``samples``, ``measured_at``. ``UNIQUE(run_id, key, seq)``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import hashlib
import json
import math
import os
import re
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError

if TYPE_CHECKING:
    from esm.measure import Measurement
    from esm.spaces import SearchSpace

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    source TEXT NOT NULL,
    space TEXT NOT NULL,
    space_params TEXT NOT NULL,
    device TEXT NOT NULL,
    column_name TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    dtype TEXT,
    threads INTEGER,
    node TEXT,
    provenance TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    arch TEXT NOT NULL,
    key TEXT NOT NULL,
    genome TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    input_shape TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    median_ms REAL, mean_ms REAL, min_ms REAL, q05_ms REAL, q25_ms REAL, q75_ms REAL,
    q95_ms REAL, cv REAL, ci_low_ms REAL, ci_high_ms REAL, rel_ci REAL,
    n_samples INTEGER, inner INTEGER, warmup_s REAL, warmup_iters INTEGER, total_s REAL,
    cpu_share REAL,
    unstable INTEGER NOT NULL DEFAULT 0,
    outliers INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    drift INTEGER NOT NULL DEFAULT 0,
    samples BLOB,
    measured_at TEXT NOT NULL,
    node TEXT,
    UNIQUE (run_id, key)
);
CREATE INDEX IF NOT EXISTS measurements_run ON measurements(run_id);
CREATE TABLE IF NOT EXISTS reference_checks (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    key TEXT NOT NULL,
    arch TEXT NOT NULL,
    seq INTEGER NOT NULL,
    done INTEGER NOT NULL,
    median_ms REAL, ci_low_ms REAL, ci_high_ms REAL, rel_ci REAL, n_samples INTEGER,
    rel_change REAL,
    drift INTEGER NOT NULL DEFAULT 0,
    samples BLOB,
    measured_at TEXT NOT NULL,
    UNIQUE (run_id, key, seq)
);
"""

_STAT_COLUMNS = ("median_ms", "mean_ms", "min_ms", "q05_ms", "q25_ms", "q75_ms", "q95_ms",
                 "cv", "ci_low_ms", "ci_high_ms", "rel_ci", "n_samples", "inner", "warmup_s",
                 "warmup_iters", "total_s", "cpu_share", "unstable", "outliers", "throttled")

# A numeric suffix of a latency column is read as the batch size when it is at most this
# (``lat_2080ti_32`` -> batch 32; ``lat_gold_6240`` is device ``gold_6240``, batch 1).
_MAX_BATCH_SUFFIX = 4096


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (np.ndarray, tuple, set)):
        return list(np.asarray(list(obj)).tolist()) if isinstance(obj, set) else list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def genome_key(genome: Any) -> str:
    """Text key of a canonical genome: its indices joined by commas."""
    return ",".join(str(int(v)) for v in np.asarray(genome).ravel())


def blob_to_samples(blob: bytes | None) -> np.ndarray:
    """Raw samples (ms) from their stored blob (little-endian float64)."""
    if not blob:
        return np.zeros(0, dtype=np.float64)
    return np.frombuffer(blob, dtype="<f8").astype(np.float64)


def column_name(device: str, batch_size: int) -> str:
    """Dataset CSV column of a measured run, e.g. ``lat_cpu_1``, ``lat_cuda0_32``."""
    label = re.sub(r"[^a-z0-9]+", "", device.lower()) or "device"
    return f"lat_{label}_{int(batch_size)}"


def parse_column(name: str) -> tuple[str, int]:
    """(device label, batch size) of a Dataset CSV column name (see ``_MAX_BATCH_SUFFIX``)."""
    base = name[4:] if name.startswith("lat_") else name
    m = re.fullmatch(r"(.+)_(\d+)", base)
    if m and int(m.group(2)) <= _MAX_BATCH_SUFFIX and int(m.group(2)) > 0:
        return m.group(1), int(m.group(2))
    return base, 1


class Store:
    """An SQLite measurement store (created on first open; WAL journal).

    Parameters
    ----------
    path : str or Path
        Database file. Its directory must exist and be writable.

    Raises
    ------
    InputError
        The path cannot be opened or written, is not an esm store, or was written by a newer
        esm (schema version above :data:`SCHEMA_VERSION`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"store path {self.path} is a directory")
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"cannot create store {self.path}: directory {parent} does not exist")
        exists = self.path.exists()
        if not exists and not os.access(parent, os.W_OK):
            raise InputError(f"cannot create store {self.path}: directory {parent} is not writable")
        if exists and not os.access(self.path, os.W_OK):
            raise InputError(f"store {self.path} is not writable")
        try:
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
        except sqlite3.Error as err:
            raise InputError(f"cannot open store {self.path}: {err}") from None
        try:
            self._db.execute("PRAGMA foreign_keys=ON")
            self._check_version()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._init_schema()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise InputError(f"{self.path} is not a usable esm store: {err}") from None
        except InputError:
            self._db.close()
            raise

    # ------------------------------------------------------------------ basics
    def _check_version(self) -> None:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not has_meta:
            tables = self._db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if tables:
                raise InputError(f"{self.path} is an SQLite database but not an esm store")
            return
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            raise InputError(f"{self.path}: esm store without a schema version")
        try:
            version = int(row[0])
        except ValueError:
            raise InputError(f"{self.path}: bad schema version {row[0]!r}") from None
        if version > SCHEMA_VERSION:
            raise InputError(
                f"store {self.path} has schema version {version}, newer than this esm supports "
                f"({SCHEMA_VERSION}); upgrade esm to read it"
            )

    def _init_schema(self) -> None:
        # one atomic script: a store killed while being created is either empty or complete
        self._db.executescript(
            "BEGIN IMMEDIATE;" + _SCHEMA
            + f"INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
            + f"INSERT OR IGNORE INTO meta VALUES ('created', '{_now()}');COMMIT;")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""
        if self._db.in_transaction:
            yield self._db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (checkpoints the WAL)."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute(
            "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    def execute(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """Run a read query and return all rows (for inspection and tests)."""
        return list(self._db.execute(sql, params).fetchall())

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` (``"ok"`` for a sound database)."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    # ------------------------------------------------------------------ runs
    def ensure_run(
        self,
        *,
        source: str,
        space: str,
        space_params: dict[str, Any],
        device: str,
        batch_size: int,
        column: str | None = None,
        dtype: str | None = "float32",
        threads: int | None = None,
        node: str | None = None,
        provenance: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        identity_extra: dict[str, Any] | None = None,
    ) -> tuple[int, bool]:
        """Return ``(run_id, created)``: the run with this identity, created if missing.

        The identity is every argument except ``provenance`` (and ``column``), so resuming a
        collection with the same space, device, batch size, threads, node and settings reuses
        its run.
        """
        node = node if node is not None else socket.gethostname()
        ident = {"source": source, "space": space, "space_params": space_params,
                 "device": device, "batch_size": int(batch_size), "dtype": dtype,
                 "threads": threads, "node": node, "settings": settings or {},
                 **(identity_extra or {})}
        identity = hashlib.sha256(_json(ident).encode()).hexdigest()
        with self.transaction() as db:
            row = db.execute("SELECT id FROM runs WHERE identity=?", (identity,)).fetchone()
            if row:
                return int(row[0]), False
            cur = db.execute(
                "INSERT INTO runs (identity, created, source, space, space_params, device, "
                "column_name, batch_size, dtype, threads, node, provenance, settings) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (identity, _now(), source, space, _json(space_params), device,
                 column or column_name(device, batch_size), int(batch_size), dtype, threads,
                 node, _json(provenance or {}), _json(settings or {})),
            )
            return int(cur.lastrowid or 0), True

    def runs(self) -> list[dict[str, Any]]:
        """Every run with its measurement counts (``n_ok``, ``n_failed``)."""
        rows = self._db.execute(
            "SELECT r.id, r.created, r.source, r.space, r.space_params, r.device, "
            "r.column_name, r.batch_size, r.dtype, r.threads, r.node, "
            "(SELECT count(*) FROM measurements m WHERE m.run_id=r.id AND m.status='ok'), "
            "(SELECT count(*) FROM measurements m WHERE m.run_id=r.id AND m.status='failed') "
            "FROM runs r ORDER BY r.id").fetchall()
        keys = ("id", "created", "source", "space", "space_params", "device", "column",
                "batch_size", "dtype", "threads", "node", "n_ok", "n_failed")
        out = []
        for r in rows:
            d = dict(zip(keys, r, strict=True))
            d["space_params"] = json.loads(d["space_params"])
            out.append(d)
        return out

    def run(self, run_id: int) -> dict[str, Any]:
        """One run, with its provenance and settings decoded."""
        row = self._db.execute(
            "SELECT id, created, source, space, space_params, device, column_name, batch_size, "
            "dtype, threads, node, provenance, settings FROM runs WHERE id=?",
            (int(run_id),)).fetchone()
        if row is None:
            raise InputError(f"{self.path}: no run with id {run_id}")
        keys = ("id", "created", "source", "space", "space_params", "device", "column",
                "batch_size", "dtype", "threads", "node", "provenance", "settings")
        d = dict(zip(keys, row, strict=True))
        for k in ("space_params", "provenance", "settings"):
            d[k] = json.loads(d[k])
        return d

    # ------------------------------------------------------------------ measurements
    def keys(self, run_id: int) -> set[str]:
        """Canonical keys already stored in a run (ok or failed)."""
        return set(self.row_keys(run_id))

    def row_keys(self, run_id: int) -> list[str]:
        """Canonical keys of a run's rows (ok or failed) in insertion order: a row's index in
        this list is its position, as reference checks count rows (``done``)."""
        return [r[0] for r in self._db.execute(
            "SELECT key FROM measurements WHERE run_id=? ORDER BY id", (int(run_id),))]

    def add_measurement(
        self,
        run_id: int,
        *,
        arch: str,
        key: str,
        genome: Any,
        batch_size: int,
        input_shape: Any = None,
        measurement: Measurement | None = None,
        median_ms: float | None = None,
        error: str | None = None,
        node: str | None = None,
    ) -> int:
        """Store (and commit) one architecture's result; returns the row id.

        Pass ``measurement`` for a measured row, ``median_ms`` for an imported value, or
        ``error`` for a failed one. A key already in the run raises InputError.
        """
        stats: dict[str, Any] = dict.fromkeys(_STAT_COLUMNS)
        stats.update(unstable=0, outliers=0, throttled=0)
        samples = None
        status = "ok"
        if measurement is not None:
            for c in _STAT_COLUMNS:
                v = getattr(measurement, c)
                stats[c] = int(v) if isinstance(v, (bool, np.bool_)) else v
            samples = np.ascontiguousarray(measurement.samples_ms, dtype="<f8").tobytes()
        elif median_ms is not None:
            stats["median_ms"] = float(median_ms)
        if error is not None:
            status = "failed"
        elif stats["median_ms"] is None:
            raise InputError("add_measurement: need a measurement, a median or an error")
        cols = ["run_id", "arch", "key", "genome", "batch_size", "input_shape", "status",
                "error", *_STAT_COLUMNS, "samples", "measured_at", "node"]
        vals = [int(run_id), arch, key, _json(np.asarray(genome).astype(int).tolist()),
                int(batch_size), None if input_shape is None else _json(list(input_shape)),
                status, error, *(stats[c] for c in _STAT_COLUMNS), samples, _now(),
                node if node is not None else socket.gethostname()]
        sql = (f"INSERT INTO measurements ({', '.join(cols)}) "
               f"VALUES ({', '.join('?' * len(cols))})")
        try:
            with self.transaction() as db:
                cur = db.execute(sql, vals)
        except sqlite3.IntegrityError as err:
            raise InputError(f"run {run_id} already has architecture {key}: {err}") from None
        return int(cur.lastrowid or 0)

    def mark_drift(self, run_id: int, ids: list[int]) -> None:
        """Set the drift flag on measurement rows."""
        if not ids:
            return
        with self.transaction() as db:
            db.executemany("UPDATE measurements SET drift=1 WHERE run_id=? AND id=?",
                           [(int(run_id), int(i)) for i in ids])

    def measurements(self, run_id: int, status: str | None = "ok") -> list[dict[str, Any]]:
        """Rows of a run (statistics, flags and raw samples decoded), in insertion order."""
        cols = ["id", "arch", "key", "genome", "batch_size", "input_shape", "status", "error",
                *_STAT_COLUMNS, "drift", "samples", "measured_at", "node"]
        sql = f"SELECT {', '.join(cols)} FROM measurements WHERE run_id=?"
        params: list[Any] = [int(run_id)]
        if status is not None:
            sql += " AND status=?"
            params.append(status)
        out = []
        for r in self._db.execute(sql + " ORDER BY id", params):
            d = dict(zip(cols, r, strict=True))
            d["genome"] = json.loads(d["genome"])
            d["input_shape"] = json.loads(d["input_shape"]) if d["input_shape"] else None
            d["samples"] = blob_to_samples(d["samples"])
            out.append(d)
        return out

    def dataset(self, run_id: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Training table of a run: ``(genomes int32 [N, G], latency_ms float64 [N], archs)``.

        Only rows with status ``ok``; the latency is the median.
        """
        self.run(run_id)
        rows = self._db.execute(
            "SELECT genome, median_ms, arch FROM measurements WHERE run_id=? AND status='ok' "
            "ORDER BY id", (int(run_id),)).fetchall()
        if not rows:
            return np.zeros((0, 0), np.int32), np.zeros(0, np.float64), []
        genomes = np.asarray([json.loads(r[0]) for r in rows], dtype=np.int32)
        lat = np.asarray([r[1] for r in rows], dtype=np.float64)
        return genomes, lat, [r[2] for r in rows]

    def add_reference_check(
        self, run_id: int, *, key: str, arch: str, seq: int, done: int,
        measurement: Measurement, rel_change: float | None, drift: bool,
    ) -> None:
        """Store (and commit) one drift-guard re-measurement."""
        m = measurement
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO reference_checks (run_id, key, arch, seq, done, "
                "median_ms, ci_low_ms, ci_high_ms, rel_ci, n_samples, rel_change, drift, "
                "samples, measured_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (int(run_id), key, arch, int(seq), int(done), m.median_ms, m.ci_low_ms,
                 m.ci_high_ms, m.rel_ci, m.n_samples, rel_change, int(drift),
                 np.ascontiguousarray(m.samples_ms, dtype="<f8").tobytes(), _now()))

    def reference_checks(self, run_id: int) -> list[dict[str, Any]]:
        """Drift-guard checks of a run, in order."""
        cols = ["key", "arch", "seq", "done", "median_ms", "ci_low_ms", "ci_high_ms", "rel_ci",
                "n_samples", "rel_change", "drift", "measured_at"]
        rows = self._db.execute(
            f"SELECT {', '.join(cols)} FROM reference_checks WHERE run_id=? ORDER BY seq, id",
            (int(run_id),)).fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    # ------------------------------------------------------------------ export / import
    def export_table(self, run: int | None = None, *,
                     drift_corrected: bool = False) -> tuple[list[str], list[list[Any]]]:
        """The Dataset table: header ``["arch", <latency columns>]`` and rows.

        With ``run=None`` every run of the store is a column (all must share one space);
        an architecture missing from a run has an empty cell (``None``). With
        ``drift_corrected`` the latencies are normalised where each run's reference checks
        show drift beyond their noise (:mod:`esm.drift`; unchanged elsewhere and in a run
        without checks).
        """
        runs = self.runs() if run is None else [self.run(run)]
        if not runs:
            raise InputError(f"store {self.path} has no runs to export")
        spaces = {(r["space"], _json(r["space_params"])) for r in runs}
        if len(spaces) > 1:
            raise InputError(f"store {self.path} holds runs of several spaces "
                             f"({', '.join(sorted({s for s, _ in spaces}))}); pick one with --run")
        names: list[str] = []
        for r in runs:
            name = r["column"]
            if name in names:
                name = f"{name}_r{r['id']}"
            names.append(name)
        arch_of: dict[str, str] = {}
        values: dict[str, dict[int, float]] = {}
        for i, r in enumerate(runs):
            speed: dict[str, float] = {}
            if drift_corrected:
                from esm.drift import factors

                speed = factors(self.row_keys(r["id"]), self.reference_checks(r["id"]))
            for key, arch, med in self._db.execute(
                "SELECT key, arch, median_ms FROM measurements WHERE run_id=? AND status='ok' "
                "ORDER BY id", (r["id"],)):
                arch_of.setdefault(key, arch)
                values.setdefault(key, {})[i] = float(med) / speed.get(key, 1.0)
        rows = [[arch_of[k], *(values[k].get(i) for i in range(len(runs)))] for k in arch_of]
        return ["arch", *names], rows

    def export_csv(self, path: str | os.PathLike[str], run: int | None = None, *,
                   drift_corrected: bool = False) -> dict[str, Any]:
        """Write the Dataset CSV (or Parquet, for a ``.parquet`` path; needs pyarrow).

        Returns ``{"path", "rows", "columns"}``. Values are written with full float precision;
        ``drift_corrected`` as in :meth:`export_table`.
        """
        header, rows = self.export_table(run, drift_corrected=drift_corrected)
        out = Path(path)
        if not out.parent.is_dir():
            raise InputError(f"cannot write {out}: directory {out.parent} does not exist")
        if out.suffix == ".parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise InputError("Parquet export needs pyarrow (pip install pyarrow)") from None
            cols = {h: [r[i] for r in rows] for i, h in enumerate(header)}
            pq.write_table(pa.table(cols), str(out))
        else:
            tmp = out.with_name(out.name + ".tmp")
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(header)
                for r in rows:
                    w.writerow([r[0], *("" if v is None else repr(float(v)) for v in r[1:])])
            os.replace(tmp, out)
        return {"path": str(out), "rows": len(rows), "columns": header[1:]}

    @staticmethod
    def _imported(db: sqlite3.Connection, sp: SearchSpace, sha: str) -> set[str]:
        """Columns of a file with content hash ``sha`` already imported for space ``sp``,
        under any file name (a run's identity holds the name: ``import:part.csv``)."""
        rows = db.execute("SELECT provenance FROM runs WHERE source LIKE 'import:%' AND space=? "
                          "AND space_params=?", (sp.name, _json(sp.params()))).fetchall()
        prov = [json.loads(r[0]) for r in rows]
        return {str(p.get("column")) for p in prov if p.get("sha256") == sha}

    def import_csv(self, path: str | os.PathLike[str], space: SearchSpace | str) -> dict[str, Any]:
        """Import a Dataset CSV (or ``.csv.gz``) as external runs, one per latency column, in one
        transaction.

        Every architecture is validated with the space; a missing ``arch`` column, no latency
        column, a non-numeric, negative or non-finite value, a ragged row or a bad
        architecture raises InputError and nothing is written. Empty cells are missing values.
        Architectures with the same canonical form are stored once (the first row wins).
        A column already imported (same decompressed content, same space), under any file
        name, is skipped.

        Returns ``{"runs": [ids], "rows", "duplicates", "skipped_columns"}``.
        """
        from esm import spaces

        sp = spaces.get(space) if isinstance(space, str) else space
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as err:
            raise InputError(f"cannot read {p}: {err.strerror or err}") from None
        try:
            if raw[:2] == b"\x1f\x8b":  # a .csv.gz
                raw = gzip.decompress(raw)
            text = raw.decode("utf-8-sig")
        except (OSError, EOFError):
            raise InputError(f"{p}: not a readable gzip file") from None
        except UnicodeDecodeError:
            raise InputError(f"{p}: not a UTF-8 text file") from None
        reader = csv.reader(text.splitlines())
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{p}: empty file") from None
        header = [h.strip() for h in header]
        if "arch" not in header:
            raise InputError(f"{p}: missing column 'arch' (columns: {', '.join(header)})")
        lat_cols = [i for i, h in enumerate(header) if h != "arch"]
        if not lat_cols:
            raise InputError(f"{p}: no latency columns besides 'arch'")
        if len(set(header)) != len(header):
            raise InputError(f"{p}: duplicate column names")
        ia = header.index("arch")
        archs: list[str] = []
        vals = np.full((0, len(lat_cols)), np.nan)
        table: list[list[float]] = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"{p}, line {line}: {len(row)} fields, header has {len(header)}")
            archs.append(row[ia])
            cur = []
            for j in lat_cols:
                cell = row[j].strip()
                if cell == "":
                    cur.append(math.nan)
                    continue
                try:
                    v = float(cell)
                except ValueError:
                    raise InputError(f"{p}, line {line}: column {header[j]!r} is not numeric: "
                                     f"{cell!r}") from None
                if not math.isfinite(v) or v < 0:
                    raise InputError(f"{p}, line {line}: column {header[j]!r} must be a finite "
                                     f"latency >= 0, got {cell!r}")
                cur.append(v)
            table.append(cur)
        if not archs:
            raise InputError(f"{p}: no data rows")
        vals = np.asarray(table, dtype=np.float64)
        genomes = []
        for line, a in enumerate(archs, start=2):
            try:
                genomes.append(sp.from_str(a))
            except InputError as err:
                raise InputError(f"{p}, line {line}: {err}") from None
        g = sp.canonical(np.stack(genomes))
        keys = [genome_key(k) for k in g]
        sha = hashlib.sha256(raw).hexdigest()
        source = f"import:{p.name}"
        run_ids: list[int] = []
        skipped: list[str] = []
        dup = 0
        node = socket.gethostname()
        now = _now()
        with self.transaction() as db:
            done = self._imported(db, sp, sha)
            for jj, j in enumerate(lat_cols):
                col = header[j]
                label, batch = parse_column(col)
                if col in done:
                    skipped.append(col)
                    continue
                run_id, created = self.ensure_run(
                    source=source, space=sp.name, space_params=sp.params(), device=label,
                    batch_size=batch, column=col if col.startswith("lat_") else f"lat_{col}",
                    dtype=None, threads=None, node="", settings={},
                    provenance={"file": str(p), "sha256": sha, "column": col,
                                "imported_by": node},
                    identity_extra={"sha256": sha, "column": col},
                )
                if not created:
                    skipped.append(col)
                    continue
                run_ids.append(run_id)
                seen: set[str] = set()
                batch_rows = []
                for i, key in enumerate(keys):
                    v = vals[i, jj]
                    if math.isnan(v):
                        continue
                    if key in seen:
                        dup += 1
                        continue
                    seen.add(key)
                    batch_rows.append((run_id, archs[i], key, _json(g[i].tolist()), batch,
                                       "ok", float(v), now, ""))
                db.executemany(
                    "INSERT INTO measurements (run_id, arch, key, genome, batch_size, status, "
                    "median_ms, measured_at, node) VALUES (?,?,?,?,?,?,?,?,?)", batch_rows)
        return {"runs": run_ids, "rows": len(archs), "duplicates": dup,
                "skipped_columns": skipped, "source": source}
