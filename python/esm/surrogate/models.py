"""Latency regressors with scikit-learn estimator conventions and plain-array export.

Every regressor standardises its features (``x_mean_``, ``x_scale_``), maps the target with
``target`` (``"log"``, ``"identity"`` or ``"auto"``: log when every target is positive), fits
an inner model (``estimator_``) and can :meth:`~LatencyRegressor.export` itself into the array
form :class:`esm.predictor.ModelArrays` (through the converters of :mod:`esm.predictor.convert`),
which predicts identically with the compiled core or with NumPy alone
(:mod:`esm.predictor.reference`).

This module needs scikit-learn (the ``train`` extra); loading a saved model does not.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from esm.errors import InputError
from esm.predictor import reference
from esm.predictor.convert import from_estimator
from esm.predictor.model import TARGETS, ModelArrays, forward_target, inverse_target, standardize
from esm.surrogate.metrics import mape


class LatencyRegressor(RegressorMixin, BaseEstimator):
    """Base class: standardise, transform the target, fit ``estimator_``, export arrays.

    Subclasses implement ``_fit_inner(Xs, yt)`` (returning the fitted inner model) and, when
    the inner model is not an estimator that :func:`esm.predictor.convert.from_estimator`
    converts, ``_export_inner()`` (its :class:`ModelArrays` over the used columns, without the
    standardisation and the target).
    """

    target: str = "auto"

    def _resolve_target(self, y: np.ndarray) -> str:
        t = getattr(self, "target", "auto")
        if t == "auto":
            return "log" if np.all(y > 0) else "identity"
        if t not in TARGETS:
            raise ValueError(f"target must be 'auto', 'log' or 'identity', got {t!r}")
        if t == "log" and np.any(y <= 0):
            raise ValueError("target='log' needs positive targets")
        return t

    def _used(self, F: int) -> np.ndarray:
        cols = getattr(self, "columns", None)
        if cols is None:
            return np.arange(F)
        idx = np.unique(np.asarray(cols, dtype=np.int64))
        if idx.size == 0 or idx.min() < 0 or idx.max() >= F:
            raise ValueError(f"columns must be indices in [0, {F})")
        return idx

    def fit(self, X: Any, y: Any) -> LatencyRegressor:
        """Fit on features ``X [N, F]`` and latencies ``y [N]``."""
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        _check_rows(len(y))
        self.target_ = self._resolve_target(y)
        self.columns_ = self._used(X.shape[1])
        mean, scale = _make_scale(X[:, self.columns_])
        # unused columns get scale +inf: they standardise to 0 and no model form sees them
        self.x_mean_ = np.zeros(X.shape[1])
        self.x_scale_ = np.full(X.shape[1], np.inf)
        self.x_mean_[self.columns_], self.x_scale_[self.columns_] = mean, scale
        Xs = standardize(X[:, self.columns_], mean, scale)
        self.estimator_ = self._fit_inner(Xs, forward_target(y, self.target_))
        return self

    def _standardized(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        c = self.columns_
        return standardize(X[:, c], self.x_mean_[c], self.x_scale_[c])

    def _raw(self, Xs: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.predict(Xs), dtype=np.float64).reshape(len(Xs))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted latencies (same unit as the training targets)."""
        return inverse_target(self._raw(self._standardized(X)), self.target_)

    def export(self) -> ModelArrays:
        """The fitted model as plain arrays (raw features in, latency out)."""
        check_is_fitted(self)
        inner = self._export_inner()
        arrays = _expand_columns(inner.kind, inner.arrays, self.columns_, self.n_features_in_)
        arrays = {**arrays, "x_mean": self.x_mean_.copy(), "x_scale": self.x_scale_.copy()}
        return ModelArrays(inner.kind, self.n_features_in_, arrays, dict(inner.meta),
                           self.target_)

    # subclasses
    def _fit_inner(self, Xs: np.ndarray, yt: np.ndarray) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _export_inner(self) -> ModelArrays:
        return from_estimator(self.estimator_)


