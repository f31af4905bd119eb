"""device="cuda": the linear, LUT and tree families on the GPU equal the CPU path."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from esm import InputError, cuda, spaces

pytestmark = pytest.mark.gpu

if not cuda.available():
    pytest.skip(f"no usable CUDA device: {cuda.devices()[1]}", allow_module_level=True)

pytest.importorskip("sklearn")
from esm.surrogate import Surrogate  # noqa: E402


@pytest.fixture(scope="module")
def ofa() -> spaces.SearchSpace:
    return spaces.get("ofa-mbv3")


def _fit(ofa: spaces.SearchSpace, encoding: str, model: str, **params: object) -> Surrogate:
    g = ofa.sample(300, seed=0)
    c = ofa.costs(g)
    y = 1e-8 * c.macs + 2e-7 * c.activation_bytes + 0.05 * c.layers + 0.5
    return Surrogate.fit(ofa, g, y, encoding=encoding, model=model, model_params=params, seed=0)


@pytest.mark.parametrize(("encoding", "model", "params"), [
    ("lut", "lut", {}), ("fcc", "ridge", {}), ("onehot", "forest", {"n_estimators": 10}),
    ("fcc", "gbt", {"n_estimators": 30}),
])
def test_gpu_equals_cpu(ofa: spaces.SearchSpace, encoding: str, model: str, params: dict) -> None:
    sur = _fit(ofa, encoding, model, **params)
    g = ofa.sample(20000, seed=5)
    cpu = sur.predict(g)
    gpu = sur.predict(g, device="cuda", chunk=4096)
    np.testing.assert_allclose(np.asarray(gpu), cpu, rtol=1e-12)
    X = sur.features(g[:1000])
    np.testing.assert_allclose(
        sur.compile()._gpu_predictor().predict_features(X), cpu[:1000], rtol=1e-12)
    assert sur.predict(g[:0], device="cuda").shape == (0,)
    bad = g[:4].copy()
    bad[1, 2] = 9
    with pytest.raises(InputError):
        sur.predict(bad, device="cuda")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="cupy not installed")
def test_gpu_cupy_in_and_out(ofa: spaces.SearchSpace) -> None:
    import cupy as cp

    for encoding, model in (("lut", "lut"), ("onehot", "forest")):
        sur = _fit(ofa, encoding, model)
        g = ofa.sample(5000, seed=2)
        out = sur.predict(cp.asarray(g), device="cuda")
        assert isinstance(out, cp.ndarray)
        np.testing.assert_allclose(cp.asnumpy(out), sur.predict(g), rtol=1e-12)


def test_gpu_refuses_other_families(ofa: spaces.SearchSpace) -> None:
    sur = _fit(ofa, "stats", "knn")
    with pytest.raises(InputError, match="linear and trees"):
        sur.predict(ofa.sample(3, seed=0), device="cuda")


@pytest.mark.parametrize("extra", [{"constant_output_ms": 0.005}, {"pruned": True}])
def test_gpu_predicts_folded_and_pruned_networks_as_the_cpu(extra: dict) -> None:
    """A device that folds constant-output networks, or prunes dead operations."""
    nb = spaces.get("nb201")
    g = nb.sample(400, seed=0)
    c = nb.costs(g)
    base = Surrogate.fit(nb, g, 1e-7 * c.macs + 0.3, encoding="fcc", model="ridge", seed=0)
    sur = Surrogate(nb, base.encoder, base.kind, base.model_meta, base.arrays,
                    {**base.info, **extra})
    every = nb.sample(5000, seed=1)
    cpu = sur.predict(every)
    if "pruned" in extra:
        np.testing.assert_allclose(cpu, base.predict(nb.pruned(every)), rtol=1e-12)
        assert not np.allclose(cpu, base.predict(every))
    else:
        assert (cpu[nb.constant_output(every)] == 0.005).all()
    np.testing.assert_allclose(np.asarray(sur.predict(every, device="cuda")), cpu, rtol=1e-12)
    if importlib.util.find_spec("cupy") is not None:
        import cupy as cp

        out = sur.predict(cp.asarray(every), device="cuda")
        np.testing.assert_allclose(cp.asnumpy(out), cpu, rtol=1e-12)
