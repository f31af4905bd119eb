"""Encoders: genomes of a search space -> float64 feature matrices ``[N, F]``.

Every encoder is computed from the genome and the space's batched compiled costs
(:meth:`esm.spaces.SearchSpace.costs`); all of them are vectorized NumPy over those arrays, with
no loop per genome. They are deterministic and are the reference that a compiled (fused)
encoder must reproduce exactly.

Encodings
---------
``onehot``
    One column per (gene, choice): 1.0 where the gene takes that choice, 0.0 otherwise. Genes
    that belong to an inactive slot (a layer past its stage's depth) are all-zero, so two
    genomes of the same network encode identically.
``stats``
    Network totals: MACs, params, activation bytes, weight bytes, layer count, active slot
    count, input pixels (resolution squared) and the MACs of the fixed parts (stem, head).
``layerwise``
    Per-slot MACs, params, activation bytes and layer counts, slot after slot in position
    order (inactive slots are zero).
``lut``
    The onehot features, meant for the additive lookup-table regressor (``model="lut"``): the
    latency is a learned sum of one cost per (slot, choice).
``roofline``
    Hardware-aware time estimates from a device spec (:data:`DEVICE_SPECS`): per slot
    ``t = max(2 * MACs * batch / peak_flops, bytes / bandwidth) + layers * launch``, where bytes
    are ``2 * activation_bytes * batch + weight_bytes`` (each output written once and read once
    by the next layer, weights read once). Features: the estimate summed per stage (slot name
    before the first ``.``), the fixed part's estimate (from the totals minus the slots), the
    overall sum, and the compute-bound, memory-bound and launch parts of the overall sum, all
    in milliseconds.
``stagechoice``
    Per-slot MACs (``fields`` chooses other costs) summed per stage and per choice of the genes
    that choose the slots' operations (:func:`slot_owners`: ofa-mbv3's kernel size and
    expansion of every block): a device's time per MAC differs by operation.
``fcc``
    Feature combination (the default): ``stats`` + ``roofline`` + per-slot MACs and
    activation bytes (``layerwise`` subset) + ``onehot``. ``parts`` chooses other combinations
    (``stagechoice`` too).

Every encoder round-trips through ``to_dict()`` / :func:`encoder_from_dict` with JSON-able
parameters only.
"""

from __future__ import annotations

import re
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from esm.errors import InputError
from esm.jsonable import to_jsonable
from esm.spaces.base import COST_FIELDS, Costs, SearchSpace
from esm.store import parse_column

# --------------------------------------------------------------------------- device specs


@dataclass(frozen=True)
class DeviceSpec:
    """Peak arithmetic rate, memory bandwidth and per-layer launch overhead of a device.

    Attributes
    ----------
    name : str
        Registry name.
    peak_tflops : float
        Peak FP32 throughput in TFLOP/s.
    bandwidth_gbs : float
        Memory bandwidth in GB/s.
    launch_us : float
        Fixed overhead per layer (kernel launch, framework dispatch) in microseconds.
    description : str
        What the numbers are.
    """

    name: str
    peak_tflops: float
    bandwidth_gbs: float
    launch_us: float
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "peak_tflops": self.peak_tflops,
                "bandwidth_gbs": self.bandwidth_gbs, "launch_us": self.launch_us}


