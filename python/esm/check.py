"""``esm check``: does a model's stated error hold on networks measured now?

:func:`check` draws ``n`` fresh random networks of the model's space (never one it was
trained or validated on: the file lists both), warms the device up (:mod:`esm.measure.warmup`)
and measures every network in ``rounds`` (2) rounds, each in its own random order, under the
conditions stored in the model file (device, batch, threads, measurement settings). A
network's latency is the geometric mean of its rounds. It reports MAPE, ``ape95``,
``acc10`` and the median predicted/measured ratio next to the figures the file states, and
how well the checking timer repeats itself (the rounds against each other).

When is a model within its stated error?
----------------------------------------
``within_stated`` is true when the fresh MAPE is at most ``1.25 * stated + 0.5`` points
``+ repeat`` noise, where ``repeat`` is the mean ``|round 1 / round 2 - 1|`` in percent:

- ``1.25 x`` and ``0.5`` points cover sampling noise: a MAPE over 30 validation networks
  and one over 60 fresh ones each have a standard error of roughly 10-15% of their value
  (the absolute errors' spread is about their mean), so two honest figures differ by up to
  about a quarter of their size in ordinary runs; the half point keeps very small MAPEs
  (a GPU's 1-2%) from failing on rounding-size differences;
- the repeat noise is the checking timer's disagreement with itself: a device whose timings
  of the same network move by 5% between two rounds cannot confirm a model more finely than
  that, whatever the model.

Outside that, the command exits 1. The reference network of the file (its drift reference)
is measured before, between and after the rounds, and its speed against the build's is
reported (not used to correct anything: the latencies a user gets are the raw ones).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError

if TYPE_CHECKING:
    from esm.measure import Measurement, Settings
    from esm.surrogate import Surrogate

__all__ = ["CHECK_SEED", "check", "fresh_networks", "within_stated"]

#: Offset of the fresh networks' seed, so that ``--seed 0`` does not draw the build's pool.
CHECK_SEED = 0xC4EC_0000
#: The must-show rule of the module docs: ``fresh <= SLOPE * stated + POINTS + repeat``.
SLOPE, POINTS = 1.25, 0.5


def within_stated(fresh_mape: float, stated_mape: float, repeat_noise: float) -> bool:
    """The rule of the module docs (all in percent; a NaN repeat noise counts as 0)."""
    noise = repeat_noise if math.isfinite(repeat_noise) else 0.0
    return bool(fresh_mape <= SLOPE * stated_mape + POINTS + noise)


def fresh_networks(sur: Surrogate, n: int, seed: int) -> np.ndarray:
    """``n`` random networks of the model's space that its build never measured (training,
    validation and every other measured network; canonical forms compared), deterministic in
    ``seed``."""
    from esm.collect import architectures
    from esm.store import genome_key

    space = sur.space
    seen = {genome_key(g) for g in np.concatenate([sur.train_genomes, sur.measured_genomes])}
    build = sur.info.get("build") or {}
    for text in build.get("validation_archs") or []:
        seen.add(genome_key(space.canonical(space.from_str(text)[None])[0]))
    cand = architectures(space, n + len(seen), CHECK_SEED + int(seed))
    keep = [g for g in cand if genome_key(g) not in seen][:n]
    if len(keep) < n:
        raise InputError(f"the space has only {len(keep)} networks the model has not seen")
    return np.stack(keep) if keep else np.zeros((0, space.genome_length), np.int32)


def _conditions(sur: Surrogate, device: str | None, settings: Settings | None,
                threads: int | None) -> tuple[str, Settings, int | None, int, dict[str, Any]]:
    from esm.measure import Settings as _Settings

    target = sur.info.get("target") or {}
    built = target.get("measurement") or {}
    dev = device or built.get("device")
    if not dev:
        raise InputError("the model file does not say which device it was measured on "
                         "(a dataset-file model): give --device")
    s = settings or (_Settings.from_dict(built["settings"]) if built.get("settings")
                     else _Settings.quick())
    thr = threads if threads is not None else built.get("threads")
    return dev, s, thr, int(built.get("batch_size") or 1), built


def check(model: Surrogate | str | Path, *, device: str | None = None, n: int = 60,
          seed: int = 0, rounds: int = 2, settings: Settings | None = None,
          threads: int | None = None, warmup: Any = True,
          measure: Callable[[np.ndarray, Settings], Measurement] | None = None,
          progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure ``n`` fresh networks and compare the model's error with its stated one.

    Parameters
    ----------
    model : Surrogate or path
        The model (file).
    device : str, optional
        Device to measure on (default: the one in the model file).
    n, seed : int
        How many fresh networks, and the seed that draws them.
    rounds : int
        Times each network is measured, each round in its own random order (>= 1; 2 gives
        the timer's repeat noise).
    settings : esm.measure.Settings, optional
        Measurement settings (default: the model file's).
    threads : int, optional
        CPU threads (default: the model file's).
    warmup : WarmupRule, True or None
        Warm-up before timing (True: the device's default rule; None: none).
    measure : callable, optional
        ``measure(genome, settings) -> Measurement`` (default: build the network and
        :func:`esm.measure.measure_module` it on ``device``); for fake devices in tests.
    progress : callable, optional
        Receives one line per measured network.

    Returns
    -------
    dict
        ``fresh`` (MAPE, ape95, acc10, median_ratio, ... on the fresh networks), ``stated``
        (the file's figures), ``repeat`` (how the rounds agree), ``within_stated``,
        ``rule``, ``reference`` (the drift reference now vs at build time), ``warmup``,
        the conditions and ``rows`` (per network: arch, predicted, measured per round).
    """
    from esm.measure.warmup import WarmupRule, precise, warm_up
    from esm.search.verify import stated_error
    from esm.surrogate import Surrogate

    if n < 2:
        raise InputError(f"--n must be >= 2, got {n}")
    if rounds < 1:
        raise InputError(f"--rounds must be >= 1, got {rounds}")
    sur = model if isinstance(model, Surrogate) else Surrogate.load(model)
    t0 = time.monotonic()
    dev, s, thr, batch, built = _conditions(sur, device, settings, threads)
    space = sur.space
    stated = stated_error(sur)
    if stated is None:
        raise InputError("the model file states no error to check (no metrics with a MAPE)")
    fresh = fresh_networks(sur, n, seed)
    run = measure or _device_measure(space, dev, batch, thr)
    ref_info = (sur.info.get("target") or {}).get("drift_reference") or {}
    ref_g = (space.from_str(ref_info["arch"]) if ref_info.get("arch") else
             _default_reference(space))
    ref_settings = (s.from_dict(ref_info["settings"]) if ref_info.get("settings")
                    else precise(s))
    rule = (WarmupRule.for_device(dev) if warmup is True else warmup or None)
    warm = warm_up(lambda: run(ref_g, ref_settings), rule) if rule is not None else None
    if warm is not None and progress is not None:
        progress(warm.message())
    rng = np.random.default_rng([int(seed), 7])
    y = np.full((rounds, n), np.nan)
    ref_ms = [run(ref_g, ref_settings).median_ms]
    for r in range(rounds):
        for k, i in enumerate(rng.permutation(n)):
            m = run(fresh[i], s)
            y[r, i] = m.median_ms
            if progress is not None:
                progress(f"round {r + 1}/{rounds}, {k + 1:3d}/{n}: {m.median_ms:8.3f} ms")
        ref_ms.append(run(ref_g, ref_settings).median_ms)
    pred = np.asarray(sur.predict(fresh), np.float64)
    ok = np.all(np.isfinite(y) & (y > 0), axis=0)
    if ok.sum() < 2:
        raise InputError("fewer than 2 fresh networks could be measured")
    meas = np.exp(np.mean(np.log(y[:, ok]), axis=0))
    fig = _figures(pred[ok], meas)
    rep = _repeat(y[:, ok])
    metrics = (sur.info.get("metrics") or {}).get(stated[1], {})
    stated_fig = {"mape": stated[0], "from": stated[1], "on": metrics.get("on"),
                  "n": metrics.get("n"), "ape95": metrics.get("ape95"),
                  "acc10": metrics.get("acc10"), "median_ratio": metrics.get("median_ratio")}
    limit = SLOPE * stated[0] + POINTS + (rep["mean"] if math.isfinite(rep["mean"]) else 0.0)
    ref_now = float(np.exp(np.mean(np.log(ref_ms))))
    base = ref_info.get("median_ms")
    return {
        "model": str(model) if not isinstance(model, Surrogate) else None,
        "space": space.name, "device": dev, "model_device": built.get("device"),
        "batch_size": batch, "threads": thr, "settings": s.to_dict(), "n": int(ok.sum()),
        "failed": int((~ok).sum()), "seed": seed, "rounds": rounds,
        "fresh": fig, "fresh_per_round": [float(100 * np.mean(np.abs(pred[ok] / y[r, ok] - 1)))
                                          for r in range(rounds)],
        "stated": stated_fig, "repeat": rep,
        "within_stated": within_stated(fig["mape"], stated[0], rep["mean"]),
        "limit": limit,
        "rule": f"fresh MAPE <= {SLOPE:g} x stated + {POINTS:g} points + the timer's repeat "
                "noise (mean |round 1 / round 2 - 1|)",
        "ratio_within_3pct": bool(abs(fig["median_ratio"] - 1.0) <= 0.03),
        "reference": {"arch": space.to_str(ref_g), "now_ms": ref_ms, "built_ms": base,
                      "speed_ratio": ref_now / base if base else None},
        "warmup": None if warm is None else warm.to_dict(),
        "seconds": time.monotonic() - t0,
        "rows": [{"arch": space.to_str(fresh[i]), "predicted_ms": float(pred[i]),
                  "measured_ms": [float(v) for v in y[:, i]]} for i in range(n)],
    }


