"""CUDA event timer (skipped without a usable GPU)."""

from __future__ import annotations

import numpy as np
import pytest

from esm import cuda
from esm.errors import InputError
from esm.measure import Settings, measure
from tests.conftest import HAVE_GPU, needs_gpu

torch = pytest.importorskip("torch")


@pytest.mark.skipif(HAVE_GPU, reason="checks the refusal on machines without a GPU")
def test_cuda_refused_without_gpu():
    with pytest.raises(InputError):
        measure(lambda: None, Settings.quick(), device="cuda")


@needs_gpu
@pytest.mark.gpu
def test_event_timer_sleep_kernel_matches_clock():
    mod = cuda.module()
    t = mod.EventTimer(0, 8, True)
    assert t.flush_bytes == 2 * t.l2_bytes > 0
    stream = torch.cuda.Stream()
    cycles = 2_000_000
    with torch.cuda.stream(stream):
        ms, mhz = t.time(lambda: torch.cuda._sleep(cycles), stream.cuda_stream, 1, 20)
    assert ms.shape == (20,) and mhz.shape == (20,)
    assert np.all(mhz > 100) and np.all(mhz < 5000)
    expected = cycles / (np.median(mhz) * 1e3)  # ms at the measured SM clock
    assert np.median(ms) == pytest.approx(expected, rel=0.05)
    # more samples than the pool: several batches
    with torch.cuda.stream(stream):
        ms2, _ = t.time(lambda: torch.cuda._sleep(1000), stream.cuda_stream, 3, 21)
    assert ms2.shape == (21,) and np.all(ms2 > 0)


@needs_gpu
@pytest.mark.gpu
def test_measure_cuda_and_graph_mode():
    from esm.measure import measure_module

    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3))
    s = Settings.quick()
    m = measure_module(net, (8, 3, 64, 64), device="cuda", settings=s)
    assert m.device == "cuda:0" and m.sm_clock_mhz is not None
    assert m.sm_clock_mhz.size == m.n_samples and m.median_ms > 0
    g = measure_module(net, (8, 3, 64, 64), device="cuda",
                       settings=s.replace(cuda_graph=True, cuda_l2_flush=True))
    assert g.median_ms > 0 and g.settings.cuda_graph
    # generic graph capture in C++ on a side stream
    stream = torch.cuda.Stream()
    x = torch.randn(256, 256, device="cuda")
    with torch.cuda.stream(stream):
        y = x @ x
        mg = measure(lambda: torch.mm(x, x, out=y), s.replace(cuda_graph=True), "cuda",
                     stream=stream.cuda_stream)
    assert mg.median_ms > 0


@needs_gpu
@pytest.mark.gpu
def test_nvml_and_provenance():
    from esm.measure import provenance

    info = cuda.module().nvml_info(0)
    assert "error" in info or "sm_clock_mhz" in info
    p = provenance("cuda:0")
    assert "gpu" in p and "cudnn_version" in p
