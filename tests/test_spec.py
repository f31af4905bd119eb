"""Spec-defined spaces: the block library, the compiled walker, checks and where specs go."""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import esm
from esm import InputError, spaces
from esm._native import core
from esm.cli import main
from esm.spaces.spec import SpecError
from esm.spaces.specspace import SpecSpace
from esm.surrogate import Surrogate
from tests.conftest import HAVE_TORCH

#: Every block type, choices per block, per stage and per layer, options with an identity skip,
#: a stage that may be empty, pools with ceil mode and a classifier on a 2x2 map.
ZOO: dict[str, Any] = {
    "format": "esm-space/1",
    "name": "zoo",
    "params": {"classes": 10},
    "input": {"channels": 3, "resolution": {"gene": "r", "values": [32, 40, 44]}},
    "stem": [
        {"type": "conv", "out": {"gene": "w", "values": [16, 24]}, "kernel": 3, "stride": 2,
         "act": "swish"},
        {"type": "stage", "name": "pre", "slot": "res",
         "depth": {"gene": "d", "values": [0, 1]},
         "block": {"type": "conv", "kernel": 3, "residual": True, "act": "relu6"}},
        {"type": "conv", "kernel": 3, "groups": "depthwise", "act": None},
        {"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    ],
    "stages": [
        {"out": {"gene": "w", "values": [24, 32]}, "depth": {"gene": "d", "values": [1, 2, 3]},
         "block": {"type": "basic", "kernel": {"gene": "k", "values": [3, 5]},
                   "expand": {"gene": "x", "values": [0.5, 1.0]}}},
        {"out": 48, "stride": 2, "depth": 2, "block": {"gene": "op", "options": [
            {"name": "fb", "type": "fbnet", "kernel": 3, "expand": 2, "groups": 2},
            {"name": "mb", "type": "mbconv", "kernel": 5, "expand": 3, "se": True,
             "se_base": "in", "se_round": 1, "se_gate": "sigmoid"},
            {"name": "bn", "type": "bottleneck", "expand": 0.25, "shortcut": "conv"},
            {"name": "skip", "type": "skip"}]}},
        {"out": 48, "depth": {"gene": "d", "values": [1, 2]},
         "block": {"type": "mbconv", "act": "h_swish",
                   "kernel": {"gene": "k", "values": [3, 5, 7], "per": "stage"},
                   "expand": {"gene": "x", "values": [1, 4]},
                   "se": {"gene": "se", "values": [False, True]}}},
        {"out": 64, "stride": 2, "depth": 1, "block": {"type": "skip"}},
    ],
    "head": [
        {"type": "avgpool", "kernel": 2, "stride": 1},
        {"type": "dropout", "p": 0.1},
        {"type": "linear", "out": {"param": "classes"}, "bias": False},
    ],
}


@pytest.fixture(scope="module")
def zoo() -> SpecSpace:
    sp = spaces.from_spec(ZOO)
    assert isinstance(sp, SpecSpace)
    return sp


def assert_walks_agree(sp: spaces.SearchSpace, g: np.ndarray) -> None:
    """The table walk equals the interpreter (header word 5 of the program is the mode)."""
    program = sp.config.copy()
    program[5] = 0
    for detail in (True, False):
        fast = core.costs("spec", g, sp.config, 2, detail)
        slow = core.costs("spec", g, program, 1, detail)
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(a, b)


def test_zoo_genes_slots_and_contracts(zoo: SpecSpace) -> None:
    assert zoo.uses_tables
    assert zoo.gene_names[:6] == ("r", "w0", "w1", "d0", "d1", "d2")  # by first appearance
    assert zoo.slot_names == ("pre.res", "stage0.block0", "stage0.block1", "stage0.block2",
                              "stage1.block0", "stage1.block1", "stage2.block0",
                              "stage2.block1", "stage3.block0")
    assert zoo.stage_names == ("pre", "stage0", "stage1", "stage2", "stage3")
    assert zoo.slot_stages.tolist() == [0, 1, 1, 1, 2, 2, 3, 3, 4]
    slot_gene, table = zoo.slot_activity()
    names = zoo.gene_names
    # the pre stage follows d0, blocks past stage 0's and stage 2's minimum depth their d gene,
    # stage 1's second block is inactive when it is an identity skip
    assert [names[g] if g >= 0 else None for g in slot_gene] == [
        "d0", None, "d1", "d1", None, "op1", None, "d2", None]
    assert table[5, :4].tolist() == [1, 1, 1, 0]
    gs = {names[i]: s for i, s in enumerate(zoo.gene_slots) if s >= 0}
    # per-block genes of guarded slots belong to them; the stage kernel gene of stage 2 does
    # not (its first block always runs); stage 1's option genes decide their own slots
    assert gs == {"k1": 2, "x1": 2, "k2": 3, "x2": 3, "x4": 7, "se1": 7}
    assert zoo.pixel_table()[1].tolist() == [1024.0, 1600.0, 1936.0]


def test_zoo_costs_equal_reference_and_interpreter(zoo: SpecSpace) -> None:
    g = zoo.sample(3000, seed=1)
    assert_walks_agree(zoo, g)
    c = zoo.costs(g[:60])
    for i in range(60):
        ref = zoo.reference_costs(g[i])
        assert (ref["macs"], ref["params"], ref["activation_bytes"], ref["layers"]) == (
            c.macs[i], c.params[i], c.activation_bytes[i], c.layers[i])
        np.testing.assert_array_equal(np.asarray(ref["slots"]), c.slots[i])


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_zoo_costs_equal_built_module(zoo: SpecSpace) -> None:
    import torch

    from esm.spaces.nets.counting import count_costs

    g = zoo.sample(60, seed=2)
    c = zoo.costs(g)
    for i in range(len(g)):
        net = zoo.build(g[i])
        got = count_costs(net, zoo.input_shape(g[i]))
        want = {k: int(v[i]) for k, v in c.totals().items() if k != "weight_bytes"}
        assert got == want, zoo.to_str(g[i])
        with torch.no_grad():
            assert net(torch.zeros(zoo.input_shape(g[i], 2))).shape == (2, 10)


def test_every_shipped_space_tabulates_and_equals_its_interpreter() -> None:
    for name in spaces.names():
        sp = spaces.get(name)
        if sp.kernel != "spec":
            continue
        assert isinstance(sp, SpecSpace) and sp.uses_tables, name
        assert_walks_agree(sp, sp.sample(5000, seed=3))


def test_zoo_text_form_canonical_and_decode(zoo: SpecSpace) -> None:
    g = zoo.sample(300, seed=4)
    texts = zoo.to_strs(g)
    assert set(json.loads(texts[0])) == set(zoo.gene_names)  # default form: keys
    np.testing.assert_array_equal(zoo.from_strs(texts), g)
    c = zoo.canonical(g)
    np.testing.assert_array_equal(zoo.costs(c).slots, zoo.costs(g).slots)
    # genes of inactive slots are zero in the canonical form
    act = zoo.active_slots(g)
    for j, s in enumerate(zoo.gene_slots):
        if s >= 0:
            assert (c[~act[:, s], j] == 0).all()
    d = zoo.decode(g)
    assert d["r"].shape == (300,) and d["w"].shape == (300, 2) and d["op"].dtype.kind == "U"


def test_same_values_are_one_network() -> None:
    spec = copy.deepcopy(ZOO)
    spec["stem"][0]["out"] = {"gene": "w", "values": [16, 16], "text": ["a", "b"]}
    sp = spaces.from_spec(spec)
    g = sp.sample(50, seed=0)
    assert sp.gene_names[1] == "w0" and g[:, 1].any() and not sp.canonical(g)[:, 1].any()


def test_parameters_presets_and_params_round_trip() -> None:
    sp = spaces.get("ofa-mbv3", width_mult=1.0, resolutions=[160, 224, 32])
    assert sp.params() == {"width_mult": 1.0, "resolutions": [160, 224, 32], "n_classes": 1000}
    assert sp.choices[-1] == 3
    fb = spaces.get("fbnet", dataset="imagenet")
    assert fb.params() == {"dataset": "imagenet", "n_classes": 1000}
    assert fb.input_shape(fb.sample(1, seed=0)[0]) == (1, 3, 224, 224)
    assert spaces.get("fbnet", dataset="imagenet", n_classes=7).params()["n_classes"] == 7
    with pytest.raises(InputError, match="unknown parameter 'depth'"):
        spaces.get("ofa-mbv3", depth=3)
    with pytest.raises(InputError, match=r"width_mult: must be in \(0, 16\].*parameter"):
        spaces.get("ofa-mbv3", width_mult=-1)
    with pytest.raises(InputError, match="dataset must be one of cifar100, imagenet"):
        spaces.get("fbnet", dataset="mnist")
    # a space that is not built in records its spec in its parameters
    user = spaces.from_spec(ZOO, classes=3)
    params = user.params()
    assert params["classes"] == 3 and params["spec"] == ZOO
    again = spaces.get("zoo", **params)
    np.testing.assert_array_equal(again.config, user.config)
    assert "spec" not in spaces.get("ofa-mbv3").params()
    with pytest.raises(InputError, match="not that space's spec"):
        spaces.get("ofa-mbv3", spec=ZOO)


def _bad(edit: Any) -> dict[str, Any]:
    spec = copy.deepcopy(ZOO)
    edit(spec)
    return spec


BAD = [
    (lambda s: s.update(format="esm-space/2"), "zoo: format: must be 'esm-space/1'"),
    (lambda s: s.update(stagez=[]), "spec: unknown field 'stagez'"),
    (lambda s: s.update(name="Zoo!"), "name: must be lowercase"),
    (lambda s: s["stages"][0]["block"].update(type="conv3d"), "stages[0].block.type: unknown "),
    (lambda s: s["stages"][0]["block"]["kernel"].update(values=[3, 4]),
     "stages[0].block.kernel.values[1]: must be odd"),
    (lambda s: s["stages"][1].update(out=-8), "stages[1].out: must be in [1, 16384]"),
    (lambda s: s["stages"][0]["block"]["expand"].pop("values"),
     "needs exactly one of 'values' and 'range'"),
    (lambda s: s["stem"][0]["out"].update(text=[1]), "stem[0].out.text: must be a list of 2"),
    (lambda s: s["head"][2].update(out={"param": "nope"}), "unknown parameter 'nope'"),
    (lambda s: s["stages"][0].update(stride=2, depth={"gene": "d", "values": [0, 1]}),
     "needs at least one block"),
    (lambda s: s["stages"][0].update(slot="b"), "needs '{j}'"),
    (lambda s: s["stages"][1]["block"]["options"][0].update(groups=5), "groups 5 do not divide"),
    (lambda s: s["input"].update(resolution=2), "spatial size drops below 1 at input resolution"),
    (lambda s: s.update(genome=["w", "d"]), "genome: must list each gene family once"),
    (lambda s: s.update(gene_name="{family}"), "gives two genes one name"),
    (lambda s: s.update(text={"form": "list", "family": "w"}), "text.family"),
    (lambda s: s.update(text={"form": "object", "scalar": ["w"]}), "text.scalar"),
    (lambda s: s["stages"][1]["block"]["options"][0].update(kernel={"gene": "q", "values": [3]}),
     "a block option cannot hold choices"),
    (lambda s: s["stem"][0]["out"].update(per="stage"), "only applies to a field of a stage"),
    (lambda s: s["stages"][1].update(name="stage0"), "stage name 'stage0' repeats"),
    (lambda s: s["head"].append({"type": "stage", "name": "late"}), "the head cannot hold"),
    (lambda s: s["stem"][1].pop("name"), "stem[1].name: a stage outside 'stages' needs"),
    (lambda s: s["stages"][0]["block"].update(act="gelu"), "unknown activation 'gelu'"),
    (lambda s: s["stages"][0]["block"].update(mid_round=0), "mid_round: must be in [1, 64]"),
    (lambda s: (s.update(stages=[]), s["stem"].pop(1)), "stages: a space needs at least one"),
    (lambda s: s["stem"][1]["block"].update(out=8), "stem[1].block: unknown field 'out'"),
]


@pytest.mark.parametrize(("edit", "message"), BAD)
def test_bad_specs_name_the_field_and_the_reason(edit: Any, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        spaces.from_spec(_bad(edit))


def test_bad_spec_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "esm-space/1",')
    assert main(["spaces", "--show", str(broken)]) == 2
    assert "not valid JSON (line 1" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_bad(lambda s: s["stages"][1].update(out=-8))))
    assert main(["spaces", "--show", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "stages[1].out" in err
    assert main(["train", "--data", str(tmp_path / "x.csv"), "--space", str(bad), "--target",
                 "lat", "--out", str(tmp_path / "m.esm")]) == 2
    assert main(["spaces", "--show", "nb201"]) == 2
    assert main(["spaces", "--show", str(tmp_path / "missing.json")]) == 2


def test_show_prints_a_spec_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("ofa-mbv3", "anb-mnasnet"):
        assert main(["spaces", "--show", name]) == 0
        text = capsys.readouterr().out
        assert json.loads(text) == spaces.builtin_spec(name)
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        np.testing.assert_array_equal(spaces.get(str(path)).config, spaces.get(name).config)
        np.testing.assert_array_equal(spaces.load(path).config, spaces.get(name).config)


def test_compiled_program_is_checked_at_the_boundary(zoo: SpecSpace) -> None:
    """Corrupting any word before the cost tables gives a ValueError or valid costs."""
    g = zoo.sample(64, seed=5)
    program = zoo.config
    table_off = int(program[21])
    rng = np.random.default_rng(0)
    refused = 0
    for _ in range(3000):
        p = program.copy()
        i = int(rng.integers(0, table_off))
        with np.errstate(over="ignore"):
            bumped = (p[i] + 1, p[i] * 3)
        choices = np.array([-1, 0, 1, 7, 2**31, -(2**40), *bumped,
                            np.float64(np.nan).view(np.int64)], dtype=np.int64)
        p[i] = choices[rng.integers(0, len(choices))]
        try:
            core.costs("spec", g, p, 1, True)
        except ValueError:
            refused += 1
    assert refused > 1000
    with pytest.raises(ValueError, match="config"):
        core.costs("spec", g, program[:-1], 1, True)
    with pytest.raises(ValueError, match="genome 0, gene 0"):
        core.costs("spec", np.full((1, zoo.genome_length), 9, np.int32), program, 1, True)


def test_model_files_embed_the_spec(tmp_path: Path, zoo: SpecSpace) -> None:
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps(ZOO))
    sp = spaces.get(str(path))
    g = sp.canonical(sp.sample(80, seed=6))
    y = sp.costs(g).macs / 1e6 + 1.0
    sur = Surrogate.fit(sp, g, y, encoding="fcc", model="ridge")
    sur.save(tmp_path / "m.esm")
    path.unlink()
    back = esm.load(tmp_path / "m.esm")
    assert back.space.name == "zoo" and isinstance(back.space, SpecSpace)
    assert back.space.spec == ZOO
    probe = sp.sample(500, seed=7)
    np.testing.assert_array_equal(back.predict(probe), sur.predict(probe))
    assert back.compile_error is None
    back.check_space(zoo)
    with pytest.raises(InputError, match="space 'zoo'"):
        back.check_space("ofa-mbv3")


def test_a_changed_builtin_spec_is_its_own_space(tmp_path: Path) -> None:
    spec = spaces.builtin_spec("ofa-mbv3")
    assert spec is not None
    spec["block"]["kernel"]["values"] = [3, 5]
    sp = spaces.from_spec(spec)
    assert sp.name == "ofa-mbv3" and sp.choices[0] == 2 and sp.params()["spec"] == spec
    g = sp.sample(60, seed=0)
    sur = Surrogate.fit(sp, g, sp.costs(g).macs / 1e6 + 1, encoding="onehot", model="ridge")
    sur.save(tmp_path / "m.esm")
    assert esm.load(tmp_path / "m.esm").space.choices[0] == 2
    with pytest.raises(InputError, match="different parameters"):
        sur.check_space(spaces.get("ofa-mbv3"))


def test_anb_mnasnet_matches_the_published_macs_and_params(data_dir: Path) -> None:
    """Accel-NASBench's MACs were counted with thop 0.1.1, which adds 4 operations per batch-
    norm output element and H*W + 1 per output of every adaptive average pooling (the SE and
    head pools) to the convolution and linear MACs that esm counts; with those, esm's MACs
    equal the published ones on every row, and its parameters equal them as they are."""
    from esm.spaces.blocks import mid_channels, out_size

    with open(data_dir / "mnasnet_anb.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    sp = spaces.get("anb-mnasnet")
    g = sp.from_strs([r["arch"] for r in rows])
    assert sp.to_strs(g) == [r["arch"] for r in rows]
    c = sp.costs(g)
    params = np.array([round(float(r["params_m"]) * 1e6) for r in rows])
    macs = np.array([round(float(r["macs_m"]) * 1e6) for r in rows])
    np.testing.assert_array_equal(c.params, params)

    def thop_extra(genome: np.ndarray) -> int:
        extra = 0
        for b in sp.network(genome):
            oh, ow = out_size(b)
            if b.type == "conv":
                extra += 4 * b.cout * oh * ow
            elif b.type == "mbconv":
                mid = mid_channels(b.cin, b.expand, b.fields["mid_round"])
                extra += 4 * mid * b.h * b.w if mid != b.cin else 0
                extra += 4 * (mid + b.cout) * oh * ow + ((oh * ow + 1) * mid if b.se else 0)
            elif b.type == "global_avgpool":
                extra += (b.h * b.w + 1) * b.cin
        return extra

    extra = np.array([thop_extra(x) for x in g])
    np.testing.assert_array_equal(c.macs + extra, macs)
    gap = c.macs / macs - 1
    assert -0.15 < gap.min() and gap.max() < -0.03  # the size of the convention difference


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_readme_worked_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's example, small: copy a shipped spec, change it, collect, train, search."""
    from esm.measure import Settings
    from esm.store import Store

    assert main(["spaces", "--show", "ofa-mbv3"]) == 0
    spec = json.loads(capsys.readouterr().out)
    spec["name"] = "my-mbv3"
    spec["params"].update(width_mult=0.25, resolutions=[32, 40, 8], n_classes=10)
    spec["block"]["kernel"]["values"] = [3, 5]
    del spec["stages"][3]
    path = tmp_path / "my-mbv3.json"
    path.write_text(json.dumps(spec, indent=2))
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps(Settings(warmup_min_s=0.005, warmup_max_s=0.02, min_samples=3,
                                        max_time_s=0.05, target_rel_ci=0.05,
                                        min_sample_s=0.0).to_dict()))
    store, data, model = tmp_path / "my.sqlite", tmp_path / "my.csv", tmp_path / "my.esm"
    assert main(["collect", "--space", str(path), "--n", "12", "--store", str(store),
                 "--threads", "1", "--settings", str(fast), "--references", "1",
                 "--no-progress"]) == 0
    with Store(store) as st:
        (run,) = st.runs()
    assert run["space"] == "my-mbv3" and run["space_params"]["spec"] == spec
    assert spaces.get(run["space"], **run["space_params"]).genome_length == 16 + 16 + 4 + 1
    assert main(["export", "--store", str(store), "--out", str(data)]) == 0
    assert main(["import", str(data), "--space", str(path), "--store",
                 str(tmp_path / "copy.sqlite")]) == 0
    assert main(["train", "--data", str(data), "--space", str(path), "--target", "lat_cpu_1",
                 "--model", "ridge", "--train-size", "8", "--out", str(model)]) == 0
    assert main(["evaluate", "--model", str(model), "--data", str(data), "--target",
                 "lat_cpu_1", "--space", str(path)]) == 0
    path.unlink()  # the model file carries the spec
    capsys.readouterr()
    rc = main(["search", "--model", str(model), "--latency-budget", "1000", "--objective",
               "macs", "--max-evaluations", "2000", "--json"])
    assert rc == 0
    found = json.loads(capsys.readouterr().out)
    assert found["found"] and found["space"] == "my-mbv3"
    assert len(json.loads(found["best"])["ks"]) == 16


def test_the_documented_example_spec_compiles() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "spaces.md").read_text()
    specs = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)
             if '"format"' in b]
    assert specs
    for spec in specs:
        sp = spaces.from_spec(spec)
        assert sp.genome_length == 14 and sp.uses_tables  # type: ignore[attr-defined]
        g = sp.sample(20, seed=0)
        assert sp.to_str(g[0]).startswith('{"r":')
