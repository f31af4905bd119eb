"""Cost-aware surrogate building: iterative dataset expansion until a target error or budget.

The loop (:func:`build`)
------------------------
1. **Error estimate** (``validation``). ``"holdout"``: ``val_size`` networks drawn uniformly
   from the pool are measured and never trained on; the estimate of every step is the MAPE on
   those measured so far. They are measured in ``val_parts`` parts, each shuffled into one of
   the first batches, so that validation and training networks see the same device
   conditions (a device that drifts during the build would otherwise bias the estimate), and
   the build stops on the target only once all of them are measured. On a device
   (``val_repeat``) each validation network is measured a second time with the next call:
   its label is the mean of two measurements taken at different times, and the pairs say
   how well the timer repeats itself (``result["noise"]``), i.e. the error floor that
   measurement noise alone puts under any model. ``"cv"`` measures
   nothing extra and uses ``cv_folds``-fold cross-validation on the training set (cheaper,
   but biased when a strategy concentrates the training set: it then measures the error
   where the strategy sampled, not over the space). ``"holdout+cv"``
   (the default, with ``val_size=25``) measures the holdout too and pools its absolute
   relative errors with the out-of-fold errors of every training network into one mean: the
   figure rests on ``val_size + train`` networks instead of ``val_size``, and the uniform
   holdout anchors it where the training set is not representative. ``"posterior"`` (a
   model with a posterior: trainer ``"transfer"``) is the step model's own expected error
   over up to :data:`POSTERIOR_SAMPLE` unmeasured pool networks
   (:meth:`esm.transfer.TransferFit.expected_errors`), and ``"holdout+posterior"`` pools the
   holdout's errors with that figure counted once per training network, in place of the
   out-of-fold errors. With 10-20 networks chosen by the transfer design, cross-validation
   refits on a fifth fewer of them and leaves out the hardest (the design picks the networks
   the others say least about), so it overstates the error. ``"none"`` skips the
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
   The labels are the raw latencies corrected for drift where the oracle's reference checks
   show it (:meth:`esm.oracles.Oracle.labels`, :mod:`esm.drift`), recomputed at every step.
4. **Stop** when the estimate is at most ``target_mape`` (``target``), when the budget is
   spent (``budget``: ``budget_samples`` counts every measured network, validation included;
   ``budget_seconds`` counts device seconds, i.e. the wall time of the measure stage,
   validation included — the next batch is shrunk to what the mean cost per network so far
   says still fits), or when the pool is exhausted (``pool``).
5. Otherwise **select** the next ``batch`` networks with the strategy and go to 3.

Every stage is timed (``seconds``: ``measure``, ``train``, ``select``, ``evaluate``); the
reported model is the last step's (trained on the training set only, so the validation
figure is honest). :mod:`esm.final` turns the result into the model file a user receives
(and refits the model it chooses on every measured network once that figure is taken).

The state of a build is explicit (:class:`Ledger`: every measurement with its role, and the
validation networks still due) and each step is a method of one loop object, so a new way
to pick, fit or stop plugs into one place. The oracles (what answers "what is the latency
of these networks": a dataset file or a device) are in :mod:`esm.oracles`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError
from esm.oracles import CsvOracle, DeviceOracle, Oracle, OracleResult
from esm.sampling import (
    DEFAULT_STRATEGY,
    RidgeModel,
    feature_sets,
    features,
    get_strategy,
)

if TYPE_CHECKING:
    from esm.spaces import SearchSpace

__all__ = [
    "BuildConfig",
    "CsvOracle",
    "DeviceOracle",
    "Ledger",
    "Oracle",
    "OracleResult",
    "build",
    "mape",
    "prior_config",
    "repeat_noise",
    "trainer",
]

STAGES = ("measure", "train", "select", "evaluate")
#: Error estimates of :class:`BuildConfig` ``validation`` (see the module docs).
VALIDATIONS = ("holdout", "cv", "holdout+cv", "posterior", "holdout+posterior", "none")
#: Unmeasured pool networks the ``posterior`` estimates average over.
POSTERIOR_SAMPLE = 2000


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

    Every feature set that applies (costs per slot; costs summed per stage; the same with each
    stage's MACs split by the choice of the genes that own its slots, ``stages+choices``: a
    device's time per MAC differs by operation; costs + one-hot genes; on spaces whose genes
    share one menu, costs + choice counts) is fitted and scored by its leave-one-out relative
    error (``loo_scores_``). Costs explain most of the latency of
    MobileNet-like spaces: per stage (18 features on ofa-mbv3) up to a few hundred networks,
    then per slot (63), then with the genes. Cell spaces such as NAS-Bench-201 need the
    operation identities (a skip or pooling edge costs no MACs but takes time), first as counts
    (one parameter per operation, pinned down by about 10 networks), then per gene.

    ``sets`` limits the sets tried (default: every one that applies). ``rule`` picks the set
    (``feature_set_``): ``"min"``, the lowest leave-one-out error;
    ``"1se"`` (default), the one-standard-error rule paired over the training networks (as
    :class:`esm.surrogate.models.AutoRegressor`'s): every set whose per-network leave-one-out
    losses exceed the best set's by less than one standard error of their paired difference
    is as good as the best within the noise of the estimate, and of those the one with the
    fewest features is kept. A minimum over a few noisy estimates favours the bigger sets by
    luck, most on a device whose latency is close to linear in the per-stage costs, where a
    bigger set adds variance and no accuracy (``benchmarks/noprior.py``).
    """

    kind = "ridge"
    RULES = ("1se", "min")

    def __init__(self, space: SearchSpace, rule: str = "1se",
                 sets: list[str] | None = None) -> None:
        if rule not in self.RULES:
            raise InputError(f"rule must be one of {', '.join(self.RULES)}, got {rule!r}")
        self.space = space
        self.rule = rule
        self.sets = feature_sets(space) if sets is None else list(sets)
        if not self.sets or not set(self.sets) <= set(feature_sets(space)):
            raise InputError(f"feature sets {self.sets} do not apply to {space.name!r}; "
                             f"known: {', '.join(feature_sets(space))}")

    def fit(self, genomes: np.ndarray, y: np.ndarray) -> _RidgeSurrogate:
        fits: dict[str, tuple[RidgeModel, int]] = {}
        for fs in self.sets:
            X = features(self.space, genomes, fs)
            fits[fs] = (RidgeModel().fit(X, y), X.shape[1])
        self.loo_scores_ = {fs: float(m.loo_) for fs, (m, _) in fits.items()}
        best = min(fits, key=lambda fs: self.loo_scores_[fs])
        chosen = best
        if self.rule == "1se" and len(fits) > 1 and y.size > 2:
            ref = fits[best][0].loo_losses()
            ok = []
            for fs, (m, _) in fits.items():
                d = m.loo_losses() - ref
                if float(d.mean()) <= float(d.std(ddof=1)) / np.sqrt(d.size):
                    ok.append(fs)
            chosen = min(ok, key=lambda fs: (fits[fs][1], self.loo_scores_[fs]))
        self.feature_set_ = chosen
        self.model_ = fits[chosen][0]
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


