"""What a search optimises: metrics evaluated on whole genome batches, an objective, constraints.

A *metric* is any batch function ``genomes [N, G] int32 -> values [N] float64``. Three kinds:

- ``"predictor"``: a latency (or other) surrogate: any object with ``predict(genomes)`` (an
  ``esm`` surrogate, a compiled predictor, or your own model). Its time is the *predictor*
  time of the search's time split.
- ``"proxy"``: a cost total from :meth:`SearchSpace.costs` (``macs``, ``params``,
  ``activation_bytes``, ``weight_bytes``, ``layers``); all proxies of a problem share one
  compiled cost call per batch.
- ``"callable"``: a Python callable on genome batches.

The :class:`Problem` evaluates every metric once per batch (never once per candidate) and
turns the values into a score to minimise (the objective, negated when maximised) and a
constraint violation (0 when feasible).

Infeasible candidates
---------------------
Every constraint ``metric <= limit`` (or ``>=``) contributes ``max(0, value - limit) /
max(|limit|, tiny)`` (its relative excess) to the candidate's *violation*. Both algorithms use
Deb's feasibility rules: a feasible candidate beats every infeasible one, two infeasible
candidates compare by violation, two feasible ones by objective. For regularized evolution this
is a penalty (the fitness is the pair ``(violation, score)`` compared lexicographically, i.e. an
infeasible candidate is worse than every feasible one whatever the objective scales are); for
NSGA-II it is constraint domination (Deb et al. 2002, section IV).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.spaces.base import SearchSpace

#: Cost totals usable as built-in proxies (objective or constraint).
PROXIES: tuple[str, ...] = ("macs", "params", "activation_bytes", "weight_bytes", "layers")
#: Name of the latency metric.
LATENCY = "latency_ms"


@dataclass
class Metric:
    """A named batch function ``genomes -> float64 [N]``.

    Attributes
    ----------
    name : str
        Name used in results and constraints.
    kind : str
        ``"predictor"``, ``"proxy"`` or ``"callable"`` (see module docs).
    fn : callable, optional
        The batch function (proxies are computed by the problem and have none).
    model : object, optional
        The predictor object behind ``fn`` (kept for its stated error and space).
    """

    name: str
    kind: str
    fn: Callable[[np.ndarray], Any] | None = None
    model: Any = None


@dataclass
class Objective:
    """A metric and a direction."""

    metric: Metric
    maximize: bool = False

    @property
    def name(self) -> str:
        return self.metric.name

    @property
    def sign(self) -> float:
        """Multiplier turning the metric into a score to minimise."""
        return -1.0 if self.maximize else 1.0


@dataclass
class Constraint:
    """``metric <= limit`` (``op="<="``) or ``metric >= limit``."""

    metric: Metric
    limit: float
    op: str = "<="

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">="):
            raise InputError(f"constraint operator must be '<=' or '>=', got {self.op!r}")
        if not np.isfinite(self.limit):
            raise InputError(f"constraint limit of {self.metric.name} must be finite")

    def excess(self, values: np.ndarray) -> np.ndarray:
        """Relative excess ``>= 0`` (0 where satisfied)."""
        over = values - self.limit if self.op == "<=" else self.limit - values
        return np.maximum(over, 0.0) / max(abs(self.limit), 1e-12)

    def __str__(self) -> str:
        return f"{self.metric.name} {self.op} {self.limit:g}"


@dataclass
class Evaluation:
    """Values of one evaluated batch.

    Attributes
    ----------
    values : dict of str to np.ndarray
        Every metric's ``[N]`` float64 values.
    score : np.ndarray
        The objective as a value to minimise, ``[N]``.
    violation : np.ndarray
        Sum of relative constraint excesses, ``[N]`` (0: feasible).
    """

    values: dict[str, np.ndarray]
    score: np.ndarray
    violation: np.ndarray

    @property
    def feasible(self) -> np.ndarray:
        return self.violation <= 0.0


@dataclass
class Counters:
    """Evaluation count and where the time went."""

    evaluated: int = 0
    calls: int = 0
    predict_s: float = 0.0
    objective_s: float = 0.0


def _as_values(out: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(out, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise InputError(f"metric {name!r} returned {arr.shape[0]} values for {n} genomes")
    return arr


def model_space(model: Any) -> SearchSpace | None:
    """The search space of a predictor object (``model.space``), if it has one."""
    space = getattr(model, "space", None)
    if space is None:
        return None
    if isinstance(space, str):
        from esm import spaces

        return spaces.get(space)
    return space


def same_space(a: SearchSpace, b: SearchSpace) -> bool:
    """Whether two spaces have the same name, parameters and genes."""
    return bool(
        a.name == b.name
        and a.params() == b.params()
        and a.genome_length == b.genome_length
        and np.array_equal(a.choices, b.choices)
    )


def predictor_metric(model: Any, name: str, space: SearchSpace | None = None) -> Metric:
    """Wrap an object with ``predict(genomes)`` as a metric; checks its space matches."""
    if not callable(getattr(model, "predict", None)):
        raise InputError(f"{name}: the model has no predict(genomes) method")
    ms = model_space(model)
    if space is not None and ms is not None and not same_space(space, ms):
        raise InputError(
            f"{name}: the model is for space {ms.name} {ms.params()}, the search is over "
            f"{space.name} {space.params()}"
        )
    return Metric(name=name, kind="predictor", fn=model.predict, model=model)


class LoadedModel:
    """A surrogate file ready for search: the loaded surrogate and, when it compiles, its
    compiled predictor (:func:`esm.predictor.compile`), which then answers ``predict``.

    Attributes
    ----------
    surrogate : object
        What :func:`esm.load` returned.
    predictor : object or None
        The compiled predictor, or None (``compile_error`` says why).
    path : str
    """

    def __init__(self, surrogate: Any, path: str = "") -> None:
        self.surrogate = surrogate
        self.path = path
        self.predictor: Any = None
        self.compile_error: str | None = None
        try:
            self.predictor = _compile(surrogate)
        except Exception as err:  # any failure: fall back to the surrogate's own predict
            self.compile_error = f"{type(err).__name__}: {err}"

    @property
    def space(self) -> Any:
        return self.surrogate.space

    @property
    def metrics(self) -> Any:
        return getattr(self.surrogate, "metrics", None)

    @property
    def info(self) -> Any:
        return getattr(self.surrogate, "info", None)

    def predict(self, genomes: Any) -> np.ndarray:
        """Predicted values of a genome batch (compiled predictor when available)."""
        if self.predictor is not None:
            return np.asarray(self.predictor.predict(genomes), dtype=np.float64)
        return np.asarray(self.surrogate.predict(genomes), dtype=np.float64)

    def __repr__(self) -> str:
        how = "compiled" if self.predictor is not None else f"not compiled: {self.compile_error}"
        return f"LoadedModel({self.path!r}, {how})"


def _compile(surrogate: Any, n_check: int = 256, rtol: float = 1e-6) -> Any:
    """The compiled predictor of a surrogate (:func:`esm.predictor.compile`), checked against
    the surrogate's own predict: the compiled predictions must equal the surrogate's on
    ``n_check`` random genomes (relative ``rtol``), else this raises.
    """
    from esm import predictor as _predictor

    pred = _predictor.compile(surrogate)
    g = surrogate.space.sample(n_check, seed=12345)
    want = np.asarray(surrogate.predict(g), dtype=np.float64)
    got = np.asarray(pred.predict(g), dtype=np.float64)
    if not np.allclose(got, want, rtol=rtol, atol=0.0):
        worst = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))
        raise InputError(f"compiled predictor disagrees with the surrogate (rel. {worst:.2g})")
    return pred


def load_model(path: str | Path) -> LoadedModel:
    """Load a surrogate file with :func:`esm.load`, compiled for speed when possible."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"surrogate file not found: {p}")
    if p.is_dir():
        raise InputError(f"{p} is a directory, not a surrogate file")
    import esm

    loader = getattr(esm, "load", None)
    if loader is None:
        raise InputError("loading surrogate files needs esm.surrogate (esm.load)")
    return LoadedModel(loader(str(p)), str(p))


