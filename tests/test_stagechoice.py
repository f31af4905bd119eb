"""The ``stagechoice`` encoding: per-stage costs split by the choice of the genes that own the
slots, the same in Python, in the compiled plan, in the flat (CUDA-source) twin and folded;
and the ``stages+choices`` feature set the build's step model chooses where a device's time
per MAC depends on the operation."""

from __future__ import annotations

import numpy as np
import pytest

from esm import _core, spaces
from esm.errors import InputError
from esm.predictor import plan
from esm.surrogate.encoders import StageChoiceEncoder, get_encoder, slot_owners

BUILT_IN = ("ofa-mbv3", "ofa-resnet50", "nb201", "fbnet", "anb-mnasnet")


def test_owners_of_ofa_mbv3() -> None:
    """Every block's kernel and expansion genes own its slot; depth and resolution none."""
    space = spaces.get("ofa-mbv3")
    groups = slot_owners(space)
    assert [(kind, k, len(p)) for kind, k, p in groups] == \
        [("ks#", 3, 4)] * 5 + [("e#", 3, 4)] * 5
    names = space.gene_names
    owned = {names[g] for _, _, pairs in groups for _, g in pairs}
    assert owned == {f"ks{i}" for i in range(20)} | {f"e{i}" for i in range(20)}
    for _, _, pairs in groups:  # kernel and expansion of block i own slot i
        assert all(int(names[g].lstrip("kse")) == s for s, g in pairs)


@pytest.mark.parametrize("name", BUILT_IN)
def test_python_compiled_and_twin_agree(name: str) -> None:
    space = spaces.get(name)
    e = get_encoder("stagechoice", space)
    g = space.sample(700, seed=4)
    X = e.transform(g)
    plan.verify_plan(e)  # the fused CPU encoder (raises on any difference)
    flat = _core.FlatPipeline(space.kernel, space.config, plan.build_plan(e))
    np.testing.assert_array_equal(np.asarray(flat.features(g.astype(np.int32))[0]), X)
    # each group's columns split its slots' costs: summed over the choices, the slots' costs
    c = space.costs(g).slots
    col = 0
    for _, k, pairs in e.groups:
        for fi, ci in enumerate(e._idx):
            got = X[:, col + fi:col + k * len(e._idx):len(e._idx)].sum(axis=1)
            np.testing.assert_array_equal(got, c[:, [s for s, _ in pairs], ci].sum(axis=1))
        col += k * len(e._idx)
    assert col == e.n_features
    # two genomes of one network encode the same
    np.testing.assert_array_equal(e.transform(space.canonical(g)), X)


def test_the_core_refuses_a_malformed_op() -> None:
    space = spaces.get("ofa-mbv3")
    good = plan.build_plan(StageChoiceEncoder(space))
    ints = np.asarray(good["ops"][0]["ints"])
    for bad in (ints[:-1], np.r_[ints, 0], np.where(np.arange(ints.size) == 6, 99, ints),
                np.where(np.arange(ints.size) == 7, 999, ints), np.r_[0, ints[1:]]):
        p = {**good, "ops": [{"kind": "stagechoice", "ints": bad.astype(np.int32)}]}
        with pytest.raises(ValueError, match=r"stagechoice|cost field"):
            _core.FusedPredictor(space.kernel, space.config, p, None)
    with pytest.raises(InputError, match="unknown fields"):
        StageChoiceEncoder(space, ["flops"])


