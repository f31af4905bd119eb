"""Compiled tree ensembles: every layout path equals the estimator (or the NumPy twin).

The compiled trees run on bins (uint8 / uint16 threshold indices, float fallback beyond 65534
thresholds of one feature), complete-tree layout up to depth 8 and breadth-first layout with
early exit deeper; genomes through a one-hot encoder take the one-hot path, where splits are
decided in advance for 0 and 1 (constant splits removed, inverted ones swapped) and each tree
is either walked or evaluated bit-sliced (64 rows per word). These tests drive each of those
paths and compare with scikit-learn / LightGBM / XGBoost / the twin.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from esm import spaces
from esm.predictor import ModelArrays, Predictor, reference
from esm.predictor.convert import from_estimator
from tests.conftest import fit_on_costs

pytest.importorskip("sklearn")

from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeRegressor

HAVE_ENCODERS = importlib.util.find_spec("esm.surrogate.encoders") is not None
needs_encoders = pytest.mark.skipif(not HAVE_ENCODERS, reason="esm.surrogate.encoders missing")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _tree(feature: list[int], threshold: list[float], left: list[int], right: list[int],
          value: list[float]) -> tuple[np.ndarray, ...]:
    return (np.asarray(feature, np.int32), np.asarray(threshold, np.float64),
            np.asarray(left, np.int32), np.asarray(right, np.int32),
            np.asarray(value, np.float64))


def _ensemble(trees: list[tuple[np.ndarray, ...]], f: int, base: float = 0.0,
              **meta: str) -> ModelArrays:
    feats, thrs, lefts, rights, vals, roots = [], [], [], [], [], []
    off = 0
    for feature, threshold, left, right, value in trees:
        roots.append(off)
        feats.append(feature)
        thrs.append(threshold)
        lefts.append(np.where(left < 0, -1, left + off))
        rights.append(np.where(right < 0, -1, right + off))
        vals.append(value)
        off += len(feature)
    arrays = {
        "feature": np.concatenate(feats).astype(np.int32),
        "threshold": np.concatenate(thrs),
        "left": np.concatenate(lefts).astype(np.int32),
        "right": np.concatenate(rights).astype(np.int32),
        "value": np.concatenate(vals),
        "roots": np.asarray(roots, np.int32),
        "base": np.asarray([base]),
    }
    return ModelArrays("trees", f, arrays, dict(meta))


def _search_tree(thresholds: np.ndarray, feature: int = 0) -> tuple[np.ndarray, ...]:
    """A balanced tree over sorted thresholds of one feature; leaf k holds k (its bin)."""
    feat: list[int] = []
    thr: list[float] = []
    left: list[int] = []
    right: list[int] = []
    val: list[float] = []

    def build(lo: int, hi: int) -> int:  # thresholds[lo:hi], leaves lo..hi
        me = len(feat)
        feat.append(feature)
        thr.append(0.0)
        left.append(-1)
        right.append(-1)
        val.append(0.0)
        if lo == hi:
            val[me] = float(lo)
            return me
        mid = (lo + hi) // 2
        thr[me] = float(thresholds[mid])
        left[me] = build(lo, mid)
        right[me] = build(mid + 1, hi)
        return me

    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10000))
    try:
        build(0, len(thresholds))
    finally:
        sys.setrecursionlimit(old)
    return _tree(feat, thr, left, right, val)


@pytest.mark.parametrize("count", [200, 300, 70000])
def test_many_thresholds_per_feature(count: int) -> None:
    """uint8 bins (<= 254 thresholds), uint16 bins, and the float walk beyond 65534."""
    rng = np.random.default_rng(count)
    t = np.unique(rng.normal(size=count))
    m = _ensemble([_search_tree(t), _search_tree(np.sort(rng.normal(size=50)), 1)], 2)
    col = np.concatenate([rng.normal(size=3000), t[:500], np.nextafter(t[:500], np.inf)])
    x = np.column_stack([col, rng.normal(size=len(col))])
    np.testing.assert_array_equal(m.predict(x), reference.predict(m, x))
    # alone, the search tree's leaf is the number of thresholds below x (x <= t goes left)
    alone = _ensemble([_search_tree(t)], 2)
    np.testing.assert_array_equal(alone.predict(x),
                                  np.searchsorted(t, x[:, 0], side="left").astype(np.float64))


def test_single_leaf_and_mixed_depths() -> None:
    """Single-leaf trees, depth 1, a complete-layout tree and a deep (> 8) chain."""
    leaf = _tree([0], [0.0], [-1], [-1], [0.25])
    stump = _tree([1, 0, 0], [0.5, 0, 0], [1, -1, -1], [2, -1, -1], [0, -1.0, 2.0])
    depth = 14  # a chain: node i splits feature i % 3 at i / 10, right child is a leaf
    feat, thr, left, right, val = [], [], [], [], []
    for i in range(depth):
        me = len(feat)
        feat += [i % 3, 0]
        thr += [i / 10 - 0.5, 0.0]
        left += [me + 2, -1]  # the next split, or the final leaf
        right += [me + 1, -1]
        val += [0.0, float(i)]
    feat.append(0)
    thr.append(0.0)
    left.append(-1)
    right.append(-1)
    val.append(-5.0)
    chain = _tree(feat, thr, left, right, val)
    m = _ensemble([leaf, stump, chain, leaf], 3, base=1.5)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.5, 1.5, size=(5000, 3))
    np.testing.assert_allclose(m.predict(x), reference.predict(m, x), rtol=1e-15, atol=1e-15)
    only_leaves = _ensemble([leaf, leaf], 3)
    np.testing.assert_array_equal(only_leaves.predict(x), np.full(len(x), 0.5))


@pytest.mark.parametrize("rows", [1, 2, 15, 16, 17, 255, 256, 257, 1000])
def test_partial_groups_and_blocks(rows: int) -> None:
    """Any batch size (partial lock-step groups, partial blocks) gives the bulk result."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 5))
    y = X[:, 0] + np.sin(2 * X[:, 1])
    est = GradientBoostingRegressor(n_estimators=30, max_depth=6, random_state=0).fit(X, y)
    m = from_estimator(est)
    cm = m.compile()
    Xt = rng.normal(size=(1000, 5))
    bulk = np.asarray(cm.predict(Xt, 2, 1 << 16))
    np.testing.assert_array_equal(np.asarray(cm.predict(Xt[:rows], 2, 1 << 16)), bulk[:rows])
    np.testing.assert_array_equal(np.asarray(cm.predict(Xt[:rows], 1, 7)), bulk[:rows])
    np.testing.assert_allclose(bulk, est.predict(Xt), rtol=1e-12)


