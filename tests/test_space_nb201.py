"""The ``nb201`` space: text forms of the real data, hand-checked costs, live edges."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest

from esm import InputError, spaces
from esm.spaces.nb201 import EDGES, OPS, Nb201
from tests.conftest import HAVE_TORCH

NONE_CELL = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CONV3_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
# NAS-Bench-201's ResNet-like cell: two 3x3 convolutions and a skip.
RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"

# Fixed part, by hand (C=16, 32x32, 10 classes):
#   stem     3x3 3->16 at 32x32: MACs 32*32*16*27 = 442,368; params 432 + BN 32
#   reduce1  3x3/2 16->32 at 16x16: 1,179,648; 3x3 32->32: 2,359,296; 1x1 16->32 at 16x16:
#            131,072; params 4,608+64 + 9,216+64 + 512
#   reduce2  3x3/2 32->64 at 8x8: 1,179,648; 3x3 64->64: 2,359,296; 1x1 32->64: 131,072;
#            params 18,432+128 + 36,864+128 + 2,048
#   head     BN 128; Linear 64*10 = 640 MACs, 650 params
FIXED_MACS = 442_368 + 1_179_648 + 2_359_296 + 131_072 + 1_179_648 + 2_359_296 + 131_072 + 640
FIXED_PARAMS = 464 + (4_672 + 9_280 + 512) + (18_560 + 36_992 + 2_048) + 128 + 650
# One 3x3 conv edge: H*W*C*C*9 = 262,144*9 MACs at every stage (HW*C^2 is constant), 15 cells;
# params 5 cells * (C*C*9 + 2C) summed over C = 16, 32, 64.
CONV3_EDGE_MACS = 15 * 262_144 * 9
CONV3_EDGE_PARAMS = 5 * ((2_304 + 32) + (9_216 + 64) + (36_864 + 128))
CONV1_EDGE_MACS = 15 * 262_144
CONV1_EDGE_PARAMS = 5 * ((256 + 32) + (1_024 + 64) + (4_096 + 128))


@pytest.fixture(scope="module")
def space() -> Nb201:
    s = spaces.get("nb201")
    assert isinstance(s, Nb201)
    return s


@pytest.fixture(scope="module")
def data_archs(data_dir: Path) -> list[str]:
    path = data_dir / "nb201_latency.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with path.open(newline="") as f:
        return [row["arch"] for row in csv.DictReader(f)]


def test_every_data_row_round_trips_and_covers_the_space(
    space: Nb201, data_archs: list[str]
) -> None:
    g = space.from_strs(data_archs)
    assert g.shape == (15_625, 6)
    assert space.to_strs(g) == data_archs
    # the rows are exactly the 5**6 distinct genomes
    codes = (g.astype(np.int64) * 5 ** np.arange(6)).sum(axis=1)
    assert len(np.unique(codes)) == 15_625 == space.size
    assert codes.min() == 0 and codes.max() == 5**6 - 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("|none~0|+|none~0|none~1|", "3 nodes"),
        (NONE_CELL + "+|none~0|", "3 nodes"),
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation"),
        ("|max_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must come from node 0"),
        ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "must come from node 0"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~3|", "must come from node 2"),
        ("|none~0|+|none~0|none~01|+|none~0|none~1|none~2|", "must come from node 1"),
        ("|none~0|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "needs 1 inputs"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 inputs"),
        ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "node 1"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2", "node 3"),
        ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "not 'op~node'"),
        ("||+|none~0|none~1|+|none~0|none~1|none~2|", "not 'op~node'"),
        ("|None~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation"),
        ("", "3 nodes"),
    ],
)
def test_bad_strings_are_rejected(space: Nb201, text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        space.from_str(text)


def test_non_string_and_whitespace(space: Nb201) -> None:
    with pytest.raises(InputError, match="string"):
        space.from_str(None)  # type: ignore[arg-type]
    np.testing.assert_array_equal(space.from_str(f"  {RESNET_CELL}\n"), [3, 0, 3, 1, 0, 0])


def test_gene_order_is_the_text_order(space: Nb201) -> None:
    text = ("|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|"
            "+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    g = space.from_str(text)
    np.testing.assert_array_equal(g, [1, 2, 3, 4, 0, 3])
    assert space.gene_names == ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
    assert list(space.decode(g)[0]) == [OPS[i] for i in g]
    assert space.to_str(g) == text


def test_hand_checked_costs(space: Nb201) -> None:
    g = space.from_strs([NONE_CELL, CONV3_CELL, RESNET_CELL])
    c = space.costs(g)
    # NAS-Bench-201 reports 7.78 to 220.11 MFLOPs and 0.073 to 1.53 MB params on CIFAR-10
    assert c.macs.tolist() == [FIXED_MACS, FIXED_MACS + 6 * CONV3_EDGE_MACS,
                               FIXED_MACS + 2 * CONV3_EDGE_MACS]
    assert c.macs.tolist() == [7_783_040, 220_119_680, 78_561_920]
    assert c.params.tolist() == [FIXED_PARAMS, FIXED_PARAMS + 6 * CONV3_EDGE_PARAMS,
                                 FIXED_PARAMS + 2 * CONV3_EDGE_PARAMS]
    assert c.params.tolist() == [73_306, 1_531_546, 559_386]
    # layers: 7 fixed convolutions + linear, plus one per conv edge per cell
    assert c.layers.tolist() == [8, 8 + 90, 8 + 30]
    # slots: only the two conv edges of the ResNet cell carry cost
    assert c.slot("macs")[2].tolist() == [CONV3_EDGE_MACS, 0, CONV3_EDGE_MACS, 0, 0, 0]
    assert c.slot("params")[2].tolist() == [CONV3_EDGE_PARAMS, 0, CONV3_EDGE_PARAMS, 0, 0, 0]
    assert c.slot("layers")[1].tolist() == [15] * 6
    # a 1x1 conv edge, pooling and skip edges
    pool = space.from_str("|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|"
                          "+|none~0|avg_pool_3x3~1|skip_connect~2|")
    cp = space.costs(pool)
    assert cp.macs[0] == FIXED_MACS + CONV1_EDGE_MACS
    assert cp.params[0] == FIXED_PARAMS + CONV1_EDGE_PARAMS


def test_dead_edges_are_computed_and_counted(space: Nb201) -> None:
    # node 1's conv cannot reach the output, but InferCell computes it
    dead = space.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    c = space.costs(dead)
    assert c.macs[0] == FIXED_MACS + CONV3_EDGE_MACS
    assert space.active_slots(dead)[0].tolist() == [True, False, False, True, False, False]
    assert space.live_edges(dead)[0].tolist() == [False, False, False, True, False, False]
    assert space.output_connected(dead).tolist() == [True]


def test_live_edges_hand_cases(space: Nb201) -> None:
    cut = space.from_str("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
                         "+|none~0|none~1|none~2|")
    assert not space.live_edges(cut).any()
    assert space.output_connected(cut).tolist() == [False]
    assert space.active_slots(cut)[0].sum() == 3
    # node 1 is unreachable: its outgoing conv is dead
    orphan = space.from_str("|none~0|+|skip_connect~0|nor_conv_3x3~1|"
                            "+|none~0|none~1|skip_connect~2|")
    live = space.live_edges(orphan)[0].tolist()
    assert live == [False, True, False, False, False, True]
    full = space.from_str(CONV3_CELL)
    assert space.live_edges(full).all()


def _live_by_search(genome: tuple[int, ...]) -> list[bool]:
    on = [op != 0 for op in genome]
    succ: dict[int, list[int]] = {k: [] for k in range(4)}
    for e, (dst, src) in enumerate(EDGES):
        if on[e]:
            succ[src].append(dst)

    def reaches(a: int, b: int) -> bool:
        return a == b or any(reaches(n, b) for n in succ[a])

    return [on[e] and reaches(0, src) and reaches(dst, 3) for e, (dst, src) in enumerate(EDGES)]


def test_live_edges_match_graph_search_on_all_cells(space: Nb201) -> None:
    every = list(itertools.product(range(5), repeat=6))
    live = space.live_edges(np.asarray(every))
    expected = np.asarray([_live_by_search(g) for g in every])
    np.testing.assert_array_equal(live, expected)
    assert (live <= space.active_slots(np.asarray(every))).all()
    const = space.constant_output(np.asarray(every))
    np.testing.assert_array_equal(const, ~live.any(axis=1))
    assert int(const.sum()) == 341  # the cells some runtimes fold away (nb201 pixel3)


def test_pruned_sets_every_dead_edge_to_none(space: Nb201) -> None:
    every = np.indices((5,) * 6).reshape(6, -1).T.astype(np.int32)
    live = space.live_edges(every)
    pruned = space.pruned(every)
    np.testing.assert_array_equal(pruned, np.where(live, every, 0))
    np.testing.assert_array_equal(space.pruned(pruned), pruned)  # nothing dead is left
    np.testing.assert_array_equal(space.live_edges(pruned), live)
    assert not pruned[space.constant_output(every)].any()  # a disconnected cell: all none
    assert pruned.dtype == np.int32
    with pytest.raises(InputError):
        space.pruned(np.full((1, 6), 5))


def test_constant_output_is_false_on_spaces_without_such_networks() -> None:
    from esm import spaces

    for name in ("fbnet", "ofa-mbv3"):
        sp = spaces.get(name)
        sample = sp.sample(200, seed=0)
        assert not sp.constant_output(sample).any()
        np.testing.assert_array_equal(sp.pruned(sample), sp.validate(sample))


def test_all_cells_costs_match_twin(space: Nb201) -> None:
    # the whole space is small: check the compiled core against the twin on every 7th cell
    every = np.asarray(list(itertools.product(range(5), repeat=6)))[::7]
    c = space.costs(every, threads=2)
    for i in range(0, len(every), 11):
        ref = space.reference_costs(every[i])
        assert (ref["macs"], ref["params"], ref["activation_bytes"], ref["layers"]) == (
            c.macs[i], c.params[i], c.activation_bytes[i], c.layers[i])
        np.testing.assert_array_equal(np.asarray(ref["slots"]), c.slots[i])


def test_parameters(space: Nb201) -> None:
    assert space.params() == {"channels": 16, "cells": 5, "n_classes": 10, "resolution": 32}
    for bad in ({"resolution": 30}, {"channels": 0}, {"cells": -1}, {"n_classes": 2.5}):
        with pytest.raises(InputError):
            spaces.get("nb201", **bad)
    imnet = spaces.get("nb201", n_classes=120, resolution=16)
    g = imnet.from_str(CONV3_CELL)
    assert imnet.input_shape(g, 4) == (4, 3, 16, 16)
    # a quarter of the spatial work; head 64*120
    c = imnet.costs(g)
    assert c.macs[0] == (220_119_680 - 640) // 4 + 64 * 120


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_hand_checked_cells_equal_torch(space: Nb201) -> None:
    import torch

    from esm.spaces.nets.counting import count_macs_params

    texts = [NONE_CELL, CONV3_CELL, RESNET_CELL,
             "|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|none~2|"]
    g = space.from_strs(texts)
    c = space.costs(g)
    for i, text in enumerate(texts):
        module = space.build(g[i])
        assert count_macs_params(module, space.input_shape(g[i])) == (c.macs[i], c.params[i])
        out = module(torch.zeros(space.input_shape(g[i], 2)))
        assert out.shape == (2, 10), text
    other = spaces.get("nb201", channels=8, cells=2, n_classes=120, resolution=16)
    h = other.sample(3, seed=0)
    ch = other.costs(h)
    for i in range(3):
        got = count_macs_params(other.build(h[i]), other.input_shape(h[i]))
        assert got == (ch.macs[i], ch.params[i])
