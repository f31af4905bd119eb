"""Folded linear models (esm.predictor.fold): lookup tables equal to the unfolded model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import esm
from esm import spaces
from esm._native import core
from esm.cli import main
from esm.errors import InputError
from esm.predictor import Predictor
from esm.predictor import compile as compile_predictor
from esm.predictor.fold import FOLD_RTOL, FoldError, build_fold, whole_space
from esm.predictor.model import ModelArrays
from esm.surrogate import encoders as enc
from tests.test_spec import ZOO

BUILT_IN = ("ofa-mbv3", "ofa-resnet50", "nb201", "fbnet", "anb-mnasnet")
MODELS = Path(__file__).resolve().parent / "fixtures" / "models"


def _linear(encoder: enc.Encoder, seed: int = 0, target: str = "identity") -> ModelArrays:
    """A linear model with positive weights (predictions far from 0, so relative differences
    measure the fold, not cancellation) and a standardisation with one column switched off."""
    rng = np.random.default_rng(seed)
    X = encoder.transform(encoder.space.sample(256, seed=seed + 1))
    F = encoder.n_features
    scale = X.std(axis=0) + 1.0
    scale[0] = np.inf
    return ModelArrays("linear", F, {"coef": rng.uniform(0.1, 1.0, F),
                                     "intercept": np.array([2.5]),
                                     "x_mean": X.mean(axis=0) * 0.5, "x_scale": scale},
                       target=target)


def _space(name: str) -> spaces.SearchSpace:
    return spaces.from_spec(ZOO) if name == "zoo" else spaces.get(name)


@pytest.mark.parametrize("name", [*BUILT_IN, "zoo"])
@pytest.mark.parametrize("encoding", ["fcc", "onehot", "lut", "stats", "layerwise", "roofline",
                                      "stagechoice"])
def test_fold_equals_unfolded(name: str, encoding: str) -> None:
    space = _space(name)
    e = enc.get_encoder(encoding, space)
    m = _linear(e)
    p = Predictor(m, e)
    assert p.folded and p.fold_reason is None, p.fold_reason
    g = space.sample(2048, seed=7)
    want = p.predict_features(e.transform(g))
    got = p.predict(g)
    np.testing.assert_allclose(got, want, rtol=FOLD_RTOL, atol=0)
    fold = build_fold(m, e)
    np.testing.assert_allclose(fold.predict_numpy(g), want, rtol=FOLD_RTOL, atol=0)
    np.testing.assert_allclose(p.predict(g, threads=1, chunk=3), got, rtol=1e-15, atol=0)
    assert p.predict(g[:0]).shape == (0,)


def test_fallback_reasons() -> None:
    space = spaces.get("ofa-mbv3")
    e = enc.get_encoder("fcc", space)
    p = Predictor(_linear(e, target="log"), e)
    assert not p.folded and "log" in str(p.fold_reason)
    F = e.n_features
    trees = ModelArrays("trees", F, {
        "feature": np.array([0, -1, -1], np.int32), "threshold": np.array([0.0, 0, 0]),
        "left": np.array([1, -1, -1], np.int32), "right": np.array([2, -1, -1], np.int32),
        "value": np.array([0.0, 1.0, 2.0]), "roots": np.array([0], np.int32),
        "base": np.array([0.5])})
    p = Predictor(trees, e)
    assert not p.folded and "not linear" in str(p.fold_reason)
    g = space.sample(64, seed=0)
    np.testing.assert_allclose(p.predict(g), p.predict_features(e.transform(g)), rtol=1e-12)
    assert Predictor(trees).fold_reason == "no encoder"
    with pytest.raises(FoldError, match="log"):
        build_fold(_linear(e, target="log"), e)


def test_bad_genomes_and_bad_tables() -> None:
    space = spaces.get("ofa-mbv3")
    e = enc.get_encoder("fcc", space)
    p = Predictor(_linear(e), e)
    assert p.folded
    g = space.sample(10, seed=0)
    bad = g.copy()
    bad[3, 2] = int(space.choices[2])
    with pytest.raises(InputError, match="genome 3, gene 2"):
        p.predict(bad)
    neg = g.copy()
    neg[0, 0] = -1
    with pytest.raises(InputError):
        p.predict(neg)
    with pytest.raises(InputError):
        p.predict(g.astype(np.float64) + 0.5)
    with pytest.raises(InputError):
        p.predict(g[:, :-1])
    with pytest.raises(InputError):
        p.predict(g, chunk=0)
    fold = build_fold(_linear(e), e)
    with pytest.raises(ValueError, match="smaller"):
        core.FoldedPredictor(fold.choices, fold.key_genes, fold.key_strides * 2, fold.key_ptr,
                             fold.table_ptr, fold.values, 0.0)
    with pytest.raises(ValueError):
        core.FoldedPredictor(fold.choices, fold.key_genes, fold.key_strides, fold.key_ptr,
                             fold.table_ptr, fold.values[:-1], 0.0)
    with pytest.raises(ValueError):
        core.FoldedPredictor(fold.choices, fold.key_genes.astype(np.float64),
                             fold.key_strides, fold.key_ptr, fold.table_ptr, fold.values, 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        core.FoldedPredictor(fold.choices, fold.key_genes, fold.key_strides, fold.key_ptr,
                             fold.table_ptr, fold.values, float("nan"))


def test_trained_default_model_folds() -> None:
    """The default surrogate (fcc + auto on a few hundred rows) folds when it picks a linear
    model with the identity target, and the CLI-facing predictor agrees with its predict."""
    from esm.surrogate import Surrogate

    space = spaces.get("nb201")
    g = space.sample(300, seed=0)
    y = 1.0 + 1e-9 * space.costs(g).macs.astype(np.float64)
    s = Surrogate.fit(space, g, y, encoding="fcc", model="ridge", target="identity")
    p = compile_predictor(s)
    assert p.folded, p.fold_reason
    np.testing.assert_allclose(p.predict(g), s.predict(g), rtol=1e-9)


@pytest.mark.parametrize("name", ["nb201_onehot_lightgbm", "nb201_onehot_mlp_tanh",
                                  "nb201_onehot_gcn"])
def test_a_small_space_becomes_one_table_of_any_model(name: str) -> None:
    """nb201 (15,625 cells): once as many genomes as the space holds have been asked for,
    every family is looked up in one table of the whole space, equal to the model run on each
    genome; bad genomes are still refused."""
    s = esm.load(MODELS / f"{name}.esm")
    p = compile_predictor(s)
    g = s.space.sample(15_625, seed=4)
    first = p.predict(g[:15_624])  # one genome short of the space's size: no table yet
    assert not p.whole_space and not p.folded and "whole space" not in repr(p)
    got = p.predict(g)
    assert p.whole_space and p.folded and "whole space" in repr(p)
    np.testing.assert_array_equal(got[:15_624], first)
    np.testing.assert_array_equal(got, p._predict_cpu(g))
    np.testing.assert_allclose(got, s.predict_reference(g), rtol=1e-6)
    np.testing.assert_array_equal(p.predict(g, threads=1, chunk=7), got)
    bad = g[:5].copy()
    bad[2, 4] = 5
    with pytest.raises(InputError, match="genome 2, gene 4"):
        p.predict(bad)
    with pytest.raises(InputError):
        p.predict(g[:5, :-1])


def test_cli_predict_reports_the_whole_space_table(capsys: pytest.CaptureFixture[str]) -> None:
    path = MODELS / "nb201_onehot_mlp_tanh.esm"
    assert main(["predict", "--model", str(path), "--random", "20000", "--seed", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["whole_space"] is True and out["folded"] is True
    s = esm.load(path)
    want = s.predict_reference(s.space.sample(20000, seed=3))
    assert out["mean_ms"] == pytest.approx(float(want.mean()), rel=1e-9)


def test_whole_space_table_of_genes_with_unequal_choices() -> None:
    space: Any = SimpleNamespace(choices=np.array([3, 2, 4], np.int32), size=24)
    every = np.indices((3, 2, 4)).reshape(3, -1).T[::-1].copy()  # reversed: order is not read

    def f(g: np.ndarray) -> np.ndarray:
        return np.asarray(g @ np.array([100.0, 10.0, 1.0]) + 0.5)

    table = whole_space(space, f)
    np.testing.assert_array_equal(table.predict_numpy(every), f(every))
    np.testing.assert_array_equal(np.asarray(table.compile().predict(
        np.ascontiguousarray(every, np.int32), 1, 5)), f(every))


def test_whole_space_refuses_large_spaces_and_non_finite_predictions() -> None:
    e = enc.get_encoder("fcc", spaces.get("ofa-mbv3"))
    p = Predictor(_linear(e), e)
    p.predict(e.space.sample(70_000, seed=0))
    assert not p.whole_space and p.folded
    with pytest.raises(FoldError, match="more than"):
        whole_space(e.space, lambda g: np.zeros(len(g)))
    nb = spaces.get("nb201")
    with pytest.raises(FoldError, match="one finite number per genome"):
        whole_space(nb, lambda g: np.full(len(g), np.nan))
    with pytest.raises(FoldError, match="one finite number per genome"):
        whole_space(nb, lambda g: np.zeros(len(g) - 1))
