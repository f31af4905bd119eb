"""The CUDA flat pipeline (_cuda.DevicePipeline) equals its CPU twin (_core.FlatPipeline /
_core.flat_costs): integers exactly, floats within 1e-6 relative. Skipped without a GPU."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from esm import _core, cuda, spaces

pytestmark = pytest.mark.gpu

if not cuda.available():
    pytest.skip(f"no usable CUDA device: {cuda.devices()[1]}", allow_module_level=True)

cp = pytest.importorskip("cupy")
from esm import _cuda  # type: ignore[attr-defined]  # noqa: E402

SPACES = ["ofa-mbv3", "ofa-resnet50", "nb201", "fbnet", "anb-mnasnet"]


def _genomes(space: spaces.SearchSpace, n: int, seed: int) -> np.ndarray:
    g = space.sample(n, seed=seed).astype(np.int32)
    g[5, 0] = space.choices[0]  # a bad row: reported, not computed
    return g


def _twin(space: spaces.SearchSpace, linear: bool, parts: list[str] | None = None) -> Any:
    from esm.predictor.plan import build_plan
    from esm.surrogate.encoders import FccEncoder

    flat = _core.FlatPipeline(space.kernel, space.config,
                              build_plan(FccEncoder(space, parts=parts)))
    if linear:
        F = flat.n_features
        X, _ = flat.features(space.sample(500, seed=9))
        rng = np.random.default_rng(1)
        flat.set_linear(rng.normal(size=F) * 1e-3, X.mean(0), X.std(0) + 1.0, 0.5, "log")
    return flat


@pytest.mark.parametrize("name", SPACES)
def test_device_costs_equal_twin(name: str) -> None:
    space = spaces.get(name)
    g = _genomes(space, 50_000, 1)
    ref_t, ref_s, ref_b = _core.flat_costs(space.kernel, g, space.config)
    pipe = _cuda.DevicePipeline(space.kernel, space.config)
    dg = cp.asarray(g)
    n, S = len(g), pipe.n_slots
    t, s, b = cp.empty((n, 4), cp.int64), cp.empty((n, S, 4), cp.int64), cp.empty(n, cp.int64)
    pipe.costs(dg.data.ptr, n, t.data.ptr, s.data.ptr, b.data.ptr)
    np.testing.assert_array_equal(b.get(), ref_b)
    np.testing.assert_array_equal(t.get(), ref_t)
    np.testing.assert_array_equal(s.get(), ref_s)


@pytest.mark.parametrize("parts", [None, ["stats", "layerwise", "stagechoice"]])
@pytest.mark.parametrize("name", SPACES)
def test_device_features_and_linear_equal_twin(name: str, parts: list[str] | None) -> None:
    """The default ``fcc`` encoding, and one with the costs per stage and choice."""
    space = spaces.get(name)
    g = _genomes(space, 20_000, 2)
    flat = _twin(space, linear=True, parts=parts)
    pipe = _cuda.DevicePipeline.from_twin(flat)
    dg = cp.asarray(g)
    n, F = len(g), pipe.n_features
    X, b = cp.empty((n, F), cp.float64), cp.empty(n, cp.int64)
    pipe.features(dg.data.ptr, n, X.data.ptr, b.data.ptr)
    ref_X, ref_b = flat.features(g)
    np.testing.assert_array_equal(b.get(), ref_b)
    np.testing.assert_allclose(X.get(), ref_X, rtol=1e-6, atol=0)
    y = cp.empty(n, cp.float64)
    pipe.predict_linear(dg.data.ptr, n, y.data.ptr, b.data.ptr)
    ref_y, _ = flat.predict_linear(g)
    np.testing.assert_allclose(y.get(), ref_y, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", SPACES)
def test_linear_kernel_cost_totals_equal_twin(name: str) -> None:
    """predict_linear with a totals pointer: the cost totals of the same walk, as the twin."""
    space = spaces.get(name)
    g = _genomes(space, 20_000, 4)
    flat = _twin(space, linear=True)
    pipe = _cuda.DevicePipeline.from_twin(flat)
    dg = cp.asarray(g)
    n = len(g)
    y, b = cp.empty(n, cp.float64), cp.empty(n, cp.int64)
    t = cp.full((n, 4), -1, cp.int64)
    pipe.predict_linear(dg.data.ptr, n, y.data.ptr, b.data.ptr, 0, t.data.ptr)
    ref_y, ref_b, ref_t = flat.predict_linear(g, True)
    np.testing.assert_array_equal(b.get(), ref_b)
    np.testing.assert_array_equal(t.get(), ref_t)
    np.testing.assert_allclose(y.get(), ref_y, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", SPACES)
def test_device_variation_equals_twin(name: str) -> None:
    ch = spaces.get(name).choices
    var = _cuda.DeviceVariation(ch)
    n, G = 30_000, len(ch)
    out = cp.empty((n, G), cp.int32)
    var.sample(11, n, out.data.ptr)
    ref = _core.variation_sample(ch, n, 11)
    np.testing.assert_array_equal(out.get(), ref)
    m = cp.empty_like(out)
    var.mutate(12, 0.2, out.data.ptr, n, m.data.ptr)
    np.testing.assert_array_equal(m.get(), _core.variation_mutate(ch, ref, 0.2, 12))
    c = cp.empty_like(out)
    var.crossover(13, out.data.ptr, m.data.ptr, n, c.data.ptr)
    np.testing.assert_array_equal(c.get(), _core.variation_crossover(ref, m.get(), 13))
    score = cp.asarray(np.random.default_rng(0).random(n))
    w = cp.empty(n, cp.int64)
    var.tournament(14, score.data.ptr, n, 3, n, w.data.ptr)
    np.testing.assert_array_equal(w.get(), _core.variation_tournament(score.get(), n, 3, 14))


def test_cuda_search_equals_twin_search() -> None:
    from esm.search.device import CudaOps, TwinOps, device_evolution

    space = spaces.get("ofa-mbv3")
    flat = _twin(space, linear=True)
    twin = device_evolution(TwinOps(flat, space.choices), population=4096, generations=5, seed=2)
    dev = device_evolution(CudaOps(flat, space.choices), population=4096, generations=5, seed=2)
    np.testing.assert_array_equal(dev.best_genome, twin.best_genome)
    np.testing.assert_allclose(dev.history, twin.history, rtol=1e-6)
