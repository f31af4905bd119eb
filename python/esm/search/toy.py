"""Small, exactly known latency models for tests and benchmarks (not fitted to any device).

Both satisfy the search's model protocol: ``predict(genomes [N, G] int) -> float64 [N]`` and a
``space`` attribute. :class:`LutModel` is a per-gene lookup table (the LUT encoding's linear
model); :class:`CostModel` is linear in the compiled per-slot costs (MACs and activation bytes of
every slot plus a per-layer overhead), a roofline-like stand-in for a real surrogate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esm.spaces.base import COST_FIELDS, SearchSpace


class LutModel:
    """``latency = bias + sum_g table[g, genome[g]]`` (ms).

    Parameters
    ----------
    space : SearchSpace
    table : np.ndarray, optional
        ``[G, max_choices]`` float64 per-gene costs; default: random in ``[0, scale)`` (seeded).
    bias, scale : float
    seed : int
    """

    def __init__(self, space: SearchSpace, table: np.ndarray | None = None, bias: float = 1.0,
                 scale: float = 0.1, seed: int = 0) -> None:
        self.space = space
        width = int(space.choices.max())
        if table is None:
            table = np.random.default_rng(seed).random((space.genome_length, width)) * scale
        self.table = np.ascontiguousarray(table, dtype=np.float64)
        self.bias = float(bias)
        self._flat = self.table.ravel()
        self._offsets = (np.arange(space.genome_length) * width).astype(np.int32)

    def predict(self, genomes: Any) -> np.ndarray:
        g = self.space.validate(genomes)
        return self.bias + np.take(self._flat, g + self._offsets).sum(axis=1)


class CostModel:
    """``latency = bias + a * slot_macs + b * slot_activation_bytes + c * layers`` (ms),
    with a different (seeded) weight per slot, from the compiled cost core.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, ns_per_mac: float = 0.02,
                 ns_per_byte: float = 0.05, us_per_layer: float = 5.0) -> None:
        self.space = space
        rng = np.random.default_rng(seed)
        s = len(space.slot_names)
        self.w_macs = ns_per_mac * 1e-6 * rng.uniform(0.5, 1.5, s)
        self.w_bytes = ns_per_byte * 1e-6 * rng.uniform(0.5, 1.5, s)
        self.w_layer = us_per_layer * 1e-3
        self.bias = 0.5

    def predict(self, genomes: Any) -> np.ndarray:
        c = self.space.costs(genomes)
        slots = c.slots.astype(np.float64)
        macs = slots[:, :, COST_FIELDS.index("macs")]
        act = slots[:, :, COST_FIELDS.index("activation_bytes")]
        return (self.bias + macs @ self.w_macs + act @ self.w_bytes
                + self.w_layer * c.layers.astype(np.float64))
