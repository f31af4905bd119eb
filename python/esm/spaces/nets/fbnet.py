"""torch FBNet networks of HW-NAS-Bench's FBNet space (structure of its ``FBNet_Infer``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from esm.spaces.fbnet import Fbnet


def conv_bn_relu(cin: int, cout: int, k: int, stride: int, pad: int) -> nn.Sequential:
    """Convolution without bias, batch norm, ReLU (HW-NAS-Bench's ConvNorm)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle: ``[N, g, C/g, H, W] -> [N, C/g, g, H, W]``."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ConvBlock(nn.Module):
    """1x1 (grouped) conv, [shuffle], kxk depthwise conv, 1x1 (grouped) conv; residual if s=1."""

    def __init__(self, cin: int, cout: int, k: int, expand: int, groups: int, stride: int) -> None:
        super().__init__()
        from esm.spaces.fbnet import conv_block_padding

        mid = cin * expand
        self.conv1 = nn.Conv2d(cin, mid, 1, 1, 0, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.shuffle: nn.Module = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.conv2 = nn.Conv2d(mid, mid, k, stride, conv_block_padding(k, stride), groups=mid,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, 1, 0, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shuffle(self.act(self.bn1(self.conv1(x))))
        y = self.act(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return x + y if self.residual else y


def skip_block(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity, or a 1x1 conv + BN + ReLU when the stride or the channel count changes."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return conv_bn_relu(cin, cout, 1, stride, 0)


class FBNet(nn.Module):
    """Stem, 22 blocks, header conv, global average pooling, linear classifier."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], header: nn.Module,
                 fc: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.header = header
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.header(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(x.mean((2, 3)), 1))


def build_fbnet(space: Fbnet, genome: list[int]) -> FBNet:
    """Build the network of one genome (indices into :data:`esm.spaces.fbnet.BLOCKS`)."""
    from esm.spaces.fbnet import CONV_BLOCKS, SKIP

    stem = conv_bn_relu(3, space.stem, 3, space.stem_stride, 1)
    blocks: list[nn.Module] = []
    for op, (cin, cout, stride) in zip(genome, space.block_plan, strict=True):
        if op == SKIP:
            blocks.append(skip_block(cin, cout, stride))
        else:
            k, e, groups = CONV_BLOCKS[op]
            blocks.append(ConvBlock(cin, cout, k, e, groups, stride))
    header = conv_bn_relu(space.channels[-1], space.header, 1, 1, 0)
    return FBNet(stem, blocks, header, nn.Linear(space.header, space.n_classes)).eval()
