"""Pareto tools on whole populations: non-dominated sorting and crowding distance (NumPy).

All objectives are minimised. ``a`` dominates ``b`` when ``a <= b`` in every objective and
``a < b`` in at least one.
"""

from __future__ import annotations

import numpy as np

from esm._native import core
from esm.errors import InputError

#: Rows of the domination matrix computed at once (bounds temporary memory).
_BLOCK = 1024


def _check(F: np.ndarray) -> np.ndarray:
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2:
        raise InputError(f"objective values must be [N, M], got shape {F.shape}")
    if not np.all(np.isfinite(F)):
        raise InputError("objective values must be finite")
    return F


def dominance_matrix(F: np.ndarray) -> np.ndarray:
    """Boolean ``D[i, j]``: point ``i`` dominates point ``j`` (``[N, N]``, O(N^2) memory)."""
    F = _check(F)
    n, m = F.shape
    D = np.empty((n, n), dtype=bool)
    for lo in range(0, n, _BLOCK):
        a = F[lo : lo + _BLOCK]
        le = np.ones((a.shape[0], n), dtype=bool)
        lt = np.zeros((a.shape[0], n), dtype=bool)
        for k in range(m):
            le &= a[:, k, None] <= F[None, :, k]
            lt |= a[:, k, None] < F[None, :, k]
        D[lo : lo + _BLOCK] = le & lt
    return D


def sort_2d_reference(F: np.ndarray) -> np.ndarray:
    """NumPy/Python twin of the compiled two-objective sort (test oracle).

    Fronts of two-objective points in O(N log N) (sweep over the first objective).

    Distinct points in lexicographic order: an earlier point dominates a later one exactly
    when its second objective is not larger. Each front keeps the smallest second objective
    of its members so far; these minima grow with the front index, so a point joins the first
    front whose minimum is larger than its own value (binary search).
    """
    from bisect import bisect_right

    uniq, inv = np.unique(F, axis=0, return_inverse=True)  # lexicographic order
    f2 = uniq[:, 1].tolist()
    minima: list[float] = []
    urank = np.empty(len(f2), dtype=np.int64)
    for i, v in enumerate(f2):
        k = bisect_right(minima, v)
        if k == len(minima):
            minima.append(v)
        else:
            minima[k] = v
        urank[i] = k
    return urank[inv.reshape(-1)]


def non_dominated_sort(F: np.ndarray, stop_after: int | None = None) -> np.ndarray:
    """Front index of every point (0: non-dominated), fast non-dominated sort (Deb 2002).

    Parameters
    ----------
    F : np.ndarray
        ``[N, M]`` objective values (minimised).
    stop_after : int, optional
        Stop once at least this many points have a front; the rest get ``N`` (a rank larger
        than any real front). NSGA-II's survivor selection needs only the first fronts.
        (Two objectives use an O(N log N) sweep that ranks every point regardless.)

    Returns
    -------
    np.ndarray
        ``[N]`` int64 front indices.
    """
    F = _check(F)
    n = F.shape[0]
    rank = np.full(n, n, dtype=np.int64)
    if n == 0:
        return rank
    if F.shape[1] == 1:
        # one objective: fronts are the distinct values in order
        _, inv = np.unique(F[:, 0], return_inverse=True)
        return inv.astype(np.int64).reshape(-1)
    if F.shape[1] == 2:
        return np.asarray(core.pareto_ranks_2d(F), dtype=np.int64)
    D = dominance_matrix(F)
    count = D.sum(axis=0, dtype=np.int64)  # how many points dominate each point
    limit = n if stop_after is None else min(int(stop_after), n)
    done = 0
    front_no = 0
    current = np.flatnonzero(count == 0)
    while current.size and done < limit:
        rank[current] = front_no
        done += current.size
        count[current] = -1
        count -= D[current].sum(axis=0, dtype=np.int64)
        current = np.flatnonzero(count == 0)
        front_no += 1
    return rank


def constrained_sort(
    F: np.ndarray, violation: np.ndarray, stop_after: int | None = None
) -> np.ndarray:
    """Front indices under Deb's constraint domination.

    Feasible points (``violation <= 0``) are sorted by Pareto dominance among themselves;
    every infeasible point comes after all feasible fronts, and infeasible points are ordered
    by violation alone (equal violations share a front).
    """
    F = _check(F)
    v = np.asarray(violation, dtype=np.float64).reshape(-1)
    if v.shape[0] != F.shape[0]:
        raise InputError("violation must have one value per point")
    n = F.shape[0]
    rank = np.full(n, n, dtype=np.int64)
    feas = np.flatnonzero(v <= 0.0)
    first_infeasible = 0
    if feas.size:
        r = non_dominated_sort(F[feas], stop_after=stop_after)
        rank[feas] = r
        ranked = r[r < feas.size]
        first_infeasible = int(ranked.max()) + 1 if ranked.size else 0
        if stop_after is not None and ranked.size >= stop_after:
            return rank
    bad = np.flatnonzero(v > 0.0)
    if bad.size:
        _, inv = np.unique(v[bad], return_inverse=True)
        rank[bad] = first_infeasible + inv.reshape(-1)
    return rank


def crowding_distance(F: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Crowding distance of every point within its front (Deb 2002), vectorized over fronts.

    Per objective, the points of a front are ordered by value (ties by index); the two
    boundary points get ``inf`` and every interior point adds the gap between its neighbours
    divided by the front's range in that objective (nothing when the range is 0).
    """
    F = _check(F)
    rank = np.asarray(rank, dtype=np.int64).reshape(-1)
    n, m = F.shape
    dist = np.zeros(n, dtype=np.float64)
    if n == 0:
        return dist
    for k in range(m):
        order = np.lexsort((F[:, k], rank))  # stable: ties keep index order
        f = F[order, k]
        r = rank[order]
        start = np.ones(n, dtype=bool)
        start[1:] = r[1:] != r[:-1]
        end = np.ones(n, dtype=bool)
        end[:-1] = r[1:] != r[:-1]
        seg = np.cumsum(start) - 1
        seg_start = np.flatnonzero(start)
        seg_end = np.flatnonzero(end)
        span = (f[seg_end] - f[seg_start])[seg]
        gap = np.zeros(n)
        interior = ~(start | end)
        gap[1:-1] = f[2:] - f[:-2]
        contrib = np.where(interior & (span > 0), gap / np.where(span > 0, span, 1.0), 0.0)
        contrib[start | end] = np.inf
        dist[order] += contrib
    return dist


def pareto_front(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points of ``F``."""
    return np.flatnonzero(non_dominated_sort(F, stop_after=1) == 0)
