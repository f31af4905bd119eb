"""NAS-Bench-201 (Dong & Yang, "NAS-Bench-201", ICLR 2020): the cell space.

One cell, repeated in every position of NAS-Bench-201's ``TinyNetwork`` skeleton: a 3x3 stem
(``C`` channels), three stages of ``N`` cells at ``C``, ``2C``, ``4C`` channels separated by
ResNet basic reduction blocks, then BN+ReLU, global average pooling and a linear classifier.
The defaults (``C=16``, ``N=5``, 10 classes, 32x32 input) are the CIFAR-10 networks of the
benchmark; ``n_classes=100`` gives CIFAR-100 and ``resolution=16, n_classes=120`` gives
ImageNet16-120.

A cell has 4 nodes and 6 edges, ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``, each one of the
operations :data:`OPS` (in NAS-Bench-201's order). Genome: 6 genes, the operation index of
every edge in that order, which is the order of the text form
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``. There are 5**6 = 15625 genomes, all distinct cells.

Slots are the 6 edge positions; slot ``e`` collects edge ``e`` of all ``3N`` cells.

Which edges count as active
---------------------------
:meth:`Nb201.active_slots` is ``op != "none"``: exactly the edges that are part of the built
network. NAS-Bench-201's ``InferCell`` computes every edge, also an edge whose result cannot
reach the cell output (e.g. a convolution into node 1 when both edges leaving node 1 are
``none``), so such "dead" edges still cost MACs, parameters and time in the network as built
and as the benchmark measured and counted it (its FLOPs include them). Marking them inactive
would break ``costs == built module``. Graph compilers may prune dead edges, though, and
latency data shows near-zero times for cells whose output is disconnected on some devices, so
:meth:`Nb201.live_edges` reports the edges that lie on an input-to-output path of non-``none``
edges and :meth:`Nb201.output_connected` whether any such path exists; encoders can use them.
Without such a path the network's output is a constant (:meth:`Nb201.constant_output`), which
some runtimes fold away, and :meth:`Nb201.pruned` gives the cells with every dead edge set to
``none``, which a pruning runtime runs (:mod:`esm.transfer` learns whether a device does
either).
:meth:`Nb201.canonical` leaves genes unchanged: no two genomes build the same network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError
from esm.spaces.base import SearchSpace

if TYPE_CHECKING:
    import torch

#: Edge operations in NAS-Bench-201's order (the gene values).
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: ``(to, from)`` nodes of the 6 edges, in gene order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
STAGES = 3
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_NONE, _CONV1, _CONV3 = 0, 2, 3


class Nb201(SearchSpace):
    """The ``nb201`` space.

    Parameters
    ----------
    channels : int
        Channels ``C`` of the stem and the first stage (NAS-Bench-201: 16).
    cells : int
        Cells per stage ``N`` (NAS-Bench-201: 5).
    n_classes : int
        Classifier outputs (CIFAR-10: 10, CIFAR-100: 100, ImageNet16-120: 120).
    resolution : int
        Input height and width, a multiple of 4 (CIFAR: 32, ImageNet16-120: 16).
    """

    name = "nb201"
    description = "NAS-Bench-201 cell: 6 edges x 5 ops, 3 stages x 5 cells, CIFAR 32x32"
    kernel = "nb201"

    def __init__(
        self, channels: int = 16, cells: int = 5, n_classes: int = 10, resolution: int = 32
    ) -> None:
        vals = (channels, cells, n_classes, resolution)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                   for v in vals):
            raise InputError(f"nb201: channels, cells, n_classes, resolution must be positive "
                             f"integers, got {vals}")
        if resolution % 4:
            raise InputError(f"nb201: resolution must be a multiple of 4, got {resolution}")
        self.channels, self.cells = int(channels), int(cells)
        self.n_classes, self.resolution = int(n_classes), int(resolution)
        super().__init__([self.channels, self.cells, self.n_classes, self.resolution])

    def params(self) -> dict[str, Any]:
        return {"channels": self.channels, "cells": self.cells, "n_classes": self.n_classes,
                "resolution": self.resolution}

    @property
    def gene_names(self) -> tuple[str, ...]:
        return tuple(f"{t}<-{f}" for t, f in EDGES)

    @property
    def slot_names(self) -> tuple[str, ...]:
        return tuple(f"edge{t}<-{f}" for t, f in EDGES)

    @property
    def gene_slots(self) -> np.ndarray:
        """-1 for every gene: an edge's gene is what makes its slot active or not."""
        return np.full(len(EDGES), -1, dtype=np.int64)

    def slot_activity(self) -> tuple[np.ndarray, np.ndarray]:
        """Edge ``e`` is active when its operation is not ``none`` (see the module notes on
        dead edges)."""
        table = np.ones((len(EDGES), len(OPS)), dtype=np.uint8)
        table[:, _NONE] = 0
        return np.arange(len(EDGES), dtype=np.int32), table

    def pixel_table(self) -> tuple[int, np.ndarray]:
        return -1, np.asarray([float(self.resolution) ** 2])

    # ------------------------------------------------------------------ decoding
    def decode(self, genomes: Any) -> np.ndarray:
        """Operation names ``[N, 6]`` (str) of every edge."""
        return np.asarray(OPS)[self.validate(genomes)]

    def live_edges(self, genomes: Any) -> np.ndarray:
        """Boolean ``[N, 6]``: edges on a path from the cell input to its output.

        An edge is live when its operation is not ``none``, its source node is reachable from
        node 0 and its target node reaches node 3, all through non-``none`` edges. Dead edges
        are still computed by the built network; they only cannot change its output.
        """
        on = self.active_slots(genomes)
        n = on.shape[0]
        reach = np.ones((n, 4), dtype=bool)  # reach[:, k]: node k reachable from node 0
        reach[:, 1] = on[:, 0]
        reach[:, 2] = on[:, 1] | (reach[:, 1] & on[:, 2])
        reach[:, 3] = on[:, 3] | (reach[:, 1] & on[:, 4]) | (reach[:, 2] & on[:, 5])
        leads = np.ones((n, 4), dtype=bool)  # leads[:, k]: node k reaches node 3
        leads[:, 2] = on[:, 5]
        leads[:, 1] = on[:, 4] | (on[:, 2] & leads[:, 2])
        leads[:, 0] = reach[:, 3]
        src = np.asarray([f for _, f in EDGES])
        dst = np.asarray([t for t, _ in EDGES])
        return on & reach[:, src] & leads[:, dst]

    def output_connected(self, genomes: Any) -> np.ndarray:
        """Boolean ``[N]``: whether the cell output depends on its input at all."""
        return np.asarray(self.live_edges(genomes).any(axis=1))

    def constant_output(self, genomes: Any) -> np.ndarray:
        """Boolean ``[N]``: cells whose output does not depend on their input (no
        input-to-output path): the whole network's output is then constant. Looked up in a
        table of all 15,625 cells (built once), as predictions use it on every call."""
        g = self.validate(genomes)
        return np.asarray(self._cell_table("_constant_table")[self._cell_index(g)])

    def pruned(self, genomes: Any) -> np.ndarray:
        """Genomes with every dead edge (not :meth:`live_edges`) set to ``none``: the cell a
        pruning runtime runs. A disconnected cell becomes the all-``none`` one. Looked up in
        a table of all 15,625 cells (built once)."""
        g = self.validate(genomes)
        return np.asarray(self._cell_table("_pruned_table")[self._cell_index(g)])

    def _cell_index(self, g: np.ndarray) -> np.ndarray:
        """Index of each (validated) genome among all 15,625 cells."""
        return np.asarray(g @ len(OPS) ** np.arange(len(EDGES) - 1, -1, -1))

    def _cell_table(self, name: str) -> np.ndarray:
        """A per-cell table over all 15,625 cells, built on first use: ``_constant_table``
        (:meth:`constant_output`) or ``_pruned_table`` (:meth:`pruned`)."""
        table = self.__dict__.get(name)
        if table is None:
            every = np.indices((len(OPS),) * len(EDGES)).reshape(len(EDGES), -1).T
            every = np.ascontiguousarray(every, dtype=np.int32)
            live = self.live_edges(every)
            self.__dict__["_constant_table"] = ~live.any(axis=1)
            self.__dict__["_pruned_table"] = np.where(live, every, 0).astype(np.int32)
            table = self.__dict__[name]
        return np.asarray(table)

    # ------------------------------------------------------------------ text form
    def from_str(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise InputError(f"nb201: architecture must be a string, got {type(text).__name__}")
        nodes = text.strip().split("+")
        if len(nodes) != 3:
            raise InputError(
                f"nb201: expected 3 nodes '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|', got {text!r}"
            )
        genome: list[int] = []
        for i, node in enumerate(nodes, start=1):
            if len(node) < 2 or node[0] != "|" or node[-1] != "|":
                raise InputError(f"nb201: node {i} must look like '|op~j|...|' in {text!r}")
            edges = node[1:-1].split("|")
            if len(edges) != i:
                raise InputError(
                    f"nb201: node {i} needs {i} inputs, got {len(edges)} in {text!r}"
                )
            for j, edge in enumerate(edges):
                op, sep, src = edge.partition("~")
                if not sep:
                    raise InputError(f"nb201: edge {edge!r} is not 'op~node' in {text!r}")
                if src != str(j):
                    raise InputError(
                        f"nb201: input {j + 1} of node {i} must come from node {j}, got "
                        f"{edge!r} in {text!r}"
                    )
                try:
                    genome.append(_OP_INDEX[op])
                except KeyError:
                    raise InputError(
                        f"nb201: unknown operation {op!r} in {text!r}; known: {', '.join(OPS)}"
                    ) from None
        return np.asarray(genome, dtype=np.int32)

    def to_str(self, genome: Any) -> str:
        ops = self.decode(genome)[0]
        parts, e = [], 0
        for i in range(1, 4):
            parts.append("|" + "|".join(f"{ops[e + j]}~{j}" for j in range(i)) + "|")
            e += i
        return "+".join(parts)

    # ------------------------------------------------------------------ costs twin
    def _walk(self, genome: np.ndarray, acc: Any) -> None:
        from esm.spaces.reference import conv_out

        c, h, w = self.channels, self.resolution, self.resolution
        acc.set_slot(-1)
        h, w = acc.conv(3, c, 3, 1, 1, 1, h, w, False)
        acc.batchnorm(c)
        for s in range(STAGES):
            if s > 0:
                acc.set_slot(-1)
                out = 2 * c
                oh, ow = acc.conv(c, out, 3, 2, 1, 1, h, w, False)
                acc.batchnorm(out)
                acc.conv(out, out, 3, 1, 1, 1, oh, ow, False)
                acc.batchnorm(out)
                acc.conv(c, out, 1, 1, 0, 1, conv_out(h, 2, 2, 0), conv_out(w, 2, 2, 0), False)
                c, h, w = out, oh, ow
            for _ in range(self.cells):
                for e, op in enumerate(genome):
                    if op in (_CONV1, _CONV3):
                        k = 3 if op == _CONV3 else 1
                        acc.set_slot(e)
                        acc.conv(c, c, k, 1, k // 2, 1, h, w, False)
                        acc.batchnorm(c)
        acc.set_slot(-1)
        acc.batchnorm(c)
        acc.linear(c, self.n_classes, True)

    # ------------------------------------------------------------------ networks
    def input_shape(self, genome: Any, batch_size: int = 1) -> tuple[int, int, int, int]:
        self.validate(genome)
        return (int(batch_size), 3, self.resolution, self.resolution)

    def build(self, genome: Any) -> torch.nn.Module:
        from esm.spaces.nets.nb201 import TinyNetwork

        ops = [str(o) for o in self.decode(genome)[0]]
        return TinyNetwork(self.channels, self.cells, ops, self.n_classes).eval()
