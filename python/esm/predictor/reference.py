"""NumPy twin of the compiled models: the test oracle (clear, not fast)."""

from __future__ import annotations

import numpy as np

from esm.predictor.model import ModelArrays


def predict(m: ModelArrays, X: np.ndarray) -> np.ndarray:
    """Predictions of ``m`` for raw feature rows ``X [N, F]``, in NumPy only."""
    a = m.arrays
    x = (np.asarray(X, dtype=np.float64) - a["x_mean"]) / a["x_scale"]
    if m.kind == "linear":
        y = x @ a["coef"] + a["intercept"][0]
    elif m.kind == "trees":
        y = _trees(m, x)
    elif m.kind == "mlp":
        y = _mlp(m, x)
    elif m.kind == "knn":
        y = _knn(m, x)
    elif m.kind == "gcn":
        idx = a["node_index"].astype(np.int64)
        padded = np.concatenate([x, np.zeros((len(x), 1))], axis=1)
        H = padded[:, np.where(idx >= 0, idx, x.shape[1])]
        if "node_const" in a:
            const = np.broadcast_to(a["node_const"], (len(x), *a["node_const"].shape))
            H = np.concatenate([H, const], axis=2)
        n_layers = sum(1 for k in a if k.startswith("W") and k[1:].isdigit())
        for i in range(n_layers):
            H = np.maximum(np.einsum("uv,nvc->nuc", a["adjacency"], H) @ a[f"W{i}"] + a[f"b{i}"],
                           0.0)
        y = H.mean(axis=1) @ a["Wout"][:, 0] + a["bout"][0]
    else:
        ls = a["length_scale"]
        d = (((x[:, None, :] - a["X"][None, :, :]) / ls) ** 2).sum(-1)
        k = m.meta["constant"] * np.exp(-0.5 * d)
        y = m.meta["y_mean"] + m.meta["y_std"] * (k @ a["alpha"])
    return np.exp(y) if m.target == "log" else y


def _trees(m: ModelArrays, x: np.ndarray) -> np.ndarray:
    a = m.arrays
    if m.meta.get("input_dtype", "float64") == "float32":
        x = x.astype(np.float32).astype(np.float64)
    rows = np.arange(len(x))
    y = np.full(len(x), a["base"][0])
    for root in a["roots"]:
        idx = np.full(len(x), root, dtype=np.int64)
        while True:
            inner = a["left"][idx] >= 0
            if not inner.any():
                break
            v = x[rows, a["feature"][idx]]
            t = a["threshold"][idx]
            go_left = v < t if m.meta.get("rule", "le") == "lt" else v <= t
            nxt = np.where(go_left, a["left"][idx], a["right"][idx])
            idx = np.where(inner, nxt, idx)
        y += a["value"][idx]
    return y


def _mlp(m: ModelArrays, x: np.ndarray) -> np.ndarray:
    act = m.meta.get("activation", "relu")
    n_layers = sum(1 for k in m.arrays if k.startswith("W") and k[1:].isdigit())
    h = x
    for i in range(n_layers):
        h = h @ m.arrays[f"W{i}"] + m.arrays[f"b{i}"]
        if i + 1 < n_layers:
            if act == "relu":
                h = np.maximum(h, 0.0)
            elif act == "tanh":
                h = np.tanh(h)
            elif act == "logistic":
                h = 1.0 / (1.0 + np.exp(-h))
    return h[:, 0]


def _knn(m: ModelArrays, x: np.ndarray) -> np.ndarray:
    X, y = m.arrays["X"], m.arrays["y"]
    k = int(m.meta.get("k", 5))
    d = ((x[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]
    dn = np.sqrt(np.take_along_axis(d, nn, axis=1))
    if m.meta.get("weights", "uniform") == "uniform":
        return y[nn].mean(axis=1)
    with np.errstate(divide="ignore"):
        w = 1.0 / dn
    exact = np.isinf(w)
    rows = exact.any(axis=1)
    w[rows] = exact[rows]
    return (y[nn] * w).sum(axis=1) / w.sum(axis=1)