def _make_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and scales of ``X``; near-constant columns get scale 1."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale <= 1e-12 * np.maximum(np.abs(mean), 1.0)] = 1.0
    return mean, scale


def _check_rows(n: int) -> None:
    if n < 2:
        raise ValueError(f"need at least 2 samples to fit, got {n} sample")


def _expand_columns(kind: str, arrays: dict[str, np.ndarray], used: np.ndarray,
                    F: int) -> dict[str, np.ndarray]:
    """Rewrite an array form fitted on columns ``used`` to take all ``F`` columns."""
    if len(used) == F:
        return arrays
    out = dict(arrays)

    def pad_cols(a: np.ndarray, fill: float = 0.0) -> np.ndarray:
        full = np.full((*a.shape[:-1], F), fill)
        full[..., used] = a
        return full

    if kind == "linear":
        out["coef"] = pad_cols(arrays["coef"])
    elif kind == "trees":
        f = arrays["feature"].astype(np.int64)
        out["feature"] = np.where(arrays["left"] >= 0, used[np.maximum(f, 0)], -1).astype(np.int32)
    elif kind == "mlp":
        W = np.zeros((F, arrays["W0"].shape[1]))
        W[used] = arrays["W0"]
        out["W0"] = W
    elif kind == "gcn":
        idx = arrays["node_index"].astype(np.int64)
        out["node_index"] = np.where(idx >= 0, used[np.maximum(idx, 0)], -1).astype(np.int32)
    elif kind in ("knn", "gp"):
        out["X"] = pad_cols(arrays["X"])
        if kind == "gp":
            out["length_scale"] = pad_cols(arrays["length_scale"], 1.0)
    else:  # pragma: no cover
        raise ValueError(f"cannot restrict columns of a {kind} model")
    return out


class RidgeRegressor(LatencyRegressor):
    """Ridge regression; ``alpha=None`` picks alpha by efficient leave-one-out CV.

    Parameters
    ----------
    alpha : float or None
        L2 penalty on standardised features; None: chosen from ``alphas`` by LOO-CV.
    alphas : sequence of float or None
        Grid for ``alpha=None`` (default ``10**[-4 .. 3]``).
    target : {"auto", "log", "identity"}
    """

    def __init__(self, alpha: float | None = None, alphas: Any = None,
                 target: str = "auto",
                 columns: Any = None) -> None:
        self.alpha = alpha
        self.alphas = alphas
        self.target = target
        self.columns = columns

    def _fit_inner(self, Xs: np.ndarray, yt: np.ndarray) -> Any:
        from sklearn.linear_model import Ridge, RidgeCV

        if self.alpha is None:
            grid = np.logspace(-4, 3, 15) if self.alphas is None else np.asarray(self.alphas)
            return RidgeCV(alphas=grid).fit(Xs, yt)
        return Ridge(alpha=float(self.alpha)).fit(Xs, yt)


class LUTRegressor(RidgeRegressor):
    """Additive lookup table: latency = intercept + sum of one cost per (slot, choice).

    A (lightly regularised) least-squares fit over onehot features with the identity target:
    each coefficient, divided by its feature's scale, is the learned cost in ms of choosing
    that option at that position (:meth:`table`). Exports as ``linear``.
    """

    def __init__(self, alpha: float | None = 1e-2, alphas: Any = None,
                 target: str = "identity",
                 columns: Any = None) -> None:
        super().__init__(alpha=alpha, alphas=alphas, target=target, columns=columns)

    def table(self) -> np.ndarray:
        """Cost of every feature column in target units (ms for the identity target)."""
        check_is_fitted(self)
        return np.asarray(self.estimator_.coef_, dtype=np.float64) / self.x_scale_


