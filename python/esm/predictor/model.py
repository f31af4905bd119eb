"""The array form of a fitted regressor: what a model file stores and the compiled core runs.

A :class:`ModelArrays` is a family ``kind``, NumPy arrays and a small JSON-able ``meta`` dict.
It is the one description of a regressor that every stage shares: the converters
(:mod:`esm.predictor.convert`) and the regressors of :mod:`esm.surrogate.models` write it, the
model file stores it (``model_form`` ``{"kind", "meta"}`` with the ``target`` in ``meta``, and
the arrays), the compiled core (``esm._core.CompiledModel``) evaluates it and the NumPy
reference (:mod:`esm.predictor.reference`) is its definition and test oracle.

Every family sees standardised features ``x' = (x - x_mean) / x_scale`` (an infinite scale
switches a column off: ``x' = 0``) and its output ``y`` is mapped back by the target transform
(``"log"``: ``exp(y)``, ``"identity"``: ``y``); results are latencies in ms.

Families and their arrays:

``linear``
    ``coef [F]``, ``intercept [1]``: ``y = intercept + coef . x'``. The LUT regressor is a
    linear model over one-hot features.
``trees``
    ``feature int32 [M]`` (-1 at leaves; older files may hold any value there),
    ``threshold [M]``, ``left int32 [M]``, ``right int32 [M]`` (-1 at leaves; children come
    after their parent), ``value [M]`` (leaf contributions with the learning rate or the 1/T
    of averaging folded in), ``roots int32 [T]``, ``base [1]``:
    ``y = base + sum over trees of value[leaf]``. Meta ``rule``: ``"le"`` (left when
    ``x'[feature] <= threshold``; scikit-learn, LightGBM; the default) or ``"lt"`` (``<``;
    XGBoost); ``input_dtype``: ``"float32"`` (``x'`` is rounded to float32 before comparing, as
    scikit-learn trees and XGBoost do) or ``"float64"`` (the default; LightGBM,
    HistGradientBoosting). Files written before issue 20 hold scikit-learn thresholds as the
    float64 value that gives, under ``"le"`` in float64, the decision of the float32 input
    (the compiled core recognises them and runs them on its float32 path). Optional meta
    ``hot_layout`` (``"auto"`` default, ``"walk"``, ``"slice"``) picks how the compiled core
    evaluates one-hot rows (walk each tree, or bit-sliced over 64 rows for trees of <= 256
    leaves, or per tree by estimated cost); results are identical, it exists for tests and
    measurements.
``mlp``
    ``W0..W{L-1}`` ``[in, out]`` (``out`` = 1 for the last), ``b0..b{L-1}`` ``[out]``; meta
    ``activation`` (relu, tanh, logistic or identity) on hidden layers, linear output;
    optional meta ``n_layers`` (= L when present).
``knn``
    ``X [n, F]`` (standardised training rows), ``y [n]`` (transformed targets); meta ``k``
    (1 <= k <= n) and ``weights`` (``uniform`` or ``distance``). Exact Euclidean distances;
    the k nearest by a stable sort (ties keep the lower training index); with ``distance``
    weights, rows at distance 0 take all the weight.
``gp``
    ``X [n, F]``, ``alpha [n]``, ``length_scale [F]``; meta ``constant``, ``y_mean``,
    ``y_std``: ``y = y_mean + y_std * sum_i constant * exp(-0.5 |x'/l - X_i/l|^2) alpha_i``
    (scikit-learn's GaussianProcessRegressor with ``normalize_y=True`` and kernel
    ``[ConstantKernel *] RBF [+ WhiteKernel]``).
``gcn``
    Graph network over a fixed cell DAG (BRP-NAS style): ``adjacency [V, V]`` (normalised,
    with self loops), ``node_index int32 [V, C]`` (feature column of each node channel, -1
    unused), optional ``node_const [V, T]`` (constant node channels), ``W0..``/``b0..`` graph
    layers, ``Wout [H, 1]``, ``bout [1]``; optional meta ``n_layers``:
    ``H0[v] = concat(x'[node_index[v]] (0 where -1), node_const[v])``,
    ``H_{l+1} = relu(A H_l W_l + b_l)``, ``y = mean_v(H_L) . Wout + bout``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from esm._native import core
from esm.errors import InputError

#: Families of the array form.
KINDS = ("linear", "trees", "mlp", "knn", "gp", "gcn")
#: Target transforms: the model's output ``y`` is ``log(ms)`` or ``ms``.
TARGETS = ("log", "identity")

_REQUIRED: dict[str, tuple[str, ...]] = {
    "linear": ("coef", "intercept"),
    "trees": ("feature", "threshold", "left", "right", "value", "roots", "base"),
    "mlp": (),
    "knn": ("X", "y"),
    "gp": ("X", "alpha", "length_scale"),
    "gcn": ("adjacency", "node_index", "Wout", "bout"),
}
_META_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "trees": {"rule": ("le", "lt"), "input_dtype": ("float32", "float64"),
              "hot_layout": ("auto", "walk", "slice")},
    "mlp": {"activation": ("relu", "tanh", "logistic", "identity")},
    "knn": {"weights": ("uniform", "distance")},
}


def _check_target(target: Any) -> str:
    if target not in TARGETS:
        raise InputError(f"unknown target transform {target!r}; known: {', '.join(TARGETS)}")
    return str(target)


def inverse_target(y: np.ndarray, target: str) -> np.ndarray:
    """Map model outputs back to milliseconds."""
    return np.exp(y) if _check_target(target) == "log" else np.asarray(y, dtype=np.float64)


def forward_target(y: np.ndarray, target: str) -> np.ndarray:
    """Map milliseconds to the model's target space (``log`` needs positive values)."""
    y = np.asarray(y, dtype=np.float64)
    if _check_target(target) == "identity":
        return y
    if np.any(y <= 0):
        raise ValueError("the log target transform needs positive targets")
    return np.log(y)


