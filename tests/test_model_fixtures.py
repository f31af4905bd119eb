"""Model files written by an earlier esm (tests/fixtures/models) load and predict as that esm did.

The fixtures were written before the two regressor-export stacks were merged (see
``tests/fixtures/models/make_fixtures.py``); every family, several encodings and all four
built-in spaces. The compiled path and the NumPy reference path must both give the recorded
predictions (bitwise in practice; at most 1e-12 relative).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import esm

FIXTURES = Path(__file__).parent / "fixtures" / "models"
MANIFEST: dict[str, Any] = json.loads((FIXTURES / "manifest.json").read_text())["fixtures"]
RTOL = 1e-12


def _worst(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.abs(want)))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_fixture_loads_and_predicts_as_written(name: str) -> None:
    entry = MANIFEST[name]
    sur = esm.load(FIXTURES / entry["file"])
    assert sur.space.name == entry["space"]
    assert sur.kind == entry["form"]
    assert sur.model_meta == entry["model_meta"]
    genomes = np.asarray(entry["genomes"], dtype=np.int32)
    compiled = sur.predict(genomes)
    assert sur.compile_error is None
    assert sur.compile().fused == entry["fused"]
    assert _worst(compiled, np.asarray(entry["compiled"])) <= RTOL
    reference = sur.predict_reference(genomes)
    assert _worst(reference, np.asarray(entry["reference"])) <= RTOL


def test_fixtures_cover_every_family_and_space() -> None:
    forms = {e["form"] for e in MANIFEST.values()}
    assert forms == {"linear", "trees", "mlp", "knn", "gp", "gcn"}
    models = {e["model"] for e in MANIFEST.values()}
    assert {"ridge", "huber", "lut", "forest", "gbt", "gbt-lightgbm", "gbt-xgboost", "mlp",
            "knn", "gp", "gcn", "auto"} <= models
    assert {e["space"] for e in MANIFEST.values()} == {"ofa-mbv3", "ofa-resnet50", "nb201",
                                                       "fbnet"}


def test_files_naming_renamed_regressor_classes_load() -> None:
    # HuberRegressor / MLPRegressor are RobustRidgeRegressor / FeedForwardRegressor since issue
    # 20; files record the class name only as information
    names = {n: esm.load(FIXTURES / MANIFEST[n]["file"]).info["model"]["class"]
             for n in ("ofa_fcc_huber", "ofa_stats_mlp")}
    assert names == {"ofa_fcc_huber": "HuberRegressor", "ofa_stats_mlp": "MLPRegressor"}
