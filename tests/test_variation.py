"""Distributions of the vectorized variation operators (the search's mutate/crossover)."""

from __future__ import annotations

import numpy as np
import pytest

from esm import spaces
from esm.spaces.base import _bernoulli_positions


@pytest.fixture(scope="module")
def space() -> spaces.SearchSpace:
    return spaces.get("ofa-mbv3")


def test_bernoulli_positions_are_exact_bernoulli() -> None:
    rng = np.random.default_rng(0)
    total, rate = 200_000, 0.01
    pos = _bernoulli_positions(rng, total, rate)
    assert np.all(np.diff(pos) > 0) and pos.min() >= 0 and pos.max() < total
    assert abs(pos.size - total * rate) < 5 * np.sqrt(total * rate)
    counts = np.bincount(pos // 1000, minlength=200)  # uniform over the range
    assert counts.std() < 2 * np.sqrt(10)
    assert _bernoulli_positions(rng, 10, 0.0).size == 0


@pytest.mark.parametrize("rate", [None, 0.0, 0.1, 0.5, 1.0])
def test_mutation_count_distribution(space: spaces.SearchSpace, rate: float | None) -> None:
    g = space.sample(20_000, seed=1)
    m = space.mutate(g, rate=rate, seed=2)
    k = (m != g).sum(axis=1)
    mutable = int((space.choices > 1).sum())
    r = 1.0 / space.genome_length if rate is None else rate
    # Binomial(M, r) with 0 replaced by 1
    expected = mutable * r + (1 - r) ** mutable
    assert k.min() >= 1
    assert abs(k.mean() - expected) < 0.03 * max(expected, 1.0), (k.mean(), expected)
    if rate == 0.0:
        assert np.all(k == 1)
    if rate == 1.0:
        assert np.all(k == mutable)


def test_mutated_gene_takes_another_value_uniformly(space: spaces.SearchSpace) -> None:
    g = np.zeros((30_000, space.genome_length), dtype=np.int32)
    m = space.mutate(g, rate=0.5, seed=3)
    gene = int(np.flatnonzero(space.choices == 3)[0])
    new = m[:, gene][m[:, gene] != 0]
    frac = np.bincount(new, minlength=3)[1:] / new.size
    np.testing.assert_allclose(frac, [0.5, 0.5], atol=0.02)


def test_crossover_takes_each_gene_from_a_parent_with_half_probability(
    space: spaces.SearchSpace,
) -> None:
    a = np.zeros((5000, space.genome_length), dtype=np.int32)
    b = np.minimum(1, space.choices - 1) * np.ones_like(a)
    c = space.crossover(a, b, seed=4)
    assert np.all((c == a) | (c == b))
    diff = a != b
    assert abs((c == a)[diff].mean() - 0.5) < 0.01
    np.testing.assert_array_equal(c, space.crossover(a, b, seed=4))
