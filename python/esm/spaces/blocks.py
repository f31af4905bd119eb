"""The block library of spec-defined spaces: fields, channel rules and reference costs.

Every layer or block of a space spec has a ``type`` from :data:`BLOCKS`. This module says
which fields each type takes (with defaults and whether a field may be a choice), how its
channel counts are derived (:func:`mid_channels`, :func:`se_channels`), how it changes the
spatial size, and what it costs (:func:`add_costs`, the pure-Python twin of the compiled
walker in ``csrc/cpu/space_spec.cpp``). The torch modules are in :mod:`esm.spaces.nets.chain`.

Types
-----
``conv``
    Convolution (``groups`` an integer or ``"depthwise"``), batch norm (``bn``), activation;
    ``residual`` adds the input (stride 1, channels kept).
``mbconv``
    MobileNet inverted residual: 1x1 expansion to ``make_divisible(round(cin * expand),
    mid_round)`` channels (left out when that equals ``cin``), depthwise kxk, optional
    squeeze-excite with ``make_divisible((mid or cin) // se_divisor, se_round)`` channels, 1x1
    projection; residual when stride 1 and ``cin == cout``.
``fbnet``
    FBNet block: grouped 1x1 to ``cin * expand`` channels, channel shuffle (``groups > 1``),
    depthwise kxk, grouped 1x1; residual when stride 1 and ``cin == cout``.
``bottleneck``
    ResNet bottleneck: 1x1 to ``make_divisible(round(cout * expand), mid_round)``, kxk
    (stride), 1x1; shortcut: identity, or (stride or channels change) ``avgpool_conv``
    (average pooling, 1x1 conv, BN; Once-for-All) or ``conv`` (strided 1x1 conv, BN).
``basic``
    ResNet basic block: kxk (stride) to ``make_divisible(round(cout * expand), mid_round)``,
    kxk to ``cout``; shortcut as ``bottleneck``.
``skip``
    Identity; when the stride or the channel count changes, 1x1 conv (stride) + BN + act.
``maxpool``, ``avgpool``
    Pooling window (``kernel``, ``stride``, ``padding``, ``ceil_mode``).
``global_avgpool``
    Global average pooling (keeps a 1x1 spatial size).
``dropout``
    Dropout ``p`` (no cost).
``linear``
    Flatten and a fully connected layer with ``out`` features.

Costs: MACs of every convolution and linear layer (bias excluded), parameters (normalisation
included), 4 activation bytes per output element of a convolution or linear layer, one layer
per convolution or linear layer; pooling, activations, shuffles and additions cost nothing.
All convolutions use "same" padding ``kernel // 2`` (kernels are odd).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from esm.spaces.reference import ReferenceAccumulator, conv_out, make_divisible

#: Activation names accepted by ``act``, ``se_act`` and ``se_gate`` (None: no activation).
ACTIVATIONS = ("relu", "relu6", "h_swish", "swish", "sigmoid", "h_sigmoid")

_ANY = object()  # marks a required field

#: Per type: field -> default (``_ANY``: required). ``out`` of a block inside a stage comes
#: from the stage; ``stride`` of a block inside a stage from the stage (first block only).
BLOCKS: dict[str, dict[str, Any]] = {
    "conv": {"out": None, "kernel": _ANY, "stride": 1, "groups": 1, "act": "relu", "bn": True,
             "bias": False, "residual": False},
    "mbconv": {"out": None, "kernel": _ANY, "expand": _ANY, "stride": 1, "se": False,
               "act": "relu", "se_base": "mid", "se_divisor": 4, "se_round": 8,
               "se_act": "relu", "se_gate": "h_sigmoid", "mid_round": 8},
    "fbnet": {"out": None, "kernel": _ANY, "expand": _ANY, "stride": 1, "groups": 1,
              "act": "relu"},
    "bottleneck": {"out": None, "kernel": 3, "expand": _ANY, "stride": 1, "mid_round": 8,
                   "shortcut": "avgpool_conv", "act": "relu"},
    "basic": {"out": None, "kernel": 3, "expand": 1.0, "stride": 1, "mid_round": 1,
              "shortcut": "conv", "act": "relu"},
    "skip": {"out": None, "stride": 1, "act": "relu"},
    "maxpool": {"kernel": _ANY, "stride": None, "padding": 0, "ceil_mode": False},
    "avgpool": {"kernel": _ANY, "stride": None, "padding": 0, "ceil_mode": False},
    "global_avgpool": {},
    "dropout": {"p": _ANY},
    "linear": {"out": _ANY, "bias": True},
}
REQUIRED = _ANY
#: Types that may be a stage's block.
STAGE_BLOCKS = ("conv", "mbconv", "fbnet", "bottleneck", "basic", "skip")
#: Fields that may be a choice (a gene), with the kind of value they hold.
CHOOSABLE = {"out": "channels", "kernel": "kernel", "expand": "expand", "se": "flag"}


@dataclass(frozen=True)
class Block:
    """One concrete layer or block of one network (all choices made).

    ``h``/``w`` are the input's spatial size, ``slot`` the searchable slot the block's costs
    belong to (-1: fixed part), ``fields`` every other field of its type.
    """

    type: str
    cin: int
    cout: int
    h: int
    w: int
    stride: int = 1
    kernel: int = 1
    expand: float = 1.0
    se: bool = False
    slot: int = -1
    fields: dict[str, Any] = field(default_factory=dict)


def mid_channels(base: int, expand: float, divisor: int) -> int:
    """``make_divisible(round(base * expand), divisor)`` (round half to even, as Python)."""
    return make_divisible(round(base * expand), divisor)


def se_channels(b: Block) -> int:
    """Squeeze-excite width of an ``mbconv`` block."""
    mid = mid_channels(b.cin, b.expand, b.fields["mid_round"])
    base = mid if b.fields["se_base"] == "mid" else b.cin
    return make_divisible(base // b.fields["se_divisor"], b.fields["se_round"])


def pool_out(h: int, k: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """Output size of a pooling window (PyTorch's rule for ``ceil_mode``)."""
    span = h + 2 * pad - k
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= h + pad:
        out -= 1
    return out


def out_size(b: Block) -> tuple[int, int]:
    """Spatial size after block ``b``."""
    if b.type in ("maxpool", "avgpool"):
        k, pad, ceil = b.kernel, b.fields["padding"], b.fields["ceil_mode"]
        return pool_out(b.h, k, b.stride, pad, ceil), pool_out(b.w, k, b.stride, pad, ceil)
    if b.type in ("global_avgpool", "linear"):
        return 1, 1
    if b.type == "dropout" or (b.type == "skip" and b.stride == 1 and b.cin == b.cout):
        return b.h, b.w
    return conv_out(b.h, 1, b.stride, 0), conv_out(b.w, 1, b.stride, 0)


def identity_skip(b: Block) -> bool:
    """Whether a ``skip`` block is the identity."""
    return b.type == "skip" and b.stride == 1 and b.cin == b.cout


def _conv(acc: ReferenceAccumulator, cin: int, cout: int, k: int, stride: int, groups: int,
          h: int, w: int, bn: bool = True, bias: bool = False) -> tuple[int, int]:
    oh, ow = acc.conv(cin, cout, k, stride, k // 2, groups, h, w, bias)
    if bn:
        acc.batchnorm(cout)
    return oh, ow


def add_costs(b: Block, acc: ReferenceAccumulator) -> None:
    """Report the layers of block ``b`` to ``acc`` (the reference of the compiled walker)."""
    acc.set_slot(b.slot)
    t, f, h, w = b.type, b.fields, b.h, b.w
    if t == "conv":
        groups = b.cin if f["groups"] == "depthwise" else f["groups"]
        _conv(acc, b.cin, b.cout, b.kernel, b.stride, groups, h, w, f["bn"], f["bias"])
    elif t == "linear":
        acc.linear(b.cin * h * w, b.cout, f["bias"])
    elif t == "mbconv":
        mid = mid_channels(b.cin, b.expand, f["mid_round"])
        if mid != b.cin:
            h, w = _conv(acc, b.cin, mid, 1, 1, 1, h, w)
        h, w = _conv(acc, mid, mid, b.kernel, b.stride, mid, h, w)
        if b.se:
            red = se_channels(b)
            acc.conv(mid, red, 1, 1, 0, 1, 1, 1, True)
            acc.conv(red, mid, 1, 1, 0, 1, 1, 1, True)
        _conv(acc, mid, b.cout, 1, 1, 1, h, w)
    elif t == "fbnet":
        mid, g = mid_channels(b.cin, b.expand, 1), f["groups"]
        h, w = _conv(acc, b.cin, mid, 1, 1, g, h, w)
        h, w = _conv(acc, mid, mid, b.kernel, b.stride, mid, h, w)
        _conv(acc, mid, b.cout, 1, 1, g, h, w)
    elif t in ("bottleneck", "basic"):
        mid = mid_channels(b.cout, b.expand, f["mid_round"])
        if t == "bottleneck":
            oh, ow = _conv(acc, b.cin, mid, 1, 1, 1, h, w)
            oh, ow = _conv(acc, mid, mid, b.kernel, b.stride, 1, oh, ow)
            _conv(acc, mid, b.cout, 1, 1, 1, oh, ow)
        else:
            oh, ow = _conv(acc, b.cin, mid, b.kernel, b.stride, 1, h, w)
            _conv(acc, mid, b.cout, b.kernel, 1, 1, oh, ow)
        if b.stride != 1 or b.cin != b.cout:
            _conv(acc, b.cin, b.cout, 1, b.stride, 1, h, w)
    elif t == "skip":
        if not identity_skip(b):
            _conv(acc, b.cin, b.cout, 1, b.stride, 1, h, w)
    # pools, global pooling and dropout cost nothing
