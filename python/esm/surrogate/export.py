"""Fitted regressors as plain arrays, and the NumPy reference that predicts from them.

This module imports only NumPy: it is the load-time prediction path of a model file (until a
compiled evaluator replaces it) and the oracle that compiled evaluators are tested against.

Array forms
-----------
Every form shares ``x_mean [F]`` and ``x_scale [F]`` (features are standardised first:
``x' = (x - x_mean) / x_scale``) and the meta key ``target``: the model output ``y`` is mapped
back by ``"log"`` -> ``exp(y)`` or ``"identity"`` -> ``y``; the result is latency in ms.

``linear``
    ``coef [F]``, ``intercept [1]``: ``y = x' . coef + intercept``. The LUT regressor uses it
    over its onehot features.
``trees``
    ``feature int32 [M]``, ``threshold float64 [M]``, ``left int32 [M]``, ``right int32 [M]``
    (-1 at leaves, where feature is -1 too), ``value float64 [M]`` (leaf contributions with the
    learning rate or the 1/T of averaging folded in), ``roots int32 [T]``, ``base [1]``; meta
    ``rule``: ``"le"`` (go left when ``x'[feature] <= threshold``) or ``"lt"`` (``<``).
    ``y = base + sum over trees of value[leaf]``. Comparisons are in float64: scikit-learn's
    trees compare float32-rounded inputs, so their thresholds are exported as the float64
    value that gives the same decision for every float64 input (see :func:`f32_le_threshold`).
``mlp``
    ``W0..W{L-1}`` ``[in, out]``, ``b0..b{L-1}`` ``[out]``; meta ``activation`` (relu, tanh,
    logistic or identity) on hidden layers; the output layer is linear.
``knn``
    ``X [n, F]`` (standardised training rows), ``y [n]`` (transformed targets); meta ``k`` and
    ``weights`` (``uniform`` or ``distance``); Euclidean distance. Neighbours are the k nearest
    by a stable sort (ties broken by training-row order); with ``distance`` weights, rows at
    distance 0 take all the weight.
``gp``
    ``X [n, F]``, ``alpha [n]``, ``length_scale [F]``; meta ``constant``, ``y_mean``,
    ``y_std``: ``y = y_mean + y_std * sum_i constant * exp(-0.5 * |(x' - X_i) / l|^2) *
    alpha_i`` (scikit-learn's GaussianProcessRegressor with ``normalize_y=True`` and kernel
    ``ConstantKernel * RBF (+ WhiteKernel)``).
``gcn``
    A graph convolutional network over a fixed cell graph (BRP-NAS style): arrays
    ``adjacency [V, V]`` (normalised, with self loops), ``node_index int32 [V, C]`` (the
    feature column of each node channel, -1: none), ``node_const [V, T]`` (constant
    node-type channels), ``W0..W{L-1}`` ``[in, out]``, ``b0..`` ``[out]``, ``Wout [H, 1]``,
    ``bout [1]``; meta ``n_layers``. Node features ``H0 = concat(x'[node_index] (0 where -1),
    node_const)``, ``H_{l+1} = relu(A H_l W_l + b_l)``, ``y = mean_v(H_L) . Wout + bout``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esm.errors import InputError

#: Array forms understood by :func:`predict_arrays`.
KINDS = ("linear", "trees", "mlp", "knn", "gp", "gcn")
TARGETS = ("log", "identity")

_REQUIRED: dict[str, tuple[str, ...]] = {
    "linear": ("coef", "intercept"),
    "trees": ("feature", "threshold", "left", "right", "value", "roots", "base"),
    "mlp": (),
    "knn": ("X", "y"),
    "gp": ("X", "alpha", "length_scale"),
    "gcn": ("adjacency", "node_index", "node_const", "Wout", "bout"),
}


# --------------------------------------------------------------------------- helpers


def standardize(X: np.ndarray, x_mean: np.ndarray, x_scale: np.ndarray) -> np.ndarray:
    """``(X - x_mean) / x_scale`` in float64."""
    return (np.asarray(X, dtype=np.float64) - x_mean) / x_scale


def inverse_target(y: np.ndarray, target: str) -> np.ndarray:
    """Map model outputs back to milliseconds."""
    if target == "log":
        return np.exp(y)
    if target == "identity":
        return np.asarray(y, dtype=np.float64)
    raise InputError(f"unknown target transform {target!r}; known: {', '.join(TARGETS)}")


def forward_target(y: np.ndarray, target: str) -> np.ndarray:
    """Map milliseconds to the model's target space."""
    y = np.asarray(y, dtype=np.float64)
    if target == "log":
        if np.any(y <= 0):
            raise ValueError("the log target transform needs positive targets")
        return np.log(y)
    if target == "identity":
        return y
    raise InputError(f"unknown target transform {target!r}; known: {', '.join(TARGETS)}")


