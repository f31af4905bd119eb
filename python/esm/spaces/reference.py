"""Pure-Python accumulator mirroring ``esm::Accumulator`` (the compiled core's test oracle)."""

from __future__ import annotations

from typing import Any

from esm.spaces.base import BYTES_PER_ELEMENT

MACS, PARAMS, ACT, LAYERS = range(4)


def conv_out(h: int, k: int, stride: int, pad: int) -> int:
    """Output size of a convolution or pooling window."""
    return (h + 2 * pad - k) // stride + 1


def make_divisible(v: float, divisor: int = 8) -> int:
    """Once-for-All / MobileNet channel rounding."""
    nv = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if nv < 0.9 * v:
        nv += divisor
    return nv


class ReferenceAccumulator:
    """Collects the layers of one genome; same rules as the C++ Accumulator."""

    def __init__(self, n_slots: int) -> None:
        self.totals = [0, 0, 0, 0]
        self.slots = [[0, 0, 0, 0] for _ in range(n_slots)]
        self.slot = -1

    def set_slot(self, slot: int) -> None:
        self.slot = slot

    def _add(self, field: int, value: int) -> None:
        self.totals[field] += value
        if 0 <= self.slot < len(self.slots):
            self.slots[self.slot][field] += value

    def conv(
        self, cin: int, cout: int, k: int, stride: int, pad: int, groups: int, h: int, w: int,
        bias: bool,
    ) -> tuple[int, int]:
        oh, ow = conv_out(h, k, stride, pad), conv_out(w, k, stride, pad)
        self._add(MACS, oh * ow * cout * (cin // groups) * k * k)
        self._add(PARAMS, cout * (cin // groups) * k * k + (cout if bias else 0))
        self._add(ACT, oh * ow * cout * BYTES_PER_ELEMENT)
        self._add(LAYERS, 1)
        return oh, ow

    def linear(self, fin: int, fout: int, bias: bool) -> None:
        self._add(MACS, fin * fout)
        self._add(PARAMS, fin * fout + (fout if bias else 0))
        self._add(ACT, fout * BYTES_PER_ELEMENT)
        self._add(LAYERS, 1)

    def batchnorm(self, channels: int) -> None:
        self._add(PARAMS, 2 * channels)

    def result(self) -> dict[str, Any]:
        return {
            "macs": self.totals[MACS],
            "params": self.totals[PARAMS],
            "activation_bytes": self.totals[ACT],
            "weight_bytes": self.totals[PARAMS] * BYTES_PER_ELEMENT,
            "layers": self.totals[LAYERS],
            "slots": [list(s) for s in self.slots],
        }
