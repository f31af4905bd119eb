"""Drift correction: latencies normalised to the device speed of a run's first reference check.

A run's reference networks are re-measured now and then (:mod:`esm.collect`,
:class:`esm.build.DeviceOracle`); every check is stored with ``done``, the number of rows the
run held when it was taken (:meth:`esm.store.Store.reference_checks`). The device's **speed
ratio** at a check is the geometric mean over its reference networks of
``median_ms / median_ms at that network's first check``. A row stored at position ``p`` (its
index among the run's rows, in insertion order) was measured between the last check with
``done <= p`` and the first with ``done > p``; its ratio is interpolated linearly between the
two (the nearest one at the ends). The corrected latency is ``median_ms / ratio``: the latency
the network would have had when the run began, under the assumption that a slowdown (thermal,
frequency, a co-tenant) scales every network alike. That assumption is why a build also
spreads its validation measurements through the run instead of trusting the correction alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from esm.store import Store

__all__ = ["check_ratios", "factors", "interpolate"]


def check_ratios(checks: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Speed ratio per check: ``(done [C], ratio [C])``, ordered by ``seq``.

    Parameters
    ----------
    checks : sequence of dict
        Reference checks with ``seq``, ``key``, ``done`` and ``median_ms`` (as
        :meth:`esm.store.Store.reference_checks` returns them).
    """
    base: dict[str, float] = {}
    logs: dict[int, list[float]] = {}
    done: dict[int, int] = {}
    for c in sorted(checks, key=lambda c: c["seq"]):
        m = c.get("median_ms")
        if m is None or not m > 0:
            continue
        b = base.setdefault(c["key"], float(m))
        logs.setdefault(c["seq"], []).append(float(np.log(m / b)))
        done[c["seq"]] = int(c["done"])
    seqs = sorted(logs)
    return (np.asarray([done[s] for s in seqs], np.int64),
            np.exp(np.asarray([np.mean(logs[s]) for s in seqs], np.float64)))


def interpolate(positions: np.ndarray, done: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Speed ratio of rows at ``positions`` between checks taken at ``done`` (see module docs).

    Without checks every ratio is 1; checks taken at the same ``done`` are averaged (in log).
    """
    pos = np.asarray(positions, np.float64) + 0.5  # a row is measured after `pos` rows
    if len(done) == 0:
        return np.ones(pos.shape)
    at, inv = np.unique(np.asarray(done, np.int64), return_inverse=True)
    logs = np.bincount(inv, weights=np.log(np.asarray(ratio, np.float64))) / np.bincount(inv)
    return np.exp(np.interp(pos, at.astype(np.float64), logs))


def factors(store: Store, run_id: int) -> dict[str, float]:
    """Speed ratio of every stored row of a run, by canonical key (1.0 without checks)."""
    keys = [r[0] for r in store.execute(
        "SELECT key FROM measurements WHERE run_id=? ORDER BY id", (int(run_id),))]
    done, ratio = check_ratios(store.reference_checks(run_id))
    r = interpolate(np.arange(len(keys)), done, ratio)
    return dict(zip(keys, r.tolist(), strict=True))