def make_metric(spec: Any, space: SearchSpace, name: str | None = None) -> Metric:
    """Turn an objective/constraint spec into a metric.

    ``spec`` may be a proxy name (:data:`PROXIES`), a :class:`Metric`, an object with
    ``predict`` (a surrogate or predictor), a path to a surrogate file, or a callable on genome
    batches.
    """
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, str) and spec in PROXIES:
        return Metric(name=spec, kind="proxy")
    if isinstance(spec, (str, Path)):
        p = Path(spec)
        if not p.exists():
            raise InputError(
                f"unknown objective {str(spec)!r}: not one of {', '.join(PROXIES)} and no such "
                "surrogate file"
            )
        return predictor_metric(load_model(p), name or p.stem, space)
    if callable(getattr(spec, "predict", None)):
        return predictor_metric(spec, name or type(spec).__name__, space)
    if callable(spec):
        label = name or str(getattr(spec, "__name__", "objective"))
        return Metric(name=label, kind="callable", fn=spec)
    raise InputError(f"cannot use {spec!r} as an objective or constraint")


def parse_constraint(text: str, space: SearchSpace) -> Constraint:
    """Parse ``"NAME<=VALUE"`` or ``"NAME>=VALUE"`` (NAME: a proxy or a surrogate file)."""
    for op in ("<=", ">="):
        if op in text:
            left, _, right = text.partition(op)
            try:
                limit = float(right)
            except ValueError:
                raise InputError(f"constraint {text!r}: {right!r} is not a number") from None
            return Constraint(make_metric(left.strip(), space), limit, op)
    raise InputError(f"constraint {text!r} must look like NAME<=VALUE or NAME>=VALUE")


