"""Non-dominated sort, constraint domination and crowding distance against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from esm.errors import InputError
from esm.search.pareto import (
    constrained_sort,
    crowding_distance,
    dominance_matrix,
    non_dominated_sort,
    pareto_front,
)


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def brute_sort(F: np.ndarray, viol: np.ndarray | None = None) -> np.ndarray:
    """Peel fronts: a point is in the current front if no remaining point dominates it."""
    n = F.shape[0]
    v = np.zeros(n) if viol is None else viol

    def dom(i: int, j: int) -> bool:
        if v[i] <= 0 < v[j]:
            return True
        if v[i] > 0 and v[j] > 0:
            return bool(v[i] < v[j])
        if v[i] > 0 or v[j] > 0:
            return False
        return _dominates(F[i], F[j])

    rank = np.full(n, -1)
    left = set(range(n))
    r = 0
    while left:
        front = [j for j in left if not any(dom(i, j) for i in left if i != j)]
        for j in front:
            rank[j] = r
        left -= set(front)
        r += 1
    return rank


def brute_crowding(F: np.ndarray, rank: np.ndarray) -> np.ndarray:
    n, m = F.shape
    d = np.zeros(n)
    for r in np.unique(rank):
        members = [i for i in range(n) if rank[i] == r]
        for k in range(m):
            s = sorted(members, key=lambda i: (F[i, k], i))
            lo, hi = F[s[0], k], F[s[-1], k]
            d[s[0]] = d[s[-1]] = np.inf
            for p in range(1, len(s) - 1):
                if hi > lo:
                    d[s[p]] += (F[s[p + 1], k] - F[s[p - 1], k]) / (hi - lo)
    return d


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("m", [2, 3, 4])
def test_sort_and_crowding_match_brute_force(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 150))
    F = rng.random((n, m))
    if seed % 2:
        F = np.round(F * 6) / 6  # ties and duplicates
    rank = non_dominated_sort(F)
    np.testing.assert_array_equal(rank, brute_sort(F))
    np.testing.assert_allclose(crowding_distance(F, rank), brute_crowding(F, rank))
    D = dominance_matrix(F)
    i, j = rng.integers(0, n, size=2)
    assert D[i, j] == _dominates(F[i], F[j])
    np.testing.assert_array_equal(pareto_front(F), np.flatnonzero(rank == 0))


@pytest.mark.parametrize("seed", range(5))
def test_constrained_sort_matches_deb_rules(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = 90
    F = np.round(rng.random((n, 2)) * 8) / 8
    viol = np.where(rng.random(n) < 0.4, np.round(rng.random(n) * 4) / 4 + 0.25, 0.0)
    np.testing.assert_array_equal(constrained_sort(F, viol), brute_sort(F, viol))


def test_stop_after_ranks_first_fronts_only() -> None:
    rng = np.random.default_rng(7)
    F = rng.random((200, 3))
    full = non_dominated_sort(F)
    part = non_dominated_sort(F, stop_after=50)
    done = part < 200
    assert done.sum() >= 50
    np.testing.assert_array_equal(part[done], full[done])
    # every unranked point is in a later front than every ranked one
    assert full[~done].min() > full[done].max()


def test_single_objective_and_errors() -> None:
    F = np.array([[3.0], [1.0], [2.0], [1.0]])
    np.testing.assert_array_equal(non_dominated_sort(F), [2, 0, 1, 0])
    with pytest.raises(InputError):
        non_dominated_sort(np.array([[np.nan, 1.0]]))
    with pytest.raises(InputError):
        constrained_sort(np.zeros((3, 2)), np.zeros(2))


def test_two_objective_sweep_matches_matrix_method() -> None:
    from esm.search.pareto import dominance_matrix

    rng = np.random.default_rng(11)
    F = np.round(rng.random((400, 2)) * 20)  # many ties and duplicates
    D = dominance_matrix(F)
    rank = non_dominated_sort(F)
    # a point's front is one more than the largest front of the points dominating it
    for j in range(len(F)):
        dom = np.flatnonzero(D[:, j])
        assert rank[j] == (rank[dom].max() + 1 if dom.size else 0)


@pytest.mark.parametrize("seed", range(4))
def test_compiled_2d_sort_matches_reference_twin(seed: int) -> None:
    from esm._native import core
    from esm.search.pareto import sort_2d_reference

    rng = np.random.default_rng(50 + seed)
    F = rng.random((3000, 2))
    if seed % 2:
        F = np.round(F * 30) / 30
    np.testing.assert_array_equal(core.pareto_ranks_2d(F), sort_2d_reference(F))
    assert core.pareto_ranks_2d(np.zeros((0, 2))).shape == (0,)
    with pytest.raises(ValueError):
        core.pareto_ranks_2d(np.zeros((3, 3)))
    with pytest.raises(ValueError):
        core.pareto_ranks_2d(np.array([[np.inf, 0.0]]))
