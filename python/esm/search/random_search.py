"""Random search: the baseline every search algorithm has to beat.

Uniform samples of the space (:meth:`SearchSpace.sample`) in batches, evaluated one batch per
call; the best feasible networks are kept (same archive and constraint rule as evolution).
"""

from __future__ import annotations

import math

import numpy as np

from esm.errors import InputError
from esm.search.problem import Problem
from esm.search.result import Archive, Budget, Run, SearchResult


def random_search(
    problem: Problem,
    batch: int = 1000,
    generations: int | None = None,
    seconds: float | None = None,
    max_evaluations: int | None = None,
    seed: int | None = 0,
    top: int = 10,
) -> SearchResult:
    """Evaluate uniform random samples in batches of ``batch``; a batch is a generation."""
    if batch < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    if generations is None and seconds is None and max_evaluations is None:
        generations = 100
    run = Run(problem, Budget(generations, seconds, max_evaluations))
    rng = np.random.default_rng(seed)
    archive = Archive(problem, top)
    history: list[float] = []
    gen = 0
    while True:
        n = run.batch(gen, batch)
        if n == 0:
            break
        g = problem.space.sample(n, rng)
        archive.offer(g, problem.evaluate(g))
        gen += 1
        best = archive.best_score
        history.append(best * problem.objective.sign if math.isfinite(best) else math.nan)
    return run.archive_result("random", archive, generations=gen, history=history, seed=seed,
                              settings={"batch": batch})