class _TransferStep:
    """The step model of a build with a prior: :class:`esm.transfer.TransferFit` of the
    training networks under the :class:`esm.transfer.PriorModel`."""

    kind = "transfer"

    def __init__(self, prior: Any) -> None:
        self.prior = prior

    def fit(self, genomes: np.ndarray, y: np.ndarray) -> _TransferStep:
        self.fit_ = self.prior.fit(genomes, y)
        return self

    def predict(self, genomes: np.ndarray) -> np.ndarray:
        return np.asarray(self.fit_.predict(genomes), dtype=np.float64)

    def expected_errors(self, genomes: np.ndarray) -> np.ndarray:
        return self.fit_.expected_errors(genomes)


def surrogate_available() -> bool:
    """Whether :mod:`esm.surrogate` (the full surrogate models) is installed."""
    try:
        from esm.surrogate import Surrogate  # noqa: F401
    except ImportError:
        return False
    return True


def trainer(name: str, space: SearchSpace, *, encoding: str = "fcc", model: str = "auto",
            seed: int = 0, prior: Any = None) -> Callable[[], Any]:
    """A factory of step models: ``"ridge"`` (fast, NumPy), ``"surrogate"``, or
    ``"transfer"`` (needs ``prior``, an :class:`esm.transfer.PriorModel`)."""
    if name == "transfer":
        if prior is None:
            raise InputError("trainer 'transfer' needs a prior (--prior FILE)")
        return lambda: _TransferStep(prior)
    if name == "ridge":
        return lambda: _RidgeSurrogate(space)
    if name == "surrogate":
        if not surrogate_available():
            raise InputError("trainer 'surrogate' needs esm.surrogate, which is not installed")
        return lambda: _EsmSurrogate(space, encoding, model, seed)
    raise InputError(f"unknown trainer {name!r}; known: ridge, surrogate, transfer")


