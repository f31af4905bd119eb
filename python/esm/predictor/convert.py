"""Convert fitted regressors (scikit-learn, LightGBM, XGBoost) into :class:`ModelArrays`.

The conversion reads the estimator's learned attributes; the result predicts exactly what
the estimator's own ``predict`` does on the same features (up to float64 rounding of sums).
Pass ``x_mean``/``x_scale`` when the estimator was fitted on standardised features; then the
compiled model takes raw features.
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
    out.target = target
    f = out.n_features
    if x_mean is not None:
        out.arrays["x_mean"] = np.asarray(x_mean, dtype=np.float64).reshape(f)
    if x_scale is not None:
        out.arrays["x_scale"] = np.asarray(x_scale, dtype=np.float64).reshape(f)
    return out


# ---------------------------------------------------------------------- tree ensembles
Tree = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _concat_trees(
    trees: list[Tree],
    n_features: int,
    base: float,
    meta: dict[str, Any],
) -> ModelArrays:
    """Join per-tree (feature, threshold, left, right, value) arrays into one ensemble."""
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
        feats.append(np.where(leaf, 0, feature).astype(np.int32))
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


def _sk_tree(tree: Any, scale: float) -> Tree:
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
    if est.init_ == "zero":
        base = 0.0
    else:
        base = float(np.asarray(est.init_.predict(np.zeros((1, f)))).reshape(-1)[0])
    lr = float(est.learning_rate)
    trees = [_sk_tree(t, lr) for t in est.estimators_[:, 0]]
    return _concat_trees(trees, f, base, {"rule": "le", "input_dtype": "float32"})


def _sk_hist_gradient_boosting(est: Any) -> ModelArrays:
    link = type(getattr(est._loss, "link", None)).__name__
    if link not in ("IdentityLink", "NoneType"):
        raise InputError(f"HistGradientBoostingRegressor with a {link} cannot be compiled")
    f = int(est.n_features_in_)
    trees: list[Tree] = []
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


def _lightgbm(est: Any) -> ModelArrays:
    booster = est.booster_ if hasattr(est, "booster_") else est
    dump = booster.dump_model()
    f = int(dump["max_feature_idx"]) + 1
    if dump.get("num_class", 1) != 1:
        raise InputError("only single-output LightGBM models can be compiled")
    trees: list[Tree] = []
    for info in dump["tree_info"]:
        # Depth-first over the nested dump; leaf values already include the shrinkage.
        nodes: list[dict[str, Any]] = [info["tree_structure"]]
        feature, threshold, left, right, value = [0], [0.0], [-1], [-1], [0.0]
        stack = [0]
        while stack:
            i = stack.pop()
            node = nodes[i]
            if "split_index" not in node:
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
    booster = est.get_booster() if hasattr(est, "get_booster") else est
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    if objective not in ("reg:squarederror", "reg:linear", "reg:absoluteerror"):
        raise InputError(f"XGBoost objective {objective!r} cannot be compiled")
    base_score = config["learner"]["learner_model_param"]["base_score"]
    base = float(np.asarray(json.loads(base_score) if base_score.startswith("[") else
                            float(base_score)).reshape(-1)[0])
    f = int(booster.num_features())
    names = list(booster.feature_names or [])
    trees: list[Tree] = []
    for text in booster.get_dump(dump_format="json"):
        nodes: dict[int, dict[str, Any]] = {}
        stack = [json.loads(text)]
        while stack:
            node = stack.pop()
            nodes[int(node["nodeid"])] = node
            stack.extend(node.get("children", []))
        m = max(nodes) + 1
        feature = np.zeros(m, np.int64)
        threshold = np.zeros(m)
        left = np.full(m, -1, np.int64)
        right = np.full(m, -1, np.int64)
        value = np.zeros(m)
        for i, node in nodes.items():
            if "leaf" in node:
                value[i] = float(node["leaf"])
                continue
            split = str(node["split"])
            if split.startswith("f") and split[1:].isdigit():
                feature[i] = int(split[1:])
            else:
                feature[i] = names.index(split)
            threshold[i] = float(np.float32(node["split_condition"]))
            left[i], right[i] = int(node["yes"]), int(node["no"])
        trees.append((feature, threshold, left, right, value))
    return _concat_trees(trees, f, base, {"rule": "lt", "input_dtype": "float32"})


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
    return ModelArrays("mlp", est.coefs_[0].shape[0], arrays, {"activation": est.activation})


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
