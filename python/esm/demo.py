"""``esm demo``: the main job on defaults, as a library function (:func:`run_demo`).

An ``ofa-mbv3`` latency surrogate for this machine's GPU (CUDA-graph replays) or CPU (one
thread) within a device-seconds budget: warm-up, a build with the default strategy
(:func:`esm.build.build`), the model file (:func:`esm.final.finalize`: the better of the
step model and ``fcc``/``auto`` by validation), a short search with it and a report.

How precisely each network is measured (:func:`demo_settings`)
--------------------------------------------------------------
On a GPU, CUDA-graph replays of these networks repeat themselves within about 1% with the
quick settings (``benchmarks/bench_gpu.py`` on an H100), so the quick settings are kept and
the budget buys networks. On a CPU a network's timing repeats itself poorly, and that noise
is the floor of every error the demo can state or a user can check: on this project's
2-core machine at load 1, two rounds of 12 networks (each built afresh) differed by a
median 7.9% with the quick settings (0.24 s per network), 5.2% with a 0.5 s cap and 4.3%
with 1 s (``benchmarks/cpu_precision.py``, ``benchmarks/results/cpu_precision.md``). Half the
mean difference is about the MAPE floor against labels averaged over two measurements: ~5%
with quick settings, the demo's whole target, against ~3% at 0.5 s. Fewer networks cost
less than that: the step model has 18-63 features, so its fitting noise, about the label
noise times ``sqrt(features / networks)``, is the same (~1.8%) for 150 networks at 5% noise
as for 330 at 8%. The budget therefore decides: it is spread over :data:`CPU_NETWORKS`
networks, each measured for up to ``budget / CPU_NETWORKS`` seconds less the per-network
overhead, between 0.25 s and :data:`CPU_MAX_TIME_S`; a larger budget first buys
precision, then more networks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from esm.errors import InputError

__all__ = ["CPU_NETWORKS", "demo_search", "demo_settings", "run_demo"]

#: Networks a CPU demo's budget is spread over (validation and repeats included).
CPU_NETWORKS = 200
#: Longest time one CPU network is measured for, and the shortest (the quick settings).
CPU_MAX_TIME_S = 1.0
CPU_MIN_TIME_S = 0.25
#: Seconds per network besides timing it: building the module, calibration, drift checks.
CPU_OVERHEAD_S = 0.15


def demo_settings(device: str, budget_seconds: float, *, clock: str = "wall",
                  cuda_graph: bool = True) -> tuple[Any, str]:
    """The measurement settings of a demo on ``device`` with this budget, and why."""
    from esm.measure import Settings, parse_device

    if parse_device(device)[0] == "cuda":
        return (Settings.quick(clock=clock, cuda_graph=cuda_graph),
                "quick settings (CUDA-graph replays repeat within ~1%)"
                if cuda_graph else "quick settings (eager forward)")
    per = budget_seconds / CPU_NETWORKS - CPU_OVERHEAD_S
    t = float(min(CPU_MAX_TIME_S, max(CPU_MIN_TIME_S, per)))
    ci = 0.03 if t <= CPU_MIN_TIME_S else 0.01
    s = Settings.quick(max_time_s=t, target_rel_ci=ci, clock=clock)
    return s, (f"up to {t:.2f} s per network (budget {budget_seconds:.0f} s over about "
               f"{CPU_NETWORKS} networks), CI target {100 * ci:.0f}%")


def resolve_device(device: str) -> str:
    """``auto``: a CUDA GPU when torch sees one, else the CPU."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        raise InputError("esm demo measures networks and needs torch") from None
    return "cuda" if torch.cuda.is_available() else "cpu"


def demo_search(model_file: str, space: Any, budget_ms: float, *, seconds: float = 10.0,
                seed: int = 0, say: Any = None) -> tuple[dict[str, Any], str]:
    """A short evolutionary search with the built model: ``(info, report Markdown)``."""
    say = say or (lambda _m: None)
    try:
        from esm.search import search
    except ImportError:
        return {}, "## Search\n\n`esm.search` is not installed in this build; skipped.\n"
    res = search(model_file, objective="macs", latency_budget=budget_ms, seconds=seconds,
                 seed=seed)
    info: dict[str, Any] = {"latency_budget_ms": budget_ms, "found": bool(res.found),
                            "evaluated": res.evaluated}
    if res.found:
        g = res.best
        info.update(seconds=res.wall_s, arch=space.to_str(g),
                    predicted_ms=float(res.values["latency_ms"][res.best_index]),
                    macs=int(space.costs(g).macs[0]))
        say(f"search: best under {budget_ms:.1f} ms: {info['macs'] / 1e6:.0f} MMACs, "
            f"predicted {info['predicted_ms']:.1f} ms ({res.evaluated} candidates in "
            f"{res.wall_s:.1f} s)")
    else:
        say(f"search: nothing under {budget_ms:.1f} ms found")
    lines = ["## Search", "", f"Regularized evolution for {seconds:g} s, maximizing MACs "
             f"under a predicted latency of {budget_ms:.1f} ms (the median measured network): "]
    if info["found"]:
        lines.append(f"{info['evaluated']} candidates; best predicted {info['predicted_ms']:.1f}"
                     f" ms at {info['macs'] / 1e6:.0f} MMACs: `{info['arch']}`")
    else:
        lines.append("no feasible network found.")
    return info, "\n".join(lines) + "\n"


