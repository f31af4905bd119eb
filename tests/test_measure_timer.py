"""CPU timer core and the measurement loop: accuracy on a busy-wait of known length."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from esm._native import core
from esm.errors import InputError
from esm.measure import Measurement, Settings, measure
from tests.conftest import ESM_PATH


def _call_overhead_s() -> float:
    """Fixed cost of one timed ``busy_wait`` call besides the wait (Python call + clock)."""
    bw = core.busy_wait
    return float(np.median(core.time_callable(lambda: bw(0.0), 200, 20)))


def test_timer_overhead_and_resolution():
    o = core.timer_overhead(2000)
    assert o.dtype == np.float64 and o.shape == (2000,)
    assert 0 <= np.median(o) < 1e-6
    assert 0 < core.clock_resolution(100) < 1e-5
    assert core.clock_tick() <= 1e-6


def test_time_callable_counts_and_errors():
    calls = []
    out = core.time_callable(lambda: calls.append(1), 7, 5)
    assert out.shape == (5,) and len(calls) == 35
    with pytest.raises(ZeroDivisionError):
        core.time_callable(lambda: 1 / 0, 1, 3)
    with pytest.raises(ValueError):
        core.time_callable(42, 1, 1)
    with pytest.raises(ValueError):
        core.time_callable(lambda: None, 0, 1)
    with pytest.raises(ValueError):
        core.busy_wait(-1.0)


@pytest.mark.parametrize("seconds", [1e-3, 1e-2])
def test_busy_wait_in_cpp_is_accurate(seconds):
    """The timing loop alone (no Python): the fastest sample is the spin, within 0.1%."""
    share = 0.0
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.thread_time()
        x = core.time_busy_wait(seconds, 1, 15)
        share = (time.thread_time() - c0) / (time.perf_counter() - w0)
        assert x.min() >= seconds  # the clock never undercounts a spin of known length
        if x.min() < seconds * 1.001:
            return
    if share < 0.9:
        pytest.skip(f"machine oversubscribed: the timing thread got {share:.0%} of a core")
    raise AssertionError(f"fastest of 15 spins of {seconds} s took {x.min()} s")


_ACCURACY_CHILD = """
import json, sys, time
import numpy as np
from esm._native import core
from esm.measure import Settings, measure, median_ci

seconds = float(sys.argv[1])
bw = core.busy_wait
s = Settings(warmup_min_s=0.05, warmup_max_s=0.3, min_samples=15, max_time_s=1.5,
             target_rel_ci=0.005, min_sample_s=0.0)
out = []
for _ in range(3):
    truth = seconds + float(np.median(core.time_callable(lambda: bw(0.0), 200, 20)))
    w0, c0 = time.perf_counter(), time.thread_time()
    m = measure(lambda: bw(seconds), s)
    cpp = core.time_busy_wait(seconds, 1, 31) * 1e3
    lo, hi, _ = median_ci(cpp)
    share = (time.thread_time() - c0) / (time.perf_counter() - w0)
    out.append({"truth_ms": truth * 1e3, "median_ms": m.median_ms, "min_ms": m.min_ms,
                "inner": m.inner, "n": m.n_samples, "cpp_median_ms": float(np.median(cpp)),
                "cpp_ci": [lo, hi], "share": share, "summary": m.summary()})
