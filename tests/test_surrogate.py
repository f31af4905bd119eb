"""Encoders, regressors and their array forms, metrics, the model file and Surrogate."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from esm import InputError, spaces
from esm.predictor import reference
from esm.predictor.model import inverse_target, standardize
from esm.surrogate import metrics, modelfile
from esm.surrogate.encoders import (
    DEVICE_SPECS,
    ENCODERS,
    device_from_column,
    encoder_from_dict,
    get_encoder,
    resolve_device,
)
from tests.conftest import ESM_PATH

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def space() -> spaces.SearchSpace:
    return spaces.get("ofa-mbv3")


def read_rows(path: Path, n: int) -> tuple[list[str], list[str], np.ndarray]:
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        header = next(r)
        rows = [row for _, row in zip(range(n), r, strict=False)]
    return header, [row[0] for row in rows], np.array([[float(v) for v in row[1:]]
                                                       for row in rows])


@pytest.fixture(scope="module")
def ofa(data_dir: Path, space: spaces.SearchSpace) -> dict:
    header, archs, Y = read_rows(data_dir / "ofa_mbv3_gpu.csv", 400)
    return {"header": header, "archs": archs, "G": space.from_strs(archs), "Y": Y}


# --------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoders_shape_determinism_roundtrip(space: spaces.SearchSpace, name: str) -> None:
    g = space.sample(64, seed=0)
    enc = get_encoder(name, space)
    X = enc.transform(g)
    assert X.dtype == np.float64 and X.shape == (64, enc.n_features) == (64, len(
        enc.feature_names))
    assert X.flags.c_contiguous and np.isfinite(X).all()
    np.testing.assert_array_equal(X, enc.transform(g))
    d = json.loads(json.dumps(enc.to_dict()))
    np.testing.assert_array_equal(encoder_from_dict(d, space).transform(g), X)
    # same network (canonical form) -> same features
    np.testing.assert_array_equal(enc.transform(space.canonical(g)), X)
    # single genome
    assert enc.transform(g[0]).shape == (1, enc.n_features)


def test_onehot_masks_inactive_slots(space: spaces.SearchSpace) -> None:
    g = space.sample(50, seed=1)
    enc = get_encoder("onehot", space)
    X = enc.transform(g)
    active = space.active_slots(g)
    # per gene exactly one 1 when its slot is active, none otherwise
    names = enc.feature_names
    for gi, gname in enumerate(space.gene_names):
        cols = [i for i, n in enumerate(names) if n.split("=")[0] == gname]
        s = X[:, cols].sum(axis=1)
        if gname.startswith(("ks", "e")):
            slot = int(gname.lstrip("kse"))
            np.testing.assert_array_equal(s, active[:, slot].astype(float))
            on = active[:, slot]
            np.testing.assert_array_equal(np.argmax(X[on][:, cols], axis=1), g[on, gi])
        else:
            assert np.all(s == 1)


def test_stats_layerwise_match_costs(space: spaces.SearchSpace) -> None:
    g = space.sample(20, seed=2)
    c = space.costs(g)
    st = get_encoder("stats", space).transform(g)
    np.testing.assert_array_equal(st[:, 0], c.macs)
    np.testing.assert_array_equal(st[:, 1], c.params)
    np.testing.assert_array_equal(st[:, 2], c.activation_bytes)
    np.testing.assert_array_equal(st[:, 4], c.layers)
    np.testing.assert_array_equal(st[:, 6], space.decode(g)["r"].astype(float) ** 2)
    lw = get_encoder("layerwise", space).transform(g)
    np.testing.assert_array_equal(lw, c.slots.reshape(20, -1))


def test_roofline_by_hand(space: spaces.SearchSpace) -> None:
    g = space.sample(3, seed=4)
    enc = get_encoder("roofline", space, device="v100", batch=8)
    X = enc.transform(g)
    spec = DEVICE_SPECS["v100"]
    ref = space.reference_costs(g[0])
    total = 0.0
    for macs, params, act, layers in ref["slots"]:
        comp = 2 * macs * 8 / (spec.peak_tflops * 1e12) * 1e3
        mem = (2 * act * 8 + 4 * params) / (spec.bandwidth_gbs * 1e9) * 1e3
        total += max(comp, mem) + layers * spec.launch_us * 1e-3
    names = enc.feature_names
    stage_sum = X[0, [i for i, n in enumerate(names) if n.startswith("roof_stage")]].sum()
    assert stage_sum == pytest.approx(total, rel=1e-12)
    assert X[0, names.index("roof_total_ms")] == pytest.approx(
        total + X[0, names.index("roof_fixed_ms")], rel=1e-12)


def test_device_specs_and_columns() -> None:
    for name in ("v100", "rtx2080ti", "titan-xp", "titan-rtx", "gtx1080ti", "a100", "h100",
                 "jetson-orin", "cpu"):
        assert name in DEVICE_SPECS
    assert device_from_column("lat_2080ti_64") == ("rtx2080ti", 64)
    assert device_from_column("lat_titan_xp_32") == ("titan-xp", 32)
    assert device_from_column("lat_gold_6240") == ("xeon-gold-6240", 1)
    # the batch is the store's reading of the column name (esm.store.parse_column)
    assert device_from_column("lat_a100_4096") == ("a100", 4096)
    assert device_from_column("lat_a100_8192") == ("a100", 1)
    spec = resolve_device({"name": "v100", "launch_us": 20})
    assert spec.launch_us == 20 and spec.peak_tflops == DEVICE_SPECS["v100"].peak_tflops
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("nope")
    with pytest.raises(InputError, match="unknown encoding"):
        get_encoder("nope", spaces.get("ofa-mbv3"))


def test_user_device_spec_roundtrips(space: spaces.SearchSpace) -> None:
    enc = get_encoder("fcc", space, device={"peak_tflops": 2.0, "bandwidth_gbs": 50.0,
                                            "launch_us": 1.0, "name": "mine"})
    g = space.sample(5, seed=0)
    d = json.loads(json.dumps(enc.to_dict()))
    np.testing.assert_array_equal(encoder_from_dict(d, space).transform(g), enc.transform(g))


# --------------------------------------------------------------------------- regressors


def _features(space: spaces.SearchSpace, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    g = space.sample(n, seed=seed)
    X = get_encoder("fcc", space, device="rtx2080ti", batch=32).transform(g)
    c = space.costs(g)
    y = 2.0 + c.macs / 1e8 + 3e-7 * c.activation_bytes + np.random.default_rng(seed).normal(
        0, 0.05, n)
    return X, y


MODELS = [
    ("ridge", {}), ("ridge", {"target": "identity", "alpha": 1.0}), ("lut", {}),
    ("forest", {"n_estimators": 15}), ("gbt", {"n_estimators": 40}),
    ("mlp", {"hidden_layer_sizes": (16, 8), "max_iter": 200}),
    ("mlp", {"hidden_layer_sizes": (8,), "activation": "tanh", "max_iter": 100}),
    ("knn", {"columns": list(range(18))}), ("knn", {"weights": "uniform", "columns": [0, 2, 9]}),
    ("gp", {"columns": list(range(8))}), ("ridge", {"columns": [0, 1, 2]}),
    ("gbt", {"n_estimators": 20, "columns": list(range(10, 40))}),
    ("huber", {}), ("huber", {"target": "identity", "alpha": 0.1, "columns": [0, 2, 4, 9]}),
]


@pytest.mark.parametrize(("name", "params"), MODELS)
def test_array_form_equals_estimator(space: spaces.SearchSpace, name: str, params: dict) -> None:
    from esm.surrogate.models import make_regressor

    X, y = _features(space, 160, seed=5)
    Xt, _ = _features(space, 300, seed=6)
    est = make_regressor(name, seed=0, **params).fit(X, y)
    m = est.export().check()
    mine = reference.predict(m, Xt)
    np.testing.assert_allclose(mine, est.predict(Xt), rtol=1e-9)
    # against the scikit-learn model's own predict on the standardised used columns
    c = est.columns_
    Xs = (Xt[:, c] - est.x_mean_[c]) / est.x_scale_[c]
    raw = est.estimator_.predict(Xs)
    if name == "mlp":
        raw = raw * est.y_unit_ + est.y_shift_
    np.testing.assert_allclose(mine, inverse_target(raw, est.target_), rtol=1e-9)
    # the compiled model agrees; JSON-able meta, plain numeric arrays
    np.testing.assert_allclose(m.predict(Xt), mine, rtol=1e-9)
    json.dumps(m.form_meta())
    assert all(a.dtype.kind in "fi" for a in m.arrays.values())


def test_auto_picks_by_cv_and_exports(space: spaces.SearchSpace) -> None:
    from esm.surrogate.models import AutoRegressor

    X, y = _features(space, 120, seed=7)
    auto = AutoRegressor(candidates=[("ridge", {"target": "log"}), ("knn", {})],
                         column_sets=[("all", None), ("first", [0, 1, 2])],
                         random_state=0, rule="min").fit(X, y)
    assert len(auto.cv_scores_) == 4
    assert auto.chosen_ == min(auto.cv_scores_, key=auto.cv_scores_.get) == auto.cv_best_
    np.testing.assert_allclose(reference.predict(auto.export(), X), auto.predict(X),
                               rtol=1e-9)


def test_auto_one_standard_error_rule_prefers_the_simpler_model() -> None:
    from esm.surrogate.models import AutoRegressor

    # the latency depends on the first two columns only; 30 more columns are noise that a
    # fit on all columns can only overfit (a little)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 32))
    y = 10.0 + 2.0 * X[:, 0] + X[:, 1] + rng.normal(0, 0.3, 120)
    sets = [("all", None), ("two", [0, 1])]
    cands = [("ridge", {"target": "identity"}), ("knn", {})]
    best = AutoRegressor(candidates=cands, column_sets=sets, random_state=0, rule="min").fit(X, y)
    one = AutoRegressor(candidates=cands, column_sets=sets, random_state=0).fit(X, y)
    assert one.rule == "1se" and one.cv_scores_ == best.cv_scores_
    # the chosen one is within the noise of the best, and no more complex than it
    assert one.chosen_ == "ridge[columns=two][target=identity]"
    assert one.cv_scores_[one.chosen_] <= 1.5 * one.cv_scores_[one.cv_best_]
    with pytest.raises(ValueError, match="rule"):
        AutoRegressor(candidates=cands, rule="best").fit(X, y)


def test_huber_resists_slow_outliers() -> None:
    from esm.surrogate.models import RidgeRegressor, RobustRidgeRegressor

    # latency = 5 + 2 x0 + x1 with small noise; one row in ten measured 30-80 % slower
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(400, 3))
    clean = 5.0 + 2.0 * X[:, 0] + X[:, 1]
    slow = rng.random(400) < 0.1
    y = clean * (1 + rng.normal(0, 0.005, 400)) * np.where(slow, rng.uniform(1.3, 1.8, 400), 1)
    hub = RobustRidgeRegressor(target="identity").fit(X, y)
    rid = RidgeRegressor(target="identity").fit(X, y)
    err_h = np.abs(hub.predict(X) / clean - 1)[~slow]
    err_r = np.abs(rid.predict(X) / clean - 1)[~slow]
    assert np.median(err_h) < 0.01 < np.median(err_r)
    m = hub.export()
    assert m.kind == "linear"
    np.testing.assert_allclose(reference.predict(m, X), hub.predict(X),
                               rtol=1e-12)
    assert hub.estimator_.n_iter_ >= 2


def test_knn_predict_equals_its_compiled_form_on_near_ties() -> None:
    from esm.surrogate.models import KNNRegressor

    # a cluster of training rows 1e-9 apart: |a|^2 + |b|^2 - 2ab cannot order them; the
    # regressor's predict, the reference and the compiled model all use exact differences
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 3
    center = np.array([2.0, -1.0, 3.0])
    X[:20] = center + rng.normal(size=(20, 3)) * 1e-9
    y = rng.uniform(1, 2, 200)
    Xq = center + rng.normal(size=(50, 3)) * 1e-9
    est = KNNRegressor(n_neighbors=1, weights="uniform").fit(X, y)
    np.testing.assert_array_equal(est.predict(Xq), est.export().predict(Xq))


def test_surrogate_reference_path_equals_compiled_for_float32_trees(
        space: spaces.SearchSpace) -> None:
    from esm.surrogate import Surrogate

    g = space.sample(120, seed=3)
    y = 5.0 + space.costs(g).macs / 1e8
    sur = Surrogate.fit(space, g, y, encoding="stats", model="gbt", seed=0,
                        model_params={"n_estimators": 20})
    assert sur.model_meta["input_dtype"] == "float32"
    gt = space.sample(2000, seed=4)
    np.testing.assert_allclose(sur.predict_reference(gt), sur.predict(gt), rtol=1e-12)


def test_lut_table_is_additive(space: spaces.SearchSpace) -> None:
    from esm.surrogate.models import LUTRegressor

    g = space.sample(300, seed=8)
    X = get_encoder("lut", space).transform(g)
    rng = np.random.default_rng(0)
    cost = rng.uniform(0.1, 1.0, X.shape[1])
    y = 5.0 + X @ cost
    lut = LUTRegressor(alpha=1e-8).fit(X, y)
    np.testing.assert_allclose(lut.predict(X), y, rtol=1e-5)
    assert lut.table().shape == (X.shape[1],)


_CHECK = [
    ("ridge", {}), ("lut", {}), ("forest", {"n_estimators": 10}),
    ("gbt", {"n_estimators": 30}), ("mlp", {"hidden_layer_sizes": (8,), "max_iter": 40}),
    ("knn", {}), ("gp", {"ard": False}), ("huber", {}),
]


@pytest.mark.parametrize(("name", "params"), _CHECK)
def test_check_estimator(name: str, params: dict) -> None:
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    from esm.surrogate.models import make_regressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(make_regressor(name, seed=0, **params))


def test_check_estimator_auto() -> None:
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    from esm.surrogate.models import AutoRegressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(AutoRegressor(candidates=[("ridge", {}), ("knn", {})], cv=3,
                                      random_state=0))


# --------------------------------------------------------------------------- metrics


def test_metrics_by_hand() -> None:
    t = np.array([10.0, 20.0, 30.0, 40.0])
    p = np.array([11.0, 19.0, 30.0, 50.0])
    m = metrics.evaluate(t, p)
    assert m["mape"] == pytest.approx((10 + 5 + 0 + 25) / 4)
    assert m["acc5"] == 50.0 and m["acc10"] == 75.0
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 1 + 0 + 100) / 4))
    assert m["r2"] == pytest.approx(1 - 102 / 500)
    assert m["kendall"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)
    assert m["max_error"] == pytest.approx(25.0) and m["n"] == 4
    with pytest.raises(InputError):
        metrics.mape([], [])


# --------------------------------------------------------------------------- Surrogate + file


@pytest.fixture(scope="module")
def trained(ofa: dict, space: spaces.SearchSpace, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple:
    from esm.surrogate import Surrogate

    j = ofa["header"].index("lat_titan_xp_64") - 1
    G, y = ofa["G"], ofa["Y"][:, j]
    sur = Surrogate.fit(space, G[:200], y[:200], column="lat_titan_xp_64", seed=0,
                        model_params={"candidates": [("ridge", {"target": "log"}),
                                                     ("ridge", {"target": "identity"}),
                                                     ("gbt", {"n_estimators": 50})]})
    path = tmp_path_factory.mktemp("model") / "m.esm"
    sur.save(path)
    return sur, path, G, y


def test_surrogate_fit_predict_save_load(trained: tuple) -> None:
    import esm

    sur, path, G, y = trained
    held = metrics.evaluate(y[200:], sur.predict(G[200:]))
    assert held["mape"] < 6.0 and held["acc10"] > 85.0
    again = esm.load(path)
    np.testing.assert_array_equal(again.predict(G[200:]), sur.predict(G[200:]))
    assert again.fingerprint == sur.fingerprint and len(sur.fingerprint) == 64
    assert again.info["target"]["column"] == "lat_titan_xp_64"
    assert again.info["model"]["chosen"] == sur.info["model"]["chosen"]
    assert "esm" in again.info["versions"] and again.metrics["train"]["n"] == 200
    assert again.trained_on(G).tolist() == [True] * 200 + [False] * (len(G) - 200)
    assert sur.predict(G[0]).shape == (1,) and sur.predict(G[:0]).shape == (0,)


def test_fit_refuses_bad_latencies(space: spaces.SearchSpace) -> None:
    from esm.surrogate import Surrogate

    g = space.sample(10, seed=0)
    for bad in (np.nan, 0.0, -1.0):
        y = np.ones(10)
        y[3] = bad
        with pytest.raises(InputError, match="finite and positive"):
            Surrogate.fit(space, g, y, model="ridge")
    with pytest.raises(InputError, match="latencies"):
        Surrogate.fit(space, g, np.ones(9), model="ridge")


def test_model_for_another_space_is_refused(trained: tuple) -> None:
    sur = trained[0]
    sur.check_space("ofa-mbv3")
    with pytest.raises(InputError, match="not 'nb201'"):
        sur.check_space("nb201")
    with pytest.raises(InputError, match="different parameters"):
        sur.check_space(spaces.get("ofa-mbv3", width_mult=1.0))
    with pytest.raises(InputError, match="genes"):
        sur.predict(np.zeros((2, 5), dtype=np.int32))


def _rewrite(src: Path, dst: Path, edit) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, edit(item.filename, zin.read(item.filename)))


def test_damaged_files_are_refused(trained: tuple, tmp_path: Path) -> None:
    import esm

    path = trained[1]
    data = path.read_bytes()
    (tmp_path / "trunc.esm").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"not an esm model file|corrupt"):
        esm.load(tmp_path / "trunc.esm")
    (tmp_path / "text.esm").write_text("hello")
    with pytest.raises(InputError, match="not an esm model file"):
        esm.load(tmp_path / "text.esm")
    with zipfile.ZipFile(tmp_path / "foreign.esm", "w") as zf:
        zf.writestr("x.txt", "y")
    with pytest.raises(InputError, match="not an esm model file"):
        esm.load(tmp_path / "foreign.esm")

    def tamper(name: str, b: bytes) -> bytes:
        if name == "arrays/model/x_mean.npy":
            arr = bytearray(b)
            arr[-1] ^= 1
            return bytes(arr)
        return b

    _rewrite(path, tmp_path / "tampered.esm", tamper)
    with pytest.raises(InputError, match="checksum"):
        esm.load(tmp_path / "tampered.esm")

    def newer(name: str, b: bytes) -> bytes:
        if name == modelfile.HEADER:
            h = json.loads(b)
            h["schema_version"] = modelfile.SCHEMA_VERSION + 1
            return json.dumps(h).encode()
        return b

    _rewrite(path, tmp_path / "newer.esm", newer)
    with pytest.raises(InputError, match="newer model schema"):
        esm.load(tmp_path / "newer.esm")
    with pytest.raises(InputError, match="no such model file"):
        esm.load(tmp_path / "missing.esm")


def test_pickled_array_is_refused(tmp_path: Path) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    members = {"meta.json": b"{}", "arrays/x.npy": buf.getvalue()}
    header = {"format": modelfile.FORMAT, "schema_version": 1,
              "sha256": modelfile._digest(members), "members": sorted(members)}
    with zipfile.ZipFile(tmp_path / "p.esm", "w") as zf:
        zf.writestr(modelfile.HEADER, json.dumps(header))
        for k, v in members.items():
            zf.writestr(k, v)
    with pytest.raises(InputError, match="safely"):
        modelfile.read(tmp_path / "p.esm")


_BLOCKED = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'sklearn', 'scipy'):
            raise ImportError('blocked: ' + name)
        return None
sys.meta_path.insert(0, Block())
import numpy as np, esm
s = esm.load(sys.argv[1])
g = s.space.sample(50, seed=1)
p = s.predict(g)
assert p.shape == (50,) and np.isfinite(p).all() and (p > 0).all()
assert not any(m.split('.')[0] in ('torch', 'sklearn') for m in sys.modules)
print('ok', float(p.sum()))
"""


