"""Convert fitted regressors (scikit-learn, LightGBM, XGBoost) into :class:`ModelArrays`.

The one set of converters: :func:`from_estimator` serves any supported estimator, and the
regressors of :mod:`esm.surrogate.models` export their inner estimators through it. The
conversion reads the estimator's learned attributes; the result predicts exactly what the
estimator's own ``predict`` does on the same features (up to float64 rounding of sums; XGBoost
sums its float32 leaves in float32, so it agrees to about 1e-6 relative while the array form
sums the same leaves in float64). Pass ``x_mean``/``x_scale`` when the estimator was fitted on
standardised features; then the model takes raw features.

What a plain tree walk cannot reproduce is refused with an InputError: categorical splits,
LightGBM's "zero as missing" splits, linear leaves and random-forest averaging, XGBoost's dart
and linear boosters, several outputs, objectives whose prediction is not the sum of the trees
(Poisson, logistic, square-root targets, ...), and a gradient boosting whose initial estimate is
not a constant.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.predictor.model import ModelArrays


def from_estimator(
    est: Any,
    x_mean: np.ndarray | None = None,
    x_scale: np.ndarray | None = None,
    target: str = "identity",
) -> ModelArrays:
    """Plain arrays for a fitted estimator.

    Supported: scikit-learn linear models (``coef_``/``intercept_``), decision/extra trees,
    random forest, extra trees, gradient boosting and histogram gradient boosting regressors,
    ``MLPRegressor``, ``KNeighborsRegressor`` (Euclidean), ``GaussianProcessRegressor`` with a
    (constant x) RBF kernel (plus an optional white-noise term), LightGBM (``LGBMRegressor``
    or ``Booster``) and XGBoost (``XGBRegressor`` or ``Booster``).
    """
    name = type(est).__name__
    module = type(est).__module__
    if module.startswith("lightgbm"):
        out = _lightgbm(est)
    elif module.startswith("xgboost"):
        out = _xgboost(est)
    elif name in ("DecisionTreeRegressor", "ExtraTreeRegressor"):
        out = _sk_forest([est], 1.0, 0.0)
    elif name in ("RandomForestRegressor", "ExtraTreesRegressor"):
        out = _sk_forest(list(est.estimators_), 1.0 / len(est.estimators_), 0.0)
    elif name == "GradientBoostingRegressor":
        out = _sk_gradient_boosting(est)
    elif name == "HistGradientBoostingRegressor":
        out = _sk_hist_gradient_boosting(est)
    elif name == "MLPRegressor":
        out = _sk_mlp(est)
    elif name == "KNeighborsRegressor":
        out = _sk_knn(est)
    elif name == "GaussianProcessRegressor":
        out = _sk_gp(est)
    elif hasattr(est, "coef_") and hasattr(est, "intercept_"):
        coef = np.asarray(est.coef_, dtype=np.float64).reshape(-1)
        intercept = np.asarray(est.intercept_, dtype=np.float64).reshape(-1)
        if intercept.size != 1:
            raise InputError(f"{name}: only single-output linear models can be compiled")
        out = ModelArrays("linear", coef.size, {"coef": coef, "intercept": intercept})
    else:
        raise InputError(f"cannot compile a {name}")
    out = ModelArrays(out.kind, out.n_features, out.arrays, out.meta, target)
    f = out.n_features
    if x_mean is not None:
        out.arrays["x_mean"] = np.asarray(x_mean, dtype=np.float64).reshape(f)
    if x_scale is not None:
        out.arrays["x_scale"] = np.asarray(x_scale, dtype=np.float64).reshape(f)
    return out


# ---------------------------------------------------------------------- tree ensembles
_Tree = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _concat_trees(
    trees: list[_Tree],
    n_features: int,
    base: float,
    meta: dict[str, Any],
) -> ModelArrays:
    """Join per-tree (feature, threshold, left, right, value) arrays into one ensemble (node
    indices tree-local, -1 at leaves; feature and threshold are ignored at leaves)."""
    feats, thrs, lefts, rights, vals, roots = [], [], [], [], [], []
    offset = 0
    for feature, threshold, left_, right_, value in trees:
        m = len(feature)
        left = np.asarray(left_).astype(np.int64)
        right = np.asarray(right_).astype(np.int64)
        if left.min(initial=0) < -1 or right.min(initial=0) < -1:
            raise InputError("tree children must be -1 (leaf) or a node index")
        leaf = left < 0
        roots.append(offset)
        feats.append(np.where(leaf, -1, feature).astype(np.int32))
        thrs.append(np.where(leaf, 0.0, threshold).astype(np.float64))
        lefts.append(np.where(leaf, -1, left + offset).astype(np.int32))
        rights.append(np.where(leaf, -1, right + offset).astype(np.int32))
        vals.append(np.where(leaf, value, 0.0).astype(np.float64))
        offset += m
    arrays: dict[str, np.ndarray] = {
        "feature": np.concatenate(feats),
        "threshold": np.concatenate(thrs),
        "left": np.concatenate(lefts),
        "right": np.concatenate(rights),
        "value": np.concatenate(vals),
        "roots": np.asarray(roots, dtype=np.int32),
        "base": np.asarray([base], dtype=np.float64),
    }
    return ModelArrays("trees", n_features, arrays, meta)


def _sk_tree(tree: Any, scale: float) -> _Tree:
    t = tree.tree_
    if t.n_outputs != 1:
        raise InputError("only single-output trees can be compiled")
    return (
        t.feature, t.threshold, t.children_left, t.children_right,
        t.value[:, 0, 0].astype(np.float64) * scale,
    )


def _sk_forest(trees: list[Any], scale: float, base: float) -> ModelArrays:
    # scikit-learn trees round the features to float32 and compare with float64 thresholds.
    meta = {"rule": "le", "input_dtype": "float32"}
    f = int(trees[0].n_features_in_)
    return _concat_trees([_sk_tree(t, scale) for t in trees], f, base, meta)


def _sk_gradient_boosting(est: Any) -> ModelArrays:
    f = int(est.n_features_in_)
    if isinstance(est.init_, str) and est.init_ == "zero":
        base = 0.0
    elif hasattr(est.init_, "constant_"):
        base = float(np.asarray(est.init_.predict(np.zeros((1, f)))).reshape(-1)[0])
    else:
        raise InputError("GradientBoostingRegressor with a non-constant init estimator cannot "
                         "be compiled")
    lr = float(est.learning_rate)
    trees = [_sk_tree(t, lr) for t in est.estimators_[:, 0]]
    return _concat_trees(trees, f, base, {"rule": "le", "input_dtype": "float32"})


def _sk_hist_gradient_boosting(est: Any) -> ModelArrays:
    link = type(getattr(est._loss, "link", None)).__name__
    if link not in ("IdentityLink", "NoneType"):
        raise InputError(f"HistGradientBoostingRegressor with a {link} cannot be compiled")
    f = int(est.n_features_in_)
    trees: list[_Tree] = []
    for (pred,) in est._predictors:
        nodes = pred.nodes
        if np.any(nodes["is_categorical"]):
            raise InputError("HistGradientBoostingRegressor with categorical splits is unsupported")
        leaf = nodes["is_leaf"].astype(bool)
        left = np.where(leaf, -1, nodes["left"].astype(np.int64))
        right = np.where(leaf, -1, nodes["right"].astype(np.int64))
        trees.append((nodes["feature_idx"], nodes["num_threshold"], left, right, nodes["value"]))
    base = float(np.asarray(est._baseline_prediction).reshape(-1)[0])
    return _concat_trees(trees, f, base, {"rule": "le", "input_dtype": "float64"})


#: Objectives whose prediction is the plain sum of the trees.
_LGB_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
_XGB_OBJECTIVES = ("reg:squarederror", "reg:linear", "reg:absoluteerror")


def _lightgbm(est: Any) -> ModelArrays:
    booster = est.booster_ if hasattr(est, "booster_") else est
    dump = booster.dump_model()
    f = int(dump["max_feature_idx"]) + 1
    if dump.get("num_class", 1) != 1 or dump.get("num_tree_per_iteration", 1) != 1:
        raise InputError("only single-output LightGBM models can be compiled")
    objective = str(dump.get("objective", "regression")).split()
    if objective[0] not in _LGB_OBJECTIVES or "sqrt" in objective:
        raise InputError(f"LightGBM objective {' '.join(objective)!r} cannot be compiled "
                         "(its prediction is not the sum of the trees)")
    if dump.get("average_output", False):
        raise InputError("LightGBM random-forest mode (averaged trees) cannot be compiled")
    trees: list[_Tree] = []
    for info in dump["tree_info"]:
        # Depth-first over the nested dump; leaf values already include the shrinkage.
        nodes: list[dict[str, Any]] = [info["tree_structure"]]
        feature, threshold, left, right, value = [0], [0.0], [-1], [-1], [0.0]
        stack = [0]
        while stack:
            i = stack.pop()
            node = nodes[i]
            if "split_index" not in node:
                if node.get("leaf_coeff"):
                    raise InputError("LightGBM linear trees cannot be compiled")
                value[i] = float(node.get("leaf_value", 0.0))
                continue
            if node.get("decision_type", "<=") != "<=":
                raise InputError("LightGBM categorical splits cannot be compiled")
            if node.get("missing_type", "None") == "Zero":
                raise InputError("LightGBM 'zero as missing' splits cannot be compiled")
            feature[i] = int(node["split_feature"])
            threshold[i] = float(node["threshold"])
            for side, child in (("left", node["left_child"]), ("right", node["right_child"])):
                j = len(nodes)
                nodes.append(child)
                feature.append(0)
                threshold.append(0.0)
                left.append(-1)
                right.append(-1)
                value.append(0.0)
                if side == "left":
                    left[i] = j
                else:
                    right[i] = j
                stack.append(j)
        trees.append((np.asarray(feature), np.asarray(threshold), np.asarray(left),
                      np.asarray(right), np.asarray(value)))
    return _concat_trees(trees, f, 0.0, {"rule": "le", "input_dtype": "float64"})


def _xgboost(est: Any) -> ModelArrays:
    """XGBoost's trees from its JSON model. Thresholds and leaves are float32 values (written as
    their shortest decimal form, rounded back here); inputs are compared as XGBoost does:
    rounded to float32, left when ``x < threshold``."""
    booster = est.get_booster() if hasattr(est, "get_booster") else est
    learner = json.loads(booster.save_raw("json"))["learner"]
    objective = learner["objective"]["name"]
    if objective not in _XGB_OBJECTIVES:
        raise InputError(f"XGBoost objective {objective!r} cannot be compiled")
    gb = learner["gradient_booster"]
    if gb.get("name") != "gbtree":
        raise InputError(f"XGBoost booster {gb.get('name')!r} cannot be compiled (only gbtree)")
    param = learner["learner_model_param"]
    if int(param.get("num_class", 0)) > 1 or int(param.get("num_target", 1)) != 1:
        raise InputError("only single-output XGBoost models can be compiled")
    base = float(np.float32(str(param["base_score"]).strip("[]")))
    trees: list[_Tree] = []
    for tree in gb["model"]["trees"]:
        left = np.asarray(tree["left_children"], np.int64)
        right = np.asarray(tree["right_children"], np.int64)
        if np.any(np.asarray(tree.get("split_type", [0] * len(left)), np.int64)[left >= 0]):
            raise InputError("XGBoost categorical splits cannot be compiled")
        # a leaf's split condition is its value, an inner node's the threshold
        cond = np.asarray(tree["split_conditions"], np.float64).astype(np.float32)
        cond = cond.astype(np.float64)
        trees.append((np.asarray(tree["split_indices"], np.int64), cond, left, right, cond))
    return _concat_trees(trees, int(param["num_feature"]), base,
                         {"rule": "lt", "input_dtype": "float32"})


# ---------------------------------------------------------------------- dense families
_ACTIVATIONS = {"relu", "tanh", "logistic", "identity"}


def _sk_mlp(est: Any) -> ModelArrays:
    if est.activation not in _ACTIVATIONS:
        raise InputError(f"MLP activation {est.activation!r} cannot be compiled")
    if est.out_activation_ != "identity":
        raise InputError("only MLPs with a linear output can be compiled")
    arrays: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        arrays[f"W{i}"] = np.ascontiguousarray(w, dtype=np.float64)
        arrays[f"b{i}"] = np.asarray(b, dtype=np.float64).reshape(-1)
    return ModelArrays("mlp", est.coefs_[0].shape[0], arrays,
                       {"activation": est.activation, "n_layers": len(est.coefs_)})


def _sk_knn(est: Any) -> ModelArrays:
    metric = est.effective_metric_
    p = (est.effective_metric_params_ or {}).get("p", 2)
    if not (metric == "euclidean" or (metric == "minkowski" and p == 2)):
        raise InputError(f"kNN metric {metric!r} cannot be compiled (only Euclidean)")
    if est.weights not in ("uniform", "distance"):
        raise InputError("kNN with callable weights cannot be compiled")
    X = np.ascontiguousarray(est._fit_X, dtype=np.float64)
    y = np.asarray(est._y, dtype=np.float64).reshape(-1)
    if y.size != X.shape[0]:
        raise InputError("only single-output kNN models can be compiled")
    return ModelArrays("knn", X.shape[1], {"X": X, "y": y},
                       {"k": int(est.n_neighbors), "weights": est.weights})


def _sk_gp(est: Any) -> ModelArrays:
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Product, Sum, WhiteKernel

    kernel = est.kernel_
    if isinstance(kernel, Sum) and isinstance(kernel.k2, WhiteKernel):
        kernel = kernel.k1  # white noise is zero between distinct points
    constant = 1.0
    if isinstance(kernel, Product) and isinstance(kernel.k1, ConstantKernel):
        constant, kernel = float(kernel.k1.constant_value), kernel.k2
    elif isinstance(kernel, Product) and isinstance(kernel.k2, ConstantKernel):
        constant, kernel = float(kernel.k2.constant_value), kernel.k1
    if not isinstance(kernel, RBF):
        raise InputError(f"GP kernel {est.kernel_} cannot be compiled (need [constant *] RBF)")
    X = np.ascontiguousarray(est.X_train_, dtype=np.float64)
    f = X.shape[1]
    ls = np.broadcast_to(np.asarray(kernel.length_scale, dtype=np.float64), (f,)).copy()
    alpha = np.asarray(est.alpha_, dtype=np.float64).reshape(-1)
    meta = {
        "constant": constant,
        "y_mean": float(np.asarray(est._y_train_mean).reshape(-1)[0]),
        "y_std": float(np.asarray(est._y_train_std).reshape(-1)[0]),
    }
    return ModelArrays("gp", f, {"X": X, "alpha": alpha, "length_scale": ls}, meta)
