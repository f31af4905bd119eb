"""torch ResNet sub-networks of Once-for-All (structure of OFA's ``ResNets`` class).

Channel counts are derived here from the width multipliers and expand ratios with OFA's own
formulas, independently of the integer plan the cost kernel uses, so that the exactness test
compares two separate derivations.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from esm.spaces.reference import make_divisible


def conv_bn_relu(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    """OFA's ``ConvLayer``: conv (no bias, same padding), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """``conv(x) + x`` (OFA's ``ResidualBlock`` with an identity shortcut)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


class ResNetBottleneckBlock(nn.Module):
    """OFA's bottleneck: 1x1, kxk (stride), 1x1; identity or ``avgpool_conv`` shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: float, k: int = 3) -> None:
        super().__init__()
        mid = make_divisible(round(cout * expand_ratio), 8)
        self.conv1 = conv_bn_relu(cin, mid, 1, 1)
        self.conv2 = conv_bn_relu(mid, mid, k, stride)
        self.conv3 = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.downsample: nn.Module
        if stride == 1 and cin == cout:
            self.downsample = nn.Identity()
        else:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, padding=0, ceil_mode=True),
                nn.Conv2d(cin, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
        self.final_act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.downsample(x)
        return self.final_act(self.conv3(self.conv2(self.conv1(x))) + residual)


class ResNets(nn.Module):
    """Input stem, 3x3/2 max pooling, bottleneck blocks, global pooling, classifier."""

    def __init__(self, input_stem: list[nn.Module], blocks: list[nn.Module], classifier: nn.Module):
        super().__init__()
        self.input_stem = nn.Sequential(*input_stem)
        self.max_pooling = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.blocks = nn.Sequential(*blocks)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.max_pooling(self.input_stem(x)))
        return self.classifier(torch.flatten(x.mean((2, 3)), 1))


def build_ofa_resnet(
    d: Sequence[int],
    e: Sequence[float],
    w: Sequence[int],
    n_classes: int = 1000,
    width_mult_list: Sequence[float] = (0.65, 0.8, 1.0),
    base_depth_list: Sequence[int] = (2, 2, 4, 2),
    stage_width_list: Sequence[int] = (256, 512, 1024, 2048),
    max_extra_depth: int = 2,
) -> ResNets:
    """Build the OFA ResNet sub-network of ``set_active_subnet(d=d, e=e, w=w)``.

    ``d`` has 1 + 4 entries (input-stem depth, then extra blocks per stage), ``e`` one expand
    ratio per possible block (``sum(base_depth_list) + 4 * max_extra_depth``), ``w`` 2 + 4
    width-multiplier indices.
    """
    stem_out = [make_divisible(64 * m, 8) for m in width_mult_list]
    stem_mid = [make_divisible(c // 2, 8) for c in stem_out]
    mid, cin = stem_mid[w[0]], stem_out[w[1]]
    input_stem: list[nn.Module] = [conv_bn_relu(3, mid, 3, 2)]
    if d[0] == max_extra_depth:  # OFA: input_stem_skipping = d[0] != max(depth_list)
        input_stem.append(ResidualBlock(conv_bn_relu(mid, mid, 3, 1)))
    input_stem.append(conv_bn_relu(mid, cin, 3, 1))

    blocks: list[nn.Module] = []
    block = 0
    for s, (base, width) in enumerate(zip(base_depth_list, stage_width_list, strict=True)):
        out = make_divisible(width * width_mult_list[w[2 + s]], 8)
        for j in range(base + max_extra_depth):
            if j < base + d[1 + s]:
                stride = (1 if s == 0 else 2) if j == 0 else 1
                blocks.append(ResNetBottleneckBlock(cin, out, stride, e[block]))
                cin = out
            block += 1
    return ResNets(input_stem, blocks, nn.Linear(cin, n_classes)).eval()
