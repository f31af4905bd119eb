"""Evolution with every step on one array backend: sampling, crossover, mutation, tournaments
and the surrogate (the flat pipeline with a folded linear model) as batch operations.

:class:`CudaOps` runs them as CUDA kernels on cupy arrays (``_cuda.DeviceVariation`` and
``_cuda.DevicePipeline``): genomes never leave the device. :class:`TwinOps` runs the CPU twins
of the same kernels (``_core.variation_*``, ``_core.FlatPipeline``, ``_core.flat_costs``),
which give exactly the same genomes and scores; it is the test oracle on machines without a
GPU.

:func:`device_search` is ``esm search --device cuda``: the normal search semantics (an
objective, a latency budget, feasibility first) on the device. The objective is the predicted
latency or a cost proxy (``macs``, ``params``, ``activation_bytes``, ``weight_bytes``,
``layers``) from the cost totals that the fused kernel computes for the latency anyway (one
walk per genome gives both: ``predict_linear(..., totals)``), combined with the budget's
violation by array operations of the backend (NumPy for the twin, cupy on the GPU): nothing
but the best few genomes and one number per generation leaves the device.

The algorithm (elitist genetic search)
--------------------------------------
The population of ``P`` genomes is kept sorted by ``(violation, score)`` (Deb's feasibility
rules: any feasible genome before any infeasible one, infeasible ones by their relative excess
over the budget, feasible ones by the objective as a value to minimise). Each generation draws
``P`` children: two tournaments (binary by default) on the population's ranks pick the
parents (the rank is the exact lexicographic order, so the tournament kernel's single float
key needs no scaling), uniform crossover mixes them and mutation changes each gene with probability
``mutation_rate``; the children are scored and the best ``P`` of parents and children (two
stable sorts) form the next population. The best genome ever scored is therefore always in the
population (row 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from esm import _core
from esm.errors import InputError
from esm.search.result import Budget, SearchResult
from esm.spaces.base import BYTES_PER_ELEMENT

#: Cost proxies the device pipeline gives: (column of its cost totals, multiplier), as
#: :meth:`SearchSpace.costs` defines them (``weight_bytes`` is params times the element size).
DEVICE_PROXIES: dict[str, tuple[int, int]] = {
    "macs": (0, 1),
    "params": (1, 1),
    "activation_bytes": (2, 1),
    "weight_bytes": (1, BYTES_PER_ELEMENT),
    "layers": (3, 1),
}
#: Objectives the device search runs.
DEVICE_OBJECTIVES: tuple[str, ...] = ("latency", *DEVICE_PROXIES)
#: Default population (and children per generation) on the device.
DEFAULT_POPULATION = 65_536
#: Rows of the final population searched for the ``top`` distinct genomes.
TOP_ROWS = 8192


class DeviceOps(Protocol):
    """The batch operations :func:`device_evolution` needs (arrays of one backend, ``xp``)."""

    xp: Any

    def sample(self, n: int, seed: int) -> Any: ...
    def mutate(self, genomes: Any, rate: float, seed: int) -> Any: ...
    def crossover(self, a: Any, b: Any, seed: int) -> Any: ...
    def tournament(self, score: Any, n: int, size: int, seed: int) -> Any: ...
    def score(self, genomes: Any) -> Any: ...
    def costs(self, genomes: Any) -> Any: ...
    def score_costs(self, genomes: Any) -> tuple[Any, Any]: ...


class TwinOps:
    """CPU twins of the device kernels (NumPy arrays).

    Parameters
    ----------
    flat : esm._core.FlatPipeline
        The surrogate: a flat pipeline with a linear model set (``set_linear``).
    choices : numpy.ndarray
        Number of choices per gene.
    space : SearchSpace, optional
        The space (its cost kernel and config); needed by :meth:`costs` only.
    """

    xp = np

    def __init__(self, flat: Any, choices: np.ndarray, space: Any = None) -> None:
        self.flat = flat
        self.choices = np.ascontiguousarray(choices, dtype=np.int32)
        self.space = space

    def sample(self, n: int, seed: int) -> np.ndarray:
        return _core.variation_sample(self.choices, n, seed)

    def mutate(self, genomes: np.ndarray, rate: float, seed: int) -> np.ndarray:
        return _core.variation_mutate(self.choices, genomes, rate, seed)

    def crossover(self, a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
        return _core.variation_crossover(a, b, seed)

    def tournament(self, score: np.ndarray, n: int, size: int, seed: int) -> np.ndarray:
        return _core.variation_tournament(score, n, size, seed)

    def score(self, genomes: np.ndarray) -> np.ndarray:
        return self.flat.predict_linear(genomes)[0]

    def costs(self, genomes: np.ndarray) -> np.ndarray:
        """Cost totals int64 ``[N, 4]`` (macs, params, activation_bytes, layers)."""
        if self.space is None:
            raise InputError("TwinOps.costs needs the space (TwinOps(..., space=space))")
        return _core.flat_costs(self.space.kernel, genomes, self.space.config, False)[0]

    def score_costs(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions ``[N]`` and the cost totals ``[N, 4]`` of the same walk (one pass)."""
        out = self.flat.predict_linear(genomes, True)
        return out[0], out[2]


