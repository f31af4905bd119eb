"""Encoder plans: the compiled twin of an ``esm.surrogate`` encoder.

:func:`build_plan` turns an encoder into a plan dict for ``esm._core.FusedPredictor``: a list
of ops (``onehot``, ``scalars``, ``slots``, ``roofline``, ``stagechoice``) plus two per-space
tables the space declares (:meth:`~esm.spaces.SearchSpace.slot_activity`: which slots are
active for which value of which gene; :meth:`~esm.spaces.SearchSpace.pixel_table`: the input
pixels per value of the resolution gene). :func:`verify_plan` then checks on a seeded random
sample that the compiled encoder reproduces the Python encoder; a plan that does not is never
used.
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


def space_tables(space: SearchSpace) -> dict[str, Any]:
    """Slot activity and input-pixel tables of ``space`` (its declared contracts)."""
    slot_gene, slot_active = space.slot_activity()
    pixel_gene, pixel_table = space.pixel_table()
    return {
        "slot_gene": np.asarray(slot_gene, np.int32),
        "slot_active": np.ascontiguousarray(slot_active, np.uint8).reshape(-1),
        "pixel_gene": int(pixel_gene),
        "pixel_table": np.asarray(pixel_table, np.float64),
    }


def _ops(encoder: Any) -> list[dict[str, Any]]:
    from esm.surrogate import encoders as enc

    if isinstance(encoder, enc.FccEncoder):
        return [op for part in encoder.parts for op in _ops(part)]
    if isinstance(encoder, enc.OneHotEncoder):  # includes LutEncoder
        return [{"kind": "onehot", "ints": np.asarray(encoder.gene_slots, np.int32)}]
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
            "ints": np.asarray(encoder.stage_of, np.int32),
            "reals": np.asarray([spec.peak_tflops, spec.bandwidth_gbs, spec.launch_us,
                                 float(encoder.params["batch"])]),
            "n_stages": len(encoder.stages),
        }]
    if isinstance(encoder, enc.StageChoiceEncoder):
        ints = [len(encoder._idx), *encoder._idx, len(encoder.groups)]
        for _, k, pairs in encoder.groups:
            ints += [k, len(pairs), *(v for pair in pairs for v in pair)]
        return [{"kind": "stagechoice", "ints": np.asarray(ints, np.int32)}]
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
        return core.FusedPredictor(space.kernel, space.config, build_plan(encoder), model)
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