_SPECS = (
    DeviceSpec("v100", 15.7, 900.0, 8.0, "NVIDIA Tesla V100 (SXM2, FP32)"),
    DeviceSpec("a100", 19.5, 1555.0, 7.0, "NVIDIA A100 40GB (FP32, no TF32)"),
    DeviceSpec("h100", 67.0, 3350.0, 6.0, "NVIDIA H100 SXM (FP32)"),
    DeviceSpec("rtx2080ti", 13.4, 616.0, 8.0, "NVIDIA GeForce RTX 2080 Ti"),
    DeviceSpec("titan-rtx", 16.3, 672.0, 8.0, "NVIDIA Titan RTX"),
    DeviceSpec("titan-xp", 12.1, 547.7, 8.0, "NVIDIA Titan Xp"),
    DeviceSpec("titan-x", 11.0, 480.0, 8.0, "NVIDIA GeForce GTX Titan X (Pascal)"),
    DeviceSpec("gtx1080ti", 11.3, 484.0, 8.0, "NVIDIA GeForce GTX 1080 Ti"),
    DeviceSpec("jetson-orin", 5.3, 204.8, 12.0, "NVIDIA Jetson AGX Orin 64GB (GPU, FP32)"),
    DeviceSpec("xeon-gold-6240", 1.5, 140.0, 3.0, "Intel Xeon Gold 6240 (18 cores, AVX-512)"),
    DeviceSpec("xeon-silver-4114", 0.7, 115.0, 3.0, "Intel Xeon Silver 4114 (10 cores)"),
    DeviceSpec("xeon-silver-4210r", 0.77, 115.0, 3.0, "Intel Xeon Silver 4210R (10 cores)"),
    DeviceSpec("cpu", 0.2, 40.0, 2.0, "generic desktop/server CPU, a few cores"),
    DeviceSpec("cpu-mobile", 0.05, 15.0, 2.0, "generic mobile (ARM big cores) CPU"),
    DeviceSpec("gpu", 12.0, 550.0, 8.0, "generic discrete GPU"),
)
#: Device specs by name; ``roofline`` takes one of these names or explicit numbers.
DEVICE_SPECS: dict[str, DeviceSpec] = {s.name: s for s in _SPECS}

# substring of a dataset column -> spec name (columns look like lat_<device>_<batch>)
_COLUMN_DEVICES = (
    ("2080ti", "rtx2080ti"), ("titan_xp", "titan-xp"), ("titanxp", "titan-xp"),
    ("titan_rtx", "titan-rtx"), ("titanx", "titan-x"), ("1080ti", "gtx1080ti"),
    ("v100", "v100"), ("a100", "a100"), ("h100", "h100"), ("orin", "jetson-orin"),
    ("gold_6240", "xeon-gold-6240"), ("silver_4114", "xeon-silver-4114"),
    ("silver_4210r", "xeon-silver-4210r"), ("pixel", "cpu-mobile"), ("samsung", "cpu-mobile"),
    ("essential", "cpu-mobile"), ("cpu", "cpu"), ("cuda", "gpu"), ("gpu", "gpu"),
)


def device_from_column(column: str) -> tuple[str | None, int]:
    """Guess ``(spec name, batch size)`` from a dataset column such as ``lat_2080ti_32``.

    The spec is None when no known device name appears; the batch is the column's batch
    (:func:`esm.store.parse_column`) when the column names a GPU, else 1 (CPU column names
    end in model numbers, such as ``lat_gold_6240``).
    """
    low = column.lower()
    spec = next((s for key, s in _COLUMN_DEVICES if key in low), None)
    if spec is None or spec.startswith(("xeon", "cpu")):
        return spec, 1
    return spec, parse_column(low)[1]


def resolve_device(device: str | dict[str, Any] | None) -> DeviceSpec:
    """A :class:`DeviceSpec` from a registry name, a dict of overrides, or None (``gpu``).

    A dict may name a base spec (``{"name": "v100", "launch_us": 20}``) and override any of
    ``peak_tflops``, ``bandwidth_gbs`` and ``launch_us``.
    """
    if device is None:
        return DEVICE_SPECS["gpu"]
    if isinstance(device, DeviceSpec):
        return device
    if isinstance(device, str):
        try:
            return DEVICE_SPECS[device]
        except KeyError:
            raise InputError(
                f"unknown device spec {device!r}; known: {', '.join(DEVICE_SPECS)}"
            ) from None
    if isinstance(device, dict):
        base = DEVICE_SPECS.get(str(device.get("name", "")), None)
        vals = base.to_dict() if base else {"name": str(device.get("name", "custom"))}
        unknown = set(device) - {"name", "peak_tflops", "bandwidth_gbs", "launch_us"}
        if unknown:
            raise InputError(f"unknown device spec fields {sorted(unknown)}")
        vals.update(device)
        try:
            spec = DeviceSpec(str(vals["name"]), float(vals["peak_tflops"]),
                              float(vals["bandwidth_gbs"]), float(vals["launch_us"]))
        except KeyError as err:
            raise InputError(f"device spec needs {err.args[0]!r}") from None
        if spec.peak_tflops <= 0 or spec.bandwidth_gbs <= 0 or spec.launch_us < 0:
            raise InputError("device spec numbers must be positive")
        return spec
    raise InputError(f"device must be a name or a dict, got {type(device).__name__}")


