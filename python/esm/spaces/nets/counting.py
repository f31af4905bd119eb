"""Count the costs of a built torch module with forward hooks (the exactness oracle)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from esm.spaces.base import BYTES_PER_ELEMENT


def count_costs(module: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
    """What one forward pass at batch 1 runs: the :class:`esm.spaces.Costs` totals.

    ``macs`` of every Conv2d and Linear (bias excluded), ``params`` (all parameters),
    ``activation_bytes`` (4 bytes per output element of a Conv2d or Linear) and ``layers`` (how
    many Conv2d and Linear calls ran).
    """
    counts = {"macs": 0, "activation_bytes": 0, "layers": 0}

    def hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        per_item = int(out.numel() // out.shape[0])
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            counts["macs"] += per_item * (mod.in_channels // mod.groups * kh * kw)
        else:
            assert isinstance(mod, nn.Linear)
            counts["macs"] += per_item * mod.in_features
        counts["activation_bytes"] += per_item * BYTES_PER_ELEMENT
        counts["layers"] += 1

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        shape = (1, *tuple(input_shape)[1:])
        with torch.no_grad():
            module.eval()(torch.zeros(shape))
    finally:
        for h in handles:
            h.remove()
    return {**counts, "params": sum(p.numel() for p in module.parameters())}


def count_macs_params(module: nn.Module, input_shape: Sequence[int]) -> tuple[int, int]:
    """MACs and parameters of :func:`count_costs`."""
    c = count_costs(module, input_shape)
    return c["macs"], c["params"]
