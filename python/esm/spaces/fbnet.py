"""FBNet space as HW-NAS-Bench defines it (Li et al., "HW-NAS-Bench", ICLR 2021).

The structure matches ``FBNet_Infer`` in HW-NAS-Bench's ``hw_nas_bench_api/fbnet_models``
(GATECH-EIC/HW-NAS-Bench, ``model_infer.py``) and its cost walk ``fbnet_get_metrics`` in
``hw_nas_bench_api.py``; that is the FBNet-v1 macro-architecture (Wu et al., "FBNet", CVPR
2019) with HW-NAS-Bench's CIFAR-100 setting:

* input ``3 x 32 x 32``; stem ``Conv3x3(3, 16, stride 1, padding 1) + BN + ReLU``;
* 22 searchable blocks in 7 stages of ``[1, 4, 4, 4, 4, 4, 1]`` blocks with output channels
  ``[16, 24, 32, 64, 112, 184, 352]`` and first-block strides ``[1, 1, 2, 2, 1, 2, 1]``
  (spatial size 32, 32, 32, 16, 8, 8, 4, 4); the other blocks of a stage have stride 1 and
  ``cin == cout``;
* ``ConvBlock(k, e, g)`` (``kK_eE`` and ``kK_eE_g2``): ``Conv1x1(cin, e*cin, groups g) + BN +
  ReLU``, channel shuffle when ``g > 1`` (no parameters), depthwise ``ConvKxK(e*cin, stride s,
  padding ceil((k - s) / 2)) + BN + ReLU``, ``Conv1x1(e*cin, cout, groups g) + BN`` (no
  activation); residual add when ``s == 1`` and ``cin == cout``. No rounding of ``e*cin``.
* ``skip``: the identity when ``s == 1`` and ``cin == cout``; otherwise ``Conv1x1(cin, cout,
  stride s) + BN + ReLU`` (in the CIFAR setting: the first block of stages 1..6);
* header ``Conv1x1(352, 1504) + BN + ReLU``, global average pooling, ``Linear(1504, n_classes)``
  with bias (CIFAR-100: 100 classes). All convolutions are without bias.

``dataset="imagenet"`` gives HW-NAS-Bench's ImageNet setting instead (224 x 224 input, stem
stride 2, stage strides ``[1, 2, 2, 2, 1, 2, 1]``, header 1984, 1000 classes).

Genome: 22 genes, one per block, each an index into HW-NAS-Bench's ``PRIMITIVES`` order
:data:`BLOCKS` (``k3_e1, k3_e1_g2, k3_e3, k3_e6, k5_e1, k5_e1_g2, k5_e3, k5_e6, skip``), the
same order as HW-NAS-Bench's ``op_idx_list``. The text form is a compact JSON list of the 22
block names, e.g. ``["k5_e6","skip",...]`` (as in ``fbnet_latency.csv``). A ``skip`` block that
is the identity is an inactive slot; every gene still matters (``canonical`` is the identity).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError
from esm.spaces.base import SearchSpace

if TYPE_CHECKING:
    import torch

#: Block names in HW-NAS-Bench's PRIMITIVES order (the gene values).
BLOCKS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
SKIP = BLOCKS.index("skip")
#: ``(kernel, expand, groups)`` of the ConvBlock choices (all but ``skip``).
CONV_BLOCKS = ((3, 1, 1), (3, 1, 2), (3, 3, 1), (3, 6, 1), (5, 1, 1), (5, 1, 2), (5, 3, 1),
               (5, 6, 1))
LAYERS_PER_STAGE = (1, 4, 4, 4, 4, 4, 1)
N_BLOCKS = sum(LAYERS_PER_STAGE)
CHANNELS = (16, 24, 32, 64, 112, 184, 352)
STEM = 16
_BLOCK_INDEX = {name: i for i, name in enumerate(BLOCKS)}

#: HW-NAS-Bench's two settings: header channels, classes, resolution, stem stride, strides.
DATASETS: dict[str, tuple[int, int, int, int, tuple[int, ...]]] = {
    "cifar100": (1504, 100, 32, 1, (1, 1, 2, 2, 1, 2, 1)),
    "imagenet": (1984, 1000, 224, 2, (1, 2, 2, 2, 1, 2, 1)),
}


def conv_block_padding(k: int, stride: int) -> int:
    """HW-NAS-Bench's ConvBlock padding ``ceil((k - stride) / 2)`` (dilation 1)."""
    return (k - stride + 1) // 2


