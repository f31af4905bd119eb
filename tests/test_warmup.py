"""The warm-up rule on fake timings and a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from esm.errors import InputError
from esm.measure import Measurement, Settings
from esm.measure.warmup import WarmupRule, precise, warm_up


def _device(values: list[float], rel_ci: float = 0.001, round_s: float = 1.0):
    """A device returning ``values`` in turn (then the last), each round ``round_s`` long."""
    clock = {"t": 0.0, "i": 0}

    def once() -> Measurement:
        v = values[min(clock["i"], len(values) - 1)]
        clock["i"] += 1
        clock["t"] += round_s
        half = rel_ci * v
        return Measurement.from_samples(np.linspace(v - half, v + half, 41), Settings())

    return once, (lambda: clock["t"]), clock


def test_cold_device_is_timed_until_steady() -> None:
    """A GPU-like device: the first rounds 10% fast, then steady."""
    once, clock, state = _device([0.90, 0.93, 0.97, 1.0, 1.0, 1.001, 1.0, 1.0])
    rep = warm_up(once, WarmupRule(min_s=2.0, max_s=30.0, tol=0.01), clock=clock)
    assert rep.steady and rep.rounds == 6 and state["i"] == 6
    assert rep.first_vs_steady == pytest.approx(0.90 / 1.001 - 1.0)  # first / last round
    assert "steady" in rep.message() and rep.to_dict()["rounds"] == 6


def test_min_time_and_cap() -> None:
    once, clock, _ = _device([1.0])
    rep = warm_up(once, WarmupRule(min_s=5.0, max_s=30.0), clock=clock)
    assert rep.steady and rep.seconds == pytest.approx(5.0)  # steady at once, but min_s
    noisy = [1.0, 1.1, 0.95, 1.08, 0.97, 1.12] * 10
    once, clock, _ = _device(noisy)
    rep = warm_up(once, WarmupRule(min_s=1.0, max_s=8.0, tol=0.02), clock=clock)
    assert not rep.steady and rep.seconds == pytest.approx(8.0)
    assert "NOT steady" in rep.message() and rep.spread > 0.1
    # rounds whose own confidence interval is wider than the tolerance never count as steady
    once, clock, _ = _device([1.0], rel_ci=0.2)
    rep = warm_up(once, WarmupRule(min_s=0.0, max_s=4.0), clock=clock)
    assert not rep.steady and "too noisy to tell" in rep.message()
    once, clock, _ = _device([1.0], round_s=5.0)
    assert "only 1 round" in warm_up(once, WarmupRule(min_s=0.0, max_s=4.0),
                                     clock=clock).message()


def test_rule_checks_and_precise_settings() -> None:
    with pytest.raises(InputError):
        WarmupRule(min_s=5.0, max_s=1.0)
    assert WarmupRule.for_device("cuda:0").min_s == 5.0 and WarmupRule.for_device("cpu").tol == 0.02
    p = precise(Settings.quick())
    assert p.max_time_s == 1.0 and p.target_rel_ci == 0.005 and p.min_samples >= 20
    assert precise(Settings(max_time_s=10.0)).max_time_s == 10.0