class _LinearModel:
    """A fitted affine map ``X @ coef_ + intercept_`` (inner model of
    :class:`RobustRidgeRegressor`)."""

    def __init__(self, coef: np.ndarray, intercept: float, n_iter: int) -> None:
        self.coef_ = coef
        self.intercept_ = intercept
        self.n_iter_ = n_iter

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_


class RobustRidgeRegressor(LatencyRegressor):
    """Ridge-penalised linear model with the Huber loss, exported as ``linear`` (registry name
    ``huber``; not scikit-learn's HuberRegressor, which estimates the scale jointly by L-BFGS).

    Squared loss for residuals within ``epsilon`` robust scales, absolute loss beyond: the few
    slow outlier measurements of a latency dataset (timing noise is one-sided: interference
    only ever makes a run slower) do not pull the fit away from the bulk of the rows as they do
    with ridge, which lowers MAPE and raises the share of rows within +-10 %.

    Fitted by iteratively reweighted ridge solves (weight ``min(1, epsilon * s / |r|)`` with the
    residual scale ``s`` re-estimated as 1.4826 x the median absolute residual at every step),
    starting from the ridge solution; the intercept is not penalised.

    Parameters
    ----------
    epsilon : float
        Huber threshold in units of the robust residual scale.
    alpha : float or None
        L2 penalty on standardised features; None: chosen from ``10**[-4 .. 3]`` by efficient
        leave-one-out CV, first for plain ridge, then twice more on the Huber-weighted rows
        (``alpha_`` is the final choice).
    max_iter : int
        Reweighting steps at most (stops when the coefficients change by < 1e-8 relative).
    target : {"auto", "log", "identity"}
    """

    def __init__(self, epsilon: float = 1.35, alpha: float | None = None, max_iter: int = 100,
                 target: str = "auto", columns: Any = None) -> None:
        self.epsilon = epsilon
        self.alpha = alpha
        self.max_iter = max_iter
        self.target = target
        self.columns = columns

    def _fit_inner(self, Xs: np.ndarray, yt: np.ndarray) -> Any:
        from sklearn.linear_model import RidgeCV

        if float(self.epsilon) <= 0:
            raise ValueError(f"epsilon must be positive, got {self.epsilon}")
        grid = np.logspace(-4, 3, 15)
        n = len(yt)
        w = np.ones(n)
        if self.alpha is None:
            alpha = float(RidgeCV(alphas=grid).fit(Xs, yt).alpha_)
        else:
            alpha = float(self.alpha)
        beta, b0, w, it = self._irls(Xs, yt, alpha, w)
        total = it
        if self.alpha is None:
            # the squared-loss LOO choice is inflated by the very outliers that the Huber loss
            # down-weights: choose alpha again by efficient LOO on the reweighted problem,
            # twice, refitting from the current weights
            for _ in range(2):
                alpha = float(RidgeCV(alphas=grid).fit(Xs, yt, sample_weight=w).alpha_)
                beta, b0, w, it = self._irls(Xs, yt, alpha, w)
                total += it
        self.alpha_ = alpha
        self.n_iter_ = total
        return _LinearModel(beta, b0, total)

    def _irls(self, Xs: np.ndarray, yt: np.ndarray, alpha: float, w: np.ndarray
              ) -> tuple[np.ndarray, float, np.ndarray, int]:
        F = Xs.shape[1]
        beta, b0 = np.zeros(F), float(np.mean(yt))
        it = 0
        while it < int(self.max_iter):
            it += 1
            sw = w / w.sum()
            xm = sw @ Xs
            ym = float(sw @ yt)
            Xc = Xs - xm
            A = (Xc * w[:, None]).T @ Xc + alpha * np.eye(F)
            new = np.linalg.solve(A, (Xc * w[:, None]).T @ (yt - ym))
            b0 = ym - float(xm @ new)
            done = np.linalg.norm(new - beta) <= 1e-8 * (np.linalg.norm(new) + 1e-12)
            beta = new
            if done:
                break
            r = np.abs(yt - Xs @ beta - b0)
            scale = 1.4826 * float(np.median(r))
            if scale <= 0:
                break
            w = np.minimum(1.0, float(self.epsilon) * scale / np.maximum(r, 1e-300))
        return beta, b0, w, it


