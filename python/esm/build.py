"""Cost-aware surrogate building: iterative dataset expansion until a target error or budget.

The loop (:func:`build`)
------------------------
1. **Error estimate** (``validation``). ``"holdout"``: ``val_size`` networks drawn uniformly
   from the pool are measured and never trained on; the estimate of every step is the MAPE on
   those measured so far. They are measured in ``val_parts`` parts, each shuffled into one of
   the first batches, so that validation and training networks see the same device
   conditions (a device that drifts during the build would otherwise bias the estimate), and
   the build stops on the target only once all of them are measured. ``"cv"`` measures
   nothing extra and uses ``cv_folds``-fold cross-validation on the training set (cheaper,
   but biased when a strategy concentrates the training set: it then measures the error
   where the strategy sampled, not over the space). ``"holdout+cv"``
   (the default, with ``val_size=25``) measures the holdout too and pools its absolute
   relative errors with the out-of-fold errors of every training network into one mean: the
   figure rests on ``val_size + train`` networks instead of ``val_size``, and the uniform
   holdout anchors it where the training set is not representative. ``"none"`` skips the
   estimate (a lookup oracle still reports the true error on every row it did not reveal).

   Why this default (``benchmarks/stopping.py``, results in ``benchmarks/results/
   stopping.md``: three ofa-mbv3 large-batch GPU columns, target 5 %, random and the default
   strategy, 5 seeds each): a holdout of 50 alone is noisy (with random sampling 4 of 15
   builds stopped with the true error above the target, and it costs 50 networks); a holdout
   of 100 is reliable but costs about 60 networks more per build; CV alone is the cheapest
   but optimistic for uniform sampling (4 of 15 missed the target); holdout 25 + CV used
   fewer networks than holdout 50 with both strategies (108 vs 114 random, 120 vs 126
   default) and met the target more often (13/15 and 15/15 vs 11/15 and 14/15).
2. **Initial batch** of ``initial`` networks chosen by the strategy (model-guided strategies
   fall back to ``balanced`` while there is too little data).
3. **Train** the step's model on everything measured for training, **estimate** its error.
4. **Stop** when the estimate is at most ``target_mape`` (``target``), when the budget is
   spent (``budget``: ``budget_samples`` counts every measured network, validation included;
   ``budget_seconds`` counts device seconds, i.e. the wall time of the measure stage,
   validation included — the next batch is shrunk to what the mean cost per network so far
   says still fits), or when the pool is exhausted (``pool``).
5. Otherwise **select** the next ``batch`` networks with the strategy and go to 3.

Every stage is timed (``seconds``: ``measure``, ``train``, ``select``, ``evaluate``); the
reported model is the last step's (trained on the training set only, so the validation
figure is honest).

Oracles
-------
An oracle owns the candidate pool and answers "what is the latency of these networks":
:class:`CsvOracle` looks them up in a dataset file (candidates are the file's rows, and it knows
the truth for every row, so the error on all unrevealed rows is reported too);
:class:`DeviceOracle` measures them with :mod:`esm.measure` into an :class:`esm.store.Store`
(candidates are a large uniform sample of the space).
"""

from __future__ import annotations

import csv
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError
from esm.sampling import (
    DEFAULT_STRATEGY,
    Pool,
    RidgeModel,
    feature_sets,
    features,
    get_strategy,
)

if TYPE_CHECKING:
    from esm.measure import Settings
    from esm.spaces import SearchSpace
    from esm.store import Store

__all__ = [
    "BuildConfig",
    "CsvOracle",
    "DeviceOracle",
    "Oracle",
    "OracleResult",
    "build",
    "mape",
    "trainer",
]

