"""Build and measure found networks on the local device; predicted vs measured latency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.search.result import SearchResult

#: Metric sections of a surrogate file searched for a stated error, most trusted first.
_ERROR_SECTIONS = ("validation", "valid", "val", "test", "holdout", "cv", "train")


def stated_error(model: Any) -> tuple[float, str] | None:
    """The surrogate's own stated MAPE (percent) and where it comes from, if it has one.

    Looks in ``model.metrics`` (or ``model.info["metrics"]``) for a section with a ``mape``,
    preferring held-out sections (validation, test, cross-validation) over ``train``.
    """
    metrics = _metrics(model)
    if "mape" in metrics and isinstance(metrics["mape"], (int, float)):
        return float(metrics["mape"]), "metrics"
    for section in _ERROR_SECTIONS:
        sec = metrics.get(section)
        if isinstance(sec, dict) and isinstance(sec.get("mape"), (int, float)):
            return float(sec["mape"]), section
    for section, sec in metrics.items():
        if isinstance(sec, dict) and isinstance(sec.get("mape"), (int, float)):
            return float(sec["mape"]), str(section)
    return None


def _metrics(model: Any) -> dict[str, Any]:
    """``model.metrics`` (attribute or method) or ``model.info["metrics"]``; {} if none."""
    metrics: Any = getattr(model, "metrics", None)
    if callable(metrics):
        metrics = metrics()
    if metrics is None:
        info = getattr(model, "info", None)
        metrics = info.get("metrics") if isinstance(info, dict) else None
    return metrics if isinstance(metrics, dict) else {}


def _default_measure(device: str, settings: Any, threads: int | None) -> Callable[..., float]:
    try:
        from esm.measure import Settings, measure_module
    except ImportError as err:  # pragma: no cover - depends on the build
        raise InputError(f"--verify needs the measurement engine (esm.measure): {err}") from None
    s = settings if settings is not None else Settings()

    def run(module: Any, shape: tuple[int, ...]) -> float:
        return float(measure_module(module, shape, device=device, settings=s,
                                    threads=threads).median_ms)

    return run


def verify(
    result: SearchResult,
    k: int = 5,
    device: str = "cpu",
    settings: Any = None,
    threads: int | None = None,
    batch_size: int = 1,
    measure: Callable[[Any, tuple[int, ...]], float] | None = None,
    clock: str | None = None,
    warmup: Any = True,
) -> dict[str, Any]:
    """Build the ``k`` best found networks, measure them and compare with the prediction.

    Parameters
    ----------
    result : SearchResult
        A search result whose problem has a latency metric.
    k : int
        How many networks (best first; for a Pareto front, the ``k`` with the best objective).
    device : str
        ``"cpu"`` or ``"cuda[:i]"`` (the device the surrogate was built for).
    settings : esm.measure.Settings, optional
        Measurement methodology (default: the settings the surrogate's file says it was
        measured with, else the default settings).
    threads : int, optional
        CPU threads for the measurement (default: the surrogate file's, else torch's).
    batch_size : int
        Input batch size (the surrogate's, normally 1).
    measure : callable, optional
        ``measure(module, input_shape) -> ms``; default :func:`esm.measure.measure_module`'s
        median.
    clock : str, optional
        CPU timer clock (``"wall"`` or ``"thread_cpu"``) replacing the settings' one.
    warmup : WarmupRule, True or None
        Warm the device up on the reference network before timing
        (:mod:`esm.measure.warmup`; True: the device's default rule). Only with the default
        ``measure``.

    Returns
    -------
    dict
        ``rows`` (arch, predicted_ms, measured_ms, rel_error), ``mape`` (percent),
        ``max_abs_rel_error`` (percent), ``stated_mape`` and ``stated_from`` (the surrogate's
        own error, if stored), ``within_stated`` (rows whose error is within the stated
        MAPE) and ``mape_within_stated`` (the verification MAPE is at most the stated MAPE).
        With a drift reference in the surrogate's file (``info["target"]["drift_reference"]``,
        written by ``esm build``): ``speed_ratio`` (the reference network measured now,
        precisely, before and after the others, over its latency when the surrogate was
        built; geometric mean) and per row ``measured_raw_ms``; where the build corrected its
        latencies for drift (the reference's ``applied``; files without it did),
        ``measured_ms`` is normalised to the build's device speed (``raw / speed_ratio``), as
        the training latencies were, else it is the raw latency. With an error
        bound in the file (``ape95``: 95% of the validation networks were within it),
        ``error_bound`` and ``within_bound`` (rows within it).
    """
    if k < 1:
        raise InputError(f"--verify needs k >= 1, got {k}")
    problem = result.problem
    lat = problem.latency
    if lat is None:
        raise InputError("verification needs a latency model")
    ok = np.flatnonzero(result.feasible)
    if ok.size == 0:
        raise InputError(result.infeasible_message())
    order = ok[np.argsort(result.values[problem.objective.name][ok] * problem.objective.sign,
                          kind="stable")][:k]
    target = _target_info(lat.model)
    built = target.get("measurement") or {}
    if threads is None and device.startswith("cpu"):
        threads = built.get("threads")
    if (settings is None and built.get("settings")) or clock is not None:
        from esm.measure import Settings

        if settings is None:
            settings = Settings.from_dict(built["settings"]) if built.get("settings") \
                else Settings()
        if clock is not None:
            settings = settings.replace(clock=clock)
    run = measure if measure is not None else _default_measure(device, settings, threads)
    space = problem.space
    ref = target.get("drift_reference") or {}
    ref_g = space.from_str(ref["arch"]) if ref.get("arch") and ref.get("median_ms") else None
    ref_run = run
    warm = None
    if measure is None:
        from esm.measure import Settings
        from esm.measure.warmup import WarmupRule, precise, warm_up

        ref_settings = (Settings.from_dict(ref["settings"]) if ref.get("settings")
                        else precise(settings or Settings()))
        ref_run = _default_measure(device, ref_settings, threads)
        rule = WarmupRule.for_device(device) if warmup is True else warmup or None
        if rule is not None:
            wg = ref_g if ref_g is not None else result.genomes[order[0]]
            module, wshape = space.build(wg), tuple(space.input_shape(wg, batch_size))
            from esm.measure import measure_module

            warm = warm_up(lambda: measure_module(module, wshape, device, ref_settings,
                                                  threads), rule)

    def time_one(g: np.ndarray, fn: Callable[..., float] = run) -> float:
        return float(fn(space.build(g), tuple(space.input_shape(g, batch_size))))

    ref_ms = [time_one(ref_g, ref_run)] if ref_g is not None else []
    raw = [time_one(result.genomes[i]) for i in order]
    ratio = 1.0
    if ref_g is not None:
        ref_ms.append(time_one(ref_g, ref_run))
        ratio = float(np.exp(np.mean(np.log(np.asarray(ref_ms) / float(ref["median_ms"])))))
    scale = ratio if ref.get("applied", True) else 1.0
    rows: list[dict[str, Any]] = []
    for i, m_raw in zip(order, raw, strict=True):
        predicted = float(result.values[lat.name][i])
        measured = m_raw / scale
        row = {"arch": space.to_str(result.genomes[i]), "predicted_ms": predicted,
               "measured_ms": measured,
               "rel_error": (predicted - measured) / measured * 100.0}
        if ref_g is not None:
            row["measured_raw_ms"] = m_raw
        rows.append(row)
    errs = np.abs(np.array([float(r["rel_error"]) for r in rows]))
    stated = stated_error(lat.model)
    out: dict[str, Any] = {
        "device": device,
        "k": len(rows),
        "rows": rows,
        "mape": float(errs.mean()),
        "max_abs_rel_error": float(errs.max()),
        "stated_mape": None if stated is None else stated[0],
        "stated_from": None if stated is None else stated[1],
    }
    if ref_g is not None:
        out["speed_ratio"] = ratio
        out["normalised"] = scale != 1.0
        out["reference"] = {"arch": ref["arch"], "built_ms": float(ref["median_ms"]),
                            "now_ms": ref_ms}
    if warm is not None:
        out["warmup"] = warm.to_dict()
    if stated is not None:
        out["within_stated"] = int((errs <= stated[0]).sum())
        out["mape_within_stated"] = bool(errs.mean() <= stated[0])
        bound = _metrics(lat.model).get(stated[1], {}).get("ape95")
        if isinstance(bound, (int, float)):
            out["error_bound"] = float(bound)
            out["within_bound"] = int((errs <= bound).sum())
    return out


def _target_info(model: Any) -> dict[str, Any]:
    info = getattr(model, "info", None)
    target = info.get("target") if isinstance(info, dict) else None
    return target if isinstance(target, dict) else {}
