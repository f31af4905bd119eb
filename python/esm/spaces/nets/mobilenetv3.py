"""torch MobileNetV3 sub-networks of Once-for-All (structure of OFA's MobileNetV3 class)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from esm.spaces.reference import make_divisible

if TYPE_CHECKING:
    from esm.spaces.ofa_mbv3 import OfaMobileNetV3


def activation(name: str) -> nn.Module:
    """ReLU or hard-swish by OFA's names."""
    return nn.ReLU(inplace=True) if name == "relu" else nn.Hardswish(inplace=True)


def conv_bn_act(
    cin: int, cout: int, k: int, stride: int, groups: int, act: str | None
) -> nn.Sequential:
    """Convolution (no bias, padding k//2), batch norm and an optional activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(activation(act))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """OFA's SE module: reduction 4, hard-sigmoid gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = make_divisible(channels // 4, 8)
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(y))))


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, kxk depthwise, optional SE, 1x1 project."""

    def __init__(
        self, cin: int, cout: int, k: int, stride: int, expand: int, se: bool, act: str
    ) -> None:
        super().__init__()
        mid = make_divisible(cin * expand, 8) if expand != 1 else cin
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_act(cin, mid, 1, 1, 1, act))
        layers.append(conv_bn_act(mid, mid, k, stride, mid, act))
        if se:
            layers.append(SqueezeExcite(mid))
        layers.append(conv_bn_act(mid, cout, 1, 1, 1, None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV3(nn.Module):
    """Stem, blocks, final expansion, global pooling, feature mix and classifier."""

    def __init__(
        self, stem: nn.Module, blocks: list[nn.Module], final: nn.Module, mix: nn.Module,
        classifier: nn.Module,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.final_expand = final
        self.feature_mix = mix
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final_expand(self.blocks(self.stem(x)))
        x = self.feature_mix(x.mean((2, 3), keepdim=True))
        return self.classifier(torch.flatten(x, 1))


def build_ofa_mbv3(
    space: OfaMobileNetV3, ks: list[int], expand: list[int], depth: list[int]
) -> MobileNetV3:
    """Build the sub-network with per-slot kernels/expands and per-stage depths."""
    from esm.spaces.ofa_mbv3 import ACTS, MAX_DEPTH, SE, STAGES, STRIDES

    stem = conv_bn_act(3, space.stem, 3, 2, 1, "h_swish")
    blocks: list[nn.Module] = [MBConv(space.stem, space.first_block, 3, 1, 1, False, "relu")]
    cin = space.first_block
    for s in range(STAGES):
        for j in range(depth[s]):
            slot = s * MAX_DEPTH + j
            blocks.append(
                MBConv(cin, space.stage_widths[s], ks[slot], STRIDES[s] if j == 0 else 1,
                       expand[slot], SE[s], ACTS[s])
            )
            cin = space.stage_widths[s]
    final = conv_bn_act(cin, space.final_expand, 1, 1, 1, "h_swish")
    mix = nn.Sequential(nn.Conv2d(space.final_expand, space.last_channel, 1, bias=False),
                        nn.Hardswish(inplace=True))
    classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(space.last_channel, space.n_classes))
    return MobileNetV3(stem, blocks, final, mix, classifier).eval()