@pytest.mark.parametrize(
    "make",
    [lambda: DecisionTreeRegressor(random_state=0),  # unbalanced, depth > 8
     lambda: ExtraTreesRegressor(n_estimators=8, random_state=0),
     lambda: HistGradientBoostingRegressor(max_iter=20, max_leaf_nodes=63, random_state=0)],
)
def test_deep_unbalanced_dense(make) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1500, 6)) * [1, 10, 0.1, 3, 1, 100]
    y = np.sin(X[:, 0] * 3) + X[:, 1] * X[:, 2] + rng.normal(scale=0.1, size=1500)
    est = make().fit(X, y)
    m = from_estimator(est)
    Xt = rng.normal(size=(4000, 6)) * [1, 10, 0.1, 3, 1, 100]
    assert _rel(m.predict(Xt), est.predict(Xt)) < 1e-12


# ------------------------------------------------------------------ one-hot path (genomes)
@pytest.fixture(scope="module")
def ofa() -> spaces.SearchSpace:
    return spaces.get("ofa-mbv3")


def _onehot_fit(ofa: spaces.SearchSpace, est: object, n: int = 600) -> tuple:
    return fit_on_costs(ofa, "onehot", est, n, seed=4)


@needs_encoders
@pytest.mark.parametrize(
    "make",
    [lambda: GradientBoostingRegressor(n_estimators=25, max_depth=8, random_state=0),
     lambda: DecisionTreeRegressor(random_state=0),  # deep, unbalanced
     lambda: ExtraTreesRegressor(n_estimators=6, random_state=0),  # random thresholds
     lambda: RandomForestRegressor(n_estimators=6, max_depth=12, random_state=0),
     lambda: HistGradientBoostingRegressor(max_iter=15, max_leaf_nodes=40, random_state=0)],
)
def test_onehot_path_equals_estimator(ofa: spaces.SearchSpace, make) -> None:  # type: ignore[no-untyped-def]
    est = make()
    enc, m, mean, scale = _onehot_fit(ofa, est)
    p = Predictor(m, enc)
    assert p.fused, p.fused_reason
    g = ofa.sample(2000, seed=8)
    X = enc.transform(g)
    want = np.exp(est.predict((X - mean) / scale))
    got = p.predict(g)
    assert _rel(got, want) < 1e-12
    # the dense path (features in) agrees bit for bit with the one-hot path (genomes in)
    np.testing.assert_array_equal(p.predict_features(X), got)
    for rows in (1, 3, 17):
        np.testing.assert_array_equal(p.predict(g[:rows]), got[:rows])
    np.testing.assert_array_equal(p.predict(g, threads=1, chunk=100), got)


