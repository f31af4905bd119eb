"""Accuracy metrics of latency predictions.

Always compute them on rows that were used neither for training nor for model selection.
MAPE, accuracies and max relative error are in percent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esm.errors import InputError


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise InputError(f"metrics: {t.size} targets but {p.size} predictions")
    if t.size == 0:
        raise InputError("metrics: no rows to evaluate")
    return t, p


def mape(y_true: Any, y_pred: Any) -> float:
    """Mean absolute percentage error, in percent."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t) / np.abs(t)) * 100.0)


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error (in the unit of the targets)."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def r2(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination (1 is perfect; NaN with constant targets)."""
    t, p = _pair(y_true, y_pred)
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0:
        return float("nan")
    return 1.0 - float(np.sum((p - t) ** 2)) / ss_tot


def accuracy_within(y_true: Any, y_pred: Any, tolerance: float) -> float:
    """Percent of rows whose relative error is at most ``tolerance`` (e.g. 0.10)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t) <= tolerance * np.abs(t)) * 100.0)


def max_error(y_true: Any, y_pred: Any) -> float:
    """Largest relative error, in percent."""
    t, p = _pair(y_true, y_pred)
    return float(np.max(np.abs(p - t) / np.abs(t)) * 100.0)


def kendall(y_true: Any, y_pred: Any) -> float:
    """Kendall's tau-b rank correlation (handles ties)."""
    from scipy.stats import kendalltau

    t, p = _pair(y_true, y_pred)
    if t.size < 2:
        return float("nan")
    return float(kendalltau(t, p).statistic)


def spearman(y_true: Any, y_pred: Any) -> float:
    """Spearman's rank correlation."""
    from scipy.stats import spearmanr

    t, p = _pair(y_true, y_pred)
    if t.size < 2:
        return float("nan")
    return float(spearmanr(t, p).statistic)


def evaluate(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Every metric: ``mape``, ``rmse``, ``r2``, ``acc5``, ``acc10``, ``kendall``,
    ``spearman``, ``max_error`` (percent), ``n``."""
    t, p = _pair(y_true, y_pred)
    return {
        "mape": mape(t, p), "rmse": rmse(t, p), "r2": r2(t, p),
        "acc5": accuracy_within(t, p, 0.05), "acc10": accuracy_within(t, p, 0.10),
        "kendall": kendall(t, p), "spearman": spearman(t, p), "max_error": max_error(t, p),
        "n": int(t.size),
    }
