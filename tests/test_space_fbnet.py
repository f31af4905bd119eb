"""The ``fbnet`` space: text form against the shared data, structure of one hand-checked net."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from esm import InputError, spaces
from tests.conftest import HAVE_TORCH

SPACE = spaces.get("fbnet")
BLOCKS = tuple(o["name"] for o in spaces.spec("fbnet")["block"]["options"])


def _archs(data_dir: Path) -> list[str]:
    with open(data_dir / "fbnet_latency.csv", newline="") as f:
        return [row["arch"] for row in csv.DictReader(f)]


def test_every_csv_row_round_trips_byte_for_byte(data_dir: Path) -> None:
    archs = _archs(data_dir)
    assert len(archs) == 5000
    g = SPACE.from_strs(archs)
    assert g.shape == (5000, 22)
    assert SPACE.to_strs(g) == archs
    # all nine choices appear at every position
    for j in range(22):
        assert len(np.unique(g[:, j])) == 9


def test_choice_order_is_hw_nas_bench_primitives() -> None:
    assert BLOCKS == ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3",
                      "k5_e6", "skip")
    assert list(SPACE.choices) == [9] * 22
    assert SPACE.to_str(np.arange(22) % 9) == json.dumps(
        [BLOCKS[i % 9] for i in range(22)], separators=(",", ":"))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "[",
        "not json",
        '{"ks": [3]}',
        json.dumps(["skip"] * 21),
        json.dumps(["skip"] * 23),
        json.dumps(["skip"] * 21 + ["k7_e6"]),
        json.dumps(["skip"] * 21 + ["K3_E1"]),
        json.dumps(["skip"] * 21 + [3]),
        json.dumps(["skip"] * 21 + [None]),
        '"skip"',
    ],
)
def test_bad_strings_are_rejected(bad: str) -> None:
    with pytest.raises(InputError, match="fbnet"):
        SPACE.from_str(bad)


def test_parameters_are_checked() -> None:
    with pytest.raises(InputError, match="dataset"):
        spaces.get("fbnet", dataset="mnist")
    with pytest.raises(InputError, match="n_classes"):
        spaces.get("fbnet", n_classes=0)
    assert spaces.get("fbnet", n_classes=10).costs(SPACE.sample(1, seed=0)).params[0] > 0


def test_identity_skips_are_inactive() -> None:
    all_skip = np.full((1, 22), 8, dtype=np.int32)
    active = SPACE.active_slots(all_skip)[0]
    # projections: first block of stages 1..6 (channels change); the rest are identities
    assert np.flatnonzero(active).tolist() == [1, 5, 9, 13, 17, 21]
    c = SPACE.costs(all_skip)
    assert (c.slot("macs")[0][~active] == 0).all()
    assert (c.slot("layers")[0][active] == 1).all()
    # every gene changes the network, so canonical keeps all of them
    np.testing.assert_array_equal(SPACE.canonical(all_skip), all_skip)


def _conv(cin: int, cout: int, k: int, groups: int, hw: int) -> tuple[int, int]:
    """(MACs, params) of a bias-free conv producing an hw x hw map, BN params included."""
    w = cout * (cin // groups) * k * k
    return w * hw * hw, w + 2 * cout


def test_hand_checked_all_k3_e1_g2_network() -> None:
    """Worked by hand from HW-NAS-Bench's FBNet_Infer (CIFAR-100 setting)."""
    genome = np.full(22, BLOCKS.index("k3_e1_g2"), dtype=np.int32)
    # stem 3->16 at 32x32
    parts = [_conv(3, 16, 3, 1, 32)]
    # (cin, cout, hw_out) per block; stage strides 1,1,2,2,1,2,1 on 32x32
    plan = [(16, 16, 32)] + [(16, 24, 32)] + [(24, 24, 32)] * 3 + [(24, 32, 16)] + \
        [(32, 32, 16)] * 3 + [(32, 64, 8)] + [(64, 64, 8)] * 3 + [(64, 112, 8)] + \
        [(112, 112, 8)] * 3 + [(112, 184, 4)] + [(184, 184, 4)] * 3 + [(184, 352, 4)]
    assert len(plan) == 22
    hw_in = 32
    for cin, cout, hw in plan:
        parts.append(_conv(cin, cin, 1, 2, hw_in))  # grouped 1x1 at the input size
        parts.append(_conv(cin, cin, 3, cin, hw))  # depthwise 3x3, stride applied here
        parts.append(_conv(cin, cout, 1, 2, hw))  # grouped 1x1
        hw_in = hw
    parts.append(_conv(352, 1504, 1, 1, 4))  # header
    parts.append((1504 * 100, 1504 * 100 + 100))  # classifier
    macs, params = (sum(p[i] for p in parts) for i in (0, 1))
    c = SPACE.costs(genome)
    assert (c.macs[0], c.params[0], c.layers[0]) == (macs, params, 1 + 3 * 22 + 2)
    ref = SPACE.reference_costs(genome)
    assert (ref["macs"], ref["params"]) == (macs, params)
    # first block 16->16, 32x32: 16*8*1024 + 16*9*1024 + 16*8*1024 MACs
    assert c.slot("macs")[0, 0] == (128 + 144 + 128) * 1024


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_built_network_shapes_and_residuals() -> None:
    import torch

    from esm.spaces.nets.chain import FBNetBlock

    genome = SPACE.from_str(json.dumps(["k5_e6"] * 11 + ["skip"] * 11))
    net = SPACE.build(genome)
    with torch.no_grad():
        out = net(torch.zeros(SPACE.input_shape(genome, 2)))
    assert out.shape == (2, 100)
    blocks = list(net)[1:23]  # stem, 22 blocks, header, pooling, classifier
    assert isinstance(blocks[0], FBNetBlock) and blocks[0].residual  # 16 -> 16, stride 1
    assert not blocks[1].residual and not blocks[5].residual  # channels/stride change
    assert isinstance(blocks[12], torch.nn.Identity)  # skip inside stage 3
    assert isinstance(blocks[13], torch.nn.Sequential)  # skip 64 -> 112 projection
    assert net[23][0].out_channels == 1504 and net[25][1].in_features == 1504
