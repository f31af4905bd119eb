"""The plain-array form of a regressor and its compiled twin.

A :class:`ModelArrays` is what the model file stores for a regressor: a family ``kind``, NumPy
arrays and a small JSON-able ``meta`` dict. Every family sees standardised features
``x' = (x - x_mean) / x_scale`` and its output ``y`` is mapped back by the target transform
(``"log"``: ``exp(y)``, ``"identity"``: ``y``); results are latencies in ms.

Families and their arrays:

``linear``
    ``coef [F]``, ``intercept [1]``: ``y = intercept + coef . x'`` (the LUT regressor is a
    linear model over one-hot features).
``trees``
    ``feature int32 [M]``, ``threshold [M]``, ``left int32 [M]``, ``right int32 [M]`` (-1 at
    leaves), ``value [M]`` (leaf contributions already scaled), ``roots int32 [T]``,
    ``base [1]``; meta ``rule`` ``"le"`` (left when ``x' <= threshold``; scikit-learn, LightGBM)
    or ``"lt"`` (XGBoost) and ``input_dtype`` ``"float32"`` (``x'`` rounded to float32 before
    comparing, as scikit-learn trees and XGBoost do) or ``"float64"`` (the default; LightGBM,
    HistGradientBoosting). ``y = base + sum over trees of value[leaf]``. Optional meta
    ``hot_layout`` (``"auto"`` default, ``"walk"``, ``"slice"``) picks how one-hot rows are
    evaluated (walk each tree, or bit-sliced over 64 rows for trees of <= 256 leaves, or per
    tree by estimated cost); results are identical, it exists for tests and measurements.
``mlp``
    ``W0..W{L-1}`` ``[in, out]``, ``b0..b{L-1}``; meta ``activation`` on hidden layers
    (relu, tanh, logistic, identity); linear output.
``knn``
    ``X [n, F]`` (standardised), ``y [n]``; meta ``k``, ``weights`` (uniform, distance);
    Euclidean distance, ties broken by the lower training index.
``gp``
    ``X [n, F]``, ``alpha [n]``, ``length_scale [F]``; meta ``constant``, ``y_mean``,
    ``y_std``: ``y = y_mean + y_std * sum_i constant * exp(-0.5 |(x' - X_i) / l|^2) alpha_i``.
``gcn``
    Graph network over a fixed cell DAG: ``adjacency [V, V]``, ``node_index int32 [V, C]``
    (feature column of each node's one-hot operation, -1 unused), optional ``node_const
    [V, T]`` (constant node channels), ``W0..``/``b0..`` graph layers, ``Wout [H, 1]``,
    ``bout [1]``: ``H0[v] = concat(x'[node_index[v]], node_const[v])``,
    ``H_{l+1} = relu(A H_l W_l + b_l)``, ``y = mean_v(H_L) . Wout + bout``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from esm._native import core
from esm.errors import InputError

KINDS = ("linear", "trees", "mlp", "knn", "gp", "gcn")
TARGETS = ("identity", "log")


@dataclass
class ModelArrays:
    """A regressor as plain arrays (see the module docstring for each family's arrays).

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    n_features : int
        Width ``F`` of the raw feature rows.
    arrays : dict of str to np.ndarray
        The family's arrays plus ``x_mean [F]`` and ``x_scale [F]`` (an infinite scale
        switches a column off).
    meta : dict
        JSON-able scalars of the family (rule, activation, k, ...).
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
        if self.target not in TARGETS:
            raise InputError(f"unknown target transform {self.target!r}; known: log, identity")
        f = int(self.n_features)
        self.n_features = f
        self.arrays.setdefault("x_mean", np.zeros(f))
        self.arrays.setdefault("x_scale", np.ones(f))

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
        return _predict(self.compile(), X, threads, chunk)


def _predict(model: Any, X: Any, threads: int, chunk: int) -> np.ndarray:
    try:
        return np.asarray(model.predict(X, int(threads), int(chunk)))
    except ValueError as err:
        raise InputError(str(err)) from None