def make_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales of ``X``; near-constant columns get scale 1."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    tiny = scale <= 1e-12 * np.maximum(np.abs(mean), 1.0)
    scale[tiny] = 1.0
    return mean, scale


def f32_le_threshold(threshold: np.ndarray) -> np.ndarray:
    """Float64 thresholds ``t'`` with ``x <= t'`` exactly when ``float32(x) <= threshold``.

    scikit-learn casts inputs to float32 before comparing them with float64 thresholds.
    Rounding to float32 is monotone, so the decision flips at one float64 value: the midpoint
    between ``f`` (the largest float32 <= threshold) and the next float32, included when the
    tie rounds to ``f`` (``f`` has an even mantissa) and excluded otherwise.
    """
    thr = np.asarray(threshold, dtype=np.float64)
    with np.errstate(over="ignore"):
        f = thr.astype(np.float32)
    f = np.where(f.astype(np.float64) > thr, np.nextafter(f, np.float32(-np.inf)), f)
    f = f.astype(np.float32)
    nxt = np.nextafter(f, np.float32(np.inf))
    mid = (f.astype(np.float64) + nxt.astype(np.float64)) / 2.0
    even = (f.view(np.int32) & 1) == 0
    out = np.where(even, mid, np.nextafter(mid, -np.inf))
    return np.where(np.isfinite(thr), out, thr)


# --------------------------------------------------------------------------- reference predict


def predict_raw(kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                Xs: np.ndarray) -> np.ndarray:
    """Model output (in target space) for standardised features ``Xs [N, F]``."""
    Xs = np.asarray(Xs, dtype=np.float64)
    if kind == "linear":
        return Xs @ arrays["coef"] + float(arrays["intercept"][0])
    if kind == "trees":
        return _predict_trees(meta, arrays, Xs)
    if kind == "mlp":
        return _predict_mlp(meta, arrays, Xs)
    if kind == "knn":
        return _predict_knn(meta, arrays, Xs)
    if kind == "gp":
        ls = arrays["length_scale"]
        A = Xs / ls
        B = arrays["X"] / ls
        d2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
        np.maximum(d2, 0.0, out=d2)
        K = float(meta["constant"]) * np.exp(-0.5 * d2)
        return float(meta["y_mean"]) + float(meta["y_std"]) * (K @ arrays["alpha"])
    if kind == "gcn":
        return _predict_gcn(meta, arrays, Xs)
    raise InputError(f"unknown model form {kind!r}; known: {', '.join(KINDS)}")


