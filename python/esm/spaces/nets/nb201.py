"""torch NAS-Bench-201 networks: the structure of NAS-Bench-201's ``TinyNetwork``/``InferCell``.

Written from the operation definitions of AutoDL-Projects (``models/cell_operations.py``,
``models/cell_infers``): ReLU-Conv-BN edges with affine batch norm, ``avg_pool_3x3`` as
``AvgPool2d(3, 1, 1, count_include_pad=False)``, ``none`` as multiplication by zero, and every
edge computed even when it cannot reach the cell output. ``forward`` returns the logits only
(NAS-Bench-201 returns ``(features, logits)``).
"""

from __future__ import annotations

import torch
from torch import nn

from esm.spaces.nb201 import EDGES


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution without bias, batch norm."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, pad: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False),
            nn.BatchNorm2d(cout),
        )


class Zero(nn.Module):
    """The ``none`` operation: zeros shaped like the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def edge_op(name: str, channels: int) -> nn.Module:
    """One cell edge (stride 1, equal input and output channels)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 operation {name!r}")


class InferCell(nn.Module):
    """A 4-node cell; node k is the sum of its incoming edges, the output is node 3."""

    def __init__(self, ops: list[str], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(edge_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in range(1, 4):
            total: torch.Tensor | None = None
            for e, (dst, src) in enumerate(EDGES):
                if dst == node:
                    y = self.edges[e](nodes[src])
                    total = y if total is None else total + y
            assert total is not None
            nodes.append(total)
        return nodes[3]


class ResNetBasicblock(nn.Module):
    """The reduction block: two ReLUConvBN 3x3 (first stride 2), AvgPool+Conv1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2, 1)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(cin, cout, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    """Stem, 3 stages of ``n_cells`` cells with reduction blocks between them, head."""

    def __init__(self, channels: int, n_cells: int, ops: list[str], n_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        cells: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                cells.append(ResNetBasicblock(c, 2 * c))
                c *= 2
            cells.extend(InferCell(ops, c) for _ in range(n_cells))
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.global_pooling(self.lastact(self.cells(self.stem(x))))
        return self.classifier(torch.flatten(out, 1))