# ---------------------------------------------------------------------------------- config
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
    val_repeat: bool = True
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
        if self.validation.endswith("posterior") and self.trainer != "transfer":
            raise InputError(f"validation {self.validation!r} needs the posterior of trainer "
                             f"'transfer' (a prior), not {self.trainer!r}")
        if self.validation.startswith("holdout") and self.val_size < 2:
            raise InputError(f"validation size must be >= 2, got {self.val_size}")
        if self.val_parts < 1:
            raise InputError(f"validation parts must be >= 1, got {self.val_parts}")
        if self.validation in ("cv", "holdout+cv") and self.cv_folds < 2:
            raise InputError(f"cv folds must be >= 2, got {self.cv_folds}")
        if (self.target_mape is None and self.budget_samples is None
                and self.budget_seconds is None):
            raise InputError("give a target MAPE or a budget, else the build never stops")
        from esm.sampling import names

        if self.strategy not in (*names(), "default", "transfer"):
            raise InputError(f"unknown sampling strategy {self.strategy!r}; known: "
                             f"{', '.join(names())}, transfer")


def prior_config(*, lookup: bool = False, **settings: Any) -> BuildConfig:
    """The :class:`BuildConfig` of a build with a prior (``build(..., prior=...)``): the transfer
    design and model, batches of 10, and as the error estimate a holdout of 10 networks (measured
    with the first batch) pooled with the model's posterior expected error on a device (its
    networks are also measured twice, which tells the device's noise) or, on a lookup oracle
    (``lookup``: a dataset file as the device, where budgets count networks and the truth states
    the error), the posterior expected error alone: a holdout would spend the few networks a
    prior makes enough. ``settings`` override.

    Why the posterior and not cross-validation (``benchmarks/transfer.py --parts trust``, every
    visible column left out in turn, 5 seeds; estimate / true MAPE on the unmeasured rows,
    geometric mean and share of builds within a factor 1.25): on a device with 20 networks,
    nb201 1.47 / 32% with cross-validation, 0.94 / 54% with the posterior; fbnet 1.24 / 35%
    and 1.00 / 57%; ofa-mbv3 1.17 / 60% and 0.93 / 57%. On a dataset file with 10: nb201 3.27 /
    4% and 1.07 / 40%, fbnet 1.45 / 30% and 1.13 / 41%. The posterior cannot see what the
    model cannot represent: on nb201 pixel3, whose runtime folds the cells without an
    input-to-output path to a few microseconds and whose other latencies the features explain
    to 20-25%, it states 6-16% against a true 16-28% on a dataset file. Stopping on it (the 13
    ``cost`` targets, 5 seeds) measures as many networks or fewer on every target (ofa-mbv3
    2080ti_64 at 3%: 58 against 66) and stopped above the target in 4 of 64 builds (by at
    most 0.28 points), cross-validation in 0 of 65."""
    base: dict[str, Any] = {"strategy": "transfer", "trainer": "transfer", "initial": 10,
                            "batch": 10,
                            "validation": "posterior" if lookup else "holdout+posterior",
                            "val_size": 10, "val_parts": 1}
    return BuildConfig(**{**base, **settings})


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


