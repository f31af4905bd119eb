"""Once-for-All ResNet50 (Cai et al., "Once-for-All", ICLR 2020; ``OFAResNets`` of
mit-han-lab/once-for-all as released in its model zoo as ``ofa_resnet50``).

The network (OFA's ``ResNets`` sub-network of ``OFAResNets``):

* input stem: 3x3 conv stride 2 (``mid`` channels), a residual block around a 3x3 conv
  (``mid`` -> ``mid``, identity shortcut) that the first depth gene keeps or skips, and a 3x3
  conv (``mid`` -> ``stem``); each conv is followed by batch norm and ReLU;
* 3x3 max pooling, stride 2, padding 1;
* four stages of bottleneck blocks (1x1, 3x3 with the stage's stride on the first block, 1x1;
  shortcut: identity when the shape is kept, otherwise OFA's ``avgpool_conv``, i.e. an
  ``AvgPool2d(stride, stride, ceil_mode=True)`` followed by a 1x1 conv and batch norm), with
  ``BASE_DEPTH_LIST = [2, 2, 4, 2]`` plus 0-2 extra blocks per stage (at most 4, 4, 6, 4),
  stage widths ``[256, 512, 1024, 2048]`` and strides ``[1, 2, 2, 2]``;
* global average pooling and ``Linear(width, 1000)``.

Channels: ``make_divisible(64 * w, 8)`` for the stem output, ``make_divisible(that // 2, 8)``
for the stem's middle convs, ``make_divisible(width * w, 8)`` for the stages, with ``w`` in
``{0.65, 0.8, 1.0}``; a bottleneck's middle width is
``make_divisible(round(out_channels * e), 8)`` with ``e`` in ``{0.2, 0.25, 0.35}``.

Genome (choice indices, 30 genes), OFA's ``set_active_subnet(d, e, w)`` arguments plus the
input resolution:

* ``d0``: input-stem depth, ``0`` (residual block skipped) or ``2`` (kept). OFA skips the
  block whenever ``d[0] != 2``; its sampler, mutation and accuracy-predictor encoder only use
  0 and 2, and so does this space (a text form with ``d[0] = 1`` is refused);
* ``d1..d4``: extra blocks per stage, ``{0, 1, 2}``;
* ``e0..e17``: expand ratio of each of the 18 possible blocks (blocks past a stage's depth
  are inactive but keep their genes, so that text forms round-trip);
* ``w0..w5``: width-multiplier index for the stem's middle convs, the stem output and the
  four stages (OFA's ``w`` list: indices into ``[0.65, 0.8, 1.0]``). The stem's middle width
  is 24 for both 0.65 and 0.8 (``make_divisible(40 // 2)`` and ``make_divisible(48 // 2)``),
  so ``w0 = 0`` and ``w0 = 1`` are the same network and :meth:`canonical` maps 1 to 0;
* ``r``: input resolution, 128..224 in steps of 4 by default. OFA trains OFA-ResNet50 with
  random-resized crops of continuous size 128..224 (``MyRandomResizedCrop``, step 4) and
  builds its accuracy dataset at 128/160/192/224.

Text form: OFA's arch dict as compact JSON, ``{"d":[...5],"e":[...18],"w":[...6],"r":224}``
(``r`` in place of OFA's ``image_size``).

Slots (19): ``stem.residual`` (the skippable input-stem block) and ``stage{s}.block{j}`` for
the 18 bottleneck blocks.
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

STEM_DEPTHS = (0, 2)
DEPTHS = (0, 1, 2)
EXPANDS = (0.2, 0.25, 0.35)
WIDTH_MULTS = (0.65, 0.8, 1.0)
BASE_DEPTHS = (2, 2, 4, 2)
STAGE_WIDTHS = (256, 512, 1024, 2048)
STRIDES = (1, 2, 2, 2)
STAGES = 4
MAX_DEPTHS = tuple(b + max(DEPTHS) for b in BASE_DEPTHS)
BLOCKS = sum(MAX_DEPTHS)
#: First block index of every stage.
STAGE_START = tuple(int(v) for v in np.cumsum((0, *MAX_DEPTHS[:-1])))
N_D, N_E, N_W = STAGES + 1, BLOCKS, STAGES + 2
SLOTS = 1 + BLOCKS


def bottleneck_mid(out_channels: int, expand: float) -> int:
    """Middle width of an OFA bottleneck block (``ResNetBottleneckBlock``)."""
    return make_divisible(round(out_channels * expand), 8)


class OfaResNet50(SearchSpace):
    """The ``ofa-resnet50`` space.

    Parameters
    ----------
    resolutions : tuple of int
        ``(min, max, step)`` of the input resolution.
    n_classes : int
        Classifier outputs (ImageNet: 1000).
    """

    name = "ofa-resnet50"
    description = (
        "Once-for-All ResNet50: stem skip, 4 stages x 2-6 bottlenecks, e{0.2,0.25,0.35}, "
        "w{0.65,0.8,1.0}, r128-224"
    )

    def __init__(
        self, resolutions: tuple[int, int, int] = (128, 224, 4), n_classes: int = 1000
    ) -> None:
        lo, hi, step = (int(v) for v in resolutions)
        if not (32 <= lo <= hi and step > 0 and n_classes > 0):
            raise InputError(
                "ofa-resnet50: resolutions must satisfy 32 <= min <= max with step > 0, and "
                "n_classes must be positive"
            )
        self.resolutions = tuple(range(lo, hi + 1, step))
        self.n_classes = int(n_classes)
        stem = [make_divisible(64 * m, 8) for m in WIDTH_MULTS]
        #: Input-stem middle channels per width choice.
        self.stem_mid = tuple(make_divisible(c // 2, 8) for c in stem)
        #: Input-stem output channels per width choice.
        self.stem_out = tuple(stem)
        #: Stage widths ``[stage][width choice]``.
        self.stage_widths = tuple(
            tuple(make_divisible(base * m, 8) for m in WIDTH_MULTS) for base in STAGE_WIDTHS
        )
        #: Bottleneck middle widths ``[stage][width choice][expand choice]``.
        self.stage_mids = tuple(
            tuple(tuple(bottleneck_mid(out, e) for e in EXPANDS) for out in widths)
            for widths in self.stage_widths
        )
        # w0 choices that give the same stem width (0.65 and 0.8 both round to 24 channels)
        # describe the same network; canonical() maps them to the first such choice.
        self._w0_canonical = np.asarray(
            [self.stem_mid.index(c) for c in self.stem_mid], dtype=np.int32
        )
        flat_mids = [m for stage in self.stage_mids for row in stage for m in row]
        flat_widths = [c for stage in self.stage_widths for c in stage]
        super().__init__(
            [*self.stem_mid, *self.stem_out, *flat_widths, *flat_mids, self.n_classes,
             len(self.resolutions), lo, step]
        )

    def params(self) -> dict[str, Any]:
        r = self.resolutions
        step = r[1] - r[0] if len(r) > 1 else 1
        return {"resolutions": (r[0], r[-1], step), "n_classes": self.n_classes}

    @property
    def gene_names(self) -> tuple[str, ...]:
        return (
            *(f"d{i}" for i in range(N_D)),
            *(f"e{i}" for i in range(N_E)),
            *(f"w{i}" for i in range(N_W)),
            "r",
        )

    @property
    def slot_names(self) -> tuple[str, ...]:
        blocks = [f"stage{s}.block{j}" for s in range(STAGES) for j in range(MAX_DEPTHS[s])]
        return ("stem.residual", *blocks)

    # ------------------------------------------------------------------ decoding
    def decode(self, genomes: Any) -> dict[str, np.ndarray]:
        """OFA's values: ``d [N,5]``, ``e [N,18]`` (ratios), ``w [N,6]`` (indices), ``r [N]``."""
        g = self.validate(genomes)
        d = np.asarray(DEPTHS)[g[:, :N_D]]
        d[:, 0] = np.asarray(STEM_DEPTHS)[g[:, 0]]
        return {
            "d": d,
            "e": np.asarray(EXPANDS)[g[:, N_D : N_D + N_E]],
            "w": g[:, N_D + N_E : N_D + N_E + N_W].astype(np.int64),
            "r": np.asarray(self.resolutions)[g[:, -1]],
        }

    def active_slots(self, genomes: Any) -> np.ndarray:
        g = self.validate(genomes)
        out = np.zeros((g.shape[0], SLOTS), dtype=bool)
        out[:, 0] = g[:, 0] != 0
        for s in range(STAGES):
            depth = BASE_DEPTHS[s] + g[:, 1 + s]
            j = np.arange(MAX_DEPTHS[s])
            out[:, 1 + STAGE_START[s] : 1 + STAGE_START[s] + MAX_DEPTHS[s]] = (
                j[None, :] < depth[:, None]
            )
        return out

    def canonical(self, genomes: Any) -> np.ndarray:
        """Zero the expand genes of inactive blocks and merge equivalent ``w0`` choices."""
        g = self.validate(genomes).copy()
        inactive_blocks = ~self.active_slots(g)[:, 1:]
        g[:, N_D : N_D + N_E][inactive_blocks] = 0
        g[:, N_D + N_E] = self._w0_canonical[g[:, N_D + N_E]]
        return g

    # ------------------------------------------------------------------ text form
    def from_str(self, text: str) -> np.ndarray:
        try:
            obj = json.loads(text)
            d, e, w, r = obj["d"], obj["e"], obj["w"], obj["r"]
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            raise InputError(
                f"ofa-resnet50: not an OFA ResNet architecture {text!r}: {err}"
            ) from None
        if set(obj) != {"d", "e", "w", "r"}:
            raise InputError(f"ofa-resnet50: unexpected keys {sorted(obj)} in {text!r}")
        if not (isinstance(d, list) and len(d) == N_D and isinstance(e, list)
                and len(e) == N_E and isinstance(w, list) and len(w) == N_W):
            raise InputError(f"ofa-resnet50: need 5 d, 18 e and 6 w values in {text!r}")
        values = [*d, *e, *w, r]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            raise InputError(f"ofa-resnet50: values must be numbers in {text!r}")
        if any(isinstance(v, float) for v in (*d, *w, r)):
            raise InputError(f"ofa-resnet50: d, w and r must be integers in {text!r}")

        def index(choices: tuple[Any, ...], v: Any, what: str) -> int:
            if v not in choices:
                raise InputError(
                    f"ofa-resnet50: {what} is {v!r}, must be one of {list(choices)} in {text!r}"
                )
            return choices.index(v)

        genome = [index(STEM_DEPTHS, d[0], "d[0] (input-stem depth; OFA uses 0 or 2)")]
        genome += [index(DEPTHS, v, f"d[{i + 1}]") for i, v in enumerate(d[1:])]
        genome += [index(EXPANDS, v, f"e[{i}]") for i, v in enumerate(e)]
        genome += [index(tuple(range(len(WIDTH_MULTS))), v, f"w[{i}]") for i, v in enumerate(w)]
        genome.append(index(self.resolutions, r, "r"))
        return np.asarray(genome, dtype=np.int32)

    def to_str(self, genome: Any) -> str:
        d = self.decode(genome)
        obj = {"d": d["d"][0].tolist(), "e": d["e"][0].tolist(), "w": d["w"][0].tolist(),
               "r": int(d["r"][0])}
        return json.dumps(obj, separators=(",", ":"))

    # ------------------------------------------------------------------ costs twin
    def _walk(self, genome: np.ndarray, acc: Any) -> None:
        from esm.spaces.reference import conv_out

        d = genome[:N_D]
        ex = genome[N_D : N_D + N_E]
        wm = genome[N_D + N_E : N_D + N_E + N_W]
        h = w = self.resolutions[genome[-1]]
        mid, stem = self.stem_mid[wm[0]], self.stem_out[wm[1]]
        acc.set_slot(-1)
        h, w = acc.conv(3, mid, 3, 2, 1, 1, h, w, False)
        acc.batchnorm(mid)
        if STEM_DEPTHS[d[0]] == max(DEPTHS):
            acc.set_slot(0)
            h, w = acc.conv(mid, mid, 3, 1, 1, 1, h, w, False)
            acc.batchnorm(mid)
            acc.set_slot(-1)
        h, w = acc.conv(mid, stem, 3, 1, 1, 1, h, w, False)
        acc.batchnorm(stem)
        h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
        cin = stem
        for s in range(STAGES):
            out = self.stage_widths[s][wm[2 + s]]
            for j in range(BASE_DEPTHS[s] + DEPTHS[d[1 + s]]):
                block = STAGE_START[s] + j
                stride = STRIDES[s] if j == 0 else 1
                m = bottleneck_mid(out, EXPANDS[ex[block]])
                acc.set_slot(1 + block)
                hin, win = h, w
                h, w = acc.conv(cin, m, 1, 1, 0, 1, h, w, False)
                acc.batchnorm(m)
                h, w = acc.conv(m, m, 3, stride, 1, 1, h, w, False)
                acc.batchnorm(m)
                h, w = acc.conv(m, out, 1, 1, 0, 1, h, w, False)
                acc.batchnorm(out)
                if stride != 1 or cin != out:
                    ph, pw = -(-hin // stride), -(-win // stride)
                    acc.conv(cin, out, 1, 1, 0, 1, ph, pw, False)
                    acc.batchnorm(out)
                cin = out
        acc.set_slot(-1)
        acc.linear(cin, self.n_classes, True)

    # ------------------------------------------------------------------ networks
    def input_shape(self, genome: Any, batch_size: int = 1) -> tuple[int, int, int, int]:
        r = int(self.decode(genome)["r"][0])
        return (int(batch_size), 3, r, r)

    def build(self, genome: Any) -> torch.nn.Module:
        from esm.spaces.nets.resnet import build_ofa_resnet

        d = self.decode(genome)
        return build_ofa_resnet(
            d["d"][0].tolist(), d["e"][0].tolist(), d["w"][0].tolist(), self.n_classes
        )
