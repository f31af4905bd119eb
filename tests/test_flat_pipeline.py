"""The flat pipeline's CPU twin (the same host/device source the CUDA kernels compile) equals
the compiled CPU cost path exactly, on every built-in space; bad rows are reported per row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from esm import _core, spaces

SPACES = ["ofa-mbv3", "ofa-resnet50", "nb201", "fbnet", "anb-mnasnet"]


@pytest.mark.parametrize("name", SPACES)
def test_twin_costs_equal_cpu(name: str) -> None:
    space = spaces.get(name)
    g = space.sample(3000, seed=1)
    ref = space.costs(g, threads=1)
    totals, slots, bad = _core.flat_costs(space.kernel, g, space.config)
    assert (bad == -1).all()
    np.testing.assert_array_equal(totals[:, 0], ref.macs)
    np.testing.assert_array_equal(totals[:, 1], ref.params)
    np.testing.assert_array_equal(totals[:, 2], ref.activation_bytes)
    np.testing.assert_array_equal(totals[:, 3], ref.layers)
    np.testing.assert_array_equal(slots, ref.slots)
    t2, s2, _ = _core.flat_costs(space.kernel, g, space.config, detail=False)
    np.testing.assert_array_equal(t2, totals)
    assert s2.shape == (len(g), 0, 4)


@pytest.mark.parametrize("name", ["ofa-mbv3", "ofa-resnet50", "fbnet", "anb-mnasnet"])
def test_twin_interpreter_equals_cpu(name: str) -> None:
    """A spec program forced to interpret walks the same costs as its table walk."""
    space = spaces.get(name)
    if space.kernel != "spec":
        pytest.skip("hand-written kernel: no interpreter mode")
    program = space.config.copy()
    program[5] = 0  # kHMode: interpret
    g = space.sample(500, seed=2)
    totals, slots, bad = _core.flat_costs("spec", g, program)
    ref_t, ref_s = _core.costs("spec", g, program, 1, True)
    assert (bad == -1).all()
    np.testing.assert_array_equal(totals, ref_t)
    np.testing.assert_array_equal(slots, ref_s)


@pytest.mark.parametrize("name", SPACES)
def test_twin_reports_first_bad_gene_per_row(name: str) -> None:
    space = spaces.get(name)
    g = space.sample(10, seed=3)
    g[2, 1] = space.choices[1]
    g[2, 3] = -1
    g[7, 0] = -5
    totals, slots, bad = _core.flat_costs(space.kernel, g, space.config)
    assert bad.tolist() == [-1, -1, 1, -1, -1, -1, -1, 0, -1, -1]
    assert not totals[[2, 7]].any() and not slots[[2, 7]].any()
    ok = bad == -1
    np.testing.assert_array_equal(totals[ok][:, 0], space.costs(g[ok]).macs)


def test_twin_refuses_wrong_shapes() -> None:
    space = spaces.get("nb201")
    with pytest.raises(ValueError):
        _core.flat_costs("nb201", np.zeros((3, 5), np.int32), space.config)
    with pytest.raises(ValueError):
        _core.flat_costs("nb201", np.zeros((3, 6), np.float64), space.config)


def _fcc(space: spaces.SearchSpace) -> tuple[Any, dict]:
    from esm.predictor.plan import build_plan
    from esm.surrogate.encoders import FccEncoder

    enc = FccEncoder(space)
    return enc, build_plan(enc)


@pytest.mark.parametrize("name", SPACES)
def test_twin_features_equal_compiled_encoder(name: str) -> None:
    from esm.predictor.plan import fused

    space = spaces.get(name)
    enc, plan = _fcc(space)
    flat = _core.FlatPipeline(space.kernel, space.config, plan)
    g = space.sample(2000, seed=4)
    X, bad = flat.features(g)
    assert (bad == -1).all()
    ref = fused(enc).encode(g, 1)
    assert X.shape == ref.shape == (len(g), flat.n_features)
    np.testing.assert_allclose(X, ref, rtol=1e-13, atol=0)
    np.testing.assert_allclose(X, enc.transform(g), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("target", ["identity", "log"])
def test_twin_linear_fold_equals_dense_linear(name: str, target: str) -> None:
    space = spaces.get(name)
    _, plan = _fcc(space)
    flat = _core.FlatPipeline(space.kernel, space.config, plan)
    g = space.sample(1500, seed=5)
    X, _ = flat.features(g)
    rng = np.random.default_rng(0)
    mean, scale = X.mean(0), X.std(0) + 1.0
    coef = rng.normal(size=X.shape[1]) * 1e-3
    flat.set_linear(coef, mean, scale, 0.5, target)
    y, bad = flat.predict_linear(g)
    assert (bad == -1).all()
    ref = 0.5 + ((X - mean) / scale) @ coef
    if target == "log":
        ref = np.exp(ref)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    g[3, 0] = space.choices[0]
    y2, bad2 = flat.predict_linear(g)
    assert bad2[3] == 0 and np.isnan(y2[3]) and np.isnan(flat.features(g)[0][3]).all()


def test_twin_linear_needs_matching_sizes() -> None:
    space = spaces.get("nb201")
    _, plan = _fcc(space)
    flat = _core.FlatPipeline(space.kernel, space.config, plan)
    with pytest.raises(ValueError):
        flat.set_linear(np.zeros(3), np.zeros(3), np.ones(3), 0.0)
    with pytest.raises(ValueError):
        flat.predict_linear(space.sample(2, seed=0))
    F = flat.n_features
    with pytest.raises(ValueError):
        flat.set_linear(np.zeros(F), np.zeros(F), np.ones(F), 0.0, "sqrt")


# ---------------------------------------------------------------- variation twins


@pytest.mark.parametrize("name", SPACES)
def test_variation_sample_in_range_and_deterministic(name: str) -> None:
    ch = spaces.get(name).choices
    a = _core.variation_sample(ch, 5000, 7)
    assert a.shape == (5000, len(ch)) and a.dtype == np.int32
    assert (a >= 0).all() and (a < ch).all()
    np.testing.assert_array_equal(a, _core.variation_sample(ch, 5000, 7))
    assert not np.array_equal(a, _core.variation_sample(ch, 5000, 8))
    # every choice of every gene turns up (uniform over choices)
    for j, c in enumerate(ch):
        assert len(np.unique(a[:, j])) == c
    # row i does not depend on n (counter-based streams)
    np.testing.assert_array_equal(_core.variation_sample(ch, 10, 7), a[:10])


def test_variation_mutate_rate_and_range() -> None:
    space = spaces.get("ofa-mbv3")
    ch = space.choices
    g = space.sample(4000, seed=0)
    m = _core.variation_mutate(ch, g, 0.1, 3)
    assert (m >= 0).all() and (m < ch).all()
    changed = (m != g)[:, ch > 1].mean()
    assert 0.09 < changed < 0.11
    np.testing.assert_array_equal(_core.variation_mutate(ch, g, 0.0, 3), g)
    assert ((_core.variation_mutate(ch, g, 1.0, 3) != g) == (ch > 1)).all()
    np.testing.assert_array_equal(m, _core.variation_mutate(ch, g, 0.1, 3))
    with pytest.raises(ValueError):
        _core.variation_mutate(ch, g, 1.5, 3)


def test_variation_crossover_and_tournament() -> None:
    space = spaces.get("fbnet")
    a, b = space.sample(3000, seed=1), space.sample(3000, seed=2)
    c = _core.variation_crossover(a, b, 5)
    assert ((c == a) | (c == b)).all()
    assert 0.45 < ((c == a) & (a != b)).sum() / (a != b).sum() < 0.55
    score = np.random.default_rng(0).random(1000)
    w = _core.variation_tournament(score, 20000, 2, 9)
    assert (w >= 0).all() and (w < 1000).all()
    assert score[w].mean() < score.mean() - 0.1  # selection pressure
    np.testing.assert_array_equal(w, _core.variation_tournament(score, 20000, 2, 9))
    with pytest.raises(ValueError):
        _core.variation_crossover(a, b[:10], 5)


def test_twin_device_evolution_runs_and_improves() -> None:
    from esm.search.device import TwinOps, device_evolution

    space = spaces.get("ofa-mbv3")
    _, plan = _fcc(space)
    flat = _core.FlatPipeline(space.kernel, space.config, plan)
    X, _ = flat.features(space.sample(500, seed=0))
    # a surrogate that grows with MACs (column 0 of fcc): the search must find small networks
    coef = np.zeros(X.shape[1])
    coef[0] = 1.0
    flat.set_linear(coef, X.mean(0), X.std(0) + 1.0, 0.0, "identity")
    ops = TwinOps(flat, space.choices)
    res = device_evolution(ops, population=512, generations=8, seed=3)
    assert res.history[-1] < res.history[0]
    assert all(b <= a for a, b in zip(res.history, res.history[1:], strict=False))
    assert res.candidates == 512 * 9
    assert (res.best_genome >= 0).all() and (res.best_genome < space.choices).all()
    again = device_evolution(ops, population=512, generations=8, seed=3)
    np.testing.assert_array_equal(again.best_genome, res.best_genome)
    assert space.costs(res.best_genome[None]).macs[0] <= np.median(
        space.costs(space.sample(500, seed=0)).macs)