@needs_encoders
def test_onehot_path_constant_and_inverted_splits(ofa: spaces.SearchSpace) -> None:
    """Splits that send 0 and 1 the same way (thresholds outside, infinite scale) are removed,
    splits where 1 goes left (negative scale) are swapped: same results as the dense walk."""
    from esm.surrogate import encoders

    enc = encoders.get_encoder("onehot", ofa)
    F = enc.n_features
    rng = np.random.default_rng(3)
    trees = []
    for _ in range(30):
        # a random full tree of depth 6 on random columns, thresholds inside and outside [0, 1]
        n_inner = 2**6 - 1
        feat = rng.integers(0, F, size=2 * n_inner + 1)
        thr = rng.choice([-0.5, 0.25, 0.5, 0.75, 1.5], size=2 * n_inner + 1)
        left = np.full(2 * n_inner + 1, -1)
        right = np.full(2 * n_inner + 1, -1)
        left[:n_inner] = 2 * np.arange(n_inner) + 1
        right[:n_inner] = 2 * np.arange(n_inner) + 2
        val = np.where(left < 0, rng.normal(size=2 * n_inner + 1), 0.0)
        trees.append(_tree(list(feat), list(thr), list(left), list(right), list(val)))
    m = _ensemble(trees, F, base=0.1)
    scale = np.ones(F)
    scale[::3] = -1.0  # inverted: x' = -x
    scale[1::7] = np.inf  # switched off: x' = 0
    m.arrays["x_scale"] = scale
    p = Predictor(m, enc)
    assert p.fused, p.fused_reason
    g = ofa.sample(3000, seed=9)
    X = enc.transform(g)
    want = reference.predict(m, X)
    got = p.predict(g)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(p.predict_features(X), got)


# ------------------------------------------------------------------ one-hot: walk vs bit-sliced
# The one-hot path evaluates every tree either by walking it or bit-sliced (64 rows per word,
# trees with at most 256 leaves); meta "hot_layout" forces one ("walk", "slice") or lets the
# cost model pick per tree ("auto"). All three must give identical sums.
_HOT_ROWS = (1, 7, 63, 64, 65, 255, 256, 257)