@dataclass
class Problem:
    """Latency surrogate + objective + constraints over one space, evaluated per batch.

    Parameters
    ----------
    space : SearchSpace
    objective : Objective
        What to optimise.
    constraints : sequence of Constraint
        Feasibility conditions (e.g. the latency budget).
    latency : Metric, optional
        The latency metric (reported for every result and used as NSGA-II's first objective).
    """

    space: SearchSpace
    objective: Objective
    constraints: Sequence[Constraint] = ()
    latency: Metric | None = None
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        metrics: dict[str, Metric] = {}
        for m in self._all_metrics():
            old = metrics.get(m.name)
            if old is not None and old is not m and (old.kind, old.fn) != (m.kind, m.fn):
                raise InputError(f"two different metrics are named {m.name!r}")
            metrics[m.name] = m
        self.metrics = metrics
        self._proxies = [m.name for m in metrics.values() if m.kind == "proxy"]

    def _all_metrics(self) -> list[Metric]:
        out = [] if self.latency is None else [self.latency]
        out.append(self.objective.metric)
        out.extend(c.metric for c in self.constraints)
        return out

    @property
    def latency_name(self) -> str | None:
        return None if self.latency is None else self.latency.name

    def evaluate(self, genomes: np.ndarray) -> Evaluation:
        """Evaluate a batch ``[N, G]``: every metric once, then score and violation."""
        n = int(genomes.shape[0])
        values: dict[str, np.ndarray] = {}
        c = self.counters
        if self._proxies:
            t0 = time.perf_counter()
            totals = self.space.costs(genomes, detail=False).totals()
            for name in self._proxies:
                values[name] = totals[name].astype(np.float64)
            c.objective_s += time.perf_counter() - t0
        for m in self.metrics.values():
            if m.kind == "proxy":
                continue
            assert m.fn is not None
            t0 = time.perf_counter()
            out = _as_values(m.fn(genomes), n, m.name)
            dt = time.perf_counter() - t0
            if m.kind == "predictor":
                c.predict_s += dt
            else:
                c.objective_s += dt
            if not np.all(np.isfinite(out)):
                raise InputError(f"metric {m.name!r} returned NaN or infinite values")
            values[m.name] = out
        score = values[self.objective.name] * self.objective.sign
        violation = np.zeros(n, dtype=np.float64)
        for con in self.constraints:
            violation += con.excess(values[con.metric.name])
        c.evaluated += n
        c.calls += 1
        return Evaluation(values=values, score=score, violation=violation)

    def describe(self) -> dict[str, Any]:
        """JSON-able description (objective name, direction, constraints)."""
        return {
            "space": self.space.name,
            "objective_name": self.objective.name,
            "direction": "maximize" if self.objective.maximize else "minimize",
            "constraints": [str(c) for c in self.constraints],
            "latency": self.latency_name,
        }


def make_problem(
    space: SearchSpace | None = None,
    latency_model: Any = None,
    objective: Any = "macs",
    maximize: bool | None = None,
    latency_budget: float | None = None,
    constraints: Sequence[Constraint | str] = (),
) -> Problem:
    """Build a :class:`Problem` from user-level pieces.

    Parameters
    ----------
    space : SearchSpace, optional
        Defaults to ``latency_model.space``.
    latency_model : object with ``predict(genomes) -> ms``, optional
        The latency surrogate (a loaded surrogate, a compiled predictor or a path).
    objective : str, Path, callable or model
        ``"latency"`` (minimise the latency itself), a proxy name, a surrogate file or object,
        or a callable on genome batches.
    maximize : bool, optional
        Direction. Default: maximise for the ``macs`` and ``params`` proxies (capacity as an
        accuracy proxy under a latency budget), minimise otherwise.
    latency_budget : float, optional
        Constraint ``latency_ms <= latency_budget`` (ms, must be > 0).
    constraints : sequence of Constraint or "NAME<=VALUE" strings
        Further constraints.
    """
    if isinstance(latency_model, (str, Path)):
        latency_model = load_model(latency_model)
    if space is None:
        space = model_space(latency_model) if latency_model is not None else None
        if space is None:
            raise InputError("no search space: pass space= or a latency model with .space")
    lat = None if latency_model is None else predictor_metric(latency_model, LATENCY, space)
    if isinstance(objective, str) and objective == "latency":
        if lat is None:
            raise InputError("objective 'latency' needs a latency model")
        obj_metric = lat
    else:
        obj_metric = make_metric(objective, space)
        if obj_metric.name == LATENCY and obj_metric is not lat:
            raise InputError(f"the objective may not be named {LATENCY!r}")
    if maximize is None:
        maximize = obj_metric.kind == "proxy" and obj_metric.name in ("macs", "params")
    cons: list[Constraint] = []
    if latency_budget is not None:
        if lat is None:
            raise InputError("a latency budget needs a latency model")
        if not latency_budget > 0 or not np.isfinite(latency_budget):
            raise InputError(
                f"latency budget must be a positive number of ms, got {latency_budget}"
            )
        cons.append(Constraint(lat, float(latency_budget), "<="))
    for con in constraints:
        cons.append(parse_constraint(con, space) if isinstance(con, str) else con)
    return Problem(space=space, objective=Objective(obj_metric, bool(maximize)),
                   constraints=cons, latency=lat)