class CudaOps:
    """The same operations as CUDA kernels on cupy arrays (needs a GPU, cupy and esm._cuda).

    Parameters
    ----------
    flat : esm._core.FlatPipeline
        The surrogate with its linear model; copied to the device.
    choices : numpy.ndarray
        Number of choices per gene.
    space : SearchSpace, optional
        Unused (the device pipeline holds the space's cost walk); accepted for symmetry with
        :class:`TwinOps`.
    """

    def __init__(self, flat: Any, choices: np.ndarray, space: Any = None) -> None:
        import cupy

        from esm import _cuda

        self.xp = cupy
        self.var = _cuda.DeviceVariation(np.ascontiguousarray(choices, dtype=np.int32))
        self.pipe = _cuda.DevicePipeline.from_twin(flat)
        self.G = len(choices)

    def _stream(self) -> int:
        return int(self.xp.cuda.get_current_stream().ptr)

    def sample(self, n: int, seed: int) -> Any:
        out = self.xp.empty((n, self.G), self.xp.int32)
        self.var.sample(seed, n, out.data.ptr, self._stream())
        return out

    def mutate(self, genomes: Any, rate: float, seed: int) -> Any:
        g = self.xp.ascontiguousarray(genomes, dtype=self.xp.int32)
        out = self.xp.empty_like(g)
        self.var.mutate(seed, rate, g.data.ptr, len(g), out.data.ptr, self._stream())
        return out

    def crossover(self, a: Any, b: Any, seed: int) -> Any:
        a = self.xp.ascontiguousarray(a, dtype=self.xp.int32)
        b = self.xp.ascontiguousarray(b, dtype=self.xp.int32)
        out = self.xp.empty_like(a)
        self.var.crossover(seed, a.data.ptr, b.data.ptr, len(a), out.data.ptr, self._stream())
        return out

    def tournament(self, score: Any, n: int, size: int, seed: int) -> Any:
        s = self.xp.ascontiguousarray(score, dtype=self.xp.float64)
        out = self.xp.empty(n, self.xp.int64)
        self.var.tournament(seed, s.data.ptr, len(s), size, n, out.data.ptr, self._stream())
        return out

    def score(self, genomes: Any) -> Any:
        g = self.xp.ascontiguousarray(genomes, dtype=self.xp.int32)
        out = self.xp.empty(len(g), self.xp.float64)
        bad = self.xp.empty(len(g), self.xp.int64)
        self.pipe.predict_linear(g.data.ptr, len(g), out.data.ptr, bad.data.ptr, self._stream())
        return out

    def costs(self, genomes: Any) -> Any:
        """Cost totals int64 ``[N, 4]`` from the cost kernel (no per-slot detail)."""
        g = self.xp.ascontiguousarray(genomes, dtype=self.xp.int32)
        totals = self.xp.empty((len(g), 4), self.xp.int64)
        bad = self.xp.empty(len(g), self.xp.int64)
        self.pipe.costs(g.data.ptr, len(g), totals.data.ptr, 0, bad.data.ptr, self._stream())
        return totals

    def score_costs(self, genomes: Any) -> tuple[Any, Any]:
        """Predictions ``[N]`` and the cost totals ``[N, 4]`` of the same walk (one kernel)."""
        g = self.xp.ascontiguousarray(genomes, dtype=self.xp.int32)
        n = len(g)
        out = self.xp.empty(n, self.xp.float64)
        bad = self.xp.empty(n, self.xp.int64)
        totals = self.xp.empty((n, 4), self.xp.int64)
        self.pipe.predict_linear(g.data.ptr, n, out.data.ptr, bad.data.ptr, self._stream(),
                                 totals.data.ptr)
        return out, totals