def test_a_saved_encoder_keeps_its_owners_and_refuses_corrupt_ones() -> None:
    """The owners an encoder was made with travel in its description, so a saved model's
    columns keep their meaning if :func:`slot_owners` changes; owners that do not fit the
    space are refused with an InputError, never an index error or a crash."""
    from esm.surrogate.encoders import encoder_from_dict

    space = spaces.get("ofa-mbv3")
    fresh = get_encoder("fcc", space, parts=["stats", "stagechoice"])
    d = fresh.to_dict()
    assert [tuple(o[:2]) for o in d["params"]["owners"]] == [
        (kind, k) for kind, k, _ in slot_owners(space)]
    # a file from an esm whose rule owned only the kernel genes
    kernel_only = [o for o in d["params"]["owners"] if o[0] == "ks#"]
    old = encoder_from_dict({"name": "fcc", "params": {**d["params"], "owners": kernel_only}},
                            space)
    assert old.n_features == fresh.n_features - 15
    g = space.sample(50, seed=7)
    np.testing.assert_array_equal(old.transform(g), fresh.transform(g)[:, :old.n_features])
    plan.verify_plan(old)
    assert encoder_from_dict(old.to_dict(), space).params["owners"] == kernel_only
    good = d["params"]["owners"][0]
    slot, gene = good[2][0]
    for bad in ([["ks#", 3, [[99, gene]]]], [["ks#", 3, [[slot, 999]]]],
                [["ks#", 4, good[2]]], [["ks#", 3, [[0, gene], [19, gene]]]],
                [["ks#", 3, []]], [["ks#", 3, [[slot]]]], "ks#", [None], {"a": 1}):
        with pytest.raises(InputError, match="owners"):
            encoder_from_dict({"name": "stagechoice", "params": {"owners": bad}}, space)
    with pytest.raises(InputError, match="owners"):
        get_encoder("fcc", space, parts=["stats"], owners=d["params"]["owners"])


def test_step_model_takes_the_split_where_time_per_mac_depends_on_the_kernel() -> None:
    """A device whose depthwise time per MAC differs by kernel size (ofa-mbv3): from 80
    networks the step model takes ``stages+choices`` (one-standard-error rule), which the
    per-stage costs cannot represent, and predicts unseen networks far better."""
    from esm.build import _RidgeSurrogate
    from esm.sampling import RidgeModel, feature_sets, features

    space = spaces.get("ofa-mbv3")
    assert "stages+choices" in feature_sets(space)
    assert "stages+choices" not in feature_sets(spaces.get("nb201"))  # one stage
    g = space.sample(600, seed=3)
    sl = space.costs(g).slots.astype(np.float64)
    kernel = g[:, :20]
    per_mac = np.array([1.0, 2.0, 4.0])[kernel]  # time per MAC by kernel choice
    y = 1.0 + (sl[:, :, 0] * per_mac).sum(axis=1) / 3e8 + sl[:, :, 2].sum(axis=1) / 2e8
    y *= np.exp(0.01 * np.random.default_rng(0).standard_normal(len(y)))
    m = _RidgeSurrogate(space).fit(g[:80], y[:80])
    assert m.feature_set_ == "stages+choices"
    err = np.mean(np.abs(m.predict(g[80:]) / y[80:] - 1))
    st = RidgeModel().fit(features(space, g[:80], "stages"), y[:80])
    err_st = np.mean(np.abs(st.predict(features(space, g[80:], "stages")) / y[80:] - 1))
    assert err < 0.02 < err_st


def test_the_step_model_file_runs_folded_and_in_the_device_search_twin() -> None:
    """A step model on ``stages+choices`` saves as a linear ``fcc`` file that folds into
    tables, and the device search's pipeline (its CPU twin) scores what the predictor does."""
    from esm.build import _RidgeSurrogate
    from esm.final import step_surrogate
    from esm.sampling import RidgeModel, features
    from esm.search.device import TwinOps, flat_pipeline

    space = spaces.get("ofa-mbv3")
    g = space.sample(120, seed=1)
    y = 1 + space.costs(g).macs / 1e8
    step = _RidgeSurrogate(space)
    step.model_ = RidgeModel().fit(features(space, g, "stages+choices"), y)
    step.feature_set_ = "stages+choices"
    sur = step_surrogate(space, step, g, y)
    pred, flat = flat_pipeline(sur)
    assert pred.folded and pred.fused
    probe = space.sample(500, seed=2)
    want = step.predict(probe)
    np.testing.assert_allclose(pred.predict(probe), want, rtol=1e-12)
    got = TwinOps(flat, space.choices).score(probe.astype(np.int32))
    np.testing.assert_allclose(got, want, rtol=1e-9)