def _hot_modes(m: ModelArrays, enc: object, g: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for mode in ("walk", "slice", "auto"):
        mm = ModelArrays(m.kind, m.n_features, dict(m.arrays), dict(m.meta, hot_layout=mode),
                         m.target)
        p = Predictor(mm, enc)
        assert p.fused, p.fused_reason
        out[mode] = p.predict(g)
        for rows in _HOT_ROWS:
            np.testing.assert_array_equal(p.predict(g[:rows]), out[mode][:rows])
        np.testing.assert_array_equal(p.predict(g, threads=2, chunk=100), out[mode])
    np.testing.assert_array_equal(out["slice"], out["walk"])
    np.testing.assert_array_equal(out["auto"], out["walk"])
    return out


@needs_encoders
@pytest.mark.parametrize(
    "make",
    [lambda: GradientBoostingRegressor(n_estimators=15, max_depth=8, random_state=0),
     lambda: DecisionTreeRegressor(max_leaf_nodes=200, random_state=0),  # deep, unbalanced
     lambda: HistGradientBoostingRegressor(max_iter=15, max_leaf_nodes=63, random_state=0),
     lambda: RandomForestRegressor(n_estimators=4, random_state=0)],  # > 256 leaves: walk
)
def test_hot_layouts_equal_estimator(ofa: spaces.SearchSpace, make) -> None:  # type: ignore[no-untyped-def]
    est = make()
    enc, m, mean, scale = _onehot_fit(ofa, est)
    g = ofa.sample(1500, seed=11)
    want = np.exp(est.predict((enc.transform(g) - mean) / scale))  # type: ignore[attr-defined]
    got = _hot_modes(m, enc, g)
    assert _rel(got["auto"], want) < 1e-12


def _full_tree(rng: np.random.Generator, depth: int, F: int) -> tuple[np.ndarray, ...]:
    n_inner = 2**depth - 1
    n = 2 * n_inner + 1
    left = np.full(n, -1)
    right = np.full(n, -1)
    left[:n_inner] = 2 * np.arange(n_inner) + 1
    right[:n_inner] = 2 * np.arange(n_inner) + 2
    val = np.where(left < 0, rng.normal(size=n), 0.0)
    return _tree(list(rng.integers(0, F, size=n)), [0.5] * n, list(left), list(right), list(val))


@needs_encoders
def test_hot_slice_edge_trees(ofa: spaces.SearchSpace) -> None:
    """Chains far deeper than 8 (leaves on either side), exactly 256 leaves (8 bits), 512
    leaves (not sliceable: walked), single leaves, stumps, repeated columns on a path, and
    inverted / switched-off columns, all against the NumPy twin."""
    from esm.surrogate import encoders

    enc = encoders.get_encoder("onehot", ofa)
    F = enc.n_features
    rng = np.random.default_rng(5)
    trees = [_tree([0], [0.0], [-1], [-1], [0.75])]
    for side in (0, 1):  # a chain of depth 40: the leaf hangs on the cold or the hot side
        feat, thr, left, right, val = [], [], [], [], []
        for _ in range(40):
            me = len(feat)
            feat += [int(rng.integers(0, F)), 0]
            thr += [0.5, 0.0]
            nxt, leaf = me + 2, me + 1
            left += [nxt if side else leaf, -1]
            right += [leaf if side else nxt, -1]
            val += [0.0, float(rng.normal())]
        feat.append(0)
        thr.append(0.0)
        left.append(-1)
        right.append(-1)
        val.append(-3.0)
        trees.append(_tree(feat, thr, left, right, val))
    trees += [_full_tree(rng, 8, F), _full_tree(rng, 9, F), _full_tree(rng, 1, F),
              _full_tree(rng, 3, F)]
    trees.append(_tree([5, 5, 0, 0, 0], [0.5, 0.5, 0, 0, 0], [1, 3, -1, -1, -1],
                       [2, 4, -1, -1, -1], [0, 0, 1.0, 2.0, 3.0]))  # column 5 twice on a path
    m = _ensemble(trees, F, base=-0.2)
    scale = np.ones(F)
    scale[::5] = -1.0
    scale[2::11] = np.inf
    m.arrays["x_scale"] = scale
    g = ofa.sample(2000, seed=12)
    got = _hot_modes(m, enc, g)
    np.testing.assert_allclose(got["walk"], reference.predict(m, enc.transform(g)),
                               rtol=1e-14, atol=1e-14)


def test_hot_layout_meta_checked() -> None:
    m = _ensemble([_tree([0], [0.0], [-1], [-1], [1.0])], 2)
    m.meta["hot_layout"] = "fast"
    with pytest.raises(ValueError, match="hot_layout"):
        m.compile()


HAVE_LGB = importlib.util.find_spec("lightgbm") is not None
HAVE_XGB = importlib.util.find_spec("xgboost") is not None


@needs_encoders
@pytest.mark.parametrize("lib", ["lightgbm", "xgboost"])
def test_hot_layouts_lightgbm_xgboost(ofa: spaces.SearchSpace, lib: str) -> None:
    if lib == "lightgbm" and not HAVE_LGB:
        pytest.skip("lightgbm is not installed (optional)")
    if lib == "xgboost" and not HAVE_XGB:
        pytest.skip("xgboost is not installed (optional)")
    if lib == "lightgbm":
        import lightgbm

        est = lightgbm.LGBMRegressor(n_estimators=30, num_leaves=63, min_child_samples=5,
                                     verbose=-1)
        tol = 1e-9
    else:
        import xgboost

        est = xgboost.XGBRegressor(n_estimators=30, max_depth=8, n_jobs=1)
        tol = 1e-4  # XGBoost sums float32 leaves
    enc, m, mean, scale = _onehot_fit(ofa, est)
    g = ofa.sample(1500, seed=13)
    want = np.exp(est.predict((enc.transform(g) - mean) / scale))
    got = _hot_modes(m, enc, g)
    assert _rel(got["auto"], want) < tol