def _packaged_prior(say: Any) -> Any:
    """The transfer prior of the packaged ofa-mbv3 latencies; None, after saying why, where
    it cannot be used here (see :func:`esm.prior.packaged_unusable`)."""
    from esm import prior as prior_mod

    unusable = prior_mod.packaged_unusable("ofa-mbv3")
    path = prior_mod.packaged("ofa-mbv3")
    if unusable or path is None:
        say(f"no prior: {unusable}; building from zero")
        return None
    from esm import spaces
    from esm.transfer import PriorModel

    return PriorModel(prior_mod.load(spaces.get("ofa-mbv3"), [path]))


def run_demo(directory: str | Path = "esm-demo", *, device: str = "auto",
             budget_seconds: float = 150.0, target_mape: float = 5.0, seed: int = 0,
             clock: str = "wall", cuda_graph: bool | None = None,
             drift_correction: bool = True, encoding: str = "fcc", model: str = "auto",
             search_seconds: float = 10.0, prior: bool = True, say: Any = None,
             progress: Any = None) -> dict[str, Any]:
    """Run the demo into ``directory``; returns the build result (model, report, search).

    ``cuda_graph`` None: on for a CUDA device; asking for it on a CPU is refused before
    anything is written. ``encoding``/``model``: the full surrogate the step model is
    compared with (:func:`esm.final.finalize`). ``prior``: learn from the packaged prior
    (other devices' ofa-mbv3 latencies, :mod:`esm.prior`) with the transfer design and model
    (:func:`esm.build.prior_config`); False builds from zero. ``say`` receives status
    lines, ``progress`` one line per network.
    """
    from esm import spaces
    from esm.build import BuildConfig, build, prior_config
    from esm.final import finalize
    from esm.measure import parse_device
    from esm.oracles import DeviceOracle
    from esm.report import noise_notice, write_report
    from esm.store import Store

    t0 = time.monotonic()
    say = say or (lambda _m: None)
    device = resolve_device(device)
    on_gpu = parse_device(device)[0] == "cuda"
    if cuda_graph and not on_gpu:
        raise InputError(f"--cuda-graph times CUDA devices; the device is {device!r}")
    graph = on_gpu and cuda_graph is not False
    settings, why = demo_settings(device, budget_seconds, clock=clock, cuda_graph=graph)
    pm = _packaged_prior(say) if prior else None
    cfg = (prior_config(target_mape=target_mape, budget_seconds=budget_seconds, seed=seed)
           if pm is not None else
           BuildConfig(initial=20, batch=20, target_mape=target_mape,
                       budget_seconds=budget_seconds, val_size=30, seed=seed))
    cfg.check()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    space = spaces.get("ofa-mbv3")
    say(f"esm demo: ofa-mbv3 surrogate for {device}{' (CUDA-graph timing)' if graph else ''}, "
        f"~{budget_seconds:.0f} device seconds; measuring {why}")
    with Store(out / "store.sqlite") as store:
        # one intra-op thread: on a small or shared CPU more threads make every forward
        # slower and noisier (OpenMP spin-waits); `esm build --threads N` builds for N
        oracle = DeviceOracle(space, device, store, pool_size=2000, seed=seed,
                              threads=None if on_gpu else 1, settings=settings,
                              drift_correction=drift_correction,
                              progress=progress)
        if pm is not None:
            say(f"prior: {len(pm.columns)} devices' ofa-mbv3 latencies (packaged; "
                "--no-prior builds from zero)")
        result, step = build(oracle, cfg, log=say, prior=pm)
        result["demo"] = {"settings_rule": why}
        from esm.build import surrogate_available

        extra = ""
        if surrogate_available():
            sur = finalize(result, step, oracle, encoding=encoding, model=model, seed=seed,
                           say=say)
            sur.save(out / "model.esm")
            result["model_file"] = str(out / "model.esm")
            budget_ms = float(np.median(np.asarray(result["measured"]["y_validation"]
                                                   or result["measured"]["y_train"])))
            result["search"], extra = demo_search(result["model_file"], space, budget_ms,
                                                  seconds=search_seconds, seed=0, say=say)
        report = write_report(result, out / "report", extra=extra)
    notice = noise_notice(result)
    if notice:
        say(f"warning: {notice}")
    result["report"] = str(report)
    result["seconds"]["wall"] = time.monotonic() - t0
    return result