def predict_arrays(kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                   X: np.ndarray) -> np.ndarray:
    """Latency in ms of raw features ``X [N, F]`` from a model's array form (NumPy only)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != arrays["x_mean"].shape[0]:
        raise InputError(
            f"features must be [N, {arrays['x_mean'].shape[0]}], got shape {X.shape}"
        )
    Xs = standardize(X, arrays["x_mean"], arrays["x_scale"])
    return inverse_target(predict_raw(kind, meta, arrays, Xs), str(meta["target"]))


def _predict_trees(meta: dict[str, Any], a: dict[str, np.ndarray], Xs: np.ndarray) -> np.ndarray:
    feature, threshold = a["feature"].astype(np.int64), a["threshold"]
    left, right, value = a["left"].astype(np.int64), a["right"].astype(np.int64), a["value"]
    lt = meta.get("rule", "le") == "lt"
    n = len(Xs)
    out = np.full(n, float(a["base"][0]))
    rows = np.arange(n)
    safe_feature = np.maximum(feature, 0)
    for root in a["roots"].astype(np.int64):
        node = np.full(n, root)
        while True:
            internal = left[node] >= 0
            if not internal.any():
                break
            x = Xs[rows, safe_feature[node]]
            go_left = (x < threshold[node]) if lt else (x <= threshold[node])
            node = np.where(internal, np.where(go_left, left[node], right[node]), node)
        out += value[node]
    return out


def _act(z: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "identity":
        return z
    raise InputError(f"unknown activation {name!r}")


def _predict_mlp(meta: dict[str, Any], a: dict[str, np.ndarray], Xs: np.ndarray) -> np.ndarray:
    n_layers = int(meta["n_layers"])
    h = Xs
    for i in range(n_layers):
        h = h @ a[f"W{i}"] + a[f"b{i}"]
        if i < n_layers - 1:
            h = _act(h, str(meta["activation"]))
    return h[:, 0]


def _predict_knn(meta: dict[str, Any], a: dict[str, np.ndarray], Xs: np.ndarray) -> np.ndarray:
    Xt, yt = a["X"], a["y"]
    k = min(int(meta["k"]), len(Xt))
    d2 = (Xs * Xs).sum(1)[:, None] + (Xt * Xt).sum(1)[None, :] - 2.0 * Xs @ Xt.T
    np.maximum(d2, 0.0, out=d2)
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    if meta.get("weights", "uniform") == "uniform":
        return yt[idx].mean(axis=1)
    d = np.sqrt(np.take_along_axis(d2, idx, axis=1))
    zero = d == 0
    with np.errstate(divide="ignore"):
        w = np.where(zero.any(axis=1, keepdims=True), zero.astype(np.float64), 1.0 / d)
    return (w * yt[idx]).sum(axis=1) / w.sum(axis=1)


def _predict_gcn(meta: dict[str, Any], a: dict[str, np.ndarray], Xs: np.ndarray) -> np.ndarray:
    idx = a["node_index"].astype(np.int64)
    padded = np.concatenate([Xs, np.zeros((len(Xs), 1))], axis=1)
    H = padded[:, np.where(idx >= 0, idx, Xs.shape[1])]  # [N, V, C]
    const = np.broadcast_to(a["node_const"], (len(Xs), *a["node_const"].shape))
    H = np.concatenate([H, const], axis=2)
    A = a["adjacency"]
    for i in range(int(meta["n_layers"])):
        H = np.maximum(np.einsum("uv,nvc->nuc", A, H) @ a[f"W{i}"] + a[f"b{i}"], 0.0)
    return np.asarray(H.mean(axis=1) @ a["Wout"][:, 0] + float(a["bout"][0]))


def check_arrays(kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Raise InputError when an array form is incomplete or inconsistent."""
    if kind not in KINDS:
        raise InputError(f"unknown model form {kind!r}; known: {', '.join(KINDS)}")
    need = ("x_mean", "x_scale", *_REQUIRED[kind])
    missing = [k for k in need if k not in arrays]
    if kind in ("mlp", "gcn"):
        n = int(meta.get("n_layers", 0))
        missing += [k for i in range(n) for k in (f"W{i}", f"b{i}") if k not in arrays]
        if n < 1:
            missing.append("n_layers")
    if missing:
        raise InputError(f"model form {kind!r} lacks {', '.join(missing)}")
    if str(meta.get("target")) not in TARGETS:
        raise InputError(f"model has unknown target transform {meta.get('target')!r}")
    F = arrays["x_mean"].shape[0]
    if arrays["x_scale"].shape != (F,) or not np.all(arrays["x_scale"] != 0):
        raise InputError("model x_scale is malformed")
    if kind == "linear" and arrays["coef"].shape != (F,):
        raise InputError("linear model coef does not match the feature count")
    if kind == "trees":
        M = arrays["feature"].shape[0]
        for k in ("threshold", "left", "right", "value"):
            if arrays[k].shape != (M,):
                raise InputError(f"tree array {k} has the wrong length")
        for k in ("left", "right", "roots"):
            if arrays[k].size and (arrays[k].max() >= M or arrays[k].min() < -1):
                raise InputError(f"tree array {k} points outside the node table")
        internal = arrays["left"] >= 0
        if internal.any() and (arrays["feature"][internal].max() >= F
                               or arrays["feature"][internal].min() < 0):
            raise InputError("tree feature index out of range")
        # children must come after their parent so that every walk ends
        nodes = np.arange(M)
        if np.any(arrays["left"][internal] <= nodes[internal]) or np.any(
                arrays["right"][internal] <= nodes[internal]):
            raise InputError("tree children must follow their parent")
    if kind in ("knn", "gp") and arrays["X"].ndim == 2 and arrays["X"].shape[1] != F:
        raise InputError(f"{kind} training rows do not match the feature count")


# --------------------------------------------------------------------------- exporters


def export_sklearn_trees(trees: list[Any], scales: list[float], base: float
                         ) -> dict[str, np.ndarray]:
    """Concatenate scikit-learn ``tree_`` objects into the ``trees`` array form."""
    feats, thrs, lefts, rights, vals, roots = [], [], [], [], [], []
    offset = 0
    for tree, scale in zip(trees, scales, strict=True):
        t = tree.tree_ if hasattr(tree, "tree_") else tree
        left = t.children_left.astype(np.int64)
        right = t.children_right.astype(np.int64)
        leaf = left < 0
        feats.append(np.where(leaf, -1, t.feature).astype(np.int32))
        thrs.append(np.where(leaf, 0.0, f32_le_threshold(t.threshold)))
        lefts.append(np.where(leaf, -1, left + offset).astype(np.int32))
        rights.append(np.where(leaf, -1, right + offset).astype(np.int32))
        vals.append(np.where(leaf, t.value.reshape(len(left), -1)[:, 0] * scale, 0.0))
        roots.append(offset)
        offset += len(left)
    return {
        "feature": np.concatenate(feats), "threshold": np.concatenate(thrs),
        "left": np.concatenate(lefts), "right": np.concatenate(rights),
        "value": np.concatenate(vals), "roots": np.asarray(roots, dtype=np.int32),
        "base": np.asarray([base], dtype=np.float64),
    }
