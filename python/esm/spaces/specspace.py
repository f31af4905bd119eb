"""Search spaces defined by a spec (``docs/spaces.md``): ``SpecSpace(spec, **params)``.

Everything space-specific comes from the spec: the genes (:mod:`esm.spaces.compile`), the
text form (:mod:`esm.spaces.textform`), the costs (the compiled program walked by the C++
core, with :mod:`esm.spaces.blocks` as its Python twin) and the torch network
(:mod:`esm.spaces.nets.chain`).
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.spaces.base import SearchSpace
from esm.spaces.blocks import Block, add_costs, out_size
from esm.spaces.compile import Compiled, compile_spec
from esm.spaces.spec import Layer, Options, Stage
from esm.spaces.textform import TextForm

if TYPE_CHECKING:
    import torch

_STATIC = ("kernel", "expand", "se", "out", "stride")


class SpecSpace(SearchSpace):
    """A search space compiled from a spec (a JSON-able dict).

    Parameters
    ----------
    spec : dict
        The space spec (format ``esm-space/1``).
    **params
        Values of the spec's declared ``params`` (defaults from the spec).
    """

    kernel = "spec"

    def __init__(self, spec: dict[str, Any], **params: Any) -> None:
        self._compiled: Compiled = compile_spec(spec, params)
        self._spec = json.loads(json.dumps(spec))
        r = self._compiled.resolved
        self.name = r.name
        self.description = r.description
        self._text = TextForm(self._compiled)
        super().__init__(self._compiled.program)

    # ------------------------------------------------------------------ description
    @property
    def spec(self) -> dict[str, Any]:
        """The spec this space was made from (a copy; parameters not substituted)."""
        return copy.deepcopy(self._spec)

    @property
    def uses_tables(self) -> bool:
        """Whether the compiled walker sums cost tables (else it interprets every genome)."""
        return self._compiled.tables

    def params(self) -> dict[str, Any]:
        """The spec's parameters, and ``spec`` itself unless it is the packaged one of
        :attr:`name`: enough to recreate the space with :func:`esm.spaces.get` anywhere."""
        from esm.spaces import builtin_spec

        out = copy.deepcopy(self._compiled.resolved.params)
        if builtin_spec(self.name) != self._spec:
            out["spec"] = self.spec
        return out

    @property
    def gene_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self._compiled.genes)

    @property
    def slot_names(self) -> tuple[str, ...]:
        return self._compiled.slot_names

    @property
    def stage_names(self) -> tuple[str, ...]:
        return self._compiled.stage_names

    @property
    def slot_stages(self) -> np.ndarray:
        return self._compiled.slot_stages.copy()

    @property
    def gene_slots(self) -> np.ndarray:
        return self._compiled.gene_slots.copy()

    def slot_activity(self) -> tuple[np.ndarray, np.ndarray]:
        return self._compiled.slot_gene.copy(), self._compiled.slot_active.copy()

    def pixel_table(self) -> tuple[int, np.ndarray]:
        c = self._compiled
        if c.resolution_gene < 0:
            r = float(c.resolved.resolution)  # type: ignore[arg-type]
            return -1, np.asarray([r * r])
        vals = np.asarray(c.genes[c.resolution_gene].choice.values, dtype=np.float64)
        return c.resolution_gene, vals * vals

    # ------------------------------------------------------------------ genomes
    def canonical(self, genomes: Any) -> np.ndarray:
        """Zero the genes of inactive slots and map choices that build the same network
        (equal values, e.g. two width multipliers that round to one channel count) to the
        first of them."""
        g = super().canonical(genomes)
        maps = self.__dict__.get("_canon_maps")
        if maps is None:  # precomputed once: only genes whose map is not the identity
            maps = [(j, np.asarray(m)) for j, m in enumerate(self._compiled.canon)
                    if np.any(np.asarray(m) != np.arange(len(m)))]
            self.__dict__["_canon_maps"] = maps
        for j, m in maps:
            g[:, j] = m[g[:, j]]
        return g

    def decode(self, genomes: Any) -> dict[str, np.ndarray]:
        """Text values per gene family: ``[N, genes]``, or ``[N]`` for a family of one gene
        outside the stages (the resolution)."""
        g = self.validate(genomes)
        out: dict[str, np.ndarray] = {}
        fams: dict[str, list[int]] = {}
        for i, gene in enumerate(self._compiled.genes):
            fams.setdefault(gene.family, []).append(i)
        for fam, idx in fams.items():
            cols = [np.asarray(self._compiled.genes[i].choice.text)[g[:, i]] for i in idx]
            single = len(idx) == 1 and self.gene_names[idx[0]] == fam
            out[fam] = cols[0] if single else np.stack(cols, axis=1)
        return out

    # ------------------------------------------------------------------ text form
    def from_str(self, text: str) -> np.ndarray:
        return self._text.from_str(text)

    def to_str(self, genome: Any) -> str:
        return self._text.to_str(self.validate(genome)[0])

    # ------------------------------------------------------------------ networks
    def network(self, genome: Any) -> list[Block]:
        """The concrete blocks of one genome, in order (what :meth:`build` makes)."""
        g = self.validate(genome)[0]
        c = self._compiled
        r = c.resolved

        def value(gene: int | None, const: Any) -> Any:
            return const if gene is None else c.genes[gene].choice.values[g[gene]]

        h = int(value(c.resolution_gene if c.resolution_gene >= 0 else None, r.resolution))
        w, cin = h, r.input_channels
        blocks: list[Block] = []

        def add(lay: Layer, genes: dict[str, int], cout: int | None, stride: int,
                slot: int) -> None:
            nonlocal h, w, cin
            f = lay.fields
            vals = {k: value(genes.get(k), f.get(k)) for k in ("kernel", "expand", "se")}
            rest = {k: v for k, v in f.items() if k not in _STATIC}
            b = Block(lay.type, cin, cin if cout is None else int(cout), h, w, stride=stride,
                      kernel=int(vals["kernel"] or 1), expand=float(vals["expand"] or 1.0),
                      se=bool(vals["se"]), slot=slot, fields=rest)
            blocks.append(b)
            h, w = out_size(b)
            if lay.type not in ("maxpool", "avgpool", "global_avgpool", "dropout"):
                cin = b.cout

        for it, bind in zip(r.items, c.bindings, strict=True):
            if isinstance(it, Layer):
                out = value(bind.fields.get("out"), it.fields.get("out"))
                add(it, bind.fields, out, it.fields.get("stride") or 1, -1)
                continue
            assert isinstance(it, Stage)
            depth = int(value(bind.depth, it.depth))
            out = value(bind.out, it.out)
            for j in range(depth):
                genes = bind.block[j]
                if isinstance(it.block, Options):
                    lay = it.block.blocks[int(value(genes["option"], None))]
                else:
                    lay = it.block
                add(lay, genes, out if out is not None else cin, it.stride if j == 0 else 1,
                    bind.slots[j])
        return blocks

    def _walk(self, genome: np.ndarray, acc: Any) -> None:
        for b in self.network(genome):
            add_costs(b, acc)

    def input_shape(self, genome: Any, batch_size: int = 1) -> tuple[int, int, int, int]:
        b = self.network(genome)[0]
        return (int(batch_size), b.cin, b.h, b.w)

    def build(self, genome: Any) -> torch.nn.Module:
        from esm.spaces.nets.chain import build_chain

        return build_chain(self.network(genome))

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self._compiled.resolved.params.items())
        return f"SpecSpace({self.name!r}{args})"


__all__ = ["SpecSpace"]