class ForestRegressor(LatencyRegressor):
    """Random forest (scikit-learn); exports as ``trees`` with 1/T folded into the leaves."""

    def __init__(self, n_estimators: int = 200, max_depth: int | None = None,
                 min_samples_leaf: int = 1, max_features: float = 0.5,
                 random_state: int | None = None, target: str = "auto",
                 columns: Any = None) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.target = target
        self.columns = columns

    def _fit_inner(self, Xs: np.ndarray, yt: np.ndarray) -> Any:
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=self.n_estimators, max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf, max_features=self.max_features,
            random_state=self.random_state,
        ).fit(Xs, yt)


def _backend_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


class BoostingRegressor(LatencyRegressor):
    """Gradient-boosted trees: scikit-learn's, or LightGBM/XGBoost when installed.

    Parameters
    ----------
    backend : {"sklearn", "lightgbm", "xgboost"}
        Only ``sklearn`` is always available.
    """

    def __init__(self, n_estimators: int = 400, learning_rate: float = 0.05,
                 max_depth: int = 3, subsample: float = 0.8, backend: str = "sklearn",
                 random_state: int | None = None, target: str = "auto",
                 columns: Any = None) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.backend = backend
        self.random_state = random_state
        self.target = target
        self.columns = columns

    def _fit_inner(self, Xs: np.ndarray, yt: np.ndarray) -> Any:
        if self.backend == "sklearn":
            from sklearn.ensemble import GradientBoostingRegressor

            return GradientBoostingRegressor(
                n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                max_depth=self.max_depth, subsample=self.subsample,
                random_state=self.random_state,
            ).fit(Xs, yt)
        if self.backend == "lightgbm":
            if not _backend_available("lightgbm"):
                raise InputError("backend 'lightgbm' needs the lightgbm package")
            import lightgbm

            return lightgbm.LGBMRegressor(
                n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                max_depth=self.max_depth, num_leaves=2 ** self.max_depth,
                subsample=self.subsample, subsample_freq=1, random_state=self.random_state,
                min_child_samples=5, verbose=-1,
            ).fit(Xs, yt)
        if self.backend == "xgboost":
            if not _backend_available("xgboost"):
                raise InputError("backend 'xgboost' needs the xgboost package")
            import xgboost

            return xgboost.XGBRegressor(
                n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                max_depth=self.max_depth, subsample=self.subsample,
                random_state=self.random_state, base_score=float(np.mean(yt)),
            ).fit(Xs, yt)
        raise ValueError(f"unknown boosting backend {self.backend!r}")