STAGES = ("measure", "train", "select", "evaluate")
#: Error estimates of :class:`BuildConfig` ``validation`` (see the module docs).
VALIDATIONS = ("holdout", "cv", "holdout+cv", "none")


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error in percent."""
    y_true = np.asarray(y_true, np.float64)
    if y_true.size == 0:
        return math.nan
    return float(100.0 * np.mean(np.abs(np.asarray(y_pred, np.float64) / y_true - 1.0)))


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall's tau-b between measured and predicted latency (rank agreement)."""
    from scipy.stats import kendalltau

    return float(kendalltau(y_true, y_pred).statistic)


# ---------------------------------------------------------------------------------- trainers
class _RidgeSurrogate:
    """The build loop's fast model: ridge on :func:`esm.sampling.features`.

    Every feature set that applies (costs per slot; costs summed per stage; costs + one-hot
    genes; on spaces whose genes share one menu, costs + choice counts) is fitted and the one
    with the lowest leave-one-out relative error is kept (``feature_set_``). Costs explain
    most of the latency of MobileNet-like spaces: per stage (18 features on ofa-mbv3) up to a
    few hundred networks, then per slot (63), then with the genes. Cell spaces such as
    NAS-Bench-201 need the operation identities (a skip or pooling edge costs no MACs but takes
    time), first as counts (one parameter per operation, pinned down by about 10 networks),
    then per gene.
    """

    kind = "ridge"

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.sets = feature_sets(space)

    def fit(self, genomes: np.ndarray, y: np.ndarray) -> _RidgeSurrogate:
        best: tuple[float, str, RidgeModel] | None = None
        for fs in self.sets:
            m = RidgeModel().fit(features(self.space, genomes, fs), y)
            if best is None or m.loo_ < best[0]:
                best = (m.loo_, fs, m)
        assert best is not None
        _, self.feature_set_, self.model_ = best
        return self

    def predict(self, genomes: np.ndarray) -> np.ndarray:
        return self.model_.predict(features(self.space, genomes, self.feature_set_))


class _EsmSurrogate:
    """An :class:`esm.surrogate.Surrogate` (encoding + regressor) as the step model."""

    kind = "surrogate"

    def __init__(self, space: SearchSpace, encoding: str, model: str, seed: int) -> None:
        self.space, self.encoding, self.model, self.seed = space, encoding, model, seed

    def fit(self, genomes: np.ndarray, y: np.ndarray) -> _EsmSurrogate:
        from esm.surrogate import Surrogate

        self.model_ = Surrogate.fit(self.space, genomes, y, encoding=self.encoding,
                                    model=self.model, seed=self.seed)
        return self

    def predict(self, genomes: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict(genomes), dtype=np.float64)

    def save(self, path: str | os.PathLike[str]) -> None:
        self.model_.save(path)


def surrogate_available() -> bool:
    """Whether :mod:`esm.surrogate` (the full surrogate models) is installed."""
    try:
        from esm.surrogate import Surrogate  # noqa: F401
    except ImportError:
        return False
    return True


def trainer(name: str, space: SearchSpace, *, encoding: str = "fcc", model: str = "auto",
            seed: int = 0) -> Callable[[], Any]:
    """A factory of step models: ``"ridge"`` (fast, NumPy) or ``"surrogate"``."""
    if name == "ridge":
        return lambda: _RidgeSurrogate(space)
    if name == "surrogate":
        if not surrogate_available():
            raise InputError("trainer 'surrogate' needs esm.surrogate, which is not installed")
        return lambda: _EsmSurrogate(space, encoding, model, seed)
    raise InputError(f"unknown trainer {name!r}; known: ridge, surrogate")


# ---------------------------------------------------------------------------------- oracles
@dataclass
class OracleResult:
    """Latencies of the asked networks (NaN where a measurement failed) and its cost."""

    y: np.ndarray
    seconds: float
    quality: list[dict[str, Any]] = field(default_factory=list)


