"""Once-for-All MobileNetV3 (Cai et al., "Once-for-All", ICLR 2020).

Five searchable stages of 2-4 inverted-residual blocks (kernel 3/5/7, expand ratio 3/4/6),
input resolution 128..224 in steps of 4, the OFA macro-architecture around them (3x3 stem,
a fixed depthwise-separable first block, final 1x1 expansion, feature-mix layer, classifier),
and a width multiplier (OFA's released networks use 1.2).

Genome (choice indices, 46 genes): ``ks0..ks19``, ``e0..e19``, ``d0..d4``, ``r``. The text
form is OFA's JSON dict, e.g. ``{"ks":[...20],"e":[...20],"d":[...5],"r":224}``; slots past a
stage's depth are inactive but keep their genes so that text forms round-trip.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError
from esm.spaces.base import SearchSpace
from esm.spaces.reference import make_divisible

if TYPE_CHECKING:
    import torch

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
STAGES = 5
MAX_DEPTH = 4
SLOTS = STAGES * MAX_DEPTH
STRIDES = (2, 2, 2, 1, 2)
SE = (False, True, False, True, True)
ACTS = ("relu", "relu", "h_swish", "h_swish", "h_swish")
BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)


class OfaMobileNetV3(SearchSpace):
    """The ``ofa-mbv3`` space.

    Parameters
    ----------
    width_mult : float
        Channel width multiplier (OFA default 1.2).
    resolutions : tuple of int
        ``(min, max, step)`` of the input resolution.
    n_classes : int
        Classifier outputs (ImageNet: 1000).
    """

    name = "ofa-mbv3"
    description = "Once-for-All MobileNetV3: 5 stages x 2-4 blocks, k{3,5,7} e{3,4,6}, r128-224"

    def __init__(
        self,
        width_mult: float = 1.2,
        resolutions: tuple[int, int, int] = (128, 224, 4),
        n_classes: int = 1000,
    ) -> None:
        lo, hi, step = (int(v) for v in resolutions)
        if not (0 < lo <= hi and step > 0 and width_mult > 0 and n_classes > 0):
            raise InputError("ofa-mbv3: width_mult, resolutions and n_classes must be positive")
        self.width_mult = float(width_mult)
        self.resolutions = tuple(range(lo, hi + 1, step))
        self.n_classes = int(n_classes)
        widths = [make_divisible(w * self.width_mult, 8) for w in BASE_WIDTHS]
        self.stem, self.first_block = widths[0], widths[1]
        self.stage_widths = tuple(widths[2:7])
        self.final_expand, self.last_channel = widths[7], widths[8]
        super().__init__(
            [self.stem, self.first_block, *self.stage_widths, self.final_expand,
             self.last_channel, self.n_classes, len(self.resolutions), lo, step]
        )

    def params(self) -> dict[str, Any]:
        r = self.resolutions
        step = r[1] - r[0] if len(r) > 1 else 1
        return {"width_mult": self.width_mult, "resolutions": (r[0], r[-1], step),
                "n_classes": self.n_classes}

    @property
    def gene_names(self) -> tuple[str, ...]:
        return (
            *(f"ks{i}" for i in range(SLOTS)),
            *(f"e{i}" for i in range(SLOTS)),
            *(f"d{i}" for i in range(STAGES)),
            "r",
        )

    @property
    def slot_names(self) -> tuple[str, ...]:
        return tuple(f"stage{s}.block{j}" for s in range(STAGES) for j in range(MAX_DEPTH))

    # ------------------------------------------------------------------ decoding
    def decode(self, genomes: Any) -> dict[str, np.ndarray]:
        """Gene values (not indices): ``ks [N,20]``, ``e [N,20]``, ``d [N,5]``, ``r [N]``."""
        g = self.validate(genomes)
        return {
            "ks": np.asarray(KERNELS)[g[:, :SLOTS]],
            "e": np.asarray(EXPANDS)[g[:, SLOTS : 2 * SLOTS]],
            "d": np.asarray(DEPTHS)[g[:, 2 * SLOTS : 2 * SLOTS + STAGES]],
            "r": np.asarray(self.resolutions)[g[:, -1]],
        }

    def active_slots(self, genomes: Any) -> np.ndarray:
        d = self.decode(genomes)["d"]
        return (np.arange(MAX_DEPTH)[None, None, :] < d[:, :, None]).reshape(len(d), SLOTS)

    def canonical(self, genomes: Any) -> np.ndarray:
        g = self.validate(genomes).copy()
        inactive = ~self.active_slots(g)
        g[:, :SLOTS][inactive] = 0
        g[:, SLOTS : 2 * SLOTS][inactive] = 0
        return g

    # ------------------------------------------------------------------ text form
    def from_str(self, text: str) -> np.ndarray:
        try:
            obj = json.loads(text)
            ks, e, d, r = obj["ks"], obj["e"], obj["d"], obj["r"]
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            raise InputError(f"ofa-mbv3: not an OFA architecture {text!r}: {err}") from None
        if set(obj) != {"ks", "e", "d", "r"}:
            raise InputError(f"ofa-mbv3: unexpected keys {sorted(obj)} in {text!r}")
        if not (isinstance(ks, list) and len(ks) == SLOTS and isinstance(e, list)
                and len(e) == SLOTS and isinstance(d, list) and len(d) == STAGES):
            raise InputError(f"ofa-mbv3: need 20 ks, 20 e and 5 d values in {text!r}")
        try:
            genome = [KERNELS.index(v) for v in ks] + [EXPANDS.index(v) for v in e]
            genome += [DEPTHS.index(v) for v in d] + [self.resolutions.index(r)]
        except ValueError as err:
            raise InputError(f"ofa-mbv3: value out of the space in {text!r}: {err}") from None
        return np.asarray(genome, dtype=np.int32)

    def to_str(self, genome: Any) -> str:
        d = self.decode(genome)
        obj = {"ks": d["ks"][0].tolist(), "e": d["e"][0].tolist(), "d": d["d"][0].tolist(),
               "r": int(d["r"][0])}
        return json.dumps(obj, separators=(",", ":"))

    # ------------------------------------------------------------------ costs twin
    def _walk(self, genome: np.ndarray, acc: Any) -> None:
        ks = [KERNELS[i] for i in genome[:SLOTS]]
        ex = [EXPANDS[i] for i in genome[SLOTS : 2 * SLOTS]]
        depth = [DEPTHS[i] for i in genome[2 * SLOTS : 2 * SLOTS + STAGES]]
        h = w = self.resolutions[genome[-1]]
        acc.set_slot(-1)
        h, w = acc.conv(3, self.stem, 3, 2, 1, 1, h, w, False)
        acc.batchnorm(self.stem)
        h, w = acc.conv(self.stem, self.stem, 3, 1, 1, self.stem, h, w, False)
        acc.batchnorm(self.stem)
        h, w = acc.conv(self.stem, self.first_block, 1, 1, 0, 1, h, w, False)
        acc.batchnorm(self.first_block)
        cin = self.first_block
        for s in range(STAGES):
            out = self.stage_widths[s]
            for j in range(depth[s]):
                slot = s * MAX_DEPTH + j
                k = ks[slot]
                mid = make_divisible(cin * ex[slot], 8)
                acc.set_slot(slot)
                h, w = acc.conv(cin, mid, 1, 1, 0, 1, h, w, False)
                acc.batchnorm(mid)
                h, w = acc.conv(mid, mid, k, STRIDES[s] if j == 0 else 1, k // 2, mid, h, w, False)
                acc.batchnorm(mid)
                if SE[s]:
                    red = make_divisible(mid // 4, 8)
                    acc.conv(mid, red, 1, 1, 0, 1, 1, 1, True)
                    acc.conv(red, mid, 1, 1, 0, 1, 1, 1, True)
                h, w = acc.conv(mid, out, 1, 1, 0, 1, h, w, False)
                acc.batchnorm(out)
                cin = out
        acc.set_slot(-1)
        h, w = acc.conv(cin, self.final_expand, 1, 1, 0, 1, h, w, False)
        acc.batchnorm(self.final_expand)
        acc.conv(self.final_expand, self.last_channel, 1, 1, 0, 1, 1, 1, False)
        acc.linear(self.last_channel, self.n_classes, True)

    # ------------------------------------------------------------------ networks
    def input_shape(self, genome: Any, batch_size: int = 1) -> tuple[int, int, int, int]:
        r = int(self.decode(genome)["r"][0])
        return (int(batch_size), 3, r, r)

    def build(self, genome: Any) -> torch.nn.Module:
        from esm.spaces.nets.mobilenetv3 import build_ofa_mbv3

        d = self.decode(genome)
        return build_ofa_mbv3(
            self, d["ks"][0].tolist(), d["e"][0].tolist(), d["d"][0].tolist()
        )