class FeedForwardRegressor(LatencyRegressor):
    """Multi-layer perceptron on a standardised target (registry name ``mlp``).

    Trains scikit-learn's MLPRegressor (L-BFGS or Adam) on ``(y - mean) / std`` of the
    transformed target; the target's mean and scale are folded into the output layer at export.
    """

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (64, 64),
                 activation: str = "relu", alpha: float = 1e-3, solver: str = "lbfgs",
                 max_iter: int = 2000, random_state: int | None = None,
                 target: str = "auto",
                 columns: Any = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.solver = solver
        self.max_iter = max_iter
        self.random_state = random_state
        self.target = target
        self.columns = columns

    def _fit_inner(self, Xs: np.ndarray, yt: np.ndarray) -> Any:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor as SkMLP

        self.y_shift_ = float(np.mean(yt))
        sd = float(np.std(yt))
        self.y_unit_ = sd if sd > 0 else 1.0
        m = SkMLP(hidden_layer_sizes=tuple(self.hidden_layer_sizes), activation=self.activation,
                  alpha=self.alpha, solver=self.solver, max_iter=self.max_iter,
                  random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.fit(Xs, (yt - self.y_shift_) / self.y_unit_)
        self.n_iter_ = m.n_iter_
        return m

    def _raw(self, Xs: np.ndarray) -> np.ndarray:
        return super()._raw(Xs) * self.y_unit_ + self.y_shift_

    def _export_inner(self) -> ModelArrays:
        m = from_estimator(self.estimator_)
        last = int(m.meta["n_layers"]) - 1  # fold the target standardisation into the output
        m.arrays[f"W{last}"] = m.arrays[f"W{last}"] * self.y_unit_
        m.arrays[f"b{last}"] = m.arrays[f"b{last}"] * self.y_unit_ + self.y_shift_
        return m


class KNNRegressor(LatencyRegressor):
    """k nearest neighbours on standardised features (Euclidean)."""

    def __init__(self, n_neighbors: int = 5, weights: str = "distance",
                 target: str = "auto",
                 columns: Any = None) -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.target = target
        self.columns = columns

    def _fit_inner(self, Xs: np.ndarray, yt: np.ndarray) -> Any:
        from sklearn.neighbors import KNeighborsRegressor

        return KNeighborsRegressor(n_neighbors=min(self.n_neighbors, len(Xs)),
                                   weights=self.weights, algorithm="brute").fit(Xs, yt)

    def _raw(self, Xs: np.ndarray) -> np.ndarray:
        # the array form's (stable-sorted, exact-distance) neighbour search is the definition;
        # scikit-learn's own search may break distance ties in another order
        return reference.predict_raw(self._export_inner(), Xs)


class GPRegressor(LatencyRegressor):
    """Gaussian process: ConstantKernel * RBF + WhiteKernel, ``normalize_y=True``.

    Parameters
    ----------
    ard : bool or "auto"
        One length scale per feature (``True``) or a shared one; ``"auto"``: ARD when there
        are at most ``ard_max_features`` features.
    n_restarts_optimizer : int
    """

    def __init__(self, ard: bool | str = "auto", ard_max_features: int = 24,
                 n_restarts_optimizer: int = 0, random_state: int | None = None,
                 target: str = "auto",
                 columns: Any = None) -> None:
        self.ard = ard
        self.ard_max_features = ard_max_features
        self.n_restarts_optimizer = n_restarts_optimizer
        self.random_state = random_state
        self.target = target
        self.columns = columns

    def _fit_inner(self, Xs: np.ndarray, yt: np.ndarray) -> Any:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, WhiteKernel
        from sklearn.gaussian_process.kernels import ConstantKernel as C

        F = Xs.shape[1]
        ard = F <= self.ard_max_features if self.ard == "auto" else bool(self.ard)
        ls: Any = np.full(F, np.sqrt(F)) if ard else float(np.sqrt(F))
        kernel = C(1.0, (1e-3, 1e3)) * RBF(ls, (1e-2, 1e4)) + WhiteKernel(1e-2, (1e-8, 1.0))
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True,
                                      n_restarts_optimizer=self.n_restarts_optimizer,
                                      random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return gp.fit(Xs, yt)


#: Regressor classes by name (``auto`` is handled by :func:`make_regressor`).
REGRESSORS: dict[str, type[LatencyRegressor]] = {
    "ridge": RidgeRegressor,
    "lut": LUTRegressor,
    "huber": RobustRidgeRegressor,
    "forest": ForestRegressor,
    "gbt": BoostingRegressor,
    "mlp": FeedForwardRegressor,
    "knn": KNNRegressor,
    "gp": GPRegressor,
}
#: Accepted aliases.
ALIASES = {"rf": "forest", "random_forest": "forest", "gbdt": "gbt", "boosting": "gbt",
           "linear": "ridge", "robust": "huber", "lightgbm": "gbt-lightgbm",
           "xgboost": "gbt-xgboost"}


def make_regressor(name: str, seed: int | None = None, **params: Any) -> LatencyRegressor:
    """A regressor by name (``ridge``, ``lut``, ``forest``, ``gbt``, ``huber``, ``gbt-lightgbm``,
    ``gbt-xgboost``, ``mlp``, ``knn``, ``gp``, ``gcn``, ``auto``), seeded where random."""
    key = ALIASES.get(name, name)
    if key.startswith("gbt-"):
        params.setdefault("backend", key[4:])
        if not _backend_available(params["backend"]):
            raise InputError(f"model {name!r} needs the {params['backend']} package")
        key = "gbt"
    if key == "auto":
        cls: type[LatencyRegressor] = AutoRegressor
    elif key == "gcn":
        from esm.surrogate.gcn import GCNRegressor

        cls = GCNRegressor
    else:
        try:
            cls = REGRESSORS[key]
        except KeyError:
            known = ", ".join([*REGRESSORS, "gcn", "auto"])
            raise InputError(f"unknown model {name!r}; known: {known}") from None
    est = cls(**params)
    if seed is not None and "random_state" in est.get_params():
        est.set_params(random_state=seed)
    return est


#: Candidates tried by ``auto``: (name, params) or (name, params, column-set labels it is
#: tried on; others are tried on every column set).
AUTO_CANDIDATES: tuple[tuple[Any, ...], ...] = (
    ("ridge", {"target": "log"}),
    ("ridge", {"target": "identity"}),
    ("huber", {"target": "log"}),
    ("huber", {"target": "identity"}),
    ("gbt", {"n_estimators": 200, "learning_rate": 0.1}, ("stats+roofline",)),
)

#: Order of model families from simple to complex (the one-standard-error rule of ``auto``
#: prefers, among candidates that cross-validate as well as the best, the one with the fewest
#: feature columns, then the earliest family here).
FAMILY_ORDER = ("lut", "ridge", "huber", "knn", "gp", "gbt", "forest", "mlp", "gcn")


class AutoRegressor(LatencyRegressor):
    """Pick a candidate by k-fold cross-validated MAPE on the training rows.

    Only the rows given to :meth:`fit` are used (the folds split them, the same folds for every
    candidate); the chosen candidate is then refitted on all of them. ``cv_scores_`` holds
    every candidate's mean fold MAPE, ``cv_best_`` the label with the lowest one.

    Parameters
    ----------
    candidates : sequence of (name, params) or (name, params, labels), or None
        Default :data:`AUTO_CANDIDATES`.
    column_sets : sequence of (label, column indices or None) or None
        Every candidate is also tried on each of these feature subsets (None: all columns).
    cv : int
        Number of folds (reduced when there are fewer rows).
    rule : {"1se", "min"}
        ``min``: the lowest mean fold error. ``1se`` (default): the one-standard-error rule,
        paired over the folds: every candidate whose fold errors exceed the best one's by less
        than one standard error of that paired difference is as good as the best within
        the noise of CV; of those, the simplest (fewest feature columns, then the simplest
        family in :data:`FAMILY_ORDER`) is chosen. It keeps small or noisy training sets
        from choosing a bigger model on a CV difference that is luck.
    """

    def __init__(self, candidates: Any = None, cv: int = 5, random_state: int | None = None,
                 target: str = "auto", column_sets: Any = None, rule: str = "1se") -> None:
        self.candidates = candidates
        self.cv = cv
        self.random_state = random_state
        self.target = target
        self.column_sets = column_sets
        self.rule = rule

    def _candidate_list(self) -> list[tuple[str, dict[str, Any]]]:
        cands = AUTO_CANDIDATES if self.candidates is None else self.candidates
        sets = [None] if not self.column_sets else list(self.column_sets)
        out = []
        for c in cands:
            only = None if isinstance(c, str) or len(c) < 3 else set(c[2])
            for cs in sets:
                if only is not None and cs is not None and str(cs[0]) not in only:
                    continue
                name, params = (c, {}) if isinstance(c, str) else (c[0], dict(c[1]))
                if self.target != "auto":
                    params.setdefault("target", self.target)
                if cs is not None:
                    label, cols = cs
                    if cols is not None:
                        params["columns"] = (str(label), [int(v) for v in cols])
                out.append((name, params))
        return out

    def fit(self, X: Any, y: Any) -> AutoRegressor:
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        if self.rule not in ("1se", "min"):
            raise ValueError(f"rule must be '1se' or 'min', got {self.rule!r}")
        n = len(y)
        _check_rows(n)
        folds = max(2, min(int(self.cv), n // 2)) if n >= 4 else 0
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(n)
        scores: dict[str, float] = {}
        entries: list[tuple[str, LatencyRegressor, np.ndarray, tuple[int, int]]] = []
        for name, params in self._candidate_list():
            label = name + "".join(f"[{k}={v[0] if k == 'columns' else v}]"
                                   for k, v in sorted(params.items()))
            if "columns" in params:
                params["columns"] = params["columns"][1]
            est = make_regressor(name, seed=self.random_state, **params)
            errs = np.zeros(max(folds, 1))
            for k in range(folds):
                test = order[k::folds]
                train = np.setdiff1d(order, test)
                try:
                    m = clone(est).fit(X[train], y[train])
                    errs[k] = _scaled_error(y[test], m.predict(X[test]))
                except ValueError:
                    errs[k] = np.inf
            if not np.all(np.isfinite(errs)):
                errs[:] = np.inf
            scores[label] = float(np.mean(errs))
            n_cols = X.shape[1] if params.get("columns") is None \
                else len(set(params["columns"]))
            family = FAMILY_ORDER.index(name) if name in FAMILY_ORDER else len(FAMILY_ORDER)
            entries.append((label, est, errs, (n_cols, family)))
        best = min(range(len(entries)), key=lambda i: scores[entries[i][0]])
        chosen = best
        if self.rule == "1se" and folds >= 2 and np.isfinite(scores[entries[best][0]]):
            ok = []
            for i, (_, _, errs, _) in enumerate(entries):
                if not np.all(np.isfinite(errs)):
                    continue
                d = errs - entries[best][2]
                se = float(np.std(d, ddof=1)) / np.sqrt(len(d))
                if float(np.mean(d)) <= se:
                    ok.append(i)
            chosen = min(ok, key=lambda i: (entries[i][3], scores[entries[i][0]]))
        self.cv_scores_ = scores
        self.cv_best_ = entries[best][0]
        self.chosen_ = entries[chosen][0]
        self.best_estimator_ = clone(entries[chosen][1]).fit(X, y)
        self.target_ = self.best_estimator_.target_
        self.x_mean_ = self.best_estimator_.x_mean_
        self.x_scale_ = self.best_estimator_.x_scale_
        self.estimator_ = self.best_estimator_
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.best_estimator_.predict(X)

    def export(self) -> ModelArrays:
        check_is_fitted(self)
        return self.best_estimator_.export()


def _scaled_error(y: np.ndarray, p: np.ndarray) -> float:
    """MAPE where every target is nonzero, else RMSE relative to the target spread."""
    if np.all(y != 0):
        return mape(y, p)
    return float(np.sqrt(np.mean((p - y) ** 2)) / (np.std(y) + 1e-12) * 100.0)


__all__ = [
    "AUTO_CANDIDATES", "FAMILY_ORDER", "REGRESSORS", "AutoRegressor", "BoostingRegressor",
    "FeedForwardRegressor", "ForestRegressor", "GPRegressor", "KNNRegressor", "LUTRegressor",
    "LatencyRegressor", "RidgeRegressor", "RobustRidgeRegressor", "make_regressor",
]