# ---------------------------------------------------------------------------- the loop
#: ``evaluate(genomes) -> {"score": .., "violation": .., other named values}`` (one backend).
Evaluate = Callable[[Any], dict[str, Any]]


@dataclass
class Population:
    """A population sorted by ``(violation, score)``, with every evaluated value per row."""

    genomes: Any
    values: dict[str, Any]

    def __len__(self) -> int:
        return int(self.genomes.shape[0])


def _argsort(xp: Any, a: Any) -> Any:
    return np.argsort(a, kind="stable") if xp is np else xp.argsort(a)


def _select(xp: Any, genomes: Any, values: dict[str, Any], keep: int) -> Population:
    """The best ``keep`` rows by ``(violation, score)`` (two stable sorts: ties keep order)."""
    order = _argsort(xp, values["score"])
    viol = values["violation"]
    if bool((viol > 0).any()):
        order = order[_argsort(xp, viol[order])]
    order = order[:keep]
    return Population(genomes[order], {k: v[order] for k, v in values.items()})


_U64 = 0xFFFFFFFFFFFFFFFF


def _stream_seed(seed: int, gen: int, k: int) -> int:
    """Seed of stream ``k`` (1..4) of generation ``gen``: a uint64 for the counter-based RNG."""
    return ((seed * 1_000_003 + gen * 8) + k) & _U64


@dataclass
class Evolution:
    """Outcome of :func:`evolve` (arrays of the backend)."""

    population: Population
    history: list[float]
    candidates: int
    generations: int
    seconds: float


def evolve(ops: DeviceOps, evaluate: Evaluate, stop: Budget, population: int,
           mutation_rate: float, tournament_size: int, seed: int,
           progress: Callable[[Population], float] | None = None) -> Evolution:
    """Elitist genetic search on one backend (see the module docs).

    Parameters
    ----------
    ops : DeviceOps
        The backend's batch operations.
    evaluate : callable
        ``genomes -> dict`` with ``"score"`` (to minimise) and ``"violation"`` (0: feasible)
        float64 ``[N]`` arrays, plus any other per-genome values to carry along.
    stop : esm.search.result.Budget
        Stopping rule, as the CPU search's; ``seconds`` is checked between generations.
    population : int
        Population ``P`` and children per generation (the last generation is cut to honour
        ``max_evaluations`` exactly; fewer than ``P`` evaluations give only the initial sample).
    mutation_rate, tournament_size, seed
        Variation settings and the seed of every counter-based stream.
    progress : callable, optional
        ``sorted population -> float`` recorded in the history after every generation
        (default: the best score).
    """
    if population < 2:
        raise InputError(f"population must be >= 2, got {population}")
    if not 0.0 <= mutation_rate <= 1.0:
        raise InputError(f"mutation_rate must be in [0, 1], got {mutation_rate}")
    if tournament_size < 1:
        raise InputError(f"tournament_size must be >= 1, got {tournament_size}")
    xp = ops.xp
    record = progress or (lambda p: float(p.values["score"][0]))
    t0 = time.perf_counter()
    n0 = population if stop.max_evaluations is None else min(population, stop.max_evaluations)
    seed = int(seed) & _U64
    g0 = ops.sample(n0, seed)
    pop = _select(xp, g0, evaluate(g0), n0)
    history = [record(pop)]
    candidates = n0
    ranks = xp.arange(n0, dtype=xp.float64)  # the sorted population's lexicographic order
    gen = 0
    while len(pop) == population:
        n = stop.batch(gen, candidates, t0, population)
        if n <= 0:
            break
        s1, s2, s3, s4 = (_stream_seed(seed, gen + 1, k) for k in (1, 2, 3, 4))
        a = pop.genomes[ops.tournament(ranks, n, tournament_size, s1)]
        b = pop.genomes[ops.tournament(ranks, n, tournament_size, s2)]
        child = ops.mutate(ops.crossover(a, b, s3), mutation_rate, s4)
        cv = evaluate(child)
        allg = xp.concatenate([pop.genomes, child])
        allv = {k: xp.concatenate([v, cv[k]]) for k, v in pop.values.items()}
        pop = _select(xp, allg, allv, population)
        candidates += n
        gen += 1
        history.append(record(pop))
    return Evolution(population=pop, history=history, candidates=candidates, generations=gen,
                     seconds=time.perf_counter() - t0)


