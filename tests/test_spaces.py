"""Behaviour every search space shares: genomes, operators, validation, costs, build."""

from __future__ import annotations

import numpy as np
import pytest

from esm import InputError, spaces
from tests.conftest import HAVE_TORCH

NAMES = spaces.names()


@pytest.fixture(params=NAMES, scope="module")
def space(request: pytest.FixtureRequest) -> spaces.SearchSpace:
    return spaces.get(request.param)


def test_registry_knows_the_built_in_spaces() -> None:
    assert {"ofa-mbv3", "ofa-resnet50", "nb201", "fbnet", "anb-mnasnet"} <= set(NAMES)
    with pytest.raises(InputError, match="unknown search space"):
        spaces.get("nope")


def test_sample_is_seeded_and_in_range(space: spaces.SearchSpace) -> None:
    a, b = space.sample(200, seed=3), space.sample(200, seed=3)
    assert a.shape == (200, space.genome_length) and a.dtype == np.int32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, space.sample(200, seed=4))
    assert (a >= 0).all() and (a < space.choices).all()
    # every choice of every gene shows up in a large sample
    big = space.sample(5000, seed=0)
    for g in range(space.genome_length):
        assert len(np.unique(big[:, g])) == space.choices[g]


def test_mutate_changes_and_stays_valid(space: spaces.SearchSpace) -> None:
    g = space.sample(500, seed=1)
    m = space.mutate(g, seed=2)
    assert m.shape == g.shape
    assert ((m != g).sum(axis=1) >= 1).all()
    space.validate(m)
    np.testing.assert_array_equal(m, space.mutate(g, seed=2))
    full = space.mutate(g, rate=1.0, seed=0)
    assert ((full != g) | (space.choices == 1)).all()


def test_crossover_takes_genes_from_parents(space: spaces.SearchSpace) -> None:
    a, b = space.sample(300, seed=5), space.sample(300, seed=6)
    c = space.crossover(a, b, seed=7)
    assert ((c == a) | (c == b)).all()
    assert (c != a).any() and (c != b).any()
    np.testing.assert_array_equal(c, space.crossover(a, b, seed=7))
    with pytest.raises(InputError):
        space.crossover(a, b[:10], seed=0)


def test_validate_rejects_bad_genomes(space: spaces.SearchSpace) -> None:
    g = space.sample(4, seed=0)
    bad = g.copy()
    bad[2, 1] = space.choices[1]
    with pytest.raises(InputError, match="genome 2, gene 1"):
        space.validate(bad)
    bad[2, 1] = -1
    with pytest.raises(InputError, match="must be in"):
        space.costs(bad)
    with pytest.raises(InputError, match="genes"):
        space.validate(g[:, :-1])
    with pytest.raises(InputError, match="integers"):
        space.validate(np.full(g.shape, np.nan))
    with pytest.raises(InputError, match="integers"):
        space.validate(g + 0.5)
    with pytest.raises(InputError):
        space.validate(np.zeros((2, 2, space.genome_length), dtype=np.int32))
    # a single genome, other integer dtypes and non-contiguous input are accepted
    assert space.validate(g[0]).shape == (1, space.genome_length)
    np.testing.assert_array_equal(space.validate(g.astype(np.int64)), g)
    wide = np.repeat(g, 2, axis=1)[:, ::2]
    np.testing.assert_array_equal(space.costs(wide).macs, space.costs(g).macs)


def test_compiled_core_checks_bounds_itself(space: spaces.SearchSpace) -> None:
    from esm._native import core

    g = space.sample(3, seed=0)
    g[1, -1] = 10_000
    with pytest.raises(ValueError, match="genome 1"):
        core.costs(space.kernel, g, space.config, 1)
    with pytest.raises(ValueError, match="shape"):
        core.costs(space.kernel, g[0], space.config, 1)
    # Values the int32 conversion would wrap or truncate are refused, not converted.
    wide = space.sample(3, seed=0).astype(np.int64)
    wide[2, 0] = 2**32
    with pytest.raises(ValueError, match="genome 2, gene 0 is 4294967296"):
        core.costs(space.kernel, wide, space.config, 1)
    with pytest.raises(ValueError, match="integers"):
        core.validate(space.kernel, space.sample(3, seed=0) + 0.5, space.config)
    with pytest.raises(ValueError, match="config"):
        core.costs(space.kernel, g, space.config[:-1], 1)


def test_text_form_round_trips(space: spaces.SearchSpace) -> None:
    g = space.sample(100, seed=9)
    texts = space.to_strs(g)
    np.testing.assert_array_equal(space.from_strs(texts), g)
    for bad in ("", "not an architecture", "[1, 2", "{}"):
        with pytest.raises(InputError):
            space.from_str(bad)


def test_costs_match_reference_twin(space: spaces.SearchSpace) -> None:
    g = space.sample(50, seed=11)
    c = space.costs(g, threads=2)
    for i in range(len(g)):
        ref = space.reference_costs(g[i])
        assert ref["macs"] == c.macs[i]
        assert ref["params"] == c.params[i]
        assert ref["activation_bytes"] == c.activation_bytes[i]
        assert ref["layers"] == c.layers[i]
        np.testing.assert_array_equal(np.asarray(ref["slots"]), c.slots[i])
    assert (c.weight_bytes == 4 * c.params).all()
    # slot sums never exceed totals; inactive slots are zero
    assert (c.slot("macs").sum(axis=1) <= c.macs).all()
    assert (c.slot("macs")[~space.active_slots(g)] == 0).all()


def test_costs_are_thread_count_invariant(space: spaces.SearchSpace) -> None:
    g = space.sample(20_000, seed=12)
    a, b = space.costs(g, threads=1), space.costs(g, threads=2)
    np.testing.assert_array_equal(a.slots, b.slots)
    np.testing.assert_array_equal(a.macs, b.macs)


def test_canonical_identifies_equal_networks(space: spaces.SearchSpace) -> None:
    g = space.sample(200, seed=13)
    c = space.canonical(g)
    np.testing.assert_array_equal(space.costs(c).slots, space.costs(g).slots)
    np.testing.assert_array_equal(space.canonical(c), c)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_costs_equal_built_torch_module(space: spaces.SearchSpace) -> None:
    from esm.spaces.nets.counting import count_costs

    g = space.sample(100, seed=21)
    c = space.costs(g)
    for i in range(len(g)):
        module = space.build(g[i])
        got = count_costs(module, space.input_shape(g[i], 1))
        want = {k: int(v[i]) for k, v in c.totals().items() if k != "weight_bytes"}
        assert got == want, space.to_str(g[i])
    shape = space.input_shape(g[0], batch_size=3)
    assert shape[0] == 3 and len(shape) == 4
