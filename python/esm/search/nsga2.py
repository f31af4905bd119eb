"""NSGA-II (Deb, Pratap, Agarwal, Meyarivan, IEEE TEC 2002), vectorized over populations.

Objectives (all minimised): the predicted latency and the user objective's score (negated when
maximised); with no separate latency metric the search is single-objective. Each generation:
binary tournaments on (front, -crowding) pick ``2B`` parents, :meth:`SearchSpace.crossover`
(with probability ``crossover_rate`` per pair) and :meth:`SearchSpace.mutate` make ``B``
children, the children are evaluated in one call, and the best ``P`` of parents + children
survive by front, then crowding distance. Constraints use Deb's constraint domination (feasible
before infeasible; infeasible ordered by violation; see :func:`esm.search.pareto.constrained_sort`).

With two objectives the non-dominated sort is the compiled O(N log N) sweep
(:func:`esm.search.pareto.non_dominated_sort`); crowding distances and selection are NumPy
operations on whole populations.
"""

from __future__ import annotations

import numpy as np

from esm.errors import InputError
from esm.search.pareto import constrained_sort, crowding_distance
from esm.search.problem import Evaluation, Problem
from esm.search.result import Budget, Run, SearchResult

#: Largest population accepted.
MAX_POPULATION = 10_000_000


def _objectives(problem: Problem, ev: Evaluation) -> np.ndarray:
    lat = problem.latency_name
    if lat is None or lat == problem.objective.name:
        return ev.score[:, None]
    return np.stack([ev.values[lat], ev.score], axis=1)


def nsga2(
    problem: Problem,
    population: int = 200,
    batch: int | None = None,
    generations: int | None = None,
    seconds: float | None = None,
    max_evaluations: int | None = None,
    crossover_rate: float = 0.9,
    mutation_rate: float | None = None,
    seed: int | None = 0,
) -> SearchResult:
    """Run NSGA-II; the result is the feasible Pareto front of the final population.

    Parameters
    ----------
    problem : Problem
    population : int
        ``P`` (at least 2).
    batch : int, optional
        Children per generation (default ``P``, the classic algorithm).
    generations, seconds, max_evaluations
        Stopping rule (:class:`esm.search.result.Budget`); default 100 generations.
    crossover_rate : float
        Probability that a pair of parents is recombined (else the child copies parent 1).
    mutation_rate : float, optional
        Per-gene mutation probability (default ``1/G``).
    seed : int, optional
        Same seed, same result.

    Returns
    -------
    SearchResult
        ``genomes``: the distinct feasible non-dominated networks sorted by latency (or by
        score when single-objective); ``best_index`` points at the one with the best
        objective. With no feasible network, the least-violating members (``feasible``
        False).
    """
    if not 2 <= population <= MAX_POPULATION:
        raise InputError(f"population must be in [2, {MAX_POPULATION}], got {population}")
    b = population if batch is None else int(batch)
    if not 1 <= b <= population:
        raise InputError(f"batch must be in [1, population], got {batch}")
    if not 0.0 <= crossover_rate <= 1.0:
        raise InputError(f"crossover_rate must be in [0, 1], got {crossover_rate}")
    if generations is None and seconds is None and max_evaluations is None:
        generations = 100
    run = Run(problem, Budget(generations, seconds, max_evaluations))
    space = problem.space
    rng = np.random.default_rng(seed)

    n0 = population if max_evaluations is None else min(population, max_evaluations)
    pop = space.sample(n0, rng)
    ev = problem.evaluate(pop)
    F, viol, values = _objectives(problem, ev), ev.violation, ev.values
    rank = constrained_sort(F, viol)
    crowd = crowding_distance(F, rank)
    gen = 0
    history: list[float] = [_best(problem, ev.score, viol)]
    while pop.shape[0] == population:
        n = run.batch(gen, b)
        if n == 0:
            break
        i, j = rng.integers(0, population, size=(2, 2 * n))
        i_wins = (rank[i] < rank[j]) | ((rank[i] == rank[j]) & (crowd[i] > crowd[j]))
        parents = np.where(i_wins, i, j)
        p1, p2 = pop[parents[:n]], pop[parents[n:]]
        kids = space.crossover(p1, p2, seed=rng)
        keep_p1 = rng.random(n) >= crossover_rate
        kids[keep_p1] = p1[keep_p1]
        kids = space.mutate(kids, rate=mutation_rate, seed=rng)
        evk = problem.evaluate(kids)
        R = np.concatenate([pop, kids])
        FR = np.concatenate([F, _objectives(problem, evk)])
        vR = np.concatenate([viol, evk.violation])
        valsR = {k: np.concatenate([values[k], evk.values[k]]) for k in values}
        rR = constrained_sort(FR, vR, stop_after=population)
        # only fronts up to the one that fills the population can survive
        last = np.partition(rR, population - 1)[population - 1]
        cand = np.flatnonzero(rR <= last)
        cC = crowding_distance(FR[cand], rR[cand])
        keep = np.lexsort((-cC, rR[cand]))[:population]
        surv = cand[keep]
        pop, F, viol, rank, crowd = R[surv], FR[surv], vR[surv], rR[surv], cC[keep]
        values = {k: v[surv] for k, v in valsR.items()}
        gen += 1
        history.append(_best(problem, F[:, -1], viol))

    genomes, vals, feas, best_index = _front(problem, pop, F, viol, values)
    return run.result(
        "nsga2", genomes=genomes, values=vals, feasible=feas, generations=gen, history=history,
        seed=seed, best_index=best_index,
        settings={"population": population, "batch": b, "crossover_rate": crossover_rate,
                  "mutation_rate": mutation_rate})


def _best(problem: Problem, score: np.ndarray, viol: np.ndarray) -> float:
    ok = viol <= 0
    if not ok.any():
        return float("nan")
    return float(score[ok].min()) * problem.objective.sign


def _front(
    problem: Problem, pop: np.ndarray, F: np.ndarray, viol: np.ndarray,
    values: dict[str, np.ndarray],
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, int]:
    """Distinct feasible non-dominated members sorted by the first objective."""
    canon = problem.space.canonical(pop)
    _, first = np.unique(canon, axis=0, return_index=True)
    first = np.sort(first)
    ok = first[viol[first] <= 0]
    if ok.size:
        r = constrained_sort(F[ok], viol[ok])
        sel = ok[r == 0]
        sel = sel[np.lexsort((F[sel, -1], F[sel, 0]))]
        best_index = int(np.argmin(F[sel, -1]))
    else:
        sel = first[np.argsort(viol[first], kind="stable")][:10]
        best_index = 0
    vals = {k: v[sel] for k, v in values.items()}
    return pop[sel], vals, viol[sel] <= 0, best_index