@dataclass
class DeviceSearchResult:
    """Outcome of :func:`device_evolution` (host arrays)."""

    best_genome: np.ndarray
    best_score: float
    history: list[float]
    candidates: int
    seconds: float

    @property
    def rate(self) -> float:
        """Candidates scored per second."""
        return self.candidates / self.seconds if self.seconds > 0 else float("inf")


def _host(a: Any) -> np.ndarray:
    return np.asarray(a.get() if hasattr(a, "get") else a)


def device_evolution(ops: DeviceOps, population: int = 65_536, generations: int = 20,
                     mutation_rate: float = 0.1, tournament_size: int = 2,
                     seed: int = 0) -> DeviceSearchResult:
    """Minimise the surrogate's score by elitist evolution, every step a batch operation.

    Each generation draws ``population`` children (tournament parents, uniform crossover,
    mutation), scores them and keeps the best ``population`` of parents and children. No
    constraint: :func:`device_search` adds objectives and the latency budget.

    Parameters
    ----------
    ops : DeviceOps
        :class:`CudaOps` (GPU) or :class:`TwinOps` (its CPU twin: the same genomes).
    population : int
        Population and children per generation.
    generations : int
        Generations after the initial sample.
    mutation_rate : float
        Probability that a gene changes.
    tournament_size : int
        Entrants per tournament.
    seed : int
        Seed of every counter-based stream.

    Returns
    -------
    DeviceSearchResult
    """
    if population < 2 or generations < 0:
        raise ValueError("population must be >= 2 and generations >= 0")
    xp = ops.xp

    def evaluate(g: Any) -> dict[str, Any]:
        return {"score": ops.score(g), "violation": xp.zeros(len(g), dtype=xp.float64)}

    ev = evolve(ops, evaluate, Budget(generations=generations), population, mutation_rate,
                tournament_size, seed)
    pop = ev.population
    return DeviceSearchResult(best_genome=_host(pop.genomes[0]),
                              best_score=float(pop.values["score"][0]), history=ev.history,
                              candidates=ev.candidates, seconds=ev.seconds)


# ---------------------------------------------------------------------------- the search
@dataclass
class DeviceObjective:
    """Objective and latency budget of a device search, as backend array operations.

    Attributes
    ----------
    name : str
        ``"latency"`` or a key of :data:`DEVICE_PROXIES`.
    maximize : bool
    latency_budget : float or None
        Constraint ``latency <= latency_budget`` (ms).
    """

    name: str
    maximize: bool
    latency_budget: float | None = None

    def __post_init__(self) -> None:
        if self.name not in DEVICE_OBJECTIVES:
            raise InputError(
                f"objective {self.name!r} is not supported on the device: use one of "
                f"{', '.join(DEVICE_OBJECTIVES)} (a surrogate-file or callable objective runs "
                "on the CPU: --device cpu)")
        b = self.latency_budget
        if b is not None and not (b > 0 and math.isfinite(b)):
            raise InputError(f"latency budget must be a positive number of ms, got {b}")

    @property
    def value_name(self) -> str:
        """Name of the objective's value in results (``latency_ms`` for the latency)."""
        from esm.search.problem import LATENCY

        return LATENCY if self.name == "latency" else self.name

    def evaluator(self, ops: DeviceOps) -> Evaluate:
        """``genomes -> {"score", "violation", "latency_ms"[, proxy]}`` on ``ops``' backend."""
        from esm.search.problem import LATENCY

        xp = ops.xp
        sign = -1.0 if self.maximize else 1.0
        budget = self.latency_budget
        proxy = DEVICE_PROXIES.get(self.name)

        def evaluate(genomes: Any) -> dict[str, Any]:
            if proxy is None:
                lat = ops.score(genomes)
                out = {LATENCY: lat}
                obj = lat
            else:
                lat, totals = ops.score_costs(genomes)  # one walk: latency and costs
                out = {LATENCY: lat}
                col, mult = proxy
                obj = totals[:, col].astype(xp.float64)
                if mult != 1:
                    obj = obj * mult
                out[self.name] = obj
            out["score"] = obj * sign
            if budget is None:
                out["violation"] = xp.zeros(len(genomes), dtype=xp.float64)
            else:
                out["violation"] = xp.maximum(lat - budget, 0.0) / budget
            return out

        return evaluate

    def progress(self, pop: Population) -> float:
        """Best feasible objective value of a sorted population (NaN when none is feasible)."""
        if float(pop.values["violation"][0]) > 0:
            return math.nan
        return float(pop.values[self.value_name][0])