class Fbnet(SearchSpace):
    """The ``fbnet`` space (HW-NAS-Bench's FBNet, CIFAR-100 setting by default).

    Parameters
    ----------
    dataset : {"cifar100", "imagenet"}
        HW-NAS-Bench setting: CIFAR-100 32x32 (default) or ImageNet 224x224.
    n_classes : int, optional
        Classifier outputs; default 100 for CIFAR-100 and 1000 for ImageNet.
    """

    name = "fbnet"
    description = "HW-NAS-Bench FBNet: 22 blocks x 9 choices (k3/k5, e1/e3/e6, g2, skip), CIFAR-100"

    def __init__(self, dataset: str = "cifar100", n_classes: int | None = None) -> None:
        key = str(dataset).lower()
        if key not in DATASETS:
            raise InputError(f"fbnet: unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
        header, classes, resolution, stem_stride, strides = DATASETS[key]
        if n_classes is not None:
            if int(n_classes) <= 0:
                raise InputError(f"fbnet: n_classes must be positive, got {n_classes}")
            classes = int(n_classes)
        self.dataset = key
        self.n_classes = classes
        self.stem = STEM
        self.channels = CHANNELS
        self.header = header
        self.resolution = resolution
        self.stem_stride = stem_stride
        self.strides = strides
        super().__init__(
            [STEM, *CHANNELS, header, classes, resolution, stem_stride, *strides]
        )
        # (cin, cout, stride) of every block; fixed by the plan.
        plan: list[tuple[int, int, int]] = []
        cin = STEM
        for s, n in enumerate(LAYERS_PER_STAGE):
            for j in range(n):
                plan.append((cin, CHANNELS[s], strides[s] if j == 0 else 1))
                cin = CHANNELS[s]
        self.block_plan: tuple[tuple[int, int, int], ...] = tuple(plan)
        self._identity_skip = np.array([c0 == c1 and st == 1 for c0, c1, st in plan])

    def params(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "n_classes": self.n_classes}

    @property
    def gene_names(self) -> tuple[str, ...]:
        return tuple(f"block{i}" for i in range(N_BLOCKS))

    @property
    def slot_names(self) -> tuple[str, ...]:
        return tuple(
            f"stage{s}.block{j}" for s, n in enumerate(LAYERS_PER_STAGE) for j in range(n)
        )

    def decode(self, genomes: Any) -> np.ndarray:
        """Block names ``[N, 22]`` (a string array)."""
        return np.asarray(BLOCKS)[self.validate(genomes)]

    def active_slots(self, genomes: Any) -> np.ndarray:
        """A slot is inactive when it holds ``skip`` and that skip is the identity."""
        g = self.validate(genomes)
        return ~((g == SKIP) & self._identity_skip[None, :])

    # ------------------------------------------------------------------ text form
    def from_str(self, text: str) -> np.ndarray:
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, TypeError) as err:
            raise InputError(f"fbnet: not a JSON list of block names {text!r}: {err}") from None
        if not isinstance(obj, list) or len(obj) != N_BLOCKS:
            raise InputError(f"fbnet: need a JSON list of {N_BLOCKS} block names, got {text!r}")
        genome = []
        for i, name in enumerate(obj):
            if not isinstance(name, str) or name not in _BLOCK_INDEX:
                raise InputError(
                    f"fbnet: block {i} is {name!r}, must be one of {', '.join(BLOCKS)}"
                )
            genome.append(_BLOCK_INDEX[name])
        return np.asarray(genome, dtype=np.int32)

    def to_str(self, genome: Any) -> str:
        return json.dumps(self.decode(genome)[0].tolist(), separators=(",", ":"))

    # ------------------------------------------------------------------ costs twin
    def _walk(self, genome: np.ndarray, acc: Any) -> None:
        h = w = self.resolution
        acc.set_slot(-1)
        h, w = acc.conv(3, self.stem, 3, self.stem_stride, 1, 1, h, w, False)
        acc.batchnorm(self.stem)
        for slot, (cin, cout, stride) in enumerate(self.block_plan):
            op = int(genome[slot])
            acc.set_slot(slot)
            if op == SKIP:
                if stride != 1 or cin != cout:
                    h, w = acc.conv(cin, cout, 1, stride, 0, 1, h, w, False)
                    acc.batchnorm(cout)
                continue
            k, e, groups = CONV_BLOCKS[op]
            mid = cin * e
            h, w = acc.conv(cin, mid, 1, 1, 0, groups, h, w, False)
            acc.batchnorm(mid)
            h, w = acc.conv(mid, mid, k, stride, conv_block_padding(k, stride), mid, h, w, False)
            acc.batchnorm(mid)
            h, w = acc.conv(mid, cout, 1, 1, 0, groups, h, w, False)
            acc.batchnorm(cout)
        acc.set_slot(-1)
        h, w = acc.conv(self.channels[-1], self.header, 1, 1, 0, 1, h, w, False)
        acc.batchnorm(self.header)
        acc.linear(self.header, self.n_classes, True)

    # ------------------------------------------------------------------ networks
    def input_shape(self, genome: Any, batch_size: int = 1) -> tuple[int, int, int, int]:
        self.validate(genome)
        return (int(batch_size), 3, self.resolution, self.resolution)

    def build(self, genome: Any) -> torch.nn.Module:
        from esm.spaces.nets.fbnet import build_fbnet

        return build_fbnet(self, [int(v) for v in self.validate(genome)[0]])