@pytest.mark.parametrize("model", ["gbt", "mlp", "gp", "knn"])
def test_load_and_predict_without_torch_or_sklearn(space: spaces.SearchSpace, tmp_path: Path,
                                                   model: str) -> None:
    from esm.surrogate import Surrogate

    g = space.sample(60, seed=0)
    y = 1.0 + space.costs(g).macs / 1e8
    params = {"gbt": {"n_estimators": 10}, "mlp": {"hidden_layer_sizes": (8,),
                                                   "max_iter": 50}}.get(model, {})
    sur = Surrogate.fit(space, g, y, encoding="stats" if model in ("gp", "knn") else "fcc",
                        model=model, model_params=params)
    path = tmp_path / "m.esm"
    sur.save(path)
    env = {"PYTHONPATH": ESM_PATH, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _BLOCKED, str(path)], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    expected = float(sur.predict(space.sample(50, seed=1)).sum())
    assert float(out.stdout.split()[1]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
def test_optional_boosting_backends_export_exactly(space: spaces.SearchSpace,
                                                   backend: str) -> None:
    pytest.importorskip(backend)
    from esm.surrogate.models import make_regressor

    X, y = _features(space, 200, seed=9)
    Xt, _ = _features(space, 300, seed=10)
    est = make_regressor(f"gbt-{backend}", seed=0, n_estimators=30).fit(X, y)
    m = est.export().check()
    # XGBoost keeps leaf values and their running sum in float32; the float64 form matches
    # it to float32 precision. LightGBM predicts in float64 and matches exactly.
    rtol = 1e-5 if backend == "xgboost" else 1e-9
    np.testing.assert_allclose(reference.predict(m, Xt), est.predict(Xt),
                               rtol=rtol)


# --------------------------------------------------------------------------- graph network

NB201_EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


def _cell_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ops = rng.integers(0, 5, size=(n, 6))
    X = np.zeros((n, 30))
    X[np.arange(n)[:, None], np.arange(6)[None, :] * 5 + ops] = 1.0
    cost = np.array([0.0, 0.1, 1.0, 3.0, 0.5])
    y = 2.0 + cost[ops].sum(axis=1) + 0.5 * (ops[:, 2] == 3) * (ops[:, 5] == 3)
    return X, y, ops


def test_gcn_learns_cell_and_exports_exactly() -> None:
    pytest.importorskip("torch")
    import torch

    from esm.surrogate.gcn import GCNRegressor, cell_graph

    graph = cell_graph(NB201_EDGES, 4, [0, 5, 10, 15, 20, 25], 5)
    assert graph["adjacency"].shape == (8, 8) and graph["node_index"].shape == (8, 5)
    X, y, _ = _cell_data(300, 0)
    Xt, yt, _ = _cell_data(200, 1)
    est = GCNRegressor(graph=graph, hidden=32, epochs=300, random_state=0).fit(X, y)
    pred = est.predict(Xt)
    assert metrics.r2(yt, pred) > 0.9
    m = est.export().check()
    assert m.kind == "gcn"
    np.testing.assert_allclose(reference.predict(m, Xt), pred, rtol=1e-12)
    arrays = m.arrays
    # the NumPy forward equals the torch forward used in training
    Xs = torch.from_numpy(standardize(Xt, arrays["x_mean"], arrays["x_scale"]))
    idx = torch.from_numpy(arrays["node_index"].astype(np.int64))
    padded = torch.cat([Xs, torch.zeros(len(Xs), 1, dtype=torch.float64)], dim=1)
    H = padded[:, torch.where(idx >= 0, idx, Xs.shape[1])]
    H = torch.cat([H, torch.from_numpy(arrays["node_const"]).expand(len(Xs), -1, -1)], dim=2)
    A = torch.from_numpy(arrays["adjacency"])
    for i in range(m.meta["n_layers"]):
        H = torch.relu(torch.einsum("uv,nvc->nuc", A, H) @ torch.from_numpy(arrays[f"W{i}"])
                       + torch.from_numpy(arrays[f"b{i}"]))
    ref = H.mean(dim=1) @ torch.from_numpy(arrays["Wout"][:, 0]) + float(arrays["bout"][0])
    np.testing.assert_allclose(pred, np.exp(ref.numpy()) if est.target_ == "log"
                               else ref.numpy(), rtol=1e-9)


@pytest.mark.slow
def test_gcn_check_estimator() -> None:
    pytest.importorskip("torch")
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    from esm.surrogate.gcn import GCNRegressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(GCNRegressor(hidden=8, n_layers=2, epochs=80, learning_rate=2e-2,
                                     random_state=0))


def test_gcn_surrogate_on_nb201_if_registered(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    if "nb201" not in spaces.names():
        pytest.skip("space nb201 is not registered in this build")
    from esm.surrogate import Surrogate

    space = spaces.get("nb201")
    header, archs, Y = read_rows(data_dir / "nb201_latency.csv", 400)
    G = space.from_strs(archs)
    y = Y[:, header.index("lat_2080ti_256") - 1]
    sur = Surrogate.fit(space, G[:300], y[:300], encoding="onehot", model="gcn",
                        model_params={"epochs": 200, "hidden": 32})
    assert sur.kind == "gcn"
    sur.save(tmp_path / "g.esm")
    import esm

    again = esm.load(tmp_path / "g.esm")
    np.testing.assert_array_equal(again.predict(G[300:]), sur.predict(G[300:]))
    assert metrics.mape(y[300:], sur.predict(G[300:])) < 30
