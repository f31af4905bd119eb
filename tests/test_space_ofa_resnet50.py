"""The ``ofa-resnet50`` space: OFA's channel plan, extreme subnets, text form, canonical form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from esm import InputError, spaces
from esm.spaces.blocks import mid_channels
from esm.spaces.reference import make_divisible
from esm.spaces.specspace import SpecSpace
from tests.conftest import HAVE_TORCH

WIDTHS = (0.65, 0.8, 1.0)


@pytest.fixture(scope="module")
def space() -> SpecSpace:
    s = spaces.get("ofa-resnet50")
    assert isinstance(s, SpecSpace)
    return s


def arch(d: list[int], e: float | list[float], w: int | list[int], r: int) -> str:
    e_list = e if isinstance(e, list) else [e] * 18
    w_list = w if isinstance(w, list) else [w] * 6
    return json.dumps({"d": d, "e": e_list, "w": w_list, "r": r}, separators=(",", ":"))


LARGEST = arch([2, 2, 2, 2, 2], 0.35, 2, 224)
SMALLEST = arch([0, 0, 0, 0, 0], 0.2, 0, 128)
# OFA's ResNet50D class: depths [3, 4, 6, 3], expand 0.25, width 1.0, deep stem kept.
RESNET50D = arch([2, 1, 2, 2, 1], 0.25, 2, 224)


def test_shape_of_the_space(space: SpecSpace) -> None:
    assert space.genome_length == 30
    assert space.gene_names[:2] == ("d0", "d1") and space.gene_names[-1] == "r"
    assert len(space.slot_names) == 19 and space.slot_names[0] == "stem.residual"
    assert space.slot_names[-1] == "stage3.block3"
    np.testing.assert_array_equal(space.choices[:5], [2, 3, 3, 3, 3])
    assert space.choices[-1] == 25  # 128..224 step 4
    assert space.size == 2 * 3**4 * 3**18 * 3**6 * 25


def test_channel_plan_follows_ofa_make_divisible(space: SpecSpace) -> None:
    """The spec lists OFA's make_divisible(base * w, 8) channel counts; check them."""
    spec = space.spec
    stem_out = [make_divisible(64 * m, 8) for m in WIDTHS]
    assert spec["stem"][2]["out"]["values"] == stem_out == [40, 48, 64]
    assert spec["stem"][0]["out"]["values"] == [make_divisible(c // 2, 8) for c in stem_out]
    widths = [st["out"]["values"] for st in spec["stages"]]
    assert widths == [[make_divisible(b * m, 8) for m in WIDTHS] for b in (256, 512, 1024, 2048)]
    assert widths == [[168, 208, 256], [336, 408, 512], [664, 816, 1024], [1328, 1640, 2048]]
    # width 1.0, expand 0.25: the classic ResNet-50 bottleneck widths
    assert [mid_channels(w[2], 0.25, 8) for w in widths] == [64, 128, 256, 512]
    # make_divisible(round(168 * 0.35) = 59, 8) = 56; make_divisible(round(2048 * 0.35), 8) = 720
    assert mid_channels(168, 0.35, 8) == 56 and mid_channels(2048, 0.35, 8) == 720
    blocks = space.network(space.from_str(LARGEST))
    assert [b.cout for b in blocks if b.type == "bottleneck"][::6] == [256, 512, 1024]


def test_resnet50d_equivalent_matches_published_resnet50(space: SpecSpace) -> None:
    """The d=[2,1,2,2,1], e=0.25, w=1.0 subnet is ResNet-50-D (deep stem, avgpool shortcut).

    torchvision's ResNet-50 has 25,557,032 parameters and 4.09 GMACs at 224 (its docs' "4.09
    GFLOPS"); ResNet-50-D only replaces the 7x7 stem conv by three 3x3 convs (32, 32, 64
    channels) and the strided 1x1 shortcut convs by avg-pool + 1x1 conv (same cost).
    """
    c = space.costs(space.from_str(RESNET50D))
    stem_params_7x7 = 3 * 64 * 49 + 2 * 64
    stem_params_deep = 3 * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 2 * (32 + 32 + 64)
    assert c.params[0] == 25_557_032 - stem_params_7x7 + stem_params_deep  # 25,576,264
    stem_macs_7x7 = 112 * 112 * 64 * 3 * 49
    stem_macs_deep = 112 * 112 * (32 * 27 + 32 * 288 + 64 * 288)
    resnet50_macs = int(c.macs[0]) - stem_macs_deep + stem_macs_7x7
    assert resnet50_macs == pytest.approx(4.09e9, rel=1e-3)
    assert c.layers[0] == 3 + 16 * 3 + 4 + 1  # stem convs, 16 blocks, 4 shortcut convs, fc


def test_extreme_subnets(space: SpecSpace) -> None:
    big, small = space.from_str(LARGEST), space.from_str(SMALLEST)
    c = space.costs(np.stack([big, small]))
    assert c.macs.tolist() == [7_491_643_904, 315_079_552]
    assert c.params.tolist() == [48_105_992, 6_539_280]
    assert c.layers.tolist() == [3 + 18 * 3 + 4 + 1, 2 + 10 * 3 + 4 + 1]
    for genome in (big, small):
        ref = space.reference_costs(genome)
        assert (ref["macs"], ref["params"]) == (
            space.costs(genome).macs[0], space.costs(genome).params[0]
        )
    # every other genome lies between the two
    g = space.sample(2000, seed=0)
    cg = space.costs(g)
    assert (cg.macs <= c.macs[0]).all() and (cg.params <= c.params[0]).all()
    r128 = g[:, -1] == 0
    assert (cg.macs[r128] >= c.macs[1]).all() and (cg.params >= c.params[1]).all()


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("text", [SMALLEST, LARGEST, RESNET50D])
def test_extreme_subnets_equal_built_module(space: SpecSpace, text: str) -> None:
    import torch

    from esm.spaces.nets.counting import count_macs_params

    genome = space.from_str(text)
    module = space.build(genome)
    macs, params = count_macs_params(module, space.input_shape(genome))
    c = space.costs(genome)
    assert (macs, params) == (c.macs[0], c.params[0])
    with torch.no_grad():
        assert module(torch.zeros(space.input_shape(genome, 2))).shape == (2, 1000)


def test_odd_resolution_spatial_sizes(space: SpecSpace) -> None:
    # r=132: stem 66, max-pool 33, stages 33, 17, 9, 5 (ceil-mode avg-pool shortcut agrees
    # with the stride-2 3x3 conv)
    genome = space.from_str(arch([0, 0, 0, 0, 0], 0.2, 0, 132))
    ref = space.reference_costs(genome)
    assert ref["macs"] == space.costs(genome).macs[0]
    assert ref["slots"][-1][0] == 0  # stage3.block3 inactive at d=0
    # stage 3 first block (w=0.65: 664 -> 1328 channels, mid 264 at e=0.2): 1x1 at 9x9, 3x3
    # stride 2 to 5x5, 1x1, and the shortcut's 1x1 conv after a 9x9 -> 5x5 ceil-mode avg-pool
    assert mid_channels(1328, 0.2, 8) == 264
    slot = space.slot_names.index("stage3.block0")
    expected = (9 * 9 * 264 * 664 + 5 * 5 * 264 * 264 * 9 + 5 * 5 * 1328 * 264
                + 5 * 5 * 1328 * 664)
    assert ref["slots"][slot][0] == expected


def test_text_form(space: SpecSpace) -> None:
    g = space.sample(300, seed=4)
    texts = space.to_strs(g)
    assert all(" " not in t for t in texts)
    np.testing.assert_array_equal(space.from_strs(texts), g)
    obj = json.loads(texts[0])
    assert set(obj) == {"d", "e", "w", "r"} and obj["d"][0] in (0, 2)
    assert space.to_str(space.from_str(LARGEST)) == LARGEST


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "[1, 2]",
        '{"d":[2,2,2,2,2],"e":[0.35],"w":[2,2,2,2,2,2],"r":224}',
        arch([1, 0, 0, 0, 0], 0.2, 0, 224),  # OFA uses only 0 or 2 for the stem depth
        arch([0, 3, 0, 0, 0], 0.2, 0, 224),
        arch([0, 0, 0, 0, 0], 0.3, 0, 224),
        arch([0, 0, 0, 0, 0], 0.2, 3, 224),
        arch([0, 0, 0, 0, 0], 0.2, 0, 226),
        arch([0, 0, 0, 0, 0], 0.2, 0, 96),
        arch([0, 0, 0, 0, 0], 0.2, 0, 224)[:-1] + ',"ks":[3]}',
        arch([0, 0, 0, 0, 0], 0.2, 0, 224).replace('"r":224', '"r":224.0'),
        arch([0, 0, 0, 0, 0], 0.2, 0, 224).replace('"w":[0', '"w":[true'),
        arch([0, 0, 0, 0, 0], 0.2, 0, 224).replace('"w":[0', '"w":["0"'),
    ],
)
def test_bad_strings_are_rejected(space: SpecSpace, bad: str) -> None:
    with pytest.raises(InputError, match="ofa-resnet50"):
        space.from_str(bad)