class Oracle(ABC):
    """Owns the candidate pool and answers latency queries."""

    space: SearchSpace
    pool: Pool
    #: Latency of every pool member where known without measuring (lookup oracles).
    truth: np.ndarray | None = None

    @abstractmethod
    def measure(self, idx: np.ndarray) -> OracleResult:
        """Latency in ms of ``pool.genomes[idx]``."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the oracle is, for the report."""


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
        self.space = space
        self.path = str(path)
        self.column = column
        self.overhead_s, self.repeats = float(overhead_s), int(repeats)
        if not os.path.isfile(self.path):
            raise InputError(f"no such dataset file: {self.path}")
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            if "arch" not in fields:
                raise InputError(f"{self.path}: no 'arch' column (columns: {fields})")
            if column not in fields:
                lat = [c for c in fields if c != "arch"]
                raise InputError(f"{self.path}: no column {column!r}; latency columns: "
                                 f"{', '.join(lat)}")
            archs: list[str] = []
            ys: list[float] = []
            for row in reader:
                try:
                    v = float(row[column])
                except (TypeError, ValueError):
                    continue
                if math.isfinite(v) and v > 0:
                    archs.append(row["arch"])
                    ys.append(v)
        if len(archs) < 10:
            raise InputError(f"{self.path}: only {len(archs)} usable rows in {column!r}")
        try:
            genomes = space.from_strs(archs)
        except InputError as err:
            raise InputError(f"{self.path}: architectures are not of space {space.name!r}: "
                             f"{err}") from None
        self.pool = Pool(space, genomes)
        self.truth = np.asarray(ys, dtype=np.float64)

    def measure(self, idx: np.ndarray) -> OracleResult:
        assert self.truth is not None
        y = self.truth[np.asarray(idx, np.int64)]
        secs = float(np.sum(self.overhead_s + self.repeats * y / 1000.0))
        return OracleResult(y=y.copy(), seconds=secs)

    def describe(self) -> dict[str, Any]:
        return {"kind": "csv", "path": self.path, "column": self.column, "rows": len(self.pool),
                "simulated_seconds": {"overhead_s": self.overhead_s, "repeats": self.repeats}}