def _figures(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    from esm.surrogate.metrics import evaluate

    ape = 100.0 * np.abs(pred / meas - 1.0)
    return {**evaluate(meas, pred), "ape95": float(np.percentile(ape, 95)),
            "median_ratio": float(np.median(pred / meas))}


def _repeat(y: np.ndarray) -> dict[str, Any]:
    """How the rounds agree: ``mean``/``median`` of ``100 |round 1 / round 2 - 1|``."""
    if y.shape[0] < 2:
        return {"mean": math.nan, "median": math.nan, "median_ratio": math.nan}
    e = y[1] / y[0]
    return {"mean": float(100 * np.mean(np.abs(e - 1))),
            "median": float(100 * np.median(np.abs(e - 1))),
            "median_ratio": float(np.median(e))}


def _default_reference(space: Any) -> np.ndarray:
    from esm.collect import REFERENCE_SEED, architectures

    return architectures(space, 1, REFERENCE_SEED)[0]


def _device_measure(space: Any, device: str, batch: int, threads: int | None
                    ) -> Callable[[np.ndarray, Settings], Measurement]:
    """Build a network and measure it on ``device`` (threads set once)."""
    from esm.collect import check_device
    from esm.measure import measure_module

    dev = check_device(device)
    if threads is not None and dev == "cpu":
        try:
            import torch
        except ImportError:
            raise InputError("esm check measures networks and needs torch") from None
        torch.set_num_threads(int(threads))

    def run(genome: np.ndarray, settings: Settings) -> Measurement:
        return measure_module(space.build(genome), space.input_shape(genome, batch), dev,
                              settings)

    return run