def standardize(X: Any, x_mean: np.ndarray, x_scale: np.ndarray) -> np.ndarray:
    """``(X - x_mean) / x_scale`` in float64."""
    return (np.asarray(X, dtype=np.float64) - x_mean) / x_scale


@dataclass
class ModelArrays:
    """A regressor as plain arrays (see the module docstring for each family's arrays).

    Construction checks the family and the target and fills in a missing standardisation;
    :meth:`check` checks the arrays (the compiled core checks them again at its boundary).

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    n_features : int
        Width ``F`` of the raw feature rows.
    arrays : dict of str to np.ndarray
        The family's arrays plus ``x_mean [F]`` and ``x_scale [F]``.
    meta : dict
        JSON-able scalars of the family (rule, activation, k, ...), without the target.
    target : str
        Target transform, ``"identity"`` or ``"log"``.
    """

    kind: str
    n_features: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    target: str = "identity"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown model kind {self.kind!r}; known: {', '.join(KINDS)}")
        _check_target(self.target)
        f = int(self.n_features)
        self.n_features = f
        self.arrays.setdefault("x_mean", np.zeros(f))
        self.arrays.setdefault("x_scale", np.ones(f))

    # ------------------------------------------------------------------ model-file form
    @classmethod
    def from_form(cls, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]
                  ) -> ModelArrays:
        """From a model file's form: ``meta`` holds the ``target``; ``F`` is ``x_mean``'s."""
        meta = dict(meta)
        target = meta.pop("target", None)
        if "x_mean" not in arrays:
            raise InputError(f"model form {kind!r} lacks x_mean")
        n = int(np.asarray(arrays["x_mean"]).reshape(-1).shape[0])
        return cls(str(kind), n, dict(arrays), meta, target)

    def form_meta(self) -> dict[str, Any]:
        """``meta`` with the ``target``, as a model file stores it."""
        return {**self.meta, "target": self.target}

    def layer_count(self) -> int:
        """Number of consecutive ``W0, W1, ...`` layers (``mlp`` and ``gcn``)."""
        n = 0
        while f"W{n}" in self.arrays:
            n += 1
        return n

    # ------------------------------------------------------------------ checks
    def check(self) -> ModelArrays:
        """Raise InputError unless the arrays are complete and consistent; returns self.

        Checks what the NumPy reference needs to give a result (array presence and shapes,
        index ranges, children after their parent, known meta choices); the compiled core
        checks the arrays again, with values, at its boundary.
        """
        a, kind, F = self.arrays, self.kind, self.n_features
        L = self.layer_count() if kind in ("mlp", "gcn") else 0
        need = ["x_mean", "x_scale", *_REQUIRED[kind]]
        need += [k for i in range(L) for k in (f"W{i}", f"b{i}")]
        missing = [k for k in need if k not in a]
        if kind == "mlp" and L == 0:
            missing.append("W0")
        if missing:
            raise InputError(f"model form {kind!r} lacks {', '.join(missing)}")
        if "n_layers" in self.meta and kind in ("mlp", "gcn") and int(self.meta["n_layers"]) != L:
            raise InputError(f"model meta n_layers is {self.meta['n_layers']}, the arrays hold "
                             f"{L} layers")
        for key, choices in _META_CHOICES.get(kind, {}).items():
            if key in self.meta and self.meta[key] not in choices:
                raise InputError(f"model meta {key} must be one of {', '.join(choices)}, got "
                                 f"{self.meta[key]!r}")
        shape = {k: np.shape(v) for k, v in a.items()}
        if F < 1 or shape["x_mean"] != (F,) or shape["x_scale"] != (F,) \
                or not np.all(np.asarray(a["x_scale"]) != 0):
            raise InputError(f"model x_mean/x_scale must be [{F}] with non-zero scales")
        if kind == "linear" and shape["coef"] != (F,):
            raise InputError("linear model coef does not match the feature count")
        if kind == "trees":
            _check_trees(a, F)
        if kind in ("mlp", "gcn"):
            width = F if kind == "mlp" else a["node_index"].shape[1] + (
                a["node_const"].shape[1] if "node_const" in a else 0)
            for i in range(L):
                W = np.asarray(a[f"W{i}"])
                if W.ndim != 2 or W.shape[0] != width or np.shape(a[f"b{i}"]) != (W.shape[1],):
                    raise InputError(f"{kind} layer {i} has inconsistent weight/bias shapes")
                width = W.shape[1]
            if kind == "mlp" and width != 1:
                raise InputError("mlp: the last layer must have one output")
            if kind == "gcn" and shape["Wout"] != (width, 1):
                raise InputError("gcn: Wout must have one row per hidden unit")
        if kind == "gcn":
            V = shape["adjacency"][0] if len(shape["adjacency"]) == 2 else -1
            idx = np.asarray(a["node_index"])
            if shape["adjacency"] != (V, V) or idx.ndim != 2 or idx.shape[0] != V or (
                    idx.size and (idx.min() < -1 or idx.max() >= F)):
                raise InputError("gcn: adjacency must be [V, V] and node_index [V, C] in range")
        if kind in ("knn", "gp"):
            X = np.asarray(a["X"])
            if X.ndim != 2 or X.shape[1] != F or X.shape[0] < 1:
                raise InputError(f"{kind} training rows must be [n, {F}]")
            other = "y" if kind == "knn" else "alpha"
            if shape[other] != (X.shape[0],):
                raise InputError(f"{kind}: {other} must have one value per training row")
            if kind == "knn" and not 1 <= int(self.meta.get("k", 5)) <= X.shape[0]:
                raise InputError(f"knn: k must be in [1, n] = [1, {X.shape[0]}]")
            if kind == "gp" and shape["length_scale"] != (F,):
                raise InputError(f"gp: length_scale must be [{F}]")
        return self

    # ------------------------------------------------------------------ compiled
    def compile(self) -> Any:
        """The compiled model (``esm._core.CompiledModel``); malformed arrays raise InputError."""
        try:
            return core.CompiledModel(
                self.kind, self.n_features, dict(self.arrays), dict(self.meta), self.target
            )
        except ValueError as err:
            raise InputError(str(err)) from None

    def predict(self, X: Any, threads: int = 0, chunk: int = 65536) -> np.ndarray:
        """Compile (not cached) and predict raw feature rows ``X [N, F]``."""
        try:
            return np.asarray(self.compile().predict(X, int(threads), int(chunk)))
        except ValueError as err:
            raise InputError(str(err)) from None


