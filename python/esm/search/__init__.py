"""Hardware-aware architecture search on latency surrogates.

Two algorithms over :meth:`SearchSpace.mutate` / :meth:`SearchSpace.crossover`, both evaluating
whole batches per objective call: batched regularized (aging) evolution
(:func:`regularized_evolution`, single objective under constraints) and NSGA-II (:func:`nsga2`,
the latency / objective Pareto front under constraints); :func:`random_search` is the baseline.
:func:`search` builds the problem from a latency model, an objective and a budget and runs one
of them (on the CPU, or with ``device="cuda"`` every step on the GPU:
:func:`esm.search.device.device_search`); :func:`verify` measures found networks on the local
device.

Example
-------
>>> import esm
>>> from esm.search import search
>>> model = esm.load("cpu.esm")                                    # doctest: +SKIP
>>> res = search(model, latency_budget=20.0, objective="macs", seconds=5)  # doctest: +SKIP
>>> res.texts()[0], res.values["latency_ms"][0]                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from esm.errors import InputError
from esm.search.evolution import regularized_evolution
from esm.search.nsga2 import nsga2
from esm.search.pareto import constrained_sort, crowding_distance, non_dominated_sort
from esm.search.problem import (
    LATENCY,
    PROXIES,
    Constraint,
    Metric,
    Objective,
    Problem,
    make_problem,
    parse_constraint,
)
from esm.search.random_search import random_search
from esm.search.result import SearchResult
from esm.search.verify import verify

ALGORITHMS = ("evolution", "nsga2", "random")

__all__ = [
    "ALGORITHMS",
    "LATENCY",
    "PROXIES",
    "Constraint",
    "Metric",
    "Objective",
    "Problem",
    "SearchResult",
    "constrained_sort",
    "crowding_distance",
    "make_problem",
    "non_dominated_sort",
    "nsga2",
    "parse_constraint",
    "random_search",
    "regularized_evolution",
    "search",
    "verify",
]


def search(
    latency_model: Any = None,
    *,
    space: Any = None,
    objective: Any = "macs",
    maximize: bool | None = None,
    latency_budget: float | None = None,
    constraints: Sequence[Constraint | str] = (),
    algorithm: str = "evolution",
    population: int | None = None,
    generations: int | None = None,
    seconds: float | None = None,
    max_evaluations: int | None = None,
    seed: int | None = 0,
    device: str = "cpu",
    **options: Any,
) -> SearchResult:
    """Search ``space`` for the best architecture(s) under a latency budget.

    Parameters
    ----------
    latency_model : object with ``predict(genomes) -> ms`` and ``space``, or a path
        The latency surrogate (a loaded surrogate, a compiled predictor, any model object).
    space : SearchSpace, optional
        Default: ``latency_model.space``.
    objective : str, callable, model or path
        ``"macs"``, ``"params"`` (other cost proxies too), ``"latency"``, a second surrogate
        (file or object with ``predict``), or a callable on genome batches.
    maximize : bool, optional
        Direction; default maximise for macs/params, minimise otherwise.
    latency_budget : float, optional
        ``latency_ms <= latency_budget``.
    constraints : sequence
        More constraints, :class:`Constraint` or ``"NAME<=VALUE"``.
    algorithm : str
        ``"evolution"`` (default), ``"nsga2"`` or ``"random"``.
    population : int, optional
        Population (evolution: 100, NSGA-II: 200) or batch size (random: 1000).
    generations, seconds, max_evaluations
        Stopping rule; whatever comes first (default: 100 generations).
    seed : int, optional
        Same seed, same result.
    device : str
        Where the search runs: ``"cpu"`` (default) or ``"cuda"`` / ``"cuda:N"``
        (:func:`esm.search.device.device_search`: sampling, variation, surrogate and selection
        on the GPU; evolution with a named objective and the latency budget only; population
        default 65,536).
    **options
        Passed to the algorithm (e.g. ``sample_size``, ``batch``, ``mutation_rate``; on the
        device ``mutation_rate``, ``tournament_size`` and ``top``).
    """
    from esm.search.device import device_search, parse_device

    if parse_device(device) is not None:
        allowed = {"mutation_rate", "tournament_size", "top", "backend"}
        extra = sorted(set(options) - allowed)
        if extra:
            raise InputError(f"option(s) {', '.join(extra)} are not available on the device "
                             f"(there: {', '.join(sorted(allowed - {'backend'}))})")
        return device_search(latency_model, objective=objective, maximize=maximize,
                             latency_budget=latency_budget, constraints=constraints,
                             algorithm=algorithm, population=population,
                             generations=generations, seconds=seconds,
                             max_evaluations=max_evaluations, seed=seed, device=device,
                             **options)
    problem = make_problem(space=space, latency_model=latency_model, objective=objective,
                           maximize=maximize, latency_budget=latency_budget,
                           constraints=constraints)
    stop: dict[str, Any] = {"generations": generations, "seconds": seconds,
                            "max_evaluations": max_evaluations}
    if algorithm == "evolution":
        return regularized_evolution(problem, population=population or 100, seed=seed,
                                     **stop, **options)
    if algorithm == "nsga2":
        return nsga2(problem, population=population or 200, seed=seed, **stop, **options)
    if algorithm == "random":
        return random_search(problem, batch=population or 1000, seed=seed, **stop, **options)
    raise InputError(f"unknown algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
