from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _torch_and_esm_see_a_gpu() -> bool:
    if not HAVE_TORCH:
        return False
    import torch

    from esm import cuda

    return cuda.available() and torch.cuda.is_available()


#: esm's CUDA module and torch both see a GPU (measuring on it needs both).
HAVE_GPU = _torch_and_esm_see_a_gpu()
needs_gpu = pytest.mark.skipif(not HAVE_GPU,
                               reason="no usable CUDA GPU (or esm built without CUDA)")

#: The directory holding the imported ``esm`` package (site-packages when installed, the
#: source tree's ``python/`` in a developer build), for PYTHONPATH of child processes.
ESM_PATH = str(Path(importlib.util.find_spec("esm").origin).resolve().parents[1])  # type: ignore[union-attr,arg-type]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


def fit_on_costs(space: Any, encoding: str, est: Any, n: int, seed: int) -> tuple:
    """Fit ``est`` on ``n`` sampled genomes' standardised ``encoding`` features against a smooth
    log-latency made of their costs; returns ``(encoder, exported model, mean, scale)``."""
    from esm.predictor.convert import from_estimator
    from esm.surrogate import encoders

    enc = encoders.get_encoder(encoding, space)
    g = space.sample(n, seed=seed)
    X = enc.transform(g)
    c = space.costs(g)
    y = np.log(1e-9 * c.macs + 1e-7 * c.activation_bytes + 0.01 * c.layers + 1)
    mean, scale = X.mean(0), X.std(0)
    scale[scale == 0] = 1.0
    est.fit((X - mean) / scale, y)
    return enc, from_estimator(est, x_mean=mean, x_scale=scale, target="log"), mean, scale


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread: the tests build many small networks on a 2-core machine, where two
    spinning OpenMP threads per process slow everything down when other work shares the cores."""
    if HAVE_TORCH:
        import torch

        torch.set_num_threads(1)
