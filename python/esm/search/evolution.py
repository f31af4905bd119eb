"""Regularized (aging) evolution (Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019), batched so that every objective call sees a whole batch.

The paper's loop: keep a population of ``P`` networks in age order; repeatedly sample ``S``
members at random, mutate the best of them, add the child as the youngest and remove the
oldest. Here one *generation* runs ``B`` of those steps at once: ``B`` tournaments are drawn
from the current population (members sampled with replacement), the ``B`` winners are mutated
with :meth:`SearchSpace.mutate`, the ``B`` children are evaluated in one call and replace the
``B`` oldest members. ``B = 1`` is the paper's sequential algorithm. ``B`` may exceed ``P``:
then the youngest ``P`` children form the next population.

The default batch follows a schedule (:func:`default_batch`): ``max(1, P // 4)`` children per
generation for the first :data:`RAMP_START` generations (so runs of up to ~100k evaluations
with ``P = 100`` are exactly the historical loop), then the batch doubles every
:data:`RAMP_EVERY` generations up to :data:`MAX_BATCH`, so long runs evaluate candidates in
large batches (fast predictors answer millions per second only for large batches) while the
population stays small.

Constraints are handled by a feasibility-first penalty (Deb's rules): tournaments compare
``(violation, score)`` lexicographically, so an infeasible member never beats a feasible one
and infeasible members compete on how far they are from feasibility (see
:mod:`esm.search.problem`). The best networks ever evaluated are kept in an archive (aging
removes good members from the population, not from the result).
"""

from __future__ import annotations

import math

import numpy as np

from esm._native import core
from esm.errors import InputError
from esm.search.problem import Problem
from esm.search.result import Archive, Budget, Run, SearchResult


def tournament_winners(
    rng: np.random.Generator, violation: np.ndarray, score: np.ndarray, n: int, size: int
) -> np.ndarray:
    """Indices of the winners of ``n`` tournaments of ``size`` members (with replacement).

    The winner has the smallest violation and, among those, the smallest score (the first one
    drawn on ties). Played by the compiled core on all cores, from a seed drawn from ``rng``;
    :func:`tournament_winners_numpy` is its NumPy twin (same distribution, other stream).
    """
    seed = int(rng.integers(0, 2**63))
    return core.tournament_winners(violation, score, int(n), int(size), seed)


def tournament_winners_numpy(
    rng: np.random.Generator, violation: np.ndarray, score: np.ndarray, n: int, size: int
) -> np.ndarray:
    """NumPy reference of :func:`tournament_winners`."""
    pop = violation.shape[0]
    if size == 2:  # binary tournament: two gathers and a comparison
        a, b = rng.integers(0, pop, size=(2, n))
        va, vb = violation[a], violation[b]
        a_wins = (va < vb) | ((va == vb) & (score[a] <= score[b]))
        return np.where(a_wins, a, b)
    t = rng.integers(0, pop, size=(n, size))
    tv = violation[t]
    ts = np.where(tv == tv.min(axis=1, keepdims=True), score[t], np.inf)
    # all-equal violation rows with inf scores cannot happen: scores are finite
    return t[np.arange(n), np.argmin(ts, axis=1)]


#: Generations run at the base batch ``max(1, P // 4)`` before the default batch grows.
RAMP_START = 4000
#: The default batch doubles every this many generations after :data:`RAMP_START`.
RAMP_EVERY = 8
#: Largest default batch (children per generation).
MAX_BATCH = 4000


def default_batch(population: int, generation: int) -> int:
    """Children of generation ``generation`` (0-based) under the default batch schedule.

    ``max(1, population // 4)`` for the first :data:`RAMP_START` generations, then doubled every
    :data:`RAMP_EVERY` generations, capped at ``max(base, MAX_BATCH)``.
    """
    base = max(1, int(population) // 4)
    if generation < RAMP_START:
        return base
    doublings = 1 + (generation - RAMP_START) // RAMP_EVERY
    cap = max(base, MAX_BATCH)
    if doublings >= 32:
        return cap
    return min(cap, base << doublings)


def _history(archive: Archive, problem: Problem) -> float:
    best = archive.best_score
    return best * problem.objective.sign if math.isfinite(best) else math.nan


def regularized_evolution(
    problem: Problem,
    population: int = 100,
    sample_size: int = 25,
    batch: int | None = None,
    generations: int | None = None,
    seconds: float | None = None,
    max_evaluations: int | None = None,
    mutation_rate: float | None = None,
    seed: int | None = 0,
    top: int = 10,
) -> SearchResult:
    """Run batched regularized evolution on ``problem``.

    Parameters
    ----------
    problem : Problem
        Objective (minimised ``score``) and constraints.
    population : int
        Population size ``P`` (the initial random sample).
    sample_size : int
        Tournament size ``S`` (``1 <= S``).
    batch : int, optional
        Children per generation ``B`` (``1 <= B``; ``B > P`` keeps the youngest ``P`` children
        as the next population); default: the schedule of :func:`default_batch`
        (``max(1, P // 4)`` for the first :data:`RAMP_START` generations, then growing to
        :data:`MAX_BATCH`).
    generations, seconds, max_evaluations
        Stopping rule (:class:`Budget`); the initial population counts as evaluations, not
        as a generation. Default when none is given: 100 generations.
    mutation_rate : float, optional
        Per-gene mutation probability (default ``1/G``); every child differs from its parent.
    seed : int, optional
        Seed of every random choice: the same seed gives the same result.
    top : int
        Number of best distinct networks returned.
    """
    if population < 2:
        raise InputError(f"population must be >= 2, got {population}")
    if sample_size < 1:
        raise InputError(f"sample_size must be >= 1, got {sample_size}")
    if batch is not None and int(batch) < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    if generations is None and seconds is None and max_evaluations is None:
        generations = 100
    run = Run(problem, Budget(generations, seconds, max_evaluations))
    space = problem.space
    rng = np.random.default_rng(seed)
    archive = Archive(problem, top)

    n0 = population if max_evaluations is None else min(population, max_evaluations)
    pop = space.sample(n0, rng)
    ev = problem.evaluate(pop)
    archive.offer(pop, ev)
    violation, score = ev.violation.copy(), ev.score.copy()
    history = [_history(archive, problem)]
    oldest = 0
    gen = 0
    while pop.shape[0] == population:
        b = default_batch(population, gen) if batch is None else int(batch)
        n = run.batch(gen, b)
        if n == 0:
            break
        parents = tournament_winners(rng, violation, score, n, sample_size)
        children = space.mutate(np.take(pop, parents, axis=0), rate=mutation_rate, seed=rng)
        ev = problem.evaluate(children)
        archive.offer(children, ev)
        if n >= population:  # the whole population ages out; the youngest P children stay
            keep = slice(n - population, n)
            pop = np.ascontiguousarray(children[keep])
            violation, score = ev.violation[keep].copy(), ev.score[keep].copy()
            oldest = 0
        else:
            slots = (oldest + np.arange(n)) % population
            pop[slots] = children
            violation[slots] = ev.violation
            score[slots] = ev.score
            oldest = (oldest + n) % population
        gen += 1
        history.append(_history(archive, problem))

    return run.archive_result(
        "evolution", archive, generations=gen, history=history, seed=seed,
        settings={"population": population, "sample_size": sample_size,
                  "batch": "auto" if batch is None else int(batch),
                  "mutation_rate": mutation_rate})