print(json.dumps(out))
"""


@pytest.mark.parametrize("seconds", [1e-3, 1e-2])
def test_measure_busy_wait_accuracy(seconds):
    """A C++ busy-wait of known length: median within 1% and a median CI containing it.

    Two paths, in a fresh interpreter (no other Python threads competing for the GIL):
    the compiled timing loop around the C++ spin (median and order-statistic CI must hold
    the known duration), and ``measure`` on the Python callable (median within 1% of the
    duration plus the calibrated call cost). Leaving and re-entering the interpreter around a
    GIL-releasing call costs a few microseconds more than an empty call here (+0.3% at
    10 ms), so the CI of the Python path is not held to the bare duration. On an
    oversubscribed machine a busy-wait is preempted and lasts longer in wall time; the CPU
    share tells this apart from a timer error, and only then is the check skipped.
    """
    env = {**os.environ, "PYTHONPATH": ESM_PATH}
    run = subprocess.run([sys.executable, "-c", _ACCURACY_CHILD, str(seconds)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    tries = json.loads(run.stdout)
    ms, slack = seconds * 1e3, 2e-3  # slack (ms): the clock read that ends the spin
    for t in tries:
        assert t["inner"] == 1 and t["n"] >= 15
        assert t["min_ms"] >= ms * 0.9999  # never shorter than the known work
        lo, hi = t["cpp_ci"]
        if (abs(t["median_ms"] / t["truth_ms"] - 1) < 0.01
                and abs(t["cpp_median_ms"] / ms - 1) < 0.01 and lo - slack <= ms <= hi + slack):
            return
    last = tries[-1]
    if last["share"] < 0.9:
        pytest.skip(f"machine oversubscribed: the timing thread got {last['share']:.0%} of a core")
    raise AssertionError(f"{last['summary']} vs truth {last['truth_ms']:.5f} ms; C++ loop "
                         f"median {last['cpp_median_ms']:.5f} CI {last['cpp_ci']} "
                         f"(CPU share {last['share']:.0%})")


def test_measure_calibrates_inner_and_reports_everything():
    s = Settings.quick(min_sample_s=2e-4)
    m = measure(lambda: None, s)
    assert m.inner > 10
    assert m.samples_ms.dtype == np.float64 and m.samples_ms.size == m.n_samples
    assert m.min_ms <= m.q05_ms <= m.q25_ms <= m.median_ms <= m.q75_ms <= m.q95_ms
    assert m.ci_low_ms <= m.median_ms <= m.ci_high_ms
    assert m.warmup_iters > 0 and m.warmup_s > 0 and m.device == "cpu"
    assert m.cpu_share is not None and 0 < m.cpu_share <= 1.1
    assert m.total_s < s.max_time_s + 0.5
    d = json.loads(json.dumps(m.to_dict()))
    m2 = Measurement.from_dict(d)
    assert np.array_equal(m2.samples_ms, m.samples_ms) and m2.settings == s
    assert m2.median_ms == m.median_ms and m2.unstable == m.unstable


def test_time_cap_and_unstable_flag():
    rng = np.random.default_rng(0)
    bw = core.busy_wait
    s = Settings(warmup_min_s=0.0, warmup_max_s=0.01, min_samples=5, max_time_s=0.15,
                 target_rel_ci=1e-6, min_sample_s=0.0)
    t = time.perf_counter()
    m = measure(lambda: bw(float(rng.uniform(1e-4, 2e-3))), s)
    assert time.perf_counter() - t < 1.0
    assert m.unstable and m.n_samples >= 3


def test_exceptions_propagate_and_bad_args():
    with pytest.raises(RuntimeError):
        measure(lambda: (_ for _ in ()).throw(RuntimeError("boom")), Settings.quick())
    with pytest.raises(InputError):
        measure(42)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        measure(lambda: None, device="tpu")


def test_settings_round_trip_and_validation():
    s = Settings.quick(cuda_l2_flush=True)
    assert Settings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert Settings.preset("default") == Settings()
    with pytest.raises(InputError):
        Settings.from_dict({"nope": 1})
    with pytest.raises(InputError):
        Settings(target_rel_ci=0)
    with pytest.raises(InputError):
        Settings(min_samples=10, max_samples=5)
    with pytest.raises(InputError):
        Settings.preset("fast")


def test_measure_module_cpu():
    torch = pytest.importorskip("torch")
    from esm.measure import measure_module, provenance

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    m = measure_module(net, (1, 3, 16, 16), settings=Settings.quick(), threads=1)
    assert m.median_ms > 0 and m.n_samples >= 3
    p = provenance("cpu", threads=1)
    for k in ("cpu_model", "cpu_cores", "affinity", "os", "python", "torch", "esm"):
        assert k in p
    json.dumps(p)


def test_thread_cpu_clock_excludes_time_off_cpu():
    sleep_wall = core.time_callable(lambda: time.sleep(0.002), 1, 3, "wall")
    sleep_cpu = core.time_callable(lambda: time.sleep(0.002), 1, 3, "thread_cpu")
    assert np.all(sleep_wall >= 0.002) and np.median(sleep_cpu) < 0.0005
    with pytest.raises(ValueError):
        core.time_callable(lambda: None, 1, 1, "sundial")

    def work():
        s = 0
        for i in range(3000):
            s += i

    m = measure(work, Settings.quick(clock="thread_cpu"))
    assert m.median_ms > 0 and m.settings.clock == "thread_cpu"
    assert 0 < core.thread_cpu_time()
    with pytest.raises(InputError):
        Settings(clock="sundial")


def test_thread_cpu_needs_one_thread():
    torch = pytest.importorskip("torch")
    from esm.measure import measure_module

    net = torch.nn.Conv2d(3, 4, 3)
    with pytest.raises(InputError, match="threads=1"):
        measure_module(net, (1, 3, 8, 8), settings=Settings.quick(clock="thread_cpu"),
                       threads=2)
    m = measure_module(net, (1, 3, 8, 8), settings=Settings.quick(clock="thread_cpu"),
                       threads=1)
    assert m.median_ms > 0