def flat_pipeline(model: Any) -> tuple[Any, Any]:
    """The flat pipeline (``_core.FlatPipeline`` with the folded linear model) of a model.

    Parameters
    ----------
    model : str, Path, LoadedModel, surrogate or Predictor
        A latency surrogate file, a loaded surrogate (``esm.load``) or its compiled predictor.

    Returns
    -------
    (predictor, flat)
        The compiled :class:`esm.predictor.Predictor` and its CPU-twin pipeline.

    Raises
    ------
    InputError
        With the reason when the device pipeline cannot run the model: not a linear family,
        a target other than identity/log, a device that prunes dead operations or folds
        constant-output networks (:attr:`esm.surrogate.Surrogate.pruned`,
        :attr:`~esm.surrogate.Surrogate.constant_output_ms`), an encoding without a compiled
        plan, a space without a device cost walk or more slots than the pipeline holds.
    """
    from pathlib import Path

    from esm import predictor as _predictor
    from esm.search.problem import LoadedModel, load_model

    if isinstance(model, (str, Path)):
        model = load_model(model)
    if isinstance(model, LoadedModel):
        if model.predictor is None:
            raise InputError(f"the device search needs the compiled predictor of the model, "
                             f"which failed: {model.compile_error}")
        pred = model.predictor
    elif isinstance(model, _predictor.Predictor):
        pred = model
    elif hasattr(model, "encoder") and hasattr(model, "space"):
        pred = _predictor.compile(model)
    else:
        raise InputError(f"cannot run {type(model).__name__} on the device: pass a surrogate "
                         "file, a loaded surrogate or its compiled predictor")
    m = pred.model
    if m.kind != "linear":
        raise InputError(
            f"the device pipeline runs linear surrogates only (a linear model folded into the "
            f"encode); this model is of the {m.kind!r} family: use --device cpu")
    if m.target not in ("identity", "log"):
        raise InputError(f"the device pipeline folds the identity and log targets, not "
                         f"{m.target!r}: use --device cpu")
    runtime = [why for why, on in (("prunes dead operations", pred.pruned),
                                    ("folds constant-output networks",
                                     pred.constant_output_ms is not None)) if on]
    if runtime:
        raise InputError(f"the device pipeline predicts every network as written; this model's "
                         f"device {' and '.join(runtime)}: use --device cpu")
    if pred.encoder is None or not pred.fused:
        raise InputError(f"the model's encoding has no compiled plan for the device pipeline "
                         f"({pred.fused_reason}): use --device cpu")
    from esm.predictor.plan import build_plan

    space = pred.space
    try:
        flat = _core.FlatPipeline(space.kernel, space.config, build_plan(pred.encoder))
    except ValueError as err:
        raise InputError(f"the device pipeline cannot run this model ({err}): use "
                         "--device cpu") from None
    a = m.arrays
    flat.set_linear(np.asarray(a["coef"], np.float64), np.asarray(a["x_mean"], np.float64),
                    np.asarray(a["x_scale"], np.float64),
                    float(np.asarray(a["intercept"]).reshape(-1)[0]), m.target)
    return pred, flat


