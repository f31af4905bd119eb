"""Count MACs and parameters of a built torch module with forward hooks (the exactness oracle)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def count_macs_params(module: nn.Module, input_shape: Sequence[int]) -> tuple[int, int]:
    """MACs of every Conv2d and Linear in one forward pass at batch 1, and the parameter count.

    MACs exclude bias additions, matching :class:`esm.spaces.Costs`.
    """
    macs = 0

    def hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            per_out = mod.in_channels // mod.groups * kh * kw
            macs += out.numel() // out.shape[0] * per_out
        elif isinstance(mod, nn.Linear):
            macs += out.numel() // out.shape[0] * mod.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        shape = (1, *tuple(input_shape)[1:])
        with torch.no_grad():
            module.eval()(torch.zeros(shape))
    finally:
        for h in handles:
            h.remove()
    return macs, sum(p.numel() for p in module.parameters())
