"""The flat pipeline's CPU twin (the same host/device source the CUDA kernels compile) equals
the compiled CPU cost path exactly, on every built-in space; bad rows are reported per row."""

from __future__ import annotations

import numpy as np
import pytest

from esm import _core, spaces

SPACES = ["ofa-mbv3", "ofa-resnet50", "nb201", "fbnet", "anb-mnasnet"]


@pytest.mark.parametrize("name", SPACES)
def test_twin_costs_equal_cpu(name: str) -> None:
    space = spaces.get(name)
    g = space.sample(3000, seed=1)
    ref = space.costs(g, threads=1)
    totals, slots, bad = _core.flat_costs(space.kernel, g, space.config)
    assert (bad == -1).all()
    np.testing.assert_array_equal(totals[:, 0], ref.macs)
    np.testing.assert_array_equal(totals[:, 1], ref.params)
    np.testing.assert_array_equal(totals[:, 2], ref.activation_bytes)
    np.testing.assert_array_equal(totals[:, 3], ref.layers)
    np.testing.assert_array_equal(slots, ref.slots)
    t2, s2, _ = _core.flat_costs(space.kernel, g, space.config, detail=False)
    np.testing.assert_array_equal(t2, totals)
    assert s2.shape == (len(g), 0, 4)


@pytest.mark.parametrize("name", ["ofa-mbv3", "ofa-resnet50", "fbnet", "anb-mnasnet"])
def test_twin_interpreter_equals_cpu(name: str) -> None:
    """A spec program forced to interpret walks the same costs as its table walk."""
    space = spaces.get(name)
    if space.kernel != "spec":
        pytest.skip("hand-written kernel: no interpreter mode")
    program = space.config.copy()
    program[5] = 0  # kHMode: interpret
    g = space.sample(500, seed=2)
    totals, slots, bad = _core.flat_costs("spec", g, program)
    ref_t, ref_s = _core.costs("spec", g, program, 1, True)
    assert (bad == -1).all()
    np.testing.assert_array_equal(totals, ref_t)
    np.testing.assert_array_equal(slots, ref_s)


@pytest.mark.parametrize("name", SPACES)
def test_twin_reports_first_bad_gene_per_row(name: str) -> None:
    space = spaces.get(name)
    g = space.sample(10, seed=3)
    g[2, 1] = space.choices[1]
    g[2, 3] = -1
    g[7, 0] = -5
    totals, slots, bad = _core.flat_costs(space.kernel, g, space.config)
    assert bad.tolist() == [-1, -1, 1, -1, -1, -1, -1, 0, -1, -1]
    assert not totals[[2, 7]].any() and not slots[[2, 7]].any()
    ok = bad == -1
    np.testing.assert_array_equal(totals[ok][:, 0], space.costs(g[ok]).macs)


def test_twin_refuses_wrong_shapes() -> None:
    space = spaces.get("nb201")
    with pytest.raises(ValueError):
        _core.flat_costs("nb201", np.zeros((3, 5), np.int32), space.config)
    with pytest.raises(ValueError):
        _core.flat_costs("nb201", np.zeros((3, 6), np.float64), space.config)
