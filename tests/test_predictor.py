"""Compiled predictor: every family equals the estimator's own predict and the NumPy twin;
fused genomes -> latency equals the Python encoder + model; bad input gives clear errors."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

from esm import InputError, spaces
from esm.predictor import ModelArrays, Predictor, reference
from esm.predictor.convert import from_estimator
from tests.conftest import fit_on_costs

sk = pytest.importorskip("sklearn")

from sklearn.ensemble import (  # noqa: E402
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import RBF, WhiteKernel  # noqa: E402
from sklearn.gaussian_process.kernels import ConstantKernel as C  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.neighbors import KNeighborsRegressor  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402
from sklearn.tree import DecisionTreeRegressor  # noqa: E402

HAVE_ENCODERS = importlib.util.find_spec("esm.surrogate.encoders") is not None


def _data(n: int = 300, f: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f)) * rng.uniform(0.5, 20, size=f) + rng.normal(size=f) * 5
    y = 3 + X[:, 0] * 0.3 + np.sin(X[:, 1]) + 0.1 * rng.normal(size=n) + 0.01 * X[:, 2] ** 2
    Xt = rng.normal(size=(2000, f)) * X.std(0) + X.mean(0)
    return X, y, Xt


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


ESTIMATORS = {
    "ridge": lambda: Ridge(alpha=0.5),
    "tree": lambda: DecisionTreeRegressor(max_depth=7, random_state=0),
    "random_forest": lambda: RandomForestRegressor(n_estimators=25, random_state=0),
    "extra_trees": lambda: ExtraTreesRegressor(n_estimators=25, random_state=0),
    "gradient_boosting": lambda: GradientBoostingRegressor(n_estimators=60, max_depth=4,
                                                           random_state=0),
    "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(max_iter=40, random_state=0),
    "mlp_relu": lambda: MLPRegressor(hidden_layer_sizes=(24, 12), max_iter=400, random_state=0),
    "mlp_tanh": lambda: MLPRegressor(hidden_layer_sizes=(16,), activation="tanh",
                                     max_iter=400, random_state=0),
    "mlp_logistic": lambda: MLPRegressor(hidden_layer_sizes=(16,), activation="logistic",
                                         max_iter=300, random_state=0),
    "knn_uniform": lambda: KNeighborsRegressor(n_neighbors=5),
    "knn_distance": lambda: KNeighborsRegressor(n_neighbors=7, weights="distance"),
    "gp": lambda: GaussianProcessRegressor(C() * RBF(np.ones(6)) + WhiteKernel(),
                                           normalize_y=True, random_state=0),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_family_equals_estimator(name: str) -> None:
    X, y, Xt = _data()
    mean, scale = X.mean(0), X.std(0)
    est = ESTIMATORS[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit((X - mean) / scale, y)
    want = est.predict((Xt - mean) / scale)
    m = from_estimator(est, x_mean=mean, x_scale=scale)
    got = m.predict(Xt)
    assert got.dtype == np.float64 and got.shape == (len(Xt),)
    assert _rel(got, want) < 1e-9
    np.testing.assert_allclose(reference.predict(m, Xt), want, rtol=1e-9)
    # threads and chunk sizes do not change anything
    np.testing.assert_array_equal(m.predict(Xt, threads=1, chunk=7), got)
    np.testing.assert_array_equal(m.predict(Xt, threads=3, chunk=100000), got)


def test_log_target() -> None:
    X, y, Xt = _data()
    est = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, np.log(np.abs(y) + 1))
    m = from_estimator(est, target="log")
    np.testing.assert_allclose(m.predict(Xt), np.exp(est.predict(Xt)), rtol=1e-12)


def test_lightgbm() -> None:
    lgb = pytest.importorskip("lightgbm")
    X, y, Xt = _data()
    est = lgb.LGBMRegressor(n_estimators=40, num_leaves=15, verbose=-1).fit(X, y)
    m = from_estimator(est)
    assert _rel(m.predict(Xt), est.predict(Xt)) < 1e-9


def test_xgboost() -> None:
    xgb = pytest.importorskip("xgboost")
    X, y, Xt = _data()
    est = xgb.XGBRegressor(n_estimators=40, max_depth=5).fit(X, y)
    m = from_estimator(est)
    # XGBoost sums its trees in float32; the compiled ensemble sums in float64.
    np.testing.assert_allclose(m.predict(Xt), est.predict(Xt), rtol=2e-5, atol=1e-5)
    leaves = est.get_booster().predict(xgb.DMatrix(Xt), pred_leaf=True)
    assert leaves.shape[1] == 40  # same trees; decisions are checked through the values


# ------------------------------------------------------------------ bad input
def _small_trees() -> ModelArrays:
    X, y, _ = _data(100, 4)
    return from_estimator(DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y))


def test_feature_input_conversion_and_errors() -> None:
    m = _small_trees()
    cm = m.compile()
    X = np.random.default_rng(0).normal(size=(50, 8))
    ref = cm.predict(np.ascontiguousarray(X[:, ::2]))
    np.testing.assert_array_equal(cm.predict(X[:, ::2]), ref)  # strided: converted
    np.testing.assert_array_equal(cm.predict(np.asfortranarray(X[:, :4])), cm.predict(X[:, :4]))
    np.testing.assert_array_equal(cm.predict(X[:, ::2].astype(np.float32)),
                                  cm.predict(X[:, ::2].astype(np.float32).astype(np.float64)))
    ones = np.ones((3, 4))
    np.testing.assert_array_equal(cm.predict(ones.astype(np.int64)), cm.predict(ones))
    assert cm.predict(np.zeros((0, 4))).shape == (0,)
    with pytest.raises(ValueError, match=r"shape \[N, 4\]"):
        cm.predict(X)
    with pytest.raises(ValueError, match=r"shape \[N, 4\]"):
        cm.predict(X[0, :4])
    with pytest.raises(ValueError, match="numeric"):
        cm.predict(np.full((2, 4), "a"))
    with pytest.raises(ValueError, match="not finite"):
        cm.predict(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="NumPy array"):
        cm.predict([[1, 2, 3, 4]])
    with pytest.raises(InputError):
        m.predict(X)


def _broken(**changes: object) -> ModelArrays:
    m = _small_trees()
    arrays = dict(m.arrays)
    for k, v in changes.items():
        arrays[k] = v  # type: ignore[assignment]
    return ModelArrays(m.kind, m.n_features, arrays, dict(m.meta))


def test_malformed_trees_are_refused() -> None:
    m = _small_trees()
    left, right = m.arrays["left"].copy(), m.arrays["right"].copy()
    inner = int(np.flatnonzero(left >= 0)[1])
    cases = {}
    bad = left.copy()
    bad[inner] = len(left) + 5
    cases["out of range"] = _broken(left=bad)
    bad = left.copy()
    bad[inner] = 0  # back to the root: a cycle
    cases["reached twice"] = _broken(left=bad)
    bad = right.copy()
    bad[inner] = left[inner]  # both children the same node
    cases["reached twice "] = _broken(right=bad)
    feat = m.arrays["feature"].copy()
    feat[0] = 99
    cases["splits on feature 99"] = _broken(feature=feat)
    cases["same length"] = _broken(value=m.arrays["value"][:-1])
    cases["root 0 is 1000"] = _broken(roots=np.array([1000], np.int32))
    cases["must hold integers"] = _broken(left=left.astype(np.float64))
    thr = m.arrays["threshold"].copy()
    thr[0] = np.nan
    cases["NaN threshold"] = _broken(threshold=thr)
    for msg, broken in cases.items():
        with pytest.raises(InputError, match=msg.strip()):
            broken.compile()
    with pytest.raises(InputError, match="no array 'roots'"):
        ModelArrays("trees", 4, {k: v for k, v in m.arrays.items() if k != "roots"},
                    m.meta).compile()
    with pytest.raises(InputError, match="rule"):
        ModelArrays("trees", 4, dict(m.arrays), {"rule": "ge"}).compile()
    with pytest.raises(InputError, match="unknown model kind"):
        ModelArrays("svm", 4, {})


def test_malformed_dense_models_are_refused() -> None:
    with pytest.raises(InputError, match="'coef' must have 3"):
        ModelArrays("linear", 3, {"coef": np.ones(2), "intercept": np.zeros(1)}).compile()
    with pytest.raises(InputError, match="non-zero"):
        ModelArrays("linear", 2, {"coef": np.ones(2), "intercept": np.zeros(1),
                                  "x_scale": np.array([1.0, 0.0])}).compile()
    with pytest.raises(InputError, match="k must be in"):
        ModelArrays("knn", 2, {"X": np.zeros((3, 2)), "y": np.zeros(3)}, {"k": 4}).compile()
    with pytest.raises(InputError, match="rows, expected 2"):
        ModelArrays("mlp", 2, {"W0": np.ones((3, 1)), "b0": np.zeros(1)}).compile()
    with pytest.raises(InputError, match="one output"):
        ModelArrays("mlp", 2, {"W0": np.ones((2, 2)), "b0": np.zeros(2)}).compile()
    with pytest.raises(InputError, match="length_scale"):
        ModelArrays("gp", 2, {"X": np.zeros((3, 2)), "alpha": np.zeros(3),
                              "length_scale": np.array([1.0, -1.0])}).compile()


# ------------------------------------------------------------------ fused genomes -> latency
needs_encoders = pytest.mark.skipif(not HAVE_ENCODERS, reason="esm.surrogate.encoders missing")


@pytest.fixture(scope="module")
def ofa() -> spaces.SearchSpace:
    return spaces.get("ofa-mbv3")


@needs_encoders
@pytest.mark.parametrize("name", ["onehot", "lut", "stats", "layerwise", "roofline", "fcc"])
def test_compiled_encoder_equals_python(ofa: spaces.SearchSpace, name: str) -> None:
    from esm.predictor import plan
    from esm.surrogate import encoders

    enc = encoders.get_encoder(name, ofa)
    f = plan.fused(enc)
    g = ofa.sample(3000, seed=11)
    np.testing.assert_array_equal(np.asarray(f.encode(g, 2)), enc.transform(g))


@needs_encoders
def test_compiled_roofline_with_custom_device(ofa: spaces.SearchSpace) -> None:
    from esm.predictor import plan
    from esm.surrogate import encoders

    enc = encoders.get_encoder("fcc", ofa, device={"name": "v100", "launch_us": 20.0}, batch=64,
                               layer_fields=["params", "layers"])
    g = ofa.sample(500, seed=1)
    np.testing.assert_array_equal(np.asarray(plan.fused(enc).encode(g, 1)), enc.transform(g))


def _fit(ofa: spaces.SearchSpace, encoding: str, est: object, n: int = 400) -> tuple:
    return fit_on_costs(ofa, encoding, est, n, seed=3)


@needs_encoders
@pytest.mark.parametrize(
    ("encoding", "make"),
    [("lut", lambda: Ridge(alpha=1.0)), ("fcc", lambda: Ridge(alpha=1.0)),
     ("fcc", lambda: GradientBoostingRegressor(n_estimators=30, max_depth=5, random_state=0)),
     ("onehot", lambda: RandomForestRegressor(n_estimators=10, random_state=0)),
     ("stats", lambda: KNeighborsRegressor(n_neighbors=3, weights="distance"))],
)
def test_fused_equals_python_pipeline(ofa: spaces.SearchSpace, encoding: str, make) -> None:  # type: ignore[no-untyped-def]
    est = make()
    enc, m, mean, scale = _fit(ofa, encoding, est)
    p = Predictor(m, enc)
    assert p.fused, p.fused_reason
    g = ofa.sample(3000, seed=21)
    want = np.exp(est.predict((enc.transform(g) - mean) / scale))
    got = p.predict(g)
    assert _rel(got, want) < 1e-9
    np.testing.assert_array_equal(p.predict(g, threads=1, chunk=333), got)
    # streaming: one output per input batch, same values
    parts = list(p.predict_stream(np.array_split(g, 4)))
    assert [len(q) for q in parts] == [750] * 4
    np.testing.assert_array_equal(np.concatenate(parts), got)


@needs_encoders
def test_fused_genome_input_handling(ofa: spaces.SearchSpace) -> None:
    enc, m, _, _ = _fit(ofa, "lut", Ridge())
    p = Predictor(m, enc)
    g = ofa.sample(64, seed=2)
    ref = p.predict(g)
    np.testing.assert_array_equal(p.predict(g.astype(np.int64)), ref)
    np.testing.assert_array_equal(p.predict(np.asfortranarray(g)), ref)
    np.testing.assert_array_equal(p.predict(g.astype(np.uint8)), ref)
    np.testing.assert_array_equal(p.predict(g.astype(np.float64)), ref)  # integral floats
    np.testing.assert_array_equal(p.predict(g[0]), ref[:1])
    assert p.predict(np.zeros((0, ofa.genome_length), np.int32)).shape == (0,)
    bad = g.copy()
    bad[5, 3] = 7
    with pytest.raises(InputError, match="genome 5, gene 3"):
        p.predict(bad)
    bad = g.astype(np.int64)
    bad[1, 0] = 2**40
    with pytest.raises(InputError, match="out of range"):
        p.predict(bad)
    with pytest.raises(InputError, match=r"\[N, 46\]"):
        p.predict(g[:, :-1])
    with pytest.raises(InputError):
        p.predict(g + 0.5)
    with pytest.raises(InputError, match="chunk"):
        p.predict(g, chunk=0)


@needs_encoders
def test_mismatched_encoder_and_model(ofa: spaces.SearchSpace) -> None:
    from esm.surrogate import encoders

    _, m, _, _ = _fit(ofa, "stats", Ridge())
    with pytest.raises(InputError, match="features"):
        Predictor(m, encoders.get_encoder("onehot", ofa))


def test_gcn_equals_numpy_twin() -> None:
    rng = np.random.default_rng(4)
    V, C, F = 6, 5, 30
    A = rng.uniform(size=(V, V))
    A = A / A.sum(1, keepdims=True)
    idx = rng.integers(-1, F, size=(V, C)).astype(np.int32)
    T = 3
    arrays = {"adjacency": A, "node_index": idx, "node_const": rng.normal(size=(V, T)),
              "W0": rng.normal(size=(C + T, 8)),
              "b0": rng.normal(size=8), "W1": rng.normal(size=(8, 4)), "b1": rng.normal(size=4),
              "Wout": rng.normal(size=(4, 1)), "bout": np.array([0.3]),
              "x_mean": rng.normal(size=F), "x_scale": rng.uniform(0.5, 2, size=F)}
    m = ModelArrays("gcn", F, arrays, {"n_layers": 2})
    X = rng.normal(size=(500, F))
    np.testing.assert_allclose(m.predict(X), reference.predict(m, X), rtol=1e-10, atol=1e-12)
    bad = dict(arrays, node_index=np.full((V, C), F, np.int32))
    with pytest.raises(InputError, match="node_index"):
        ModelArrays("gcn", F, bad, {}).compile()


def _f32_le_threshold(threshold: np.ndarray) -> np.ndarray:
    """float64 t' with x <= t' exactly when float32(x) <= threshold (how surrogate files
    written before issue 20 store scikit-learn thresholds)."""
    thr = np.asarray(threshold, dtype=np.float64)
    f = thr.astype(np.float32)
    f = np.where(f.astype(np.float64) > thr, np.nextafter(f, np.float32(-np.inf)), f)
    f = f.astype(np.float32)
    mid = (f.astype(np.float64) + np.nextafter(f, np.float32(np.inf)).astype(np.float64)) / 2.0
    return np.where((f.view(np.int32) & 1) == 0, mid, np.nextafter(mid, -np.inf))


@pytest.mark.parametrize("boundaries", [True, False])
def test_trees_exact_at_thresholds(boundaries: bool) -> None:
    """Inputs a few ulps around every threshold: same leaves as scikit-learn (which rounds
    inputs to float32), whether the thresholds are exported as float32 rounding boundaries
    (float64 rule, run on the float32 path) or kept with input_dtype float32."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 5))
    y = X[:, 0] + np.sin(3 * X[:, 1])
    gb = GradientBoostingRegressor(n_estimators=40, max_depth=5, random_state=0).fit(X, y)
    m = from_estimator(gb)
    if boundaries:
        inner = m.arrays["left"] >= 0
        m.arrays["threshold"] = np.where(inner, _f32_le_threshold(m.arrays["threshold"]), 0.0)
        m.meta["input_dtype"] = "float64"
    t = gb.estimators_[0, 0].tree_.threshold
    t = np.concatenate([e[0].tree_.threshold for e in gb.estimators_])
    t = t[t > -2]
    n = 40000
    Xt = rng.normal(size=(n, 5))
    for j in range(5):
        pick = rng.choice(t, n)
        ulps = rng.integers(-3, 4, n) * np.spacing(pick.astype(np.float32)).astype(np.float64)
        near = pick + ulps * rng.choice([1.0, 0.5, 1e-3], n)
        Xt[:, j] = np.where(rng.random(n) < 0.6, near, Xt[:, j])
    np.testing.assert_allclose(m.predict(Xt), gb.predict(Xt), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(reference.predict(m, Xt), gb.predict(Xt), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ one array form
# Behaviours on which the two former export stacks (esm.surrogate.export and esm.predictor)
# disagreed; the merged converters, checker and reference take the stricter or exact one.
def _stump(threshold: float, **meta: str) -> ModelArrays:
    arrays = {"feature": np.array([0, -1, -1], np.int32),
              "threshold": np.array([threshold, 0.0, 0.0]),
              "left": np.array([1, -1, -1], np.int32), "right": np.array([2, -1, -1], np.int32),
              "value": np.array([0.0, 1.0, 2.0]), "roots": np.array([0], np.int32),
              "base": np.zeros(1)}
    return ModelArrays("trees", 1, arrays, dict(meta))


def test_reference_honours_input_dtype() -> None:
    # x is above t in float64 but rounds to float32(t) <= t: float32 inputs go left
    t = np.nextafter(float(np.float32(0.1)), 1.0)
    x = np.nextafter(t, 1.0)
    assert float(np.float32(x)) <= t < x
    X = np.array([[x]])
    for dtype, want in (("float32", 1.0), ("float64", 2.0)):
        m = _stump(t, input_dtype=dtype)
        assert reference.predict(m, X)[0] == want == m.predict(X)[0]


def test_reference_knn_uses_exact_distances() -> None:
    # far from the origin |a|^2 + |b|^2 - 2ab loses the small differences: only exact
    # differences (what the compiled model computes) find the true nearest neighbour
    X = np.array([[1e8 + 1.0], [1e8 - 1.25]])
    m = ModelArrays("knn", 1, {"X": X, "y": np.array([1.0, 2.0])}, {"k": 1})
    Xq = np.array([[1e8], [1e8 + 0.5], [1e8 - 0.25]])
    np.testing.assert_array_equal(reference.predict(m, Xq), [1.0, 1.0, 2.0])
    np.testing.assert_array_equal(m.predict(Xq), reference.predict(m, Xq))


def test_check_refuses_what_the_reference_cannot_run() -> None:
    m = _small_trees()
    m.check()
    cases = {
        "n_layers": ModelArrays("mlp", 2, {"W0": np.ones((2, 1)), "b0": np.zeros(1)},
                                {"n_layers": 2}),
        "activation": ModelArrays("mlp", 2, {"W0": np.ones((2, 1)), "b0": np.zeros(1)},
                                  {"activation": "swish"}),
        "rule": ModelArrays("trees", 4, dict(m.arrays), {"rule": "ge"}),
        "input_dtype": ModelArrays("trees", 4, dict(m.arrays), {"input_dtype": "float16"}),
        "k must be in": ModelArrays("knn", 2, {"X": np.zeros((3, 2)), "y": np.zeros(3)},
                                    {"k": 4}),
        "follow their parent": _broken(left=np.where(m.arrays["left"] >= 0, 0,
                                                     m.arrays["left"]).astype(np.int32)),
        "lacks roots": ModelArrays("trees", 4, {k: v for k, v in m.arrays.items()
                                                if k != "roots"}),
    }
    for msg, bad in cases.items():
        with pytest.raises(InputError, match=msg):
            bad.check()
    # a graph network without constant node channels is complete (both evaluators agree)
    rng = np.random.default_rng(0)
    gcn = ModelArrays("gcn", 4, {"adjacency": np.eye(2), "node_index": np.array([[0, 1], [2, 3]]),
                                 "W0": rng.normal(size=(2, 3)), "b0": np.zeros(3),
                                 "Wout": np.ones((3, 1)), "bout": np.zeros(1)})
    X = rng.normal(size=(20, 4))
    np.testing.assert_allclose(gcn.check().predict(X), reference.predict(gcn, X), rtol=1e-12)


def test_converters_refuse_what_a_tree_walk_cannot_reproduce() -> None:
    X, y, _ = _data(300, 4)
    X[::3, 0] = 0.0
    pos = np.abs(y) + 0.1
    from sklearn.linear_model import LinearRegression

    gb = GradientBoostingRegressor(n_estimators=5, init=LinearRegression()).fit(X, y)
    with pytest.raises(InputError, match="init"):
        from_estimator(gb)
    if importlib.util.find_spec("lightgbm"):
        import lightgbm as lgb

        for params, msg in (({"zero_as_missing": True}, "zero as missing"),
                            ({"objective": "poisson"}, "objective"),
                            ({"reg_sqrt": True}, "objective"),
                            ({"linear_tree": True}, "linear trees"),
                            ({"boosting_type": "rf", "bagging_freq": 1,
                              "bagging_fraction": 0.7}, "random-forest")):
            est = lgb.LGBMRegressor(n_estimators=5, verbose=-1, **params).fit(X, pos)
            with pytest.raises(InputError, match=msg):
                from_estimator(est)
        est = lgb.LGBMRegressor(n_estimators=5, verbose=-1, min_data_per_group=5,
                                cat_smooth=1).fit(np.c_[np.arange(300) % 4, X[:, 1:]], y,
                                                  categorical_feature=[0])
        with pytest.raises(InputError, match="categorical"):
            from_estimator(est)
    if importlib.util.find_spec("xgboost"):
        import xgboost as xgb

        for params, msg in (({"objective": "count:poisson"}, "objective"),
                            ({"booster": "dart"}, "booster"),
                            ({"booster": "gblinear"}, "booster")):
            with pytest.raises(InputError, match=msg):
                from_estimator(xgb.XGBRegressor(n_estimators=5, **params).fit(X, pos))
        dm = xgb.DMatrix(np.c_[np.arange(300) % 4, X[:, 1:]], label=y,
                         feature_types=["c", "q", "q", "q"], enable_categorical=True)
        booster = xgb.train({"tree_method": "hist", "max_cat_to_onehot": 1}, dm, 5)
        with pytest.raises(InputError, match="categorical"):
            from_estimator(booster)


def test_xgboost_leaves_and_thresholds_are_its_float32_values() -> None:
    xgb = pytest.importorskip("xgboost")
    X, y, Xt = _data()
    est = xgb.XGBRegressor(n_estimators=30, max_depth=4, base_score=0.1234567).fit(X, y)
    m = from_estimator(est)
    a = m.arrays
    for key in ("value", "threshold", "base"):
        np.testing.assert_array_equal(a[key].astype(np.float32).astype(np.float64), a[key])
    # the same leaves as XGBoost's own walk, on inputs at and around every threshold
    inner = a["left"] >= 0
    near = np.repeat(Xt[:200], 3, axis=0)
    for j in range(X.shape[1]):
        t = a["threshold"][inner & (a["feature"] == j)]
        pick = np.random.default_rng(j).choice(t, len(near))
        near[:, j] = pick + np.random.default_rng(j).integers(-1, 2, len(near)) * np.spacing(
            pick.astype(np.float32))
    leaves = est.get_booster().predict(xgb.DMatrix(near), pred_leaf=True)
    # XGBoost's leaf ids are tree-local node ids; the array form keeps them (offset by root)
    node = np.zeros_like(leaves, dtype=np.int64)
    roots = a["roots"].astype(np.int64)
    xs = near.astype(np.float32).astype(np.float64)
    for k, root in enumerate(roots):
        i = np.full(len(near), root)
        while True:
            go = a["left"][i] >= 0
            if not go.any():
                break
            left = xs[np.arange(len(near)), np.maximum(a["feature"][i], 0)] < a["threshold"][i]
            i = np.where(go, np.where(left, a["left"][i], a["right"][i]), i)
        node[:, k] = i - root
    np.testing.assert_array_equal(node, leaves)
    np.testing.assert_allclose(m.predict(near), est.predict(near), rtol=2e-6, atol=1e-6)