def _estimate(cfg: BuildConfig, make: Callable[[], Any], model: Any, genomes: np.ndarray,
              train: np.ndarray, y_train: np.ndarray, val: np.ndarray,
              y_val: np.ndarray, unmeasured: np.ndarray) -> float:
    """The step's MAPE estimate (percent) by ``cfg.validation``; NaN when there is none yet.

    ``holdout+cv`` pools the absolute relative errors of the holdout networks and the
    out-of-fold errors of the training networks into one mean: more networks behind the
    figure than either alone, at no extra measurement. ``holdout+posterior`` pools them with
    the model's expected error over (a sample of) the ``unmeasured`` pool rows, counted once
    per training network.
    """
    if cfg.validation == "none":
        return math.nan
    errs: list[np.ndarray] = []
    if cfg.validation.startswith("holdout") and val.size:
        errs.append(np.abs(model.predict(genomes[val]) / y_val - 1.0))
    if cfg.validation in ("cv", "holdout+cv"):
        errs.append(_cv_errors(make, genomes[train], y_train, cfg.cv_folds, cfg.seed))
    if cfg.validation.endswith("posterior") and unmeasured.size:
        rows = np.random.default_rng(cfg.seed).permutation(unmeasured)[:POSTERIOR_SAMPLE]
        expected = float(np.mean(model.expected_errors(genomes[rows])))
        errs.append(np.full(max(train.size, 1), expected))
    e = np.concatenate(errs) if errs else np.zeros(0)
    return float(100.0 * e.mean()) if e.size else math.nan