class DeviceOracle(Oracle):
    """Measures networks on a device with :mod:`esm.measure` and stores them.

    Candidates are ``pool_size`` distinct uniform samples of the space
    (:func:`esm.collect.architectures`). Every result goes into ``store`` (one run per
    space/device/batch/threads/settings, as ``esm collect`` does), and a network already in
    that run is not measured again.

    Drift: a fixed reference network is re-measured before the first measurement, after every
    ``reference_every`` networks and at the end of every call, and compared with its first
    measurement in the run; rows measured while it had moved by more than
    ``max(drift_tol, 2 * (rel_ci0 + rel_ci))`` are flagged ``drift`` in the store. With
    ``drift_correction`` (the default) the latencies returned are normalised to the run's first
    reference check (:mod:`esm.drift`); the store keeps the raw measurements and the checks, so
    the correction can always be recomputed or left out.
    """

    def __init__(self, space: SearchSpace, device: str, store: Store, *, pool_size: int = 5000,
                 seed: int = 0, batch_size: int = 1, threads: int | None = None,
                 settings: Settings | None = None, drift_tol: float = 0.05,
                 drift_correction: bool = True, reference_every: int = 10,
                 progress: Callable[[str], None] | None = None) -> None:
        from esm.collect import REFERENCE_SEED, architectures, check_device
        from esm.measure import Settings as _Settings
        from esm.measure import provenance
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
        self.store = store
        self.drift_tol = drift_tol
        self.drift_correction = bool(drift_correction)
        if reference_every < 0:
            raise InputError(f"reference_every must be >= 0, got {reference_every}")
        self.reference_every = int(reference_every)
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
        self._count = 1

    def _measure_one(self, genome: np.ndarray) -> tuple[Any, tuple[int, ...]]:
        from esm.measure import measure_module

        shape = self.space.input_shape(genome, self.batch_size)
        module = self.space.build(genome)
        return measure_module(module, shape, self.device, self.settings), shape

    def _check_reference(self, rows: list[int]) -> None:
        m, _ = self._measure_one(self._ref)
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
            seq=self._seq, done=len(self.store.keys(self.run_id)), measurement=m,
            rel_change=rel, drift=drift)
        self._seq += 1
        if drift:
            self.store.mark_drift(self.run_id, rows)

    def measure(self, idx: np.ndarray) -> OracleResult:
        from esm.drift import factors
        from esm.store import genome_key

        t0 = time.monotonic()
        idx = np.asarray(idx, np.int64)
        stored = {r["key"]: r for r in self.store.measurements(self.run_id, status=None)}
        if self._ref_base is None and idx.size:
            self._check_reference([])
        y = np.full(idx.size, np.nan)
        keys = [genome_key(self.pool.genomes[i]) for i in idx]
        quality: list[dict[str, Any]] = []
        rows: list[int] = []  # stored since the last reference check
        measured: list[int] = []  # positions j measured by this call
        for j, i in enumerate(idx):
            g = self.pool.genomes[i]
            key = keys[j]
            if key in stored:
                r = stored[key]
                y[j] = r["median_ms"] if r["status"] == "ok" else np.nan
                continue
            arch = self.space.to_str(g)
            try:
                m, shape = self._measure_one(g)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:
                self.store.add_measurement(self.run_id, arch=arch, key=key, genome=g,
                                           batch_size=self.batch_size,
                                           error=f"{type(err).__name__}: {err}")
                continue
            rows.append(self.store.add_measurement(
                self.run_id, arch=arch, key=key, genome=g, batch_size=self.batch_size,
                input_shape=shape, measurement=m))
            y[j] = m.median_ms
            measured.append(j)
            quality.append({"cv": m.cv, "rel_ci": m.rel_ci, "unstable": bool(m.unstable),
                            "outliers": int(m.outliers)})
            if self.progress is not None:
                self.progress(f"{self._count:4d} measured: {m.median_ms:8.3f} ms "
                              f"(CI +-{100 * m.rel_ci:.1f}%, {m.total_s:.2f} s)")
            self._count += 1
            if self.reference_every and len(rows) >= self.reference_every \
                    and j < idx.size - 1:
                self._check_reference(rows)
                rows = []
        if measured:
            self._check_reference(rows)
        ratio = np.ones(idx.size)
        if self.drift_correction:
            f = factors(self.store, self.run_id)
            ratio = np.asarray([f.get(k, 1.0) for k in keys])
            y = y / ratio
        for q, j in zip(quality, measured, strict=True):
            q["speed_ratio"] = float(ratio[j])
        return OracleResult(y=y, seconds=time.monotonic() - t0, quality=quality)

    def describe(self) -> dict[str, Any]:
        return {"kind": "device", "device": self.device, "store": str(self.store.path),
                "run_id": self.run_id, "batch_size": self.batch_size, "threads": self.threads,
                "pool": len(self.pool), "settings": self.settings.to_dict(),
                "drift_correction": self.drift_correction,
                "reference": {"arch": self.space.to_str(self._ref),
                              "median_ms": None if self._ref_base is None
                              else self._ref_base["median_ms"]}}


