"""NumPy reference of the array form (:mod:`esm.predictor.model`): clear, not fast.

It defines what every family computes. It is the test oracle of the compiled core, the
predictions of regressors whose own predict is the array form (kNN, GCN), and the fallback of a
model the compiled core cannot run. NumPy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esm.errors import InputError
from esm.predictor.model import ModelArrays, inverse_target, standardize

#: Rows per block of the pairwise-distance families (bounds their memory to block * n * F).
_BLOCK = 256


def predict(m: ModelArrays, X: Any) -> np.ndarray:
    """Latency in ms of raw feature rows ``X [N, F]``."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != m.n_features:
        raise InputError(f"features must be [N, {m.n_features}], got shape {X.shape}")
    Xs = standardize(X, m.arrays["x_mean"], m.arrays["x_scale"])
    return inverse_target(predict_raw(m, Xs), m.target)


def predict_raw(m: ModelArrays, Xs: np.ndarray) -> np.ndarray:
    """Model output ``y`` (target space) for standardised features ``Xs [N, F]``."""
    Xs = np.asarray(Xs, dtype=np.float64)
    a = m.arrays
    if m.kind == "linear":
        return Xs @ a["coef"] + float(a["intercept"][0])
    if m.kind == "trees":
        return _trees(m, Xs)
    if m.kind == "mlp":
        return _layers(m, Xs)
    if m.kind == "gcn":
        return _gcn(m, Xs)
    out = np.empty(len(Xs))
    for b in range(0, len(Xs), _BLOCK):
        out[b:b + _BLOCK] = (_knn if m.kind == "knn" else _gp)(m, Xs[b:b + _BLOCK])
    return out


def _trees(m: ModelArrays, x: np.ndarray) -> np.ndarray:
    a = m.arrays
    if m.meta.get("input_dtype", "float64") == "float32":
        x = x.astype(np.float32).astype(np.float64)
    lt = m.meta.get("rule", "le") == "lt"
    feature = np.maximum(a["feature"].astype(np.int64), 0)  # leaves may hold -1
    left, right = a["left"].astype(np.int64), a["right"].astype(np.int64)
    rows = np.arange(len(x))
    y = np.full(len(x), float(a["base"][0]))
    for root in a["roots"].astype(np.int64):
        node = np.full(len(x), root)
        while True:
            inner = left[node] >= 0
            if not inner.any():
                break
            v, t = x[rows, feature[node]], a["threshold"][node]
            go_left = v < t if lt else v <= t
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        y += a["value"][node]
    return y


def _activation(h: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(h, 0.0)
    if name == "tanh":
        return np.tanh(h)
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-h))
    if name == "identity":
        return h
    raise InputError(f"unknown activation {name!r}")


def _layers(m: ModelArrays, h: np.ndarray) -> np.ndarray:
    act = str(m.meta.get("activation", "relu"))
    n = m.layer_count()
    for i in range(n):
        h = h @ m.arrays[f"W{i}"] + m.arrays[f"b{i}"]
        if i + 1 < n:
            h = _activation(h, act)
    return h[:, 0]


def _gcn(m: ModelArrays, x: np.ndarray) -> np.ndarray:
    a = m.arrays
    idx = a["node_index"].astype(np.int64)
    padded = np.concatenate([x, np.zeros((len(x), 1))], axis=1)
    H = padded[:, np.where(idx >= 0, idx, x.shape[1])]  # [N, V, C]
    if "node_const" in a:
        const = np.broadcast_to(a["node_const"], (len(x), *a["node_const"].shape))
        H = np.concatenate([H, const], axis=2)
    for i in range(m.layer_count()):
        H = np.maximum(np.einsum("uv,nvc->nuc", a["adjacency"], H) @ a[f"W{i}"] + a[f"b{i}"],
                       0.0)
    return np.asarray(H.mean(axis=1) @ a["Wout"][:, 0] + float(a["bout"][0]))


def _knn(m: ModelArrays, x: np.ndarray) -> np.ndarray:
    X, y = m.arrays["X"], m.arrays["y"]
    d2 = ((x[:, None, :] - X[None, :, :]) ** 2).sum(-1)  # exact differences, as compiled
    nn = np.argsort(d2, axis=1, kind="stable")[:, : int(m.meta.get("k", 5))]
    if m.meta.get("weights", "uniform") == "uniform":
        return y[nn].mean(axis=1)
    d = np.sqrt(np.take_along_axis(d2, nn, axis=1))
    zero = d == 0
    with np.errstate(divide="ignore"):
        w = np.where(zero.any(axis=1, keepdims=True), zero.astype(np.float64), 1.0 / d)
    return (w * y[nn]).sum(axis=1) / w.sum(axis=1)


def _gp(m: ModelArrays, x: np.ndarray) -> np.ndarray:
    a, meta = m.arrays, m.meta
    ls = a["length_scale"]
    d2 = ((x[:, None, :] / ls - a["X"][None, :, :] / ls) ** 2).sum(-1)  # as scikit-learn's RBF
    k = float(meta.get("constant", 1.0)) * np.exp(-0.5 * d2)
    return float(meta.get("y_mean", 0.0)) + float(meta.get("y_std", 1.0)) * (k @ a["alpha"])