def _check_trees(a: dict[str, np.ndarray], F: int) -> None:
    M = np.shape(a["feature"])[0] if np.ndim(a["feature"]) == 1 else -1
    if M == 0:
        raise InputError("the tree ensemble has no nodes")
    for k in ("feature", "threshold", "left", "right", "value"):
        if np.shape(a[k]) != (M,):
            raise InputError(f"tree array {k} has the wrong length")
    if np.shape(a["base"]) != (1,) or np.ndim(a["roots"]) != 1 or not np.size(a["roots"]):
        raise InputError("trees need base [1] and at least one root")
    for k in ("feature", "left", "right", "roots"):
        if np.asarray(a[k]).dtype.kind not in "iu":
            raise InputError(f"tree array {k} must hold integers")
    left, right = np.asarray(a["left"]), np.asarray(a["right"])
    for k, v in (("left", left), ("right", right), ("roots", np.asarray(a["roots"]))):
        if v.max() >= M or v.min() < (0 if k == "roots" else -1):
            raise InputError(f"tree array {k} points outside the node table")
    internal = left >= 0
    if np.any((right >= 0) != internal):
        raise InputError("tree nodes need both children or none")
    feature = np.asarray(a["feature"])[internal]
    if feature.size and (feature.max() >= F or feature.min() < 0):
        raise InputError("tree feature index out of range")
    # children after their parent: every walk ends
    nodes = np.arange(M)[internal]
    if np.any(left[internal] <= nodes) or np.any(right[internal] <= nodes):
        raise InputError("tree children must follow their parent")
