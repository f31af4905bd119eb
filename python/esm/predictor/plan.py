"""Encoder plans: the compiled twin of an ``esm.surrogate`` encoder.

:func:`build_plan` turns an encoder into a plan dict for ``esm._core.FusedPredictor``: a list
of ops (``onehot``, ``scalars``, ``slots``, ``roofline``) plus two per-space tables found by
probing the space once (which slots are active for which value of which gene; the input pixels
per value of the resolution gene). :func:`verify_plan` then checks on a seeded random sample
that the compiled encoder reproduces the Python encoder; a plan that does not is never used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esm._native import core
from esm.errors import InputError
from esm.spaces.base import COST_FIELDS, SearchSpace

#: Codes of the network-level quantities of a ``scalars`` op (csrc/include/esm/encode.hpp).
SCALARS = {
    "macs": 0, "params": 1, "activation_bytes": 2, "weight_bytes": 3, "layers": 4,
    "active_slots": 5, "input_pixels": 6, "fixed_macs": 7,
}


class PlanError(InputError):
    """The encoder has no compiled twin (unknown encoder, or a table could not be derived)."""


def _single_gene_table(
    space: SearchSpace, values: np.ndarray, genomes: np.ndarray
) -> tuple[int, np.ndarray] | None:
    """Find a gene ``c`` such that ``values`` is a function of ``genomes[:, c]``.

    Returns ``(c, table)`` with ``table[v]`` the value for choice ``v``, ``(-1, [value])``
    when ``values`` is constant, or None.
    """
    if np.all(values == values[0]):
        return -1, values[:1].astype(np.float64)
    for c in range(space.genome_length):
        k = int(space.choices[c])
        table = np.full(k, np.nan)
        col = genomes[:, c]
        ok = True
        for v in range(k):
            sel = values[col == v]
            if sel.size == 0 or not np.all(sel == sel[0]):
                ok = False
                break
            table[v] = sel[0]
        if ok:
            return c, table
    return None


def space_tables(space: SearchSpace, seed: int = 7) -> dict[str, Any]:
    """Slot activity and input-pixel tables of ``space`` (probed on a seeded sample)."""
    cached = getattr(space, "_esm_plan_tables", None)
    if cached is not None:
        return cached
    genomes = space.sample(4096, seed=seed)
    active = space.active_slots(genomes)
    S = active.shape[1]
    maxc = int(space.choices.max())
    slot_gene = np.full(S, -1, np.int32)
    slot_active = np.ones((S, maxc), np.uint8)
    for s in range(S):
        found = _single_gene_table(space, active[:, s].astype(np.float64), genomes)
        if found is None:
            raise PlanError(f"{space.name}: activity of slot {s} is not set by a single gene")
        c, table = found
        if c < 0:
            if table[0] != 1.0:
                raise PlanError(f"{space.name}: slot {s} is never active")
            continue
        slot_gene[s] = c
        slot_active[s, : len(table)] = table.astype(np.uint8)
    from esm.surrogate import encoders as enc

    pixels = np.asarray(enc._input_pixels(space, genomes), dtype=np.float64)
    found = _single_gene_table(space, pixels, genomes)
    if found is None:
        raise PlanError(f"{space.name}: input pixels are not set by a single gene")
    tables = {
        "slot_gene": slot_gene,
        "slot_active": slot_active.reshape(-1),
        "pixel_gene": int(found[0]),
        "pixel_table": found[1],
    }
    try:
        space._esm_plan_tables = tables  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover
        pass
    return tables


def _ops(encoder: Any) -> list[dict[str, Any]]:
    from esm.surrogate import encoders as enc

    if isinstance(encoder, enc.FccEncoder):
        return [op for part in encoder._parts for op in _ops(part)]
    if isinstance(encoder, enc.OneHotEncoder):  # includes LutEncoder
        return [{"kind": "onehot", "ints": np.asarray(encoder._gene_slot, np.int32)}]
    if isinstance(encoder, enc.StatsEncoder):
        names = list(encoder.feature_names)
        unknown = [n for n in names if n not in SCALARS]
        if unknown:
            raise PlanError(f"stats features {unknown} have no compiled twin")
        return [{"kind": "scalars", "ints": np.asarray([SCALARS[n] for n in names], np.int32)}]
    if isinstance(encoder, enc.LayerwiseEncoder):
        fields = [COST_FIELDS.index(f) for f in encoder.params["fields"]]
        return [{"kind": "slots", "ints": np.asarray(fields, np.int32)}]
    if isinstance(encoder, enc.RooflineEncoder):
        spec = encoder.spec
        return [{
            "kind": "roofline",
            "ints": np.asarray(encoder._stage_of, np.int32),
            "reals": np.asarray([spec.peak_tflops, spec.bandwidth_gbs, spec.launch_us,
                                 float(encoder.params["batch"])]),
            "n_stages": len(encoder._stages),
        }]
    raise PlanError(f"encoder {type(encoder).__name__} has no compiled twin")


def build_plan(encoder: Any) -> dict[str, Any]:
    """The plan dict of ``encoder`` (raises :class:`PlanError` when it has no twin)."""
    space = encoder.space
    plan = {
        "choices": np.asarray(space.choices, np.int32),
        "n_slots": len(space.slot_names),
        **space_tables(space),
        "ops": _ops(encoder),
    }
    return plan


def fused(encoder: Any, model: Any | None = None) -> Any:
    """``esm._core.FusedPredictor`` for ``encoder`` and a compiled model (or None)."""
    space = encoder.space
    try:
        return core.FusedPredictor(space.name, space.config, build_plan(encoder), model)
    except ValueError as err:
        if isinstance(err, PlanError):
            raise
        raise PlanError(str(err)) from None


def verify_plan(encoder: Any, n: int = 512, seed: int = 0, rtol: float = 1e-12) -> None:
    """Raise :class:`PlanError` unless the compiled encoder equals ``encoder.transform``."""
    f = fused(encoder)
    g = encoder.space.sample(n, seed=seed)
    want = encoder.transform(g)
    got = np.asarray(f.encode(g, 1))
    if got.shape != want.shape:
        raise PlanError(f"compiled encoder makes {got.shape[1]} features, Python {want.shape[1]}")
    bad = ~np.isclose(got, want, rtol=rtol, atol=0.0)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise PlanError(
            f"compiled encoder differs from {type(encoder).__name__} at row {i}, column {j} "
            f"({encoder.feature_names[j]}): {got[i, j]!r} vs {want[i, j]!r}"
        )