def parse_device(device: str) -> int | None:
    """``"cpu"`` -> None, ``"cuda"`` -> 0, ``"cuda:N"`` -> N; anything else raises."""
    d = str(device).strip().lower()
    if d == "cpu":
        return None
    if d == "cuda":
        return 0
    if d.startswith("cuda:") and d[5:].isdigit():
        return int(d[5:])
    raise InputError(f"device must be cpu, cuda or cuda:N, got {device!r}")


def _backend(backend: str, index: int) -> tuple[Callable[..., Any], Any, str]:
    """``(ops factory, device context, device name)`` of a backend.

    ``"twin"``: :class:`TwinOps` on the CPU. ``"cuda"``: :class:`CudaOps` on GPU ``index``,
    after checking that esm._cuda, the GPU and cupy are usable (InputError with the reason).
    """
    if backend == "twin":
        import contextlib

        return TwinOps, contextlib.nullcontext(), "cpu (twin of the device kernels)"
    import importlib.util

    from esm import cuda

    cuda.require()
    devs, _ = cuda.devices()
    if index >= len(devs):
        raise InputError(f"no CUDA device {index}: {len(devs)} device(s) visible")
    if importlib.util.find_spec("cupy") is None:
        raise InputError("the device search keeps its arrays in cupy, which is not installed "
                         "(pip install cupy-cuda12x, or the package matching your CUDA)")
    import cupy

    return CudaOps, cupy.cuda.Device(index), f"cuda:{index}"