# --------------------------------------------------------------------------- encoders


class Encoder(ABC):
    """Turns genomes of one space into features. Subclasses set ``name``."""

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, **params: Any) -> None:
        self.space = space
        self.params: dict[str, Any] = dict(params)

    @property
    @abstractmethod
    def feature_names(self) -> list[str]:
        """Name of every output column."""

    @abstractmethod
    def _encode(self, genomes: np.ndarray, costs: Costs) -> np.ndarray:
        """Features of validated genomes, given their costs."""

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def feature_groups(self) -> dict[str, list[int]]:
        """Column indices of each named block of features (one block unless combined)."""
        return {self.name: list(range(self.n_features))}

    def transform(self, genomes: Any, costs: Costs | None = None) -> np.ndarray:
        """Encode ``genomes`` ``[N, G]`` into a C-contiguous float64 ``[N, F]`` array.

        ``costs`` may be passed when already computed for the same genomes.
        """
        g = self.space.validate(genomes)
        if costs is None:
            costs = self.space.costs(g)
        out = np.ascontiguousarray(self._encode(g, costs), dtype=np.float64)
        return out.reshape(len(g), self.n_features)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description: ``{"name": ..., "params": {...}}``."""
        return {"name": self.name, "params": to_jsonable(self.params)}

    @staticmethod
    def from_dict(d: dict[str, Any], space: SearchSpace) -> Encoder:
        """Rebuild an encoder from :meth:`to_dict` output."""
        return encoder_from_dict(d, space)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.space.name!r}, {self.params})"


class OneHotEncoder(Encoder):
    name = "onehot"

    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space)
        #: Slot of every gene (``space.gene_slots``): a gene of an inactive slot encodes as 0.
        self.gene_slots = np.asarray(space.gene_slots, dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(space.choices)[:-1]]).astype(np.int64)
        self._names = [f"{gn}={c}" for gn, n in zip(space.gene_names, space.choices, strict=True)
                       for c in range(int(n))]

    @property
    def feature_names(self) -> list[str]:
        return self._names

    def _encode(self, genomes: np.ndarray, costs: Costs) -> np.ndarray:
        n = len(genomes)
        out = np.zeros((n, len(self._names)))
        val = np.ones(genomes.shape)
        slot = self.gene_slots
        if (slot >= 0).any():
            active = self.space.active_slots(genomes)
            bound = slot >= 0
            val[:, bound] = active[:, slot[bound]]
        cols = genomes.astype(np.int64) + self._offsets[None, :]
        rows = np.repeat(np.arange(n), genomes.shape[1]).reshape(genomes.shape)
        out[rows, cols] = val
        return out


class LutEncoder(OneHotEncoder):
    """The onehot features, for the additive lookup-table regressor."""

    name = "lut"


class StatsEncoder(Encoder):
    name = "stats"
    _NAMES: ClassVar[list[str]] = [
        "macs", "params", "activation_bytes", "weight_bytes", "layers", "active_slots",
        "input_pixels", "fixed_macs",
    ]

    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space)

    @property
    def feature_names(self) -> list[str]:
        return list(self._NAMES)

    def _encode(self, genomes: np.ndarray, costs: Costs) -> np.ndarray:
        slot_macs = costs.slots[:, :, 0].sum(axis=1)
        return np.column_stack([
            costs.macs, costs.params, costs.activation_bytes, costs.weight_bytes, costs.layers,
            self.space.active_slots(genomes).sum(axis=1), self.space.input_pixels(genomes),
            costs.macs - slot_macs,
        ]).astype(np.float64)


class LayerwiseEncoder(Encoder):
    name = "layerwise"

    def __init__(self, space: SearchSpace, fields: list[str] | None = None) -> None:
        fields = list(COST_FIELDS) if fields is None else list(fields)
        bad = [f for f in fields if f not in COST_FIELDS]
        if bad or not fields:
            raise InputError(f"layerwise: unknown fields {bad}; known: {', '.join(COST_FIELDS)}")
        super().__init__(space, fields=fields)
        self._idx = [COST_FIELDS.index(f) for f in fields]
        self._names = [f"{s}.{f}" for s in space.slot_names for f in fields]

    @property
    def feature_names(self) -> list[str]:
        return self._names

    def _encode(self, genomes: np.ndarray, costs: Costs) -> np.ndarray:
        return costs.slots[:, :, self._idx].reshape(len(genomes), -1).astype(np.float64)


_Owners = list[tuple[str, int, list[tuple[int, int]]]]
#: :func:`slot_owners` of every space asked about.
_OWNERS: weakref.WeakKeyDictionary[SearchSpace, _Owners] = weakref.WeakKeyDictionary()


def slot_owners(space: SearchSpace) -> _Owners:
    """The genes that choose one stage's operations, grouped: ``[(kind, choices, [(slot,
    gene), ...]), ...]`` (found once per space; do not modify).

    A gene owns the slots whose costs it changes (found by trying every value of every gene
    on 48 seeded random genomes) when they all lie in one stage; genes that decide whether
    several slots are active (a depth) or the input resolution own none, nor do genes whose
    choices canonical form merges (two genomes of one network must encode alike). Genes of
    the same kind (the name without its digits: ``ks3`` -> ``ks#``), stage and number of
    choices form one group. Groups come in gene order. A ``stagechoice`` encoder records the
    groups it was made with (its ``owners`` parameter), so a saved model keeps its columns'
    meaning if this rule changes.
    """
    if space not in _OWNERS:
        _OWNERS[space] = _find_owners(space)
    return _OWNERS[space]


def _find_owners(space: SearchSpace) -> _Owners:
    gate, count = np.unique(np.asarray(space.slot_activity()[0]), return_counts=True)
    gates = {int(g) for g in gate[count > 1]} | {int(space.pixel_table()[0])}
    choices = np.asarray(space.choices, dtype=np.int64)
    stage = np.asarray(space.slot_stages, dtype=np.int64)
    base = np.asarray(space.sample(48, seed=12345), dtype=np.int64)
    before = space.costs(base).slots[:, :, :3]
    groups: dict[tuple[str, int, int], list[tuple[int, int]]] = {}
    for g, k in enumerate(choices):
        if g in gates or k < 2:
            continue
        alts = [base.copy() for _ in range(int(k))]
        for v, alt in enumerate(alts):
            alt[:, g] = v
        after = [space.costs(alt).slots[:, :, :3] for alt in alts]
        slots = np.flatnonzero(np.any([np.any(a != before, axis=(0, 2)) for a in after], axis=0))
        if slots.size == 0 or np.unique(stage[slots]).size != 1:
            continue
        if any(np.any(space.canonical(alt)[np.any(a[:, slots] != 0, axis=(1, 2)), g] != v)
               for v, (alt, a) in enumerate(zip(alts, after, strict=True))):
            continue  # canonical form merges choices where the gene's slots run
        key = (re.sub(r"\d+", "#", space.gene_names[g]), int(stage[slots[0]]), int(k))
        groups.setdefault(key, []).extend((int(s), g) for s in slots)
    return [(kind, k, pairs) for (kind, _, k), pairs in groups.items()]


def _read_owners(space: SearchSpace, owners: Any) -> _Owners:
    """Checked ``owners`` of a saved ``stagechoice`` encoder (:func:`slot_owners`' form)."""
    n_slots, choices = len(space.slot_stages), np.asarray(space.choices)
    stage = np.asarray(space.slot_stages, dtype=np.int64)
    out: _Owners = []
    try:
        for kind, k, pairs in owners:
            pairs = [(int(slot), int(gene)) for slot, gene in pairs]
            ok = bool(pairs) and all(0 <= s < n_slots and 0 <= g < len(choices)
                                     and int(choices[g]) == int(k) for s, g in pairs)
            if not ok or np.unique(stage[[s for s, _ in pairs]]).size != 1:
                raise ValueError
            out.append((str(kind), int(k), pairs))
    except (TypeError, ValueError):
        raise InputError(f"stagechoice: owners do not fit the {space.name} space "
                         "(a corrupt or foreign model file)") from None
    return out


class StageChoiceEncoder(Encoder):
    """Per-slot costs summed per stage and per choice of the genes that own the slots
    (:func:`slot_owners`): how much of each stage's MACs (activation bytes, ...) each
    operation choice holds. A device's time per MAC differs by operation (a depthwise
    convolution's by its kernel size), which per-stage costs cannot tell apart."""

    name = "stagechoice"

    def __init__(self, space: SearchSpace, fields: list[str] | None = None,
                 owners: list[Any] | None = None) -> None:
        fields = ["macs"] if fields is None else list(fields)
        bad = [f for f in fields if f not in COST_FIELDS]
        if bad or not fields:
            raise InputError(f"stagechoice: unknown fields {bad}; known: "
                             f"{', '.join(COST_FIELDS)}")
        #: ``[(kind, choices, [(slot, gene), ...]), ...]``: :func:`slot_owners`, or the
        #: ``owners`` a saved model was made with.
        self.groups = slot_owners(space) if owners is None else _read_owners(space, owners)
        super().__init__(space, fields=fields, owners=[
            [kind, k, [list(p) for p in pairs]] for kind, k, pairs in self.groups])
        self._idx = [COST_FIELDS.index(f) for f in fields]
        stages = space.stage_names
        self._names = [f"{kind}@{stages[space.slot_stages[pairs[0][0]]]}={v}.{f}"
                       for kind, k, pairs in self.groups for v in range(k) for f in fields]

    @property
    def feature_names(self) -> list[str]:
        return self._names

    def _encode(self, genomes: np.ndarray, costs: Costs) -> np.ndarray:
        return self.split(genomes, costs.slots[:, :, self._idx].astype(np.float64))

    def split(self, genomes: np.ndarray, sl: np.ndarray) -> np.ndarray:
        """The columns from per-slot values ``sl [N, S, len(fields)]`` (the cost fields, in
        any unit) of validated ``genomes``."""
        nf = len(self._idx)
        out = np.zeros((len(genomes), self.n_features))
        rows = np.arange(len(genomes))[:, None]
        col = 0
        for _, k, pairs in self.groups:
            for slot, gene in pairs:  # integer costs: exact sums in any order
                cols = col + genomes[:, gene].astype(np.int64)[:, None] * nf + np.arange(nf)
                np.add.at(out, (rows, cols), sl[:, slot, :])
            col += k * nf
        return out


class RooflineEncoder(Encoder):
    name = "roofline"

    def __init__(self, space: SearchSpace, device: str | dict[str, Any] | None = None,
                 batch: int = 1) -> None:
        spec = resolve_device(device)
        if int(batch) < 1:
            raise InputError(f"roofline: batch must be >= 1, got {batch}")
        dev: str | dict[str, Any] = spec.name if spec.name in DEVICE_SPECS and \
            DEVICE_SPECS[spec.name] == spec else spec.to_dict()
        super().__init__(space, device=dev, batch=int(batch))
        self.spec = spec
        #: Stage names (``space.stage_names``) and the stage of every slot.
        self.stages = list(space.stage_names)
        self.stage_of = np.asarray(space.slot_stages, dtype=np.int64)
        self._names = [f"roof_{s}_ms" for s in self.stages] + [
            "roof_fixed_ms", "roof_total_ms", "roof_compute_ms", "roof_memory_ms",
            "roof_launch_ms"]

    @property
    def feature_names(self) -> list[str]:
        return self._names

    def _times(self, macs: np.ndarray, params: np.ndarray, act: np.ndarray,
               layers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b = float(self.params["batch"])
        compute = 2.0 * macs * b / (self.spec.peak_tflops * 1e12) * 1e3
        memory = (2.0 * act * b + 4.0 * params) / (self.spec.bandwidth_gbs * 1e9) * 1e3
        launch = layers * self.spec.launch_us * 1e-3
        return compute, memory, launch

    def _encode(self, genomes: np.ndarray, costs: Costs) -> np.ndarray:
        sl = costs.slots.astype(np.float64)
        c, m, ln = self._times(sl[:, :, 0], sl[:, :, 1], sl[:, :, 2], sl[:, :, 3])
        per_slot = np.maximum(c, m) + ln
        stages = np.zeros((len(genomes), len(self.stages)))
        for k in range(len(self.stages)):
            stages[:, k] = per_slot[:, self.stage_of == k].sum(axis=1)
        fc, fm, fl = self._times(
            costs.macs - sl[:, :, 0].sum(axis=1), costs.params - sl[:, :, 1].sum(axis=1),
            costs.activation_bytes - sl[:, :, 2].sum(axis=1),
            costs.layers - sl[:, :, 3].sum(axis=1),
        )
        fixed = np.maximum(fc, fm) + fl
        total = stages.sum(axis=1) + fixed
        bound_c = (c >= m)
        compute = (c * bound_c).sum(axis=1) + fc * (fc >= fm)
        memory = (m * ~bound_c).sum(axis=1) + fm * (fc < fm)
        launch = ln.sum(axis=1) + fl
        return np.column_stack([stages, fixed, total, compute, memory, launch])


_PARTS = ("stats", "roofline", "layerwise", "onehot", "stagechoice")
#: The parts of ``fcc`` unless told otherwise.
_DEFAULT_PARTS = ("stats", "roofline", "layerwise", "onehot")


class FccEncoder(Encoder):
    name = "fcc"

    def __init__(self, space: SearchSpace, parts: list[str] | None = None,
                 device: str | dict[str, Any] | None = None, batch: int = 1,
                 layer_fields: list[str] | None = None, owners: list[Any] | None = None
                 ) -> None:
        parts = list(_DEFAULT_PARTS) if parts is None else list(parts)
        bad = [p for p in parts if p not in _PARTS]
        if bad or not parts:
            raise InputError(f"fcc: unknown parts {bad}; known: {', '.join(_PARTS)}")
        if owners is not None and "stagechoice" not in parts:
            raise InputError("fcc: owners belong to the stagechoice part, which is not used")
        layer_fields = ["macs", "activation_bytes"] if layer_fields is None else list(layer_fields)
        roof = RooflineEncoder(space, device=device, batch=batch)
        split = StageChoiceEncoder(space, owners=owners) if "stagechoice" in parts else None
        extra = {"owners": split.params["owners"]} if split else {}
        super().__init__(space, parts=parts, device=roof.params["device"], batch=int(batch),
                         layer_fields=layer_fields, **extra)
        built: dict[str, Encoder] = {
            "stats": StatsEncoder(space) if "stats" in parts else None,  # type: ignore[dict-item]
            "roofline": roof,
            "layerwise": LayerwiseEncoder(space, layer_fields) if "layerwise" in parts else None,  # type: ignore[dict-item]
            "onehot": OneHotEncoder(space) if "onehot" in parts else None,  # type: ignore[dict-item]
            "stagechoice": split,  # type: ignore[dict-item]
        }
        #: The encoders combined, in column order.
        self.parts = [built[p] for p in parts]
        self._names = [n for e in self.parts for n in e.feature_names]
        self._groups: dict[str, list[int]] = {}
        start = 0
        for p, e in zip(parts, self.parts, strict=True):
            self._groups[p] = list(range(start, start + e.n_features))
            start += e.n_features

    @property
    def feature_groups(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in self._groups.items()}

    @property
    def feature_names(self) -> list[str]:
        return self._names

    def _encode(self, genomes: np.ndarray, costs: Costs) -> np.ndarray:
        return np.concatenate([e._encode(genomes, costs) for e in self.parts], axis=1)


#: Encoder classes by name.
ENCODERS: dict[str, type[Encoder]] = {
    c.name: c for c in (OneHotEncoder, StatsEncoder, LayerwiseEncoder, LutEncoder,
                        RooflineEncoder, StageChoiceEncoder, FccEncoder)
}


def get_encoder(name: str, space: SearchSpace, **params: Any) -> Encoder:
    """The encoder ``name`` for ``space`` with ``params`` (see the module docstring)."""
    try:
        cls = ENCODERS[name]
    except KeyError:
        raise InputError(f"unknown encoding {name!r}; known: {', '.join(ENCODERS)}") from None
    try:
        return cls(space, **params)
    except TypeError as err:
        raise InputError(f"encoding {name}: bad parameters {params}: {err}") from None


def encoder_from_dict(d: dict[str, Any], space: SearchSpace) -> Encoder:
    """Rebuild an encoder from :meth:`Encoder.to_dict` output."""
    if not isinstance(d, dict) or "name" not in d:
        raise InputError(f"not an encoder description: {d!r}")
    return get_encoder(str(d["name"]), space, **dict(d.get("params", {})))
