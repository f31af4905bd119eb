"""torch modules of spec-defined spaces: one module per concrete block, chained.

The modules follow the structure of the reference implementations the shipped specs describe
(Once-for-All's ``MobileNetV3``/``ResNets``, HW-NAS-Bench's ``FBNet_Infer``, torchvision's
EfficientNet blocks as Accel-NASBench uses them), so that parameter shapes and outputs equal
theirs; channel counts come from :mod:`esm.spaces.blocks`, the same formulas as the costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from esm.spaces.blocks import Block, identity_skip, mid_channels, se_channels

_ACTS: dict[str, Any] = {
    "relu": lambda: nn.ReLU(inplace=True), "relu6": lambda: nn.ReLU6(inplace=True),
    "h_swish": lambda: nn.Hardswish(inplace=True), "swish": lambda: nn.SiLU(inplace=True),
    "sigmoid": nn.Sigmoid, "h_sigmoid": lambda: nn.Hardsigmoid(inplace=True),
}


def activation(name: str | None) -> nn.Module | None:
    """The activation module of ``name`` (None: no activation)."""
    return None if name is None else _ACTS[name]()


def conv_bn_act(cin: int, cout: int, k: int, stride: int, groups: int = 1,
                act: str | None = "relu", bn: bool = True, bias: bool = False) -> nn.Sequential:
    """Convolution ("same" padding), optional batch norm and activation."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    a = activation(act)
    if a is not None:
        layers.append(a)
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """``body(x) + x``."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.conv = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


class SqueezeExcite(nn.Module):
    """Global pooling, 1x1 reduce (bias), activation, 1x1 expand (bias), gate, scale."""

    def __init__(self, channels: int, mid: int, act: str | None, gate: str | None) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.act = activation(act) or nn.Identity()
        self.gate = activation(gate) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(y))))


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand], kxk depthwise, [SE], 1x1 project."""

    def __init__(self, b: Block) -> None:
        super().__init__()
        f = b.fields
        mid = mid_channels(b.cin, b.expand, f["mid_round"])
        layers: list[nn.Module] = []
        if mid != b.cin:
            layers.append(conv_bn_act(b.cin, mid, 1, 1, 1, f["act"]))
        layers.append(conv_bn_act(mid, mid, b.kernel, b.stride, mid, f["act"]))
        if b.se:
            layers.append(SqueezeExcite(mid, se_channels(b), f["se_act"], f["se_gate"]))
        layers.append(conv_bn_act(mid, b.cout, 1, 1, 1, None))
        self.body = nn.Sequential(*layers)
        self.residual = b.stride == 1 and b.cin == b.cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle: ``[N, g, C/g, H, W] -> [N, C/g, g, H, W]``."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class FBNetBlock(nn.Module):
    """Grouped 1x1 + BN + act, [shuffle], depthwise kxk + BN + act, grouped 1x1 + BN."""

    def __init__(self, b: Block) -> None:
        super().__init__()
        g = b.fields["groups"]
        mid = mid_channels(b.cin, b.expand, 1)
        self.conv1 = nn.Conv2d(b.cin, mid, 1, 1, 0, groups=g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.shuffle: nn.Module = ChannelShuffle(g) if g > 1 else nn.Identity()
        self.conv2 = nn.Conv2d(mid, mid, b.kernel, b.stride, b.kernel // 2, groups=mid,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, b.cout, 1, 1, 0, groups=g, bias=False)
        self.bn3 = nn.BatchNorm2d(b.cout)
        self.act = activation(b.fields["act"]) or nn.Identity()
        self.residual = b.stride == 1 and b.cin == b.cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shuffle(self.act(self.bn1(self.conv1(x))))
        y = self.act(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return x + y if self.residual else y


class ResNetBlock(nn.Module):
    """Bottleneck (1x1, kxk, 1x1) or basic (kxk, kxk) block with its shortcut, then act."""

    def __init__(self, b: Block) -> None:
        super().__init__()
        f = b.fields
        mid = mid_channels(b.cout, b.expand, f["mid_round"])
        self.conv3: nn.Module
        if b.type == "bottleneck":
            self.conv1 = conv_bn_act(b.cin, mid, 1, 1, 1, f["act"])
            self.conv2 = conv_bn_act(mid, mid, b.kernel, b.stride, 1, f["act"])
            self.conv3 = conv_bn_act(mid, b.cout, 1, 1, 1, None)
        else:
            self.conv1 = conv_bn_act(b.cin, mid, b.kernel, b.stride, 1, f["act"])
            self.conv2 = conv_bn_act(mid, b.cout, b.kernel, 1, 1, None)
            self.conv3 = nn.Identity()
        self.downsample: nn.Module
        if b.stride == 1 and b.cin == b.cout:
            self.downsample = nn.Identity()
        elif f["shortcut"] == "avgpool_conv":
            self.downsample = nn.Sequential(
                nn.AvgPool2d(b.stride, b.stride, padding=0, ceil_mode=True),
                nn.Conv2d(b.cin, b.cout, 1, bias=False), nn.BatchNorm2d(b.cout))
        else:
            self.downsample = nn.Sequential(nn.Conv2d(b.cin, b.cout, 1, b.stride, bias=False),
                                            nn.BatchNorm2d(b.cout))
        self.final_act = activation(f["act"]) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.downsample(x)
        return self.final_act(self.conv3(self.conv2(self.conv1(x))) + residual)


class GlobalAvgPool(nn.Module):
    """Mean over the spatial axes, keeping them (``[N, C, 1, 1]``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


def module(b: Block) -> nn.Module:
    """The torch module of one concrete block."""
    f, t = b.fields, b.type
    if t == "conv":
        groups = b.cin if f["groups"] == "depthwise" else f["groups"]
        body = conv_bn_act(b.cin, b.cout, b.kernel, b.stride, groups, f["act"], f["bn"],
                           f["bias"])
        return Residual(body) if f["residual"] else body
    if t == "mbconv":
        return MBConv(b)
    if t == "fbnet":
        return FBNetBlock(b)
    if t in ("bottleneck", "basic"):
        return ResNetBlock(b)
    if t == "skip":
        if identity_skip(b):
            return nn.Identity()
        return conv_bn_act(b.cin, b.cout, 1, b.stride, 1, f["act"])
    if t == "maxpool":
        return nn.MaxPool2d(b.kernel, b.stride, f["padding"], ceil_mode=f["ceil_mode"])
    if t == "avgpool":
        return nn.AvgPool2d(b.kernel, b.stride, f["padding"], ceil_mode=f["ceil_mode"])
    if t == "global_avgpool":
        return GlobalAvgPool()
    if t == "dropout":
        return nn.Dropout(f["p"])
    if t == "linear":
        return nn.Sequential(nn.Flatten(1), nn.Linear(b.cin * b.h * b.w, b.cout, bias=f["bias"]))
    raise ValueError(f"unknown block type {t!r}")  # pragma: no cover


def build_chain(network: Sequence[Block]) -> nn.Sequential:
    """The network of concrete blocks (see ``SpecSpace.network``), in eval mode."""
    return nn.Sequential(*(module(b) for b in network)).eval()