def _top_distinct(space: Any, pop: Population, top: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The first ``top`` distinct genomes (canonical form) of a sorted population, on the host."""
    rows = min(len(pop), max(TOP_ROWS, top))
    g = _host(pop.genomes[:rows])
    vals = {k: _host(v[:rows]) for k, v in pop.values.items()}
    canon = space.canonical(g)
    seen: set[bytes] = set()
    kept: list[int] = []
    for i in range(rows):
        key = canon[i].tobytes()
        if key not in seen:
            seen.add(key)
            kept.append(i)
            if len(kept) == top:
                break
    idx = np.asarray(kept, dtype=np.int64)
    return np.ascontiguousarray(g[idx]), {k: v[idx] for k, v in vals.items()}


class DeviceResult(SearchResult):
    """A :class:`SearchResult` of :func:`device_search`.

    No predictor/objective time split (the kernels run asynchronously): ``to_dict`` has
    ``device`` and ``time = {"search_s", "other_s"}`` (the search loop; the set-up of the
    kernels and the assembly of the result).
    """

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        search_s = float(self.settings.get("search_s", self.wall_s))
        d["device"] = self.settings.get("device")
        d["time"] = {"search_s": search_s, "other_s": max(self.wall_s - search_s, 0.0)}
        return d


def device_search(
    latency_model: Any,
    *,
    objective: str = "macs",
    maximize: bool | None = None,
    latency_budget: float | None = None,
    constraints: Sequence[Any] = (),
    algorithm: str = "evolution",
    population: int | None = None,
    generations: int | None = None,
    seconds: float | None = None,
    max_evaluations: int | None = None,
    seed: int | None = 0,
    mutation_rate: float | None = None,
    tournament_size: int = 2,
    top: int = 10,
    device: str = "cuda",
    backend: str = "cuda",
) -> Any:
    """Search on the device: sampling, variation, surrogate and selection all on the GPU.

    The objective (the predicted latency or a cost proxy of the pipeline's cost stage) and
    the latency budget are combined by feasibility first (see the module docs); the result is
    a :class:`esm.search.SearchResult` like the CPU search's, with ``settings["device"]``.

    Parameters
    ----------
    latency_model : str, Path, loaded surrogate or Predictor
        A linear latency surrogate over an encoding the flat pipeline runs (the defaults of
        ``esm train``: ``fcc`` with huber or ridge); see :func:`flat_pipeline`.
    objective : str
        ``"macs"`` (default), ``"params"``, ``"activation_bytes"``, ``"weight_bytes"``,
        ``"layers"`` or ``"latency"``.
    maximize : bool, optional
        Direction; default maximise for macs/params, minimise otherwise.
    latency_budget : float, optional
        ``latency_ms <= latency_budget``.
    constraints : sequence
        Must be empty (extra constraints run on the CPU only).
    algorithm : str
        Must be ``"evolution"`` (nsga2 and random run on the CPU only).
    population : int, optional
        Population and children per generation (default :data:`DEFAULT_POPULATION`).
    generations, seconds, max_evaluations
        Stopping rule, whatever comes first (default 100 generations); ``seconds`` is checked
        between generations; ``max_evaluations`` is exact.
    seed : int, optional
        Same seed, same result (None: a fresh random seed).
    mutation_rate : float, optional
        Per-gene mutation probability (default ``1/G``).
    tournament_size : int
        Entrants per tournament.
    top : int
        Best distinct architectures returned.
    device : str
        ``"cuda"`` or ``"cuda:N"``.
    backend : str
        ``"cuda"`` (:class:`CudaOps`) or ``"twin"`` (:class:`TwinOps`: the same search with the
        kernels' CPU twins; for tests on machines without a GPU).

    Raises
    ------
    InputError
        Unsupported objective, constraint, algorithm or model, or no usable GPU/cupy/esm._cuda
        (the message says which).
    """
    from pathlib import Path

    from esm.search.problem import load_model, make_problem

    if algorithm != "evolution":
        raise InputError(f"--algorithm {algorithm} is not available on the device (only "
                         "evolution): use --device cpu")
    if constraints:
        raise InputError("extra --constraint options are not available on the device (only "
                         "the latency budget): use --device cpu")
    if not isinstance(objective, str):
        raise InputError("the device search takes a named objective "
                         f"({', '.join(DEVICE_OBJECTIVES)}), not {type(objective).__name__}")
    if objective == "latency_ms":
        objective = "latency"
    if maximize is None:
        maximize = objective in ("macs", "params")
    obj = DeviceObjective(objective, bool(maximize), latency_budget)
    if backend not in ("cuda", "twin"):
        raise InputError(f"backend must be 'cuda' or 'twin', got {backend!r}")
    index = parse_device(device)
    if index is None:
        raise InputError("device_search runs on cuda or cuda:N; device='cpu' is esm.search.search")
    if top < 1:
        raise InputError(f"top must be >= 1, got {top}")
    pop_size = DEFAULT_POPULATION if population is None else int(population)
    if generations is None and seconds is None and max_evaluations is None:
        generations = 100
    stop = Budget(generations, seconds, max_evaluations)
    if isinstance(latency_model, (str, Path)):
        latency_model = load_model(latency_model)  # kept for the result (stated error)
    pred, flat = flat_pipeline(latency_model)
    space = pred.space
    make_ops, context, where = _backend(backend, index)
    rate = 1.0 / space.genome_length if mutation_rate is None else float(mutation_rate)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**63))

    t0 = time.perf_counter()
    with context:
        ops = make_ops(flat, space.choices, space)
        ev = evolve(ops, obj.evaluator(ops), stop, pop_size, rate, tournament_size, int(seed),
                    progress=obj.progress)
        genomes, vals = _top_distinct(space, ev.population, top)
    wall = time.perf_counter() - t0

    # The result in the CPU search's shape: a Problem naming the latency and the objective
    # (its metrics are not evaluated: the values come from the device).
    problem = make_problem(space=space, latency_model=latency_model,
                           objective="latency" if obj.name == "latency" else obj.name,
                           maximize=obj.maximize, latency_budget=latency_budget)
    values = {k: np.asarray(v, dtype=np.float64) for k, v in vals.items()
              if k not in ("score", "violation")}
    feasible = vals["violation"] <= 0
    return DeviceResult(
        algorithm="device-evolution", problem=problem, genomes=genomes, values=values,
        feasible=np.asarray(feasible, dtype=bool), evaluated=ev.candidates,
        generations=ev.generations, wall_s=wall, predict_s=0.0, objective_s=0.0,
        history=ev.history, seed=int(seed),
        settings={"device": where, "backend": backend, "population": pop_size,
                  "mutation_rate": rate, "tournament_size": tournament_size,
                  "generations": stop.generations, "seconds": stop.seconds,
                  "max_evaluations": stop.max_evaluations, "search_s": ev.seconds})