# ---------------------------------------------------------------------------------- the loop
@dataclass
class BuildConfig:
    """Settings of :func:`build` (see the module docs)."""

    strategy: str = DEFAULT_STRATEGY
    strategy_params: dict[str, Any] = field(default_factory=dict)
    initial: int = 20
    batch: int = 20
    target_mape: float | None = 5.0
    budget_samples: int | None = None
    budget_seconds: float | None = None
    validation: str = "holdout+cv"
    val_size: int = 25
    val_parts: int = 3
    cv_folds: int = 5
    seed: int = 0
    trainer: str = "ridge"
    rank_metric: bool = False

    def check(self) -> None:
        if self.initial < 1 or self.batch < 1:
            raise InputError("initial and batch sizes must be >= 1")
        if self.target_mape is not None and not self.target_mape > 0:
            raise InputError(f"target MAPE must be > 0 (percent), got {self.target_mape}")
        if self.budget_samples is not None and self.budget_samples < 1:
            raise InputError(f"sample budget must be >= 1, got {self.budget_samples}")
        if self.budget_seconds is not None and not self.budget_seconds > 0:
            raise InputError(f"seconds budget must be > 0, got {self.budget_seconds}")
        if self.validation not in VALIDATIONS:
            raise InputError(f"validation must be one of {', '.join(VALIDATIONS)}, got "
                             f"{self.validation!r}")
        if self.validation in ("holdout", "holdout+cv") and self.val_size < 2:
            raise InputError(f"validation size must be >= 2, got {self.val_size}")
        if self.val_parts < 1:
            raise InputError(f"validation parts must be >= 1, got {self.val_parts}")
        if self.validation in ("cv", "holdout+cv") and self.cv_folds < 2:
            raise InputError(f"cv folds must be >= 2, got {self.cv_folds}")
        if (self.target_mape is None and self.budget_samples is None
                and self.budget_seconds is None):
            raise InputError("give a target MAPE or a budget, else the build never stops")
        from esm.sampling import names

        if self.strategy not in (*names(), "default"):
            raise InputError(f"unknown sampling strategy {self.strategy!r}; known: "
                             f"{', '.join(names())}")


def _cv_errors(make: Callable[[], Any], genomes: np.ndarray, y: np.ndarray, folds: int,
               seed: int) -> np.ndarray:
    """Out-of-fold absolute relative errors of every training network (empty when too few)."""
    n = y.size
    if n < 2 * folds:
        return np.zeros(0)
    perm = np.random.default_rng(seed).permutation(n)
    errs = np.empty(n)
    for f in range(folds):
        te = perm[f::folds]
        tr = np.setdiff1d(perm, te)
        errs[te] = np.abs(make().fit(genomes[tr], y[tr]).predict(genomes[te]) / y[te] - 1.0)
    return errs


def _cv_mape(make: Callable[[], Any], genomes: np.ndarray, y: np.ndarray, folds: int,
             seed: int) -> float:
    e = _cv_errors(make, genomes, y, folds, seed)
    return float(100.0 * e.mean()) if e.size else math.nan


def _estimate(cfg: BuildConfig, make: Callable[[], Any], model: Any, genomes: np.ndarray,
              train: np.ndarray, y_train: np.ndarray, val: np.ndarray,
              y_val: np.ndarray) -> float:
    """The step's MAPE estimate (percent) by ``cfg.validation``; NaN when there is none yet.

    ``holdout+cv`` pools the absolute relative errors of the holdout networks and the
    out-of-fold errors of the training networks into one mean: more networks behind the
    figure than either alone, at no extra measurement.
    """
    if cfg.validation == "none":
        return math.nan
    errs: list[np.ndarray] = []
    if cfg.validation in ("holdout", "holdout+cv") and val.size:
        errs.append(np.abs(model.predict(genomes[val]) / y_val - 1.0))
    if cfg.validation in ("cv", "holdout+cv"):
        errs.append(_cv_errors(make, genomes[train], y_train, cfg.cv_folds, cfg.seed))
    e = np.concatenate(errs) if errs else np.zeros(0)
    return float(100.0 * e.mean()) if e.size else math.nan


