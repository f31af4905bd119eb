"""Oracles: what answers "what is the latency of these networks" for :func:`esm.build.build`.

An oracle owns the candidate pool and measures (or looks up) networks of it:
:class:`CsvOracle` looks them up in a dataset file (candidates are the file's rows, and it
knows the truth for every row, so the error on all unrevealed rows can be reported);
:class:`DeviceOracle` measures them with :mod:`esm.measure` into an :class:`esm.store.Store`
(candidates are a large uniform sample of the space).

Every answer (:class:`OracleResult`) is the *raw* latency plus ``when`` each network was
measured (its position in the run). A device oracle also re-measures a reference network now
and then; :meth:`Oracle.drift` turns those checks into a correction (:mod:`esm.drift`) and
:meth:`Oracle.labels` applies it, so the build can always recompute the labels from the raw
values with everything the checks say so far.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from esm.errors import InputError
from esm.sampling import Pool

if TYPE_CHECKING:
    from esm.drift import DriftEstimate
    from esm.measure import Measurement, Settings
    from esm.measure.warmup import WarmupReport, WarmupRule
    from esm.spaces import SearchSpace
    from esm.store import Store

__all__ = ["CsvOracle", "DeviceOracle", "Oracle", "OracleResult"]


@dataclass
class OracleResult:
    """Raw latencies of the asked networks (NaN where a measurement failed) and their cost.

    ``when`` is the position of each measurement in the run (rows stored before it), which
    the drift correction interpolates on; ``quality`` one record per network measured now.
    """

    y: np.ndarray
    seconds: float
    when: np.ndarray = field(default_factory=lambda: np.zeros(0))
    quality: list[dict[str, Any]] = field(default_factory=list)


class Oracle(ABC):
    """Owns the candidate pool and answers latency queries."""

    space: SearchSpace
    pool: Pool
    #: Latency of every pool member where known without measuring (lookup oracles).
    truth: np.ndarray | None = None
    #: Whether measuring a network again gives a new value (a device: repeats measure noise).
    noisy: ClassVar[bool] = False

    @abstractmethod
    def measure(self, idx: np.ndarray, again: np.ndarray | None = None) -> OracleResult:
        """Raw latency in ms of ``pool.genomes[idx]``; where ``again`` (bool per network) is
        true, the network is measured again although it was measured before (that
        measurement is not stored)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the oracle is, for the report."""

    def drift(self) -> DriftEstimate | None:
        """What the reference checks so far say about drift (None: the oracle has none)."""
        return None

    def unmeasured(self, measured: np.ndarray) -> np.ndarray:
        """Pool indices not in ``measured``: the rows a lookup oracle scores models on."""
        rest = np.ones(len(self.pool), bool)
        rest[np.asarray(measured, np.int64)] = False
        return np.flatnonzero(rest)

    def labels(self, y: np.ndarray, when: np.ndarray) -> np.ndarray:
        """Latencies to train and validate on: ``y`` corrected for drift where
        :meth:`drift` says it is significant, else ``y`` itself."""
        d = self.drift()
        if d is None or not d.applied:
            return np.asarray(y, np.float64)
        return np.asarray(y, np.float64) / d.ratio(when)


class CsvOracle(Oracle):
    """A dataset file as the device: candidates are its rows, a measurement is a lookup.

    Rows whose target is missing, not finite or not positive are dropped (MAPE needs a positive
    truth), and so are rows whose architecture the space refuses.

    ``seconds`` of a lookup is the simulated device time ``overhead_s + repeats * latency``
    (warm-up and launch overhead plus ``repeats`` timed calls), so ``budget_seconds`` and the
    cost breakdown mean something on a file too; it is labelled simulated in the report.
    """

    def __init__(self, space: SearchSpace, path: str | os.PathLike[str], column: str, *,
                 overhead_s: float = 0.5, repeats: int = 100) -> None:
        from esm.surrogate.dataset import read_latency_csv

        self.space = space
        self.path = str(path)
        self.column = column
        self.overhead_s, self.repeats = float(overhead_s), int(repeats)
        if not os.path.isfile(self.path):
            raise InputError(f"no such dataset file: {self.path}")
        data = read_latency_csv(self.path, column)
        if len(data.archs) < 10:
            raise InputError(f"{self.path}: only {len(data.archs)} usable rows in {column!r}")
        try:
            genomes = space.from_strs(data.archs)
        except InputError as err:
            raise InputError(f"{self.path}: architectures are not of space {space.name!r}: "
                             f"{err}") from None
        self.pool = Pool(space, genomes)
        self.truth = data.latency_ms

    def measure(self, idx: np.ndarray, again: np.ndarray | None = None) -> OracleResult:
        assert self.truth is not None
        idx = np.asarray(idx, np.int64)
        y = self.truth[idx]
        secs = float(np.sum(self.overhead_s + self.repeats * y / 1000.0))
        return OracleResult(y=y.copy(), seconds=secs, when=np.zeros(idx.size))

    def describe(self) -> dict[str, Any]:
        return {"kind": "csv", "path": self.path, "column": self.column, "rows": len(self.pool),
                "simulated_seconds": {"overhead_s": self.overhead_s, "repeats": self.repeats}}


class DeviceOracle(Oracle):
    """Measures networks on a device with :mod:`esm.measure` and stores them.

    Candidates are ``pool_size`` distinct uniform samples of the space
    (:func:`esm.collect.architectures`). Every result goes into ``store`` (one run per
    space/device/batch/threads/settings, as ``esm collect`` does), and a network already in
    that run is not measured again (unless asked to, ``again``).

    Before the first measurement the device is warmed up on the reference network
    (:func:`esm.measure.warmup.warm_up` with ``warmup``, the device's default rule unless
    given; ``None`` skips it). The reference is then re-measured precisely
    (:func:`esm.measure.warmup.precise`) before the first network, after every
    ``reference_every`` measurements and at the end of every call. Checks that moved from
    the run's first one by more than ``max(drift_tol, 2 * (rel_ci0 + rel_ci))`` flag the rows
    since the previous check ``drift`` in the store. With ``drift_correction`` (the default)
    :meth:`drift` applies :mod:`esm.drift`'s evidence rule to the checks: labels are
    corrected only where the device measurably moved. The store keeps the raw measurements
    and the checks, so the correction can always be recomputed or left out.
    """

    noisy = True

    def __init__(self, space: SearchSpace, device: str, store: Store, *, pool_size: int = 5000,
                 seed: int = 0, batch_size: int = 1, threads: int | None = None,
                 settings: Settings | None = None, drift_tol: float = 0.05,
                 drift_correction: bool = True, reference_every: int = 20,
                 warmup: WarmupRule | bool | None = True,
                 progress: Callable[[str], None] | None = None) -> None:
        from esm.collect import REFERENCE_SEED, architectures, check_device
        from esm.measure import Settings as _Settings
        from esm.measure import provenance
        from esm.measure.warmup import WarmupRule, precise
        from esm.store import genome_key

        try:
            import torch
        except ImportError:
            raise InputError("measuring on a device needs torch") from None
        self.space = space
        self.device = check_device(device)
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}")
        if threads is not None:
            if threads < 1:
                raise InputError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(int(threads))
        self.threads = int(torch.get_num_threads())
        self.batch_size = int(batch_size)
        self.settings = settings or _Settings.quick()
        self.reference_settings = precise(self.settings)
        self.store = store
        self.drift_tol = drift_tol
        self.drift_correction = bool(drift_correction)
        if reference_every < 0:
            raise InputError(f"reference_every must be >= 0, got {reference_every}")
        self.reference_every = int(reference_every)
        self.warmup_rule: WarmupRule | None = (WarmupRule.for_device(self.device)
                                               if warmup is True else warmup or None)
        self.warmup: WarmupReport | None = None
        self.progress = progress
        self.pool = Pool(space, architectures(space, pool_size, seed))
        self.run_id, _ = store.ensure_run(
            source="measured", space=space.name, space_params=space.params(), device=self.device,
            batch_size=self.batch_size, dtype="float32", threads=self.threads,
            provenance=provenance(self.device, self.threads),
            settings=self.settings.to_dict())
        self._ref = architectures(space, 1, REFERENCE_SEED)[0]
        self._ref_key = genome_key(self._ref)
        checks = store.reference_checks(self.run_id)
        first = next((c for c in checks if c["key"] == self._ref_key), None)
        self._ref_base: dict[str, float] | None = None if first is None else {
            "median_ms": first["median_ms"], "rel_ci": first["rel_ci"] or 0.0}
        self._seq = max((c["seq"] for c in checks), default=-1) + 1
        self._position = {k: p for p, k in enumerate(store.row_keys(self.run_id))}
        self._count = 1
        self._since_check = 0

    # -------------------------------------------------------------- measuring
    def _measure_one(self, genome: np.ndarray,
                     settings: Settings) -> tuple[Measurement, tuple[int, ...]]:
        from esm.measure import measure_module

        shape = self.space.input_shape(genome, self.batch_size)
        module = self.space.build(genome)
        return measure_module(module, shape, self.device, settings), shape

    def warm_up(self) -> WarmupReport | None:
        """Warm the device up on the reference network (once; see the class docs)."""
        if self.warmup is None and self.warmup_rule is not None:
            from esm.measure.warmup import warm_up

            self.warmup = warm_up(lambda: self._measure_one(self._ref,
                                                            self.reference_settings)[0],
                                  self.warmup_rule)
            if self.progress is not None:
                self.progress(self.warmup.message())
        return self.warmup

    def _check_reference(self, rows: list[int]) -> None:
        m, _ = self._measure_one(self._ref, self.reference_settings)
        rel = None
        drift = False
        if self._ref_base is None:
            self._ref_base = {"median_ms": m.median_ms, "rel_ci": m.rel_ci}
        else:
            b = self._ref_base
            rel = (m.median_ms - b["median_ms"]) / b["median_ms"]
            drift = abs(rel) > max(self.drift_tol, 2.0 * (b["rel_ci"] + m.rel_ci))
        self.store.add_reference_check(
            self.run_id, key=self._ref_key, arch=self.space.to_str(self._ref),
            seq=self._seq, done=len(self._position), measurement=m,
            rel_change=rel, drift=drift)
        self._seq += 1
        self._since_check = 0
        if drift:
            self.store.mark_drift(self.run_id, rows)

    def measure(self, idx: np.ndarray, again: np.ndarray | None = None) -> OracleResult:
        from esm.store import genome_key

        t0 = time.monotonic()
        idx = np.asarray(idx, np.int64)
        rep = np.zeros(idx.size, bool) if again is None else np.asarray(again, bool)
        if rep.shape != idx.shape:
            raise InputError("again must have one flag per network")
        self.warm_up()
        stored = {r["key"]: r for r in self.store.measurements(self.run_id, status=None)}
        if self._ref_base is None and idx.size:
            self._check_reference([])
        y = np.full(idx.size, np.nan)
        when = np.zeros(idx.size)
        keys = [genome_key(self.pool.genomes[i]) for i in idx]
        quality: list[dict[str, Any]] = []
        rows: list[int] = []  # stored since the last reference check
        n_new = 0
        for j, i in enumerate(idx):
            g, key = self.pool.genomes[i], keys[j]
            if key in stored and not rep[j]:
                r = stored[key]
                y[j] = r["median_ms"] if r["status"] == "ok" else np.nan
                when[j] = self._position.get(key, 0)
                continue
            when[j] = len(self._position)
            try:
                m, shape = self._measure_one(g, self.settings)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:
                if not rep[j]:
                    self._store(g, key, error=f"{type(err).__name__}: {err}")
                continue
            if not rep[j]:
                rows.append(self._store(g, key, shape=shape, measurement=m))
            y[j] = m.median_ms
            n_new += 1
            self._since_check += 1
            quality.append({"cv": m.cv, "rel_ci": m.rel_ci, "unstable": bool(m.unstable),
                            "outliers": int(m.outliers), "again": bool(rep[j])})
            if self.progress is not None:
                self.progress(f"{self._count:4d} measured{' again' if rep[j] else ''}: "
                              f"{m.median_ms:8.3f} ms (CI +-{100 * m.rel_ci:.1f}%, "
                              f"{m.total_s:.2f} s)")
            self._count += 1
            if self.reference_every and self._since_check >= self.reference_every \
                    and j < idx.size - 1:
                self._check_reference(rows)
                rows = []
        if n_new:
            self._check_reference(rows)
        return OracleResult(y=y, seconds=time.monotonic() - t0, when=when, quality=quality)

    def _store(self, genome: np.ndarray, key: str, *, shape: tuple[int, ...] | None = None,
               measurement: Measurement | None = None, error: str | None = None) -> int:
        """Store one network's result (or failure); returns its row id."""
        row = self.store.add_measurement(
            self.run_id, arch=self.space.to_str(genome), key=key, genome=genome,
            batch_size=self.batch_size, input_shape=shape, measurement=measurement,
            error=error)
        self._position[key] = len(self._position)
        return row

    # -------------------------------------------------------------- drift and description
    def drift(self) -> DriftEstimate | None:
        """:func:`esm.drift.estimate` on this run's checks (None with the correction off)."""
        if not self.drift_correction:
            return None
        from esm.drift import estimate

        return estimate(self.store.reference_checks(self.run_id))

    def reference(self) -> dict[str, Any]:
        """The reference network and its latency at the labels' speed (the drift baseline,
        the median of its checks), for model files: what ``esm check`` and ``esm search
        --verify`` compare the device's speed with."""
        from esm.drift import estimate

        base = estimate(self.store.reference_checks(self.run_id)).baseline_ms
        return {"arch": self.space.to_str(self._ref), "median_ms": base.get(self._ref_key),
                "settings": self.reference_settings.to_dict()}

    def describe(self) -> dict[str, Any]:
        return {"kind": "device", "device": self.device, "store": str(self.store.path),
                "run_id": self.run_id, "batch_size": self.batch_size, "threads": self.threads,
                "pool": len(self.pool), "settings": self.settings.to_dict(),
                "drift_correction": self.drift_correction,
                "reference_every": self.reference_every,
                "warmup": None if self.warmup is None else self.warmup.to_dict(),
                "reference": self.reference()}