def test_active_slots_and_canonical(space: SpecSpace) -> None:
    g = space.from_str(arch([0, 1, 0, 2, 0], 0.35, 1, 224))
    active = space.active_slots(g)[0]
    names = np.asarray(space.slot_names)
    assert list(names[active]) == [
        "stage0.block0", "stage0.block1", "stage0.block2",
        "stage1.block0", "stage1.block1",
        *(f"stage2.block{j}" for j in range(6)),
        "stage3.block0", "stage3.block1",
    ]
    c = space.canonical(g)[0]
    e = c[5:23]
    assert (e[~active[1:]] == 0).all() and (e[active[1:]] == 2).all()
    assert c[23] == 0  # w0 = 0.8 -> the same 24-channel stem as 0.65
    # canonical genomes give the same costs and networks
    same = space.costs(np.stack([g, c]))
    assert same.macs[0] == same.macs[1] and same.params[0] == same.params[1]
    # the stem block slot follows d0
    kept = space.from_str(arch([2, 0, 0, 0, 0], 0.2, 0, 224))
    assert space.active_slots(kept)[0, 0]
    slot0 = space.costs(kept).slot("macs")[0, 0]
    assert slot0 == 112 * 112 * 24 * 24 * 9  # 112x112 output, 24 -> 24 channels


def test_bad_space_parameters() -> None:
    with pytest.raises(InputError):
        spaces.get("ofa-resnet50", resolutions=(224, 128, 4))
    with pytest.raises(InputError):
        spaces.get("ofa-resnet50", n_classes=0)
    small = spaces.get("ofa-resnet50", resolutions=(160, 224, 32), n_classes=10)
    assert isinstance(small, SpecSpace)
    assert small.decode(np.arange(3)[:, None] * np.eye(30, dtype=np.int32)[-1])["r"].tolist() \
        == [160, 192, 224]
    g = small.from_str(arch([2, 2, 2, 2, 2], 0.35, 2, 192))
    assert small.to_str(g).endswith('"r":192}')
    assert small.costs(g).params[0] == 48_105_992 - 2048 * 990 - 990