# ---------------------------------------------------------------------------------- the ledger
@dataclass
class Ledger:
    """What was measured, for what role: one record per measurement, in measurement order.

    A network's first measurement decides its role (``"train"`` or ``"validation"``); a
    validation network measured again (``again``) adds a second record, and its label is the
    geometric mean of its records. Labels come from :meth:`esm.oracles.Oracle.labels`: the
    raw values, corrected for drift where the oracle's reference checks show it, recomputed
    whenever asked (a later check can change what an earlier one meant).
    """

    idx: list[int] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    when: list[float] = field(default_factory=list)
    val: list[bool] = field(default_factory=list)
    again: list[bool] = field(default_factory=list)

    def add(self, idx: np.ndarray, r: OracleResult, val: np.ndarray, again: np.ndarray) -> None:
        self.idx += np.asarray(idx, np.int64).tolist()
        self.y += np.asarray(r.y, np.float64).tolist()
        when = r.when if r.when.size == len(idx) else np.zeros(len(idx))
        self.when += np.asarray(when, np.float64).tolist()
        self.val += np.asarray(val, bool).tolist()
        self.again += np.asarray(again, bool).tolist()

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (np.asarray(self.idx, np.int64), np.asarray(self.y, np.float64),
                np.asarray(self.when, np.float64), np.asarray(self.val, bool),
                np.asarray(self.again, bool))

    @property
    def measured(self) -> np.ndarray:
        """Every pool index measured (train, validation, failed), first measurements only."""
        idx, _, _, _, again = self._arrays()
        return idx[~again]

    @property
    def n_networks(self) -> int:
        return len(self.idx) - int(np.count_nonzero(self.again))

    @property
    def failed(self) -> int:
        _, y, _, _, again = self._arrays()
        return int(np.count_nonzero(~np.isfinite(y[~again])))

    def role(self, validation: bool, oracle: Oracle | None = None, *,
             raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(pool indices, labels)`` of the networks of a role whose first measurement
        succeeded, in first-measurement order (raw values with ``raw`` or no oracle)."""
        idx, y, when, val, again = self._arrays()
        lab = y if raw or oracle is None else oracle.labels(y, when)
        first = (~again) & (val == validation) & np.isfinite(y)
        out_idx = idx[first]
        if not validation or not again.any():
            return out_idx, lab[first]
        logs = np.log(np.where(np.isfinite(lab) & (lab > 0), lab, np.nan))
        out = np.empty(out_idx.size)
        for j, i in enumerate(out_idx):
            v = logs[(idx == i) & np.isfinite(logs)]
            out[j] = float(np.exp(v.mean()))
        return out_idx, out

    def repeats(self, oracle: Oracle | None = None, *, raw: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
        """Labels ``(first, second)`` of every network measured twice (both succeeded)."""
        idx, y, when, _, again = self._arrays()
        lab = y if raw or oracle is None else oracle.labels(y, when)
        a, b = [], []
        for j in np.flatnonzero(again & np.isfinite(lab)):
            k = np.flatnonzero((idx == idx[j]) & ~again)
            if k.size and np.isfinite(lab[k[0]]):
                a.append(lab[k[0]])
                b.append(lab[j])
        return np.asarray(a), np.asarray(b)


def repeat_noise(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """How well the timer repeats itself on networks measured twice, at different times.

    ``mean`` is ``100 * mean |a / b - 1|`` (percent; the MAPE one measurement scores against
    another), ``median`` likewise, and ``floor`` is ``mean / 2``: about the MAPE that even a
    perfect model shows against labels that are the mean of two such measurements (one
    measurement's error is ``1/sqrt 2`` of a difference's, and the mean of two halves it
    again in variance).
    """
    if a.size == 0:
        return {"n": 0, "mean": math.nan, "median": math.nan, "floor": math.nan}
    e = 100.0 * np.abs(a / b - 1.0)
    return {"n": int(a.size), "mean": float(e.mean()), "median": float(np.median(e)),
            "floor": float(e.mean() / 2.0)}


# ---------------------------------------------------------------------------------- the loop
class _Loop:
    """One build: the state of :func:`build` and its steps as methods (see the module docs).

    The state is the :class:`Ledger` (what was measured, for what role), the validation
    networks still to measure (``val_todo``, ``again_todo``), the history and the stage
    seconds; the steps are :meth:`size` (how many to pick, by the budget), :meth:`pick`
    (the strategy), :meth:`measure`, :meth:`fit` and :meth:`evaluate`, and :meth:`stop`.
    """

    def __init__(self, oracle: Oracle, cfg: BuildConfig, make: Callable[[], Any],
                 say: Callable[[str], None], prior: Any = None) -> None:
        self.oracle, self.cfg, self.make, self.say = oracle, cfg, make, say
        self.prior = prior
        self.space, self.pool = oracle.space, oracle.pool
        self.pool.set_feature_set("costs")  # until a step model chooses
        if cfg.strategy == "transfer":
            if prior is None:
                raise InputError("strategy 'transfer' needs a prior (--prior FILE)")
            from esm.transfer import TransferDesign

            self.strategy: Any = TransferDesign(self.space, model=prior,
                                                **cfg.strategy_params)
        else:
            self.strategy = get_strategy(cfg.strategy, self.space, **cfg.strategy_params)
        self.rng = np.random.default_rng(cfg.seed)
        self.secs = dict.fromkeys(STAGES, 0.0)
        self.device_s = 0.0
        self.quality: list[dict[str, Any]] = []
        self.ledger = Ledger()
        self.history: list[dict[str, Any]] = []
        self.model: Any = None
        self.val_todo = self._validation_set()
        self.val_part = -(-self.val_todo.size // cfg.val_parts)
        self.again_todo = np.zeros(0, np.int64)  # validation networks to measure again
        self.repeat = cfg.val_repeat and oracle.noisy

    def _validation_set(self) -> np.ndarray:
        cfg = self.cfg
        if not cfg.validation.startswith("holdout"):
            return np.zeros(0, np.int64)
        k = min(cfg.val_size, len(self.pool) - 1)
        if cfg.budget_samples is not None:
            k = min(k, cfg.budget_samples // 3)
        if k < 2:
            raise InputError("pool or sample budget too small for a validation set")
        return self.rng.choice(len(self.pool), size=k, replace=False).astype(np.int64)

    def size(self, k: int, extra: int) -> int:
        """How many training networks the next call may pick besides ``extra`` others."""
        cfg, n = self.cfg, self.ledger.n_networks
        if cfg.budget_samples is not None:
            k = min(k, cfg.budget_samples - n - int(self.val_todo[:self.val_part].size))
        if cfg.budget_seconds is not None:
            left = cfg.budget_seconds - self.device_s
            if left <= 0:
                return 0
            if len(self.ledger.idx):
                k = min(k, int(left / (self.device_s / len(self.ledger.idx))) - extra)
        return k

    def pick(self, k: int) -> np.ndarray:
        """The strategy's next ``k`` training networks; it models the training set, the
        validation networks (measured or not) and failed rows are only excluded."""
        t = time.monotonic()
        train, y_train = self.ledger.role(False, self.oracle)
        exclude = np.union1d(np.setdiff1d(self.ledger.measured, train), self.val_todo)
        pick = self.strategy.select(self.pool, k, seed=self.rng, measured=train,
                                    y=y_train if train.size else None, exclude=exclude)
        self.secs["select"] += time.monotonic() - t
        return pick

    def measure(self, pick: np.ndarray) -> None:
        """Measure ``pick``, the next validation part and the validation networks due again,
        in one shuffled call: all of them see the same device conditions, so drift cannot
        make the estimate look better or worse."""
        v = self.val_todo[:self.val_part]
        again = self.again_todo
        both = np.concatenate([v, pick, again])
        is_val = np.concatenate([np.ones(v.size, bool), np.zeros(pick.size, bool),
                                 np.ones(again.size, bool)])
        is_again = np.concatenate([np.zeros(v.size + pick.size, bool), np.ones(again.size, bool)])
        order = self.rng.permutation(both.size)
        both, is_val, is_again = both[order], is_val[order], is_again[order]
        r = self.oracle.measure(both, again=is_again)
        self.secs["measure"] += r.seconds
        self.device_s += r.seconds
        self.quality.extend(r.quality)
        self.ledger.add(both, r, is_val, is_again)
        self.val_todo = self.val_todo[v.size:]
        ok = np.isfinite(r.y) & is_val & ~is_again
        self.again_todo = both[ok] if self.repeat else np.zeros(0, np.int64)
        if v.size or again.size:
            n_val = self.ledger.role(True)[0].size
            self.say(f"validation: {n_val} networks measured"
                     + (f", {again.size} of them again" if again.size else ""))

    def fit(self) -> bool:
        """Train the step model on the training labels; False while there are fewer than 2."""
        train, y_train = self.ledger.role(False, self.oracle)
        if train.size < 2:
            return False
        t = time.monotonic()
        self.model = self.make().fit(self.pool.genomes[train], y_train)
        if hasattr(self.model, "feature_set_"):
            self.pool.set_feature_set(self.model.feature_set_)
        self.secs["train"] += time.monotonic() - t
        return True

    def evaluate(self) -> dict[str, Any]:
        """The step's error estimate (and the truth on a lookup oracle); one history entry."""
        cfg, oracle = self.cfg, self.oracle
        t = time.monotonic()
        train, y_train = self.ledger.role(False, oracle)
        val, y_val = self.ledger.role(True, oracle)
        rest = oracle.unmeasured(self.ledger.measured)
        estimate = _estimate(cfg, self.make, self.model, self.pool.genomes, train, y_train,
                             val, y_val, rest)
        true_mape = true_tau = math.nan
        if oracle.truth is not None:
            if rest.size:
                pred = self.model.predict(self.pool.genomes[rest])
                true_mape = mape(oracle.truth[rest], pred)
                if cfg.rank_metric:
                    true_tau = kendall_tau(oracle.truth[rest], pred)
        self.secs["evaluate"] += time.monotonic() - t
        step = {"step": len(self.history), "train_samples": int(train.size),
                "val_samples": int(val.size),
                "features": getattr(self.model, "feature_set_", None),
                "samples_used": self.ledger.n_networks, "measurements": len(self.ledger.idx),
                "device_seconds": self.device_s, "mape_estimate": estimate,
                "mape_true": true_mape, "tau_true": true_tau, "seconds": dict(self.secs)}
        self.history.append(step)
        self.say(f"step {step['step']}: {train.size} trained, {step['samples_used']} measured,"
                 f" MAPE estimate {estimate:.2f}%"
                 + ("" if math.isnan(true_mape) else f", on unmeasured rows {true_mape:.2f}%"))
        return step

    def stop(self, step: dict[str, Any]) -> bool:
        """Whether the step reached the target (every validation network measured)."""
        cfg = self.cfg
        if cfg.target_mape is None:
            return False
        if math.isfinite(step["mape_estimate"]) and step["mape_estimate"] <= cfg.target_mape \
                and self.val_todo.size == 0 and self.again_todo.size == 0:
            return True
        return cfg.validation == "none" and math.isfinite(step["mape_true"]) \
            and step["mape_true"] <= cfg.target_mape

    def run(self) -> str:
        """Steps until a stop; returns the reason."""
        k = self.cfg.initial
        while True:
            extra = int(self.val_todo[:self.val_part].size + self.again_todo.size)
            k = self.size(k, extra)
            if k <= 0:
                return "budget"
            pick = self.pick(k)
            if pick.size == 0:
                return "pool"
            self.measure(pick)
            k = self.cfg.batch
            if self.fit() and self.stop(self.evaluate()):
                return "target"


def build(oracle: Oracle, config: BuildConfig | None = None, *,
          encoding: str = "fcc", model: str = "auto",
          log: Callable[[str], None] | None = None,
          prior: Any = None) -> tuple[dict[str, Any], Any]:
    """Run the iterative build loop; returns ``(result, model)``.

    ``prior`` (an :class:`esm.transfer.PriorModel`: other devices' latencies for the space)
    is what the ``"transfer"`` strategy and trainer learn from (:func:`prior_config`); every
    network measured on the target still counts against the budget.

    ``result`` (JSON-able) has ``samples_used`` (every measured network, validation
    included), ``measurements`` (repeats included), ``train_samples``, ``val_samples``,
    ``mape`` (true MAPE on every pool row not measured, lookup oracles only, else the
    validation estimate), ``mape_estimate``, ``target_reached``, ``stop_reason``,
    ``seconds`` by stage and in total, ``history`` (one entry per step), ``predictions``
    (measured vs predicted on the evaluation rows), ``measured`` (pool indices and labels
    of the training and validation networks), ``noise`` (:func:`repeat_noise` of the
    validation networks measured twice), ``drift`` (:meth:`esm.drift.DriftEstimate.to_dict`
    and whether the labels were corrected), ``warmup`` and the config. ``model`` has
    ``predict(genomes)``.
    """
    cfg = config or BuildConfig()
    cfg.check()
    make = trainer(cfg.trainer, oracle.space, encoding=encoding, model=model, seed=cfg.seed,
                   prior=prior)
    say = log or (lambda _m: None)
    t_start = time.monotonic()
    loop = _Loop(oracle, cfg, make, say, prior)
    stop_reason = loop.run()
    if loop.model is None:
        raise InputError("the budget ran out before a model could be trained "
                         "(raise --budget-samples / --budget-seconds)")
    return _result(loop, stop_reason, time.monotonic() - t_start), loop.model


def _result(loop: _Loop, stop_reason: str, total_s: float) -> dict[str, Any]:
    """The JSON-able result of a finished loop (see :func:`build`)."""
    oracle, cfg, led = loop.oracle, loop.cfg, loop.ledger
    final = loop.history[-1]
    train, y_train = led.role(False, oracle)
    val, y_val = led.role(True, oracle)
    raw_train, raw_val = led.role(False, raw=True)[1], led.role(True, raw=True)[1]
    drift = oracle.drift()
    warm = getattr(oracle, "warmup", None)
    return {
        "space": loop.space.name,
        "oracle": oracle.describe(),
        "strategy": loop.strategy.name,
        "config": asdict(cfg),
        "trainer": loop.model.kind,
        "samples_used": led.n_networks,
        "measurements": len(led.idx),
        "train_samples": int(train.size),
        "val_samples": int(val.size),
        "failed": led.failed,
        "mape": final["mape_true"] if math.isfinite(final["mape_true"])
        else final["mape_estimate"],
        "mape_estimate": final["mape_estimate"],
        "mape_true": final["mape_true"],
        "target_mape": cfg.target_mape,
        "target_reached": stop_reason == "target",
        "stop_reason": stop_reason,
        "device_seconds": loop.device_s,
        "seconds": {**loop.secs, "total": total_s},
        "history": loop.history,
        "quality": loop.quality,
        "noise": repeat_noise(*led.repeats(oracle)),
        "drift": None if drift is None else {**drift.to_dict(), "labels": "corrected"
                                             if drift.applied else "raw"},
        "warmup": None if warm is None else warm.to_dict(),
        "predictions": _predictions(oracle, loop.model, led.measured, val, y_val),
        "prior": None if loop.prior is None else loop.prior.describe(),
        "measured": {"train": train.tolist(), "validation": val.tolist(),
                     "all": led.measured.tolist(),
                     "y_train": y_train.tolist(), "y_validation": y_val.tolist(),
                     "y_train_raw": raw_train.tolist(), "y_validation_raw": raw_val.tolist()},
    }


def _predictions(oracle: Oracle, model: Any, measured: np.ndarray, val: np.ndarray,
                 y_val: np.ndarray, limit: int = 5000) -> dict[str, Any]:
    if oracle.truth is not None:
        idx = oracle.unmeasured(measured)[:limit]
        return {"on": "unmeasured rows", "measured": oracle.truth[idx].tolist(),
                "predicted": model.predict(oracle.pool.genomes[idx]).tolist()}
    if val.size:
        return {"on": "validation set", "measured": y_val.tolist(),
                "predicted": model.predict(oracle.pool.genomes[val]).tolist()}
    return {"on": "none", "measured": [], "predicted": []}