def build(oracle: Oracle, config: BuildConfig | None = None, *,
          encoding: str = "fcc", model: str = "auto",
          log: Callable[[str], None] | None = None) -> tuple[dict[str, Any], Any]:
    """Run the iterative build loop; returns ``(result, model)``.

    ``result`` (JSON-able) has ``samples_used`` (every measured network, validation
    included), ``train_samples``, ``val_samples``, ``mape`` (true MAPE on every pool row not
    measured, lookup oracles only, else the validation estimate), ``mape_estimate``,
    ``target_reached``, ``stop_reason``, ``seconds`` by stage and in total, ``history`` (one
    entry per step), ``predictions`` (measured vs predicted on the evaluation rows) and the
    config. ``model`` has ``predict(genomes)``.
    """
    cfg = config or BuildConfig()
    cfg.check()
    space, pool = oracle.space, oracle.pool
    pool.set_feature_set("costs")  # until a step model chooses
    strategy = get_strategy(cfg.strategy, space, **cfg.strategy_params)
    make = trainer(cfg.trainer, space, encoding=encoding, model=model, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    secs = dict.fromkeys(STAGES, 0.0)
    device_s = 0.0
    quality: list[dict[str, Any]] = []
    say = log or (lambda _m: None)
    t_start = time.monotonic()

    measured = np.zeros(0, np.int64)  # every pool index measured (train, validation, failed)
    y_meas = np.zeros(0)
    train = np.zeros(0, np.int64)
    y_train = np.zeros(0)
    val = np.zeros(0, np.int64)
    y_val = np.zeros(0)

    def account(idx: np.ndarray, r: OracleResult) -> None:
        nonlocal measured, y_meas, device_s
        measured = np.concatenate([measured, idx])
        y_meas = np.concatenate([y_meas, r.y])
        device_s += r.seconds
        quality.extend(r.quality)

    def n_used() -> int:
        return int(measured.size)

    val_todo = np.zeros(0, np.int64)  # validation networks not measured yet
    if cfg.validation in ("holdout", "holdout+cv"):
        k = min(cfg.val_size, len(pool) - 1)
        if cfg.budget_samples is not None:
            k = min(k, cfg.budget_samples // 3)
        if k < 2:
            raise InputError("pool or sample budget too small for a validation set")
        val_todo = rng.choice(len(pool), size=k, replace=False).astype(np.int64)
    val_part = -(-val_todo.size // cfg.val_parts)

    history: list[dict[str, Any]] = []
    stop_reason = ""
    model_obj: Any = None
    estimate = math.nan
    k = cfg.initial
    while True:
        v = val_todo[:val_part]
        if cfg.budget_samples is not None:
            k = min(k, cfg.budget_samples - n_used() - v.size)
        if cfg.budget_seconds is not None:
            left = cfg.budget_seconds - device_s
            if measured.size and left > 0:
                k = min(k, int(left / (device_s / measured.size)) - v.size)
            elif left <= 0:
                k = 0
        if k <= 0:
            stop_reason = "budget"
            break
        t = time.monotonic()
        # the strategy models the training set; the holdout (measured or still to measure)
        # and failed rows are only excluded
        pick = strategy.select(pool, k, seed=rng, measured=train,
                               y=y_train if train.size else None,
                               exclude=np.union1d(np.setdiff1d(measured, train), val_todo))
        secs["select"] += time.monotonic() - t
        if pick.size == 0:
            stop_reason = "pool"
            break
        # validation and training networks measured in one shuffled call: both see the same
        # device conditions, so drift cannot make the estimate look better or worse
        both = rng.permutation(np.concatenate([v, pick]))
        r = oracle.measure(both)
        secs["measure"] += r.seconds
        account(both, r)
        val_todo = val_todo[v.size:]
        is_val = np.isin(both, v)
        ok = np.isfinite(r.y)
        val = np.concatenate([val, both[is_val & ok]])
        y_val = np.concatenate([y_val, r.y[is_val & ok]])
        if v.size:
            say(f"validation: {val.size} networks measured")
        pick, r.y = both[~is_val], r.y[~is_val]
        ok = np.isfinite(r.y)
        train = np.concatenate([train, pick[ok]])
        y_train = np.concatenate([y_train, r.y[ok]])
        if train.size < 2:
            k = cfg.batch
            continue
        t = time.monotonic()
        model_obj = make().fit(pool.genomes[train], y_train)
        if hasattr(model_obj, "feature_set_"):
            pool.set_feature_set(model_obj.feature_set_)
        secs["train"] += time.monotonic() - t
        t = time.monotonic()
        estimate = _estimate(cfg, make, model_obj, pool.genomes, train, y_train, val, y_val)
        true_mape = true_tau = math.nan
        if oracle.truth is not None:
            rest = np.ones(len(pool), bool)
            rest[measured] = False
            if rest.any():
                pred = model_obj.predict(pool.genomes[rest])
                true_mape = mape(oracle.truth[rest], pred)
                if cfg.rank_metric:
                    true_tau = kendall_tau(oracle.truth[rest], pred)
        secs["evaluate"] += time.monotonic() - t
        step = {"step": len(history), "train_samples": int(train.size),
                "val_samples": int(val.size),
                "features": getattr(model_obj, "feature_set_", None),
                "samples_used": n_used(), "device_seconds": device_s,
                "mape_estimate": estimate, "mape_true": true_mape, "tau_true": true_tau,
                "seconds": dict(secs)}
        history.append(step)
        say(f"step {step['step']}: {train.size} trained, {n_used()} measured, "
            f"MAPE estimate {estimate:.2f}%"
            + ("" if math.isnan(true_mape) else f", on unmeasured rows {true_mape:.2f}%"))
        if cfg.target_mape is not None and math.isfinite(estimate) \
                and estimate <= cfg.target_mape and val_todo.size == 0:
            stop_reason = "target"
            break
        if cfg.target_mape is not None and cfg.validation == "none" \
                and math.isfinite(true_mape) and true_mape <= cfg.target_mape:
            stop_reason = "target"
            break
        k = cfg.batch
    if model_obj is None:
        raise InputError("the budget ran out before a model could be trained "
                         "(raise --budget-samples / --budget-seconds)")

    final = history[-1]
    result: dict[str, Any] = {
        "space": space.name,
        "oracle": oracle.describe(),
        "strategy": strategy.name,
        "config": asdict(cfg),
        "trainer": model_obj.kind,
        "samples_used": n_used(),
        "train_samples": int(train.size),
        "val_samples": int(val.size),
        "failed": int(np.sum(~np.isfinite(y_meas))),
        "mape": final["mape_true"] if math.isfinite(final["mape_true"])
        else final["mape_estimate"],
        "mape_estimate": final["mape_estimate"],
        "mape_true": final["mape_true"],
        "target_mape": cfg.target_mape,
        "target_reached": stop_reason == "target",
        "stop_reason": stop_reason,
        "device_seconds": device_s,
        "seconds": {**secs, "total": time.monotonic() - t_start},
        "history": history,
        "quality": quality,
    }
    result["predictions"] = _predictions(oracle, model_obj, measured, val, y_val)
    result["measured"] = {"train": train.tolist(), "validation": val.tolist(),
                          "y_train": y_train.tolist(), "y_validation": y_val.tolist()}
    return result, model_obj


def _predictions(oracle: Oracle, model: Any, measured: np.ndarray, val: np.ndarray,
                 y_val: np.ndarray, limit: int = 5000) -> dict[str, Any]:
    if oracle.truth is not None:
        rest = np.ones(len(oracle.pool), bool)
        rest[measured] = False
        idx = np.flatnonzero(rest)[:limit]
        return {"on": "unmeasured rows", "measured": oracle.truth[idx].tolist(),
                "predicted": model.predict(oracle.pool.genomes[idx]).tolist()}
    if val.size:
        return {"on": "validation set", "measured": y_val.tolist(),
                "predicted": model.predict(oracle.pool.genomes[val]).tolist()}
    return {"on": "none", "measured": [], "predicted": []}
