"""Build reports: Markdown with PNG plots (matplotlib, Agg backend).

A build directory holds ``build.json`` (the result of :func:`esm.build.build`, written by
``esm build`` / ``esm demo``); :func:`write_report` turns it into ``report.md`` and plots:
predicted vs measured, the error distribution, the learning curve (error vs measured samples,
one line per strategy when a comparison is included), the cost breakdown by stage and the
measurement-quality summary (coefficient-of-variation distribution, flagged samples and drift
checks, read from the store when the build measured on a device).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.jsonable import to_jsonable
from esm.prior import n_devices

__all__ = ["load_result", "noise_notice", "quality_summary", "write_report"]

BUILD_FILE = "build.json"


def load_result(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``build.json`` of a build directory."""
    d = Path(directory)
    f = d / BUILD_FILE if d.is_dir() else d
    if not f.is_file():
        raise InputError(f"no {BUILD_FILE} in {directory} (is it a build directory?)")
    try:
        data = json.loads(f.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{f}: not a valid build file: {err}") from None
    if not isinstance(data, dict) or "history" not in data:
        raise InputError(f"{f}: not a build result (no history)")
    return data


def noise_notice(result: dict[str, Any]) -> str | None:
    """A warning when the machine is too noisy for the build's target, else None.

    The rule: networks measured twice (the validation set, at two different times) differ
    by ``noise["mean"]`` percent on average, which puts a floor of about half that under
    the MAPE of any model against these measurements (:func:`esm.build.repeat_noise`); at
    half the target or more, the target is out of reach or only reached by luck. A warm-up
    that never became steady is reported too.
    """
    n = result.get("noise") or {}
    target = result.get("target_mape")
    parts = []
    if n.get("n") and target and n["floor"] >= 0.5 * target:
        parts.append(
            f"this machine is too noisy for the {target:g}% target: {n['n']} networks measured "
            f"twice differed by {n['mean']:.1f}% on average, so measurement noise alone puts "
            f"about {n['floor']:.1f}% under any model's error against these measurements. "
            "Quiet the machine (other work shares it) or accept a looser target")
    warm = result.get("warmup") or {}
    if warm and not warm.get("steady", True):
        parts.append("the device's timings did not settle during warm-up (see its report)")
    return "; ".join(parts) + "." if parts else None


def quality_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Measurement quality: CV distribution, flagged samples and drift checks.

    Read from the store of a device build (every measurement of its run), else from the
    per-measurement records in the result; a lookup oracle has none.
    """
    oracle = result.get("oracle", {})
    recs: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    failed = int(result.get("failed", 0))
    source = "none"
    if oracle.get("kind") == "device" and oracle.get("store") and \
            Path(oracle["store"]).is_file():
        from esm.store import Store

        with Store(oracle["store"]) as st:
            run = int(oracle["run_id"])
            rows = st.measurements(run, status=None)
            recs = [{"cv": r["cv"], "rel_ci": r["rel_ci"], "unstable": bool(r["unstable"]),
                     "outliers": int(r["outliers"] or 0), "drift": bool(r["drift"])}
                    for r in rows if r["status"] == "ok"]
            failed = sum(1 for r in rows if r["status"] != "ok")
            checks = st.reference_checks(run)
            source = "store"
    elif result.get("quality"):
        recs = list(result["quality"])
        source = "build"
    cv = np.asarray([r["cv"] for r in recs if r.get("cv") is not None], dtype=np.float64)
    rel = np.asarray([r["rel_ci"] for r in recs if r.get("rel_ci") is not None], np.float64)
    return {
        "source": source,
        "measurements": len(recs),
        "failed": failed,
        "cv": cv.tolist(),
        "cv_median": float(np.median(cv)) if cv.size else math.nan,
        "cv_p95": float(np.quantile(cv, 0.95)) if cv.size else math.nan,
        "rel_ci_median": float(np.median(rel)) if rel.size else math.nan,
        "unstable": sum(1 for r in recs if r.get("unstable")),
        "with_outliers": sum(1 for r in recs if r.get("outliers")),
        "drift_flagged": sum(1 for r in recs if r.get("drift")),
        "reference_checks": [{"seq": c["seq"], "median_ms": c["median_ms"],
                              "rel_change": c["rel_change"], "drift": bool(c["drift"])}
                             for c in checks],
    }


def _fig(plt: Any, name: str, directory: Path, fig: Any) -> str:
    fig.tight_layout()
    fig.savefig(directory / name, dpi=100)
    plt.close(fig)
    return name


def _plots(result: dict[str, Any], q: dict[str, Any], directory: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    pred = result.get("predictions", {})
    ym = np.asarray(pred.get("measured", []), np.float64)
    yp = np.asarray(pred.get("predicted", []), np.float64)
    if ym.size:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(ym, yp, s=6, alpha=0.5)
        lo, hi = float(min(ym.min(), yp.min())), float(max(ym.max(), yp.max()))
        ax.plot([lo, hi], [lo, hi], color="k", lw=1)
        ax.set_xlabel("measured latency (ms)")
        ax.set_ylabel("predicted latency (ms)")
        who = (result.get("model") or {}).get("kind", "step model")
        ax.set_title(f"{who}\npredicted vs measured ({pred.get('on')}, n={ym.size})",
                     fontsize=9)
        out["pred_vs_measured"] = _fig(plt, "pred_vs_measured.png", directory, fig)
        err = 100.0 * (yp / ym - 1.0)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(np.clip(err, -30, 30), bins=50)
        ax.axvline(0, color="k", lw=1)
        ax.set_xlabel("prediction error (%)  [clipped to +-30]")
        ax.set_ylabel("networks")
        ax.set_title(f"error distribution: MAPE {np.mean(np.abs(err)):.2f}%, "
                     f"p90 |err| {np.quantile(np.abs(err), 0.9):.2f}%")
        out["error_hist"] = _fig(plt, "error_hist.png", directory, fig)

    curves = {result.get("strategy", "build"): result["history"]}
    curves.update(result.get("compare", {}))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, hist in curves.items():
        n = [h["samples_used"] for h in hist]
        est = [_f(h.get("mape_estimate")) for h in hist]
        tru = [_f(h.get("mape_true")) for h in hist]
        if any(math.isfinite(v) for v in tru):
            ax.plot(n, tru, marker="o", ms=3, label=f"{name}: unmeasured rows")
        if any(math.isfinite(v) for v in est):
            ax.plot(n, est, marker="x", ms=3, ls="--", label=f"{name}: step model's estimate")
    met = (result.get("model") or {}).get("metrics")
    if met and result["history"]:
        ax.scatter([result["history"][-1]["samples_used"]], [met["mape"]], color="red",
                   marker="*", s=80, zorder=3, label=f"saved model ({met['on']})")
    if result.get("target_mape"):
        ax.axhline(result["target_mape"], color="grey", ls=":", label="target")
    ax.set_xlabel("measured networks (validation included)")
    ax.set_ylabel("MAPE (%)")
    ax.set_title("learning curve")
    ax.legend(fontsize=7)
    out["learning_curve"] = _fig(plt, "learning_curve.png", directory, fig)

    secs = {k: v for k, v in result["seconds"].items() if k != "total"}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.barh(list(secs), list(secs.values()))
    for i, v in enumerate(secs.values()):
        ax.text(v, i, f" {v:.1f} s", va="center", fontsize=8)
    sim = result.get("oracle", {}).get("kind") == "csv"
    ax.set_xlabel("seconds" + (" (measure: simulated device time)" if sim else ""))
    ax.set_title("cost by stage")
    out["cost"] = _fig(plt, "cost.png", directory, fig)

    if q["cv"] or q["reference_checks"]:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        if q["cv"]:
            axes[0].hist(100.0 * np.asarray(q["cv"]), bins=30)
        axes[0].set_xlabel("coefficient of variation of the samples (%)")
        axes[0].set_ylabel("measurements")
        axes[0].set_title(f"CV: median {100 * q['cv_median']:.1f}%, "
                          f"{q['unstable']} unstable")
        ref = q["reference_checks"]
        if ref:
            seq = [c["seq"] for c in ref]
            rc = [100.0 * (c["rel_change"] or 0.0) for c in ref]
            axes[1].plot(seq, rc, marker="o")
            bad = [i for i, c in enumerate(ref) if c["drift"]]
            axes[1].scatter([seq[i] for i in bad], [rc[i] for i in bad], color="red",
                            zorder=3, label="drift flagged")
            axes[1].axhline(0, color="k", lw=1)
        axes[1].set_xlabel("reference check")
        axes[1].set_ylabel("change vs first (%)")
        axes[1].set_title(f"drift: {q['drift_flagged']} measurements flagged")
        out["quality"] = _fig(plt, "quality.png", directory, fig)
    return out


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def _num(v: Any, fmt: str = ".2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) \
        else format(v, fmt)


def _timing(oracle: dict[str, Any]) -> str:
    """How a CUDA device was timed, for the report's source line."""
    if not str(oracle.get("device", "")).startswith("cuda"):
        return ""
    graph = (oracle.get("settings") or {}).get("cuda_graph")
    return ", CUDA-graph replays" if graph else ", eager forward (launch overhead included)"


_DRIFT_RULE = "esm.drift: only where the reference checks moved beyond their own noise"


def target_outcome(result: dict[str, Any]) -> str:
    """Whether a build's estimate reached its MAPE target, and, where the truth is known (a
    dataset file as the device), whether the truth is above a target the estimate reached."""
    est, true = result.get("mape_estimate"), result.get("mape_true")
    out = (f"{'reached' if result['target_reached'] else 'not reached'} by the build's estimate"
           + (f" {_num(est)}%" if est is not None and math.isfinite(est) else "")
           + f" (stopped: {result['stop_reason']})")
    if result["target_reached"] and true is not None and true > result["target_mape"]:
        out += f"; the true MAPE on the unmeasured rows, {_num(true)}%, is above it"
    return out


def _headline(result: dict[str, Any]) -> list[str]:
    """The report's first lines: the saved model's figures first, then how they were got."""
    out = []
    model = result.get("model")
    met = (model or {}).get("metrics")
    if result.get("model_file") and model:
        out.append(f"- **model file** `{result['model_file']}`: {model['kind']}"
                   + (f": **MAPE {_num(met['mape'])}%** on the {met['on']} (n={met['n']}; "
                      f"ape95 {_num(met['ape95'], '.1f')}%, acc10 {_num(met['acc10'], '.0f')}%,"
                      f" median predicted/measured {_num(met['median_ratio'], '.3f')})"
                      if met else " (no rows to state its error on)"))
        sel = model["selection"]
        if len(sel["candidates"]) > 1:
            out.append("- chosen on the " + str(sel["on"]) + ": " + ", ".join(
                f"{k} {_num(v['validation_mape'])}%" for k, v in sel["candidates"].items())
                + (f"; {sel['note']}" if sel.get("note") else ""))
        v = model["validation"]
        if v["used"] == "corrected":
            out.append(f"- validation MAPE on drift-corrected latencies {_num(v['corrected'])}%"
                       f" (the model's), on raw latencies {_num(v.get('raw'))}%")
    how = result["config"].get("validation", "validation")
    out += [
        f"- strategy: `{result['strategy']}`, step model: `{result['trainer']}`, "
        f"seed {result['config']['seed']}",
        f"- measured networks: {result['samples_used']} ({result['train_samples']} training, "
        f"{result['val_samples']} validation, {result['failed']} failed)"
        + (f"; {result['measurements'] - result['samples_used']} measured a second time"
           if result.get("measurements", 0) > result["samples_used"] else ""),
        ("- the build's step model: MAPE " if model else "- MAPE: ")
        + f"{_num((result.get('step_model') or result)['mape'])}% "
        + (f"(on every unmeasured row; validation estimate {_num(result['mape_estimate'])}%)"
           if result.get("mape_true") is not None and math.isfinite(result["mape_true"])
           else f"(the build's estimate: {how})"),
        f"- target: {_num(result.get('target_mape'), 'g')}% -> {target_outcome(result)}",
    ]
    prior = result.get("prior")
    if prior:
        out.append(f"- prior: {n_devices(len(prior['columns']))} "
                   f"({', '.join(prior['columns'])}) from "
                   + ", ".join(f"`{Path(s).name}`" for s in prior["sources"])
                   + (f"; left out: {', '.join(prior['dropped'])}" if prior.get("dropped")
                      else ""))
    warm = result.get("warmup")
    if warm:
        out.append(f"- {warm['message']}")
    noise = result.get("noise") or {}
    if noise.get("n"):
        out.append(f"- measurement noise: {noise['n']} networks measured twice differ by "
                   f"{_num(noise['mean'], '.1f')}% on average (median "
                   f"{_num(noise['median'], '.1f')}%): a floor of about "
                   f"{_num(noise['floor'], '.1f')}% under any model's error here")
    notice = noise_notice(result)
    if notice:
        out.append(f"- **Warning:** {notice}")
    out.append("- seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items()))
    return out


def write_report(result: dict[str, Any], directory: str | os.PathLike[str],
                 *, extra: str = "") -> Path:
    """Write ``build.json``, ``report.md`` and the plots into ``directory``; returns the
    report's path. ``extra`` is Markdown appended at the end (e.g. a search summary)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if extra:
        result["report_extra"] = extra
    extra = result.get("report_extra", "")
    (d / BUILD_FILE).write_text(json.dumps(to_jsonable(result)))
    q = quality_summary(result)
    plots = _plots(result, q, d)
    o = result.get("oracle", {})
    src = (f"dataset `{o.get('path')}` column `{o.get('column')}` (lookup oracle; device "
           "seconds simulated)" if o.get("kind") == "csv" else
           f"device `{o.get('device')}` (batch {o.get('batch_size')}, {o.get('threads')} "
           f"threads{_timing(o)}), store `{o.get('store')}` run {o.get('run_id')}")
    lines = [f"# esm build report: {result['space']}", "", f"- source: {src}",
             *_headline(result), ""]
    titles = {"pred_vs_measured": "Predicted vs measured", "error_hist": "Error distribution",
              "learning_curve": "Learning curve", "cost": "Cost by stage",
              "quality": "Measurement quality"}
    for key, title in titles.items():
        if key in plots:
            lines += [f"## {title}", "", f"![{title}]({plots[key]})", ""]
            if key == "quality":
                lines += [
                    f"{q['measurements']} measurements ({q['source']}): CV median "
                    f"{_num(100 * q['cv_median'], '.2f')}%, p95 {_num(100 * q['cv_p95'])}%; "
                    f"CI half-width median {_num(100 * q['rel_ci_median'])}%; "
                    f"{q['unstable']} unstable, {q['with_outliers']} with outliers, "
                    f"{q['failed']} failed, {q['drift_flagged']} flagged by drift checks "
                    f"({len(q['reference_checks'])} reference checks)."]
                rc = [abs(c["rel_change"]) for c in q["reference_checks"]
                      if c["rel_change"] is not None]
                if rc:
                    lines += [f"The reference network moved by up to {100 * max(rc):.1f}% "
                              f"(median {100 * float(np.median(rc)):.1f}%) against its first "
                              "check."]
                drift = result.get("drift")
                lines += [f"Drift correction ({_DRIFT_RULE}): {drift['reason']}; the model "
                          f"was trained on {drift['labels']} latencies." if drift else
                          "Drift correction: off (raw latencies)." if
                          result.get("oracle", {}).get("kind") == "device" else "", ""]
    if "quality" not in plots:
        lines += ["## Measurement quality", "",
                  "No measurement records (lookup oracle): quality is the dataset's.", ""]
    hist = result["history"]
    lines += ["## Steps", "", "| step | measured | trained | MAPE estimate | MAPE unmeasured |",
              "|---|---|---|---|---|"]
    lines += [f"| {h['step']} | {h['samples_used']} | {h['train_samples']} | "
              f"{_num(h['mape_estimate'])} | {_num(h['mape_true'])} |" for h in hist]
    if extra:
        lines += ["", extra]
    out = d / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out
