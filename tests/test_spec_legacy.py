"""The spec-defined ofa-mbv3, ofa-resnet50 and fbnet equal the hand-written spaces they replace.

``tests/data/before_spec`` was recorded with the hand-written spaces (see its
``make_fixtures.py``): costs of 100,000 random genomes, canonical forms, active slots, text
forms, gene/slot names, the compiled encoders' tables, every encoding's features, built modules
(parameter shapes and outputs with the same weights) and model files with their predictions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import esm
from esm import spaces
from esm.predictor.plan import space_tables
from esm.surrogate import get_encoder

DATA = Path(__file__).parent / "data" / "before_spec"
_maker = importlib.util.spec_from_file_location("make_fixtures", DATA / "make_fixtures.py")
assert _maker is not None and _maker.loader is not None
MAKER = importlib.util.module_from_spec(_maker)
_maker.loader.exec_module(MAKER)
digest, fill = MAKER.digest, MAKER.fill
BEFORE: dict[str, Any] = json.loads((DATA / "before.json").read_text())
ARRAYS = np.load(DATA / "before.npz")
KEYS = sorted(k for k in BEFORE if k != "model_files")


def space_of(key: str) -> spaces.SearchSpace:
    rec = BEFORE[key]
    return spaces.get(rec["name"], **rec["params"])


@pytest.mark.parametrize("key", KEYS)
def test_costs_of_100k_genomes_equal(key: str) -> None:
    sp = space_of(key)
    c = sp.costs(sp.sample(100_000, seed=0))
    assert digest(c.macs, c.params, c.activation_bytes, c.layers, c.slots) == \
        BEFORE[key]["costs_100k"]


@pytest.mark.parametrize("key", KEYS)
def test_description_genomes_and_text_forms_equal(key: str) -> None:
    rec, sp = BEFORE[key], space_of(key)
    assert list(sp.gene_names) == rec["gene_names"]
    assert list(sp.slot_names) == rec["slot_names"]
    assert sp.choices.tolist() == rec["choices"]
    assert sp.params() == rec["space_params"]
    g = sp.sample(2000, seed=1)
    c = sp.costs(g)
    d = rec["digests"]
    assert digest(np.stack(list(c.totals().values()), 1)) == d["totals"]
    assert digest(c.slots) == d["slots"]
    assert digest(sp.canonical(g)) == d["canonical"]
    assert digest(sp.active_slots(g)) == d["active"]
    texts = sp.to_strs(g)
    assert texts[:5] == rec["texts"]
    assert hashlib.sha256("\n".join(texts).encode()).hexdigest() == rec["texts_digest"]
    np.testing.assert_array_equal(sp.from_strs(texts), g)


@pytest.mark.parametrize("key", KEYS)
def test_space_contracts_and_encodings_equal(key: str) -> None:
    """gene_slots, stages and plan tables were inferred before; now they are declared."""
    rec, sp = BEFORE[key], space_of(key)
    assert sp.gene_slots.tolist() == rec["gene_slots"]
    names, index = rec["stages"]
    assert list(sp.stage_names) == names and sp.slot_stages.tolist() == index
    tables = space_tables(sp)
    for k, v in rec["plan_tables"].items():
        np.testing.assert_array_equal(np.asarray(tables[k]), np.asarray(v), err_msg=k)
    g = sp.sample(2000, seed=1)
    for enc, want in rec["feature_names"].items():
        e = get_encoder(enc, sp)
        assert hashlib.sha256("|".join(e.feature_names).encode()).hexdigest() == want
        x = e.transform(g)
        np.testing.assert_array_equal(x[:20], ARRAYS[f"{key}/features/{enc}"])
        assert digest(x) == rec["digests"][f"features/{enc}"], enc


@pytest.mark.parametrize("key", [k for k in KEYS if "modules" in BEFORE[k]])
def test_built_modules_equal(key: str) -> None:
    torch = pytest.importorskip("torch")
    sp = space_of(key)
    for j, rec in enumerate(BEFORE[key]["modules"]):
        genome = np.asarray(rec["genome"], np.int32)
        assert list(sp.input_shape(genome, 2)) == rec["input_shape"]
        net = sp.build(genome)
        shapes = [list(v.shape) for v in net.state_dict().values()]
        assert shapes == [s for _, s in rec["state"]]
        fill(net)
        x = torch.randn(rec["input_shape"], generator=torch.Generator().manual_seed(99))
        with torch.no_grad():
            y = net.eval()(x).numpy()
        np.testing.assert_allclose(y, ARRAYS[f"{key}/module{j}/output"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fname", BEFORE["model_files"])
def test_model_files_written_before_load_and_predict_the_same(fname: str) -> None:
    sur = esm.load(DATA / fname)
    g = ARRAYS[f"model/{fname}/genomes"]
    # Linear models now go through the folded lookup tables (esm.predictor.fold), which sum
    # the same terms in another order: equal to 1e-12 relative instead of bit for bit.
    np.testing.assert_allclose(sur.predict(g), ARRAYS[f"model/{fname}/predictions"],
                               rtol=1e-12, atol=0)
