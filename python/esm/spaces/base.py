"""The search-space interface: genomes, variation operators, text forms, costs and build."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from esm._native import core
from esm.errors import InputError

if TYPE_CHECKING:
    import torch

#: Names of the per-slot cost fields, in the order of :attr:`Costs.slots`' last axis.
COST_FIELDS: tuple[str, ...] = tuple(core.COST_FIELDS)
#: Bytes per element used for activation and weight bytes (float32 inference).
BYTES_PER_ELEMENT = 4


@dataclass(frozen=True)
class Costs:
    """Costs of a batch of genomes, as computed by the compiled core.

    Attributes
    ----------
    macs, params, activation_bytes, weight_bytes, layers : np.ndarray
        Per-genome totals, shape ``[N]``, int64. MACs count multiply-accumulates of
        convolutions and linear layers (bias excluded); params are all trainable parameters
        (normalisation included); activation bytes are 4 bytes per output element of every
        convolution and linear layer at batch size 1; weight bytes are 4 bytes per parameter;
        layers counts convolutions and linear layers.
    slots : np.ndarray
        Per-slot detail, shape ``[N, S, 4]`` int64 with fields :data:`COST_FIELDS`; slots past
        a stage's depth are zero. Fixed parts (stem, head) are in the totals only.
    slot_names : tuple of str
        Name of every slot.
    """

    macs: np.ndarray
    params: np.ndarray
    activation_bytes: np.ndarray
    weight_bytes: np.ndarray
    layers: np.ndarray
    slots: np.ndarray
    slot_names: tuple[str, ...]

    def slot(self, field: str) -> np.ndarray:
        """Per-slot values ``[N, S]`` of one field of :data:`COST_FIELDS`."""
        if field not in COST_FIELDS:
            raise InputError(f"unknown cost field {field!r}; known: {', '.join(COST_FIELDS)}")
        return self.slots[:, :, COST_FIELDS.index(field)]

    def totals(self) -> dict[str, np.ndarray]:
        """The per-genome totals by name."""
        return {
            "macs": self.macs,
            "params": self.params,
            "activation_bytes": self.activation_bytes,
            "weight_bytes": self.weight_bytes,
            "layers": self.layers,
        }


def _bernoulli_positions(rng: np.random.Generator, total: int, rate: float) -> np.ndarray:
    """Sorted positions in ``[0, total)`` of the successes of ``total`` Bernoulli(rate) trials.

    Drawn as cumulative geometric gaps: exact, and O(number of successes).
    """
    if rate <= 0.0 or total <= 0:
        return np.zeros(0, dtype=np.int64)
    expected = total * rate
    parts: list[np.ndarray] = []
    last = -1
    while True:
        k = int(expected + 6.0 * np.sqrt(expected) + 16)
        pos = last + np.cumsum(rng.geometric(rate, size=k))
        parts.append(pos)
        if pos[-1] >= total:
            break
        last = int(pos[-1])
        expected = (total - last) * rate
    flat = np.concatenate(parts)
    return flat[: int(np.searchsorted(flat, total))]


class SearchSpace(ABC):
    """A NAS search space whose architectures are fixed-length integer genomes.

    Every gene is a choice index in ``[0, choices[g])``. Subclasses define the genes, the
    slots and which genes and slots belong together, the text form, the reference cost walk and
    the torch build; sampling, variation, validation, canonical forms and the compiled costs
    are shared. Spaces defined by a spec file are :class:`esm.spaces.specspace.SpecSpace`.
    """

    #: Registry name, e.g. ``"ofa-mbv3"``.
    name: str
    #: One-line description.
    description: str
    #: Name of the compiled cost kernel (``"spec"`` for spec-defined spaces).
    kernel: ClassVar[str]

    def __init__(self, config: Sequence[int] | np.ndarray) -> None:
        self._config = np.ascontiguousarray(config, dtype=np.int64)
        self._choices = np.asarray(core.space_choices(self.kernel, self._config), dtype=np.int32)
        self._choices.setflags(write=False)
        self._config.setflags(write=False)

    # ------------------------------------------------------------------ description
    @property
    def config(self) -> np.ndarray:
        """The integer channel/shape plan handed to the compiled core."""
        return self._config

    @property
    def choices(self) -> np.ndarray:
        """Number of choices of every gene, shape ``[G]``."""
        return self._choices

    @property
    def genome_length(self) -> int:
        """Number of genes ``G``."""
        return int(self._choices.shape[0])

    @property
    def size(self) -> int:
        """Number of distinct genomes (an upper bound on distinct networks)."""
        return int(np.prod(self._choices.astype(object)))

    @property
    @abstractmethod
    def gene_names(self) -> tuple[str, ...]:
        """Name of every gene, e.g. ``("ks0", ..., "r")``."""

    @property
    @abstractmethod
    def slot_names(self) -> tuple[str, ...]:
        """Name of every searchable slot (layer or block position)."""

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Names of the stages the slots belong to, in order.

        By default the part of a slot name before its first ``.`` (``"stage2.block0"`` is in
        ``"stage2"``), and one stage ``"slots"`` for names without a dot.
        """
        return tuple(dict.fromkeys(s.split(".", 1)[0] if "." in s else "slots"
                                   for s in self.slot_names))

    @property
    def slot_stages(self) -> np.ndarray:
        """Index into :attr:`stage_names` of every slot, int64 ``[S]``."""
        names = self.stage_names
        return np.asarray([names.index(s.split(".", 1)[0] if "." in s else "slots")
                           for s in self.slot_names], dtype=np.int64)

    @property
    @abstractmethod
    def gene_slots(self) -> np.ndarray:
        """Slot of every gene that matters only while that slot is active, else -1 (int64 [G]).

        A gene tied to a slot is zeroed by :meth:`canonical` and left out of one-hot encodings
        when its slot is inactive (a block past its stage's depth).
        """

    @abstractmethod
    def slot_activity(self) -> tuple[np.ndarray, np.ndarray]:
        """When each slot is part of the network: ``(slot_gene, table)``.

        ``slot_gene`` (int32 ``[S]``) is the gene deciding slot ``s`` (-1: always active) and
        ``table`` (uint8 ``[S, max(choices)]``) says for each of its values whether the slot
        is active. :meth:`active_slots` applies it; the compiled encoders use it as is.
        """

    @abstractmethod
    def pixel_table(self) -> tuple[int, np.ndarray]:
        """Input pixels (height * width): ``(gene, table)``, the pixels being
        ``table[genome[gene]]``, or ``table[0]`` when ``gene`` is -1 (a fixed resolution)."""

    def input_pixels(self, genomes: Any) -> np.ndarray:
        """Input height * width of every genome, float64 ``[N]``."""
        g = self.validate(genomes)
        gene, table = self.pixel_table()
        table = np.asarray(table, dtype=np.float64)
        return table[g[:, gene]] if gene >= 0 else np.full(len(g), table[0])

    def params(self) -> dict[str, Any]:
        """Constructor parameters, enough to recreate this space with :func:`esm.spaces.get`."""
        return {}

    # ------------------------------------------------------------------ genomes
    def validate(self, genomes: Any) -> np.ndarray:
        """Return ``genomes`` as a C-contiguous int32 array ``[N, G]`` or raise InputError.

        A single genome ``[G]`` becomes ``[1, G]``. Non-integer values, NaN, a wrong width or an
        out-of-range gene are refused with a message naming the first bad gene.
        """
        g = self._coerce(genomes)
        with self._core_errors():
            core.validate(self.kernel, g, self._config)
        return g

    def _coerce(self, genomes: Any) -> np.ndarray:
        """Shape and dtype checks; the range check is the compiled core's."""
        arr = np.asarray(genomes)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise InputError(f"{self.name}: genomes must be [N, G], got shape {arr.shape}")
        if arr.shape[1] != self.genome_length:
            raise InputError(
                f"{self.name}: genomes have {arr.shape[1]} genes, expected {self.genome_length}"
            )
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise InputError(
                    f"{self.name}: genomes must hold integers (found NaN or fractions)"
                )
        elif arr.dtype.kind not in "iub":
            raise InputError(f"{self.name}: genomes must be integers, got dtype {arr.dtype}")
        if arr.dtype != np.int32 and arr.size and (arr.min() < -(2**31) or arr.max() >= 2**31):
            raise InputError(f"{self.name}: gene values overflow int32")
        return np.ascontiguousarray(arr, dtype=np.int32)

    @contextmanager
    def _core_errors(self) -> Iterator[None]:
        """Re-raise the compiled core's ValueError as InputError."""
        try:
            yield
        except InputError:
            raise
        except ValueError as err:
            msg = str(err)
            if msg.startswith(self.kernel + ":"):
                msg = self.name + msg[len(self.kernel):]
            raise InputError(msg) from None

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Draw ``n`` genomes uniformly over every gene's choices."""
        if n < 0:
            raise InputError(f"cannot sample {n} genomes")
        rng = np.random.default_rng(seed)
        u = rng.random((n, self.genome_length))
        return np.minimum((u * self._choices).astype(np.int32), self._choices - 1)

    def sample_shard(self, seed: int, start: int, count: int) -> np.ndarray:
        """Rows ``start .. start+count-1`` of ``sample(start + count, seed)``, in O(count).

        A seeded random range can be cut into shards that are generated where they are used
        (one per worker) and still equal the single-machine ``sample(n, seed)`` row for row:
        ``sample`` draws one float per gene, row-major, from NumPy's PCG64, so the generator is
        advanced past the first ``start`` rows instead of drawing them. A subclass that
        overrides ``sample`` gets the (slower, equal) slice of its own ``sample``.
        """
        if start < 0 or count < 0:
            raise InputError(f"shard start and count must be >= 0, got {start}, {count}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise InputError(f"shard seed must be an integer, got {type(seed).__name__}")
        if type(self).sample is not SearchSpace.sample:
            return self.sample(int(start) + int(count), int(seed))[int(start):]
        bits = np.random.PCG64(int(seed))  # what default_rng(seed) uses
        bits.advance(int(start) * self.genome_length)  # one 64-bit draw per gene
        u = np.random.Generator(bits).random((int(count), self.genome_length))
        return np.minimum((u * self._choices).astype(np.int32), self._choices - 1)

    def mutate(
        self,
        genomes: Any,
        rate: float | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Return mutated copies: each gene changes with probability ``rate`` (default 1/G).

        Every genome changes in at least one gene, and a mutated gene always takes a different
        value (uniform over the other choices). Genes with a single choice never change.

        The Bernoulli trials of all (genome, mutable gene) pairs are drawn as geometric gaps
        between successes when ``rate`` is small, so the cost is proportional to the number
        of mutated genes rather than ``N * G`` (same distribution as one uniform draw per gene).
        """
        g = self.validate(genomes)
        n, width = g.shape
        rate = 1.0 / width if rate is None else float(rate)
        if not 0.0 <= rate <= 1.0:
            raise InputError(f"mutation rate must be in [0, 1], got {rate}")
        rng = np.random.default_rng(seed)
        idx = np.flatnonzero(self._choices > 1)  # mutable genes
        out = g.copy()
        m = int(idx.size)
        if n == 0 or m == 0:
            return out
        if rate <= 0.25:
            flat = _bernoulli_positions(rng, n * m, rate)
            rows, cols = flat // m, idx[flat % m]
            hit = np.zeros(n, dtype=bool)
            hit[rows] = True
            none = np.flatnonzero(~hit)
            if none.size:
                rows = np.concatenate([rows, none])
                cols = np.concatenate([cols, idx[rng.integers(0, m, none.size)]])
        else:
            mask = rng.random((n, m), dtype=np.float32) < rate
            none = np.flatnonzero(~mask.any(axis=1))
            mask[none, rng.integers(0, m, none.size)] = True
            rows, j = np.nonzero(mask)
            cols = idx[j]
        c = self._choices[cols]
        shift = 1 + (rng.random(rows.size) * (c - 1)).astype(np.int32)
        flat = rows * width + cols  # flat indices: cheaper than a 2-D fancy index
        view = out.reshape(-1)
        view[flat] = (view[flat] + shift) % c
        return out

    def crossover(
        self, a: Any, b: Any, seed: int | np.random.Generator | None = None
    ) -> np.ndarray:
        """Uniform crossover of parent batches ``a`` and ``b`` (same shape), gene by gene.

        Each gene comes from ``a`` or ``b`` with probability 1/2 (one random bit per gene).
        """
        pa, pb = self.validate(a), self.validate(b)
        if pa.shape != pb.shape:
            raise InputError(f"crossover parents differ in shape: {pa.shape} vs {pb.shape}")
        rng = np.random.default_rng(seed)
        size = pa.size
        bits = np.unpackbits(np.frombuffer(rng.bytes((size + 7) // 8), dtype=np.uint8))
        take_a = bits[:size].reshape(pa.shape)
        # pb + (pa - pb) * bit: an arithmetic select (faster than np.where on int32)
        out = pa - pb
        out *= take_a
        out += pb
        return out

    def canonical(self, genomes: Any) -> np.ndarray:
        """Genomes with genes that do not change the network (of inactive slots) set to 0.

        Two genomes describe the same network exactly when their canonical forms are equal.
        """
        g = self.validate(genomes).copy()
        slot = np.asarray(self.gene_slots)
        bound = np.flatnonzero(slot >= 0)
        if bound.size:
            active = self.active_slots(g)
            sub = g[:, bound]
            sub[~active[:, slot[bound]]] = 0
            g[:, bound] = sub
        return g

    def active_slots(self, genomes: Any) -> np.ndarray:
        """Boolean ``[N, S]``: which slots are part of each network (:meth:`slot_activity`)."""
        g = self.validate(genomes)
        cached = self.__dict__.get("_activity_cache")
        if cached is None:  # the tables are fixed for a space: derive the gather once
            slot_gene, table = self.slot_activity()
            bound = np.flatnonzero(np.asarray(slot_gene) >= 0)
            cached = (bound, np.asarray(slot_gene)[bound],
                      np.asarray(table, dtype=bool)[bound])
            self.__dict__["_activity_cache"] = cached
        bound, genes, table = cached
        out = np.ones((g.shape[0], len(self.slot_names)), dtype=bool)
        if bound.size:
            out[:, bound] = table[np.arange(bound.size)[None, :], g[:, genes]]
        return out

    def constant_output(self, genomes: Any) -> np.ndarray:
        """Boolean ``[N]``: networks whose output does not depend on their input.

        A runtime may fold such a network to a constant and take almost no time over it, while
        its costs still count every operation it holds. False everywhere unless a space can
        build such networks (``nb201``: a cell with no input-to-output path).
        """
        return np.zeros(len(self.validate(genomes)), dtype=bool)

    def pruned(self, genomes: Any) -> np.ndarray:
        """The networks a runtime that prunes dead operations runs: every operation that
        cannot reach the output replaced by the space's no-op, as genomes ``[N, G]``.

        The costs of a genome count every operation it holds; a graph compiler that drops
        what cannot change the output (TFLite, for one) runs the pruned network instead.
        The genomes unchanged unless a space can build dead operations (``nb201``: edges off
        every input-to-output path of the cell).
        """
        return self.validate(genomes)

    # ------------------------------------------------------------------ text forms
    @abstractmethod
    def from_str(self, text: str) -> np.ndarray:
        """Parse one architecture in the space's usual text form into a genome ``[G]``."""

    @abstractmethod
    def to_str(self, genome: Any) -> str:
        """The usual text form of one genome."""

    def from_strs(self, texts: Iterable[str]) -> np.ndarray:
        """Parse many text forms into ``[N, G]``."""
        rows = [self.from_str(t) for t in texts]
        if not rows:
            return np.zeros((0, self.genome_length), dtype=np.int32)
        return np.ascontiguousarray(np.stack(rows), dtype=np.int32)

    def to_strs(self, genomes: Any) -> list[str]:
        """Text forms of a batch of genomes."""
        return [self.to_str(g) for g in self.validate(genomes)]

    # ------------------------------------------------------------------ costs
    def costs(self, genomes: Any, threads: int = 0, detail: bool = True) -> Costs:
        """Compute costs of a batch in the compiled core.

        Parameters
        ----------
        genomes : array_like
            ``[N, G]`` (or one ``[G]``) genomes; validated first.
        threads : int
            Worker threads; 0 uses all cores.
        detail : bool
            Also compute the per-slot detail (``slots``); without it ``slots`` is ``[N, 0, 4]``
            and the call is faster.
        """
        g = self._coerce(genomes)
        with self._core_errors():
            totals, slots = core.costs(self.kernel, g, self._config, int(threads), bool(detail))
        return Costs(
            macs=totals[:, 0],
            params=totals[:, 1],
            activation_bytes=totals[:, 2],
            weight_bytes=totals[:, 1] * BYTES_PER_ELEMENT,
            layers=totals[:, 3],
            slots=slots,
            slot_names=self.slot_names,
        )

    def reference_costs(self, genome: Any) -> dict[str, Any]:
        """Pure-Python twin of :meth:`costs` for one genome (the test oracle; slow).

        Returns a dict with the totals and ``slots`` (a list of ``[macs, params,
        activation_bytes, layers]`` per slot).
        """
        from esm.spaces.reference import ReferenceAccumulator

        g = self.validate(genome)[0]
        acc = ReferenceAccumulator(len(self.slot_names))
        self._walk(g, acc)
        return acc.result()

    @abstractmethod
    def _walk(self, genome: np.ndarray, acc: Any) -> None:
        """Report the layers of one genome to ``acc`` (mirrors the C++ kernel)."""

    # ------------------------------------------------------------------ networks
    @abstractmethod
    def input_shape(self, genome: Any, batch_size: int = 1) -> tuple[int, int, int, int]:
        """Shape ``(B, C, H, W)`` of the network's input."""

    @abstractmethod
    def build(self, genome: Any) -> torch.nn.Module:
        """Build the torch module of one genome (needs torch; weights are random)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
