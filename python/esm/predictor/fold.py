"""Fold a linear model over additive features into lookup tables (the model at table speed).

A linear model ``y = b + w . x'`` over an encoder whose features are sums over slots of terms
that depend only on that slot's cost row and activity (and on genes of the slot), plus terms of
the fixed part of the network (stem and head), is exactly a sum of table lookups:

``y = c + sum_t table_t[key_t(genome)]``

where each table's key is a mixed-radix index over the few genes that decide its slot's costs
(the slot's own genes, the depth gene of its stage, the resolution gene, the width gene of the
slot before it...). This holds for ``onehot``/``lut``, ``stats``, ``layerwise``, ``roofline``
(its per-slot terms ``max(compute, memory) + launch`` are summed per stage and over the
network), ``stagechoice`` (a slot's costs in the column of its gene's choice) and therefore
``fcc``, the default encoding.

The genes a table depends on are found by perturbation: every value of every gene is tried on
a seeded random sample and the genes that change a slot's costs or activity become its key.
The tables are then filled from the costs of one genome per key value. :func:`build_fold`
checks the fold against the unfolded model on random genomes (``verify``) and raises
:class:`FoldError` with the reason when the model or encoder does not fold (a ``log`` target,
a non-linear family, an encoder with non-additive features, tables too large, a mismatch).

A space small enough to enumerate (:data:`WHOLE_SPACE_MAX` genomes) folds any model into one
table of its predictions, keyed by every gene (:func:`whole_space`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.spaces.base import BYTES_PER_ELEMENT, SearchSpace

#: Largest total table size (values) a fold may build.
MAX_TABLE_VALUES = 1 << 22
#: Tolerance of the check against the unfolded model (relative, per prediction).
FOLD_RTOL = 1e-9
#: Largest space (genomes) whose every prediction :func:`whole_space` keeps in one table.
WHOLE_SPACE_MAX = 1 << 16


class FoldError(InputError):
    """The model does not fold into tables (the reason is the message)."""


@dataclass
class Fold:
    """Lookup tables equal to a linear model over additive features.

    Attributes
    ----------
    n_genes : int
        Genome width ``G``.
    choices : np.ndarray
        int32 ``[G]``: values per gene (genes are checked against it before lookups).
    key_genes : np.ndarray
        int32 ``[K]``: genes of every table's key, table after table.
    key_strides : np.ndarray
        int64 ``[K]``: mixed-radix stride of every key gene.
    key_ptr : np.ndarray
        int64 ``[T + 1]``: table ``t``'s key genes are ``key_genes[key_ptr[t]:key_ptr[t+1]]``.
    table_ptr : np.ndarray
        int64 ``[T + 1]``: table ``t`` is ``values[table_ptr[t]:table_ptr[t+1]]``.
    values : np.ndarray
        float64: all tables.
    intercept : float
        Constant term.
    """

    n_genes: int
    choices: np.ndarray
    key_genes: np.ndarray
    key_strides: np.ndarray
    key_ptr: np.ndarray
    table_ptr: np.ndarray
    values: np.ndarray
    intercept: float

    @property
    def n_tables(self) -> int:
        return int(len(self.table_ptr) - 1)

    def predict_numpy(self, genomes: Any) -> np.ndarray:
        """NumPy reference of the compiled fold evaluator (genomes must be valid)."""
        g = np.asarray(genomes, dtype=np.int64)
        out = np.full(len(g), float(self.intercept))
        for t in range(self.n_tables):
            a, b = int(self.key_ptr[t]), int(self.key_ptr[t + 1])
            idx = np.full(len(g), int(self.table_ptr[t]), dtype=np.int64)
            for j in range(a, b):
                idx += g[:, int(self.key_genes[j])] * int(self.key_strides[j])
            out += self.values[idx]
        return out

    def compile(self) -> Any:
        """The compiled evaluator ``esm._core.FoldedPredictor``."""
        from esm._native import core

        try:
            return core.FoldedPredictor(self.choices, self.key_genes, self.key_strides,
                                        self.key_ptr, self.table_ptr, self.values,
                                        float(self.intercept))
        except ValueError as err:
            raise FoldError(f"the compiled core refused the fold: {err}") from None


# ---------------------------------------------------------------------- whole space
def whole_space(space: SearchSpace, predict: Callable[[np.ndarray], np.ndarray]) -> Fold:
    """One table of ``predict`` over every genome of a small space (any model family).

    Every genome of a space of at most :data:`WHOLE_SPACE_MAX` (nb201: 15,625 cells) is
    predicted once, in one batch, and each later prediction is a single lookup whatever the
    model computes (a device's pruned forms and folded outputs included).

    Raises
    ------
    FoldError
        When the space is larger, or ``predict`` gives a non-finite or misshapen result.
    """
    n = space.size
    if n > WHOLE_SPACE_MAX:
        raise FoldError(f"the space holds {n} genomes, more than {WHOLE_SPACE_MAX}")
    genes = list(range(len(space.choices)))
    every = _table_genomes(space, genes, np.zeros(len(genes), np.int64)).astype(np.int32)
    values = np.asarray(predict(every), dtype=np.float64)
    if values.shape != (n,) or not np.all(np.isfinite(values)):
        raise FoldError("the model's predictions over the space are not one finite number "
                        "per genome")
    return _assemble(space, [(genes, values)], 0.0)


# ---------------------------------------------------------------------- per-slot quantities
def _quantities(space: SearchSpace, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot ``[N, S, 5]`` (the 4 cost fields and activity) and fixed ``[N, 6]`` (macs,
    params, activation bytes, weight bytes, layers of the fixed part; input pixels)."""
    c = space.costs(genomes)
    sl = c.slots.astype(np.float64)
    S = sl.shape[1]
    if S:
        active = space.active_slots(genomes).astype(np.float64)
    else:
        active = np.zeros((len(genomes), 0))
    per = np.concatenate([sl, active[:, :, None]], axis=2)
    fixed = np.column_stack([
        c.macs - sl[:, :, 0].sum(axis=1), c.params - sl[:, :, 1].sum(axis=1),
        c.activation_bytes - sl[:, :, 2].sum(axis=1),
        c.weight_bytes - BYTES_PER_ELEMENT * sl[:, :, 1].sum(axis=1),
        c.layers - sl[:, :, 3].sum(axis=1), space.input_pixels(genomes),
    ]).astype(np.float64)
    return per, fixed


def _dependencies(space: SearchSpace, n: int = 48, seed: int = 12345) -> list[list[int]]:
    """Genes that change each slot's quantities (``S`` lists) and the fixed part's (last)."""
    choices = np.asarray(space.choices, dtype=np.int64)
    base = np.asarray(space.sample(n, seed=seed), dtype=np.int64)
    per0, fix0 = _quantities(space, base)
    variants, owner = [], []
    for g, k in enumerate(choices):
        for v in range(int(k)):
            alt = base.copy()
            alt[:, g] = v
            variants.append(alt)
            owner.append(g)
    allg = np.concatenate(variants)
    per, fix = _quantities(space, allg)
    S = per0.shape[1]
    deps: list[set[int]] = [set() for _ in range(S + 1)]
    for i, g in enumerate(owner):
        p = per[i * n:(i + 1) * n]
        f = fix[i * n:(i + 1) * n]
        changed = np.any(p != per0, axis=(0, 2))
        for s in np.flatnonzero(changed):
            deps[int(s)].add(g)
        if np.any(f != fix0):
            deps[S].add(g)
    return [sorted(d) for d in deps]


# ---------------------------------------------------------------------- contributions
def _parts(encoder: Any) -> list[tuple[Any, int]]:
    from esm.surrogate import encoders as enc

    if isinstance(encoder, enc.FccEncoder):
        out, start = [], 0
        for part in encoder.parts:
            out.append((part, start))
            start += part.n_features
        return out
    if isinstance(encoder, (enc.OneHotEncoder, enc.StatsEncoder, enc.LayerwiseEncoder,
                            enc.RooflineEncoder, enc.StageChoiceEncoder)):
        return [(encoder, 0)]
    raise FoldError(f"encoder {type(encoder).__name__} has no additive fold")


def _slot_terms(parts: list[tuple[Any, int]], w: np.ndarray, s: int, per: np.ndarray,
                genomes: np.ndarray) -> np.ndarray:
    """Contribution of slot ``s`` given its quantities ``per [N, 5]`` and the genomes."""
    from esm.surrogate import encoders as enc

    macs, params, act, layers, active = (per[:, i] for i in range(5))
    out = np.zeros(len(per))
    for part, off in parts:
        if isinstance(part, enc.OneHotEncoder):
            genes = np.flatnonzero(part.gene_slots == s)
            for g in genes:
                col = off + part._offsets[g] + genomes[:, g]
                out += w[col] * active
        elif isinstance(part, enc.StatsEncoder):
            out += (w[off] * macs + w[off + 1] * params + w[off + 2] * act
                    + w[off + 3] * (BYTES_PER_ELEMENT * params) + w[off + 4] * layers
                    + w[off + 5] * active)
        elif isinstance(part, enc.LayerwiseEncoder):
            nf = len(part._idx)
            for fi, ci in enumerate(part._idx):
                out += w[off + s * nf + fi] * per[:, ci]
        elif isinstance(part, enc.RooflineEncoder):
            nst = len(part.stages)
            c, m, ln = part._times(macs, params, act, layers)
            t = np.maximum(c, m) + ln
            out += (w[off + int(part.stage_of[s])] * t + w[off + nst + 1] * t
                    + w[off + nst + 2] * (c * (c >= m)) + w[off + nst + 3] * (m * (c < m))
                    + w[off + nst + 4] * ln)
        elif isinstance(part, enc.StageChoiceEncoder):
            nf, col = len(part._idx), off
            for _, k, pairs in part.groups:
                for gene in (gene for slot, gene in pairs if slot == s):
                    for fi, ci in enumerate(part._idx):
                        out += w[col + genomes[:, gene] * nf + fi] * per[:, ci]
                col += k * nf
    return out


def _owned(parts: list[tuple[Any, int]], s: int) -> set[int]:
    """Genes that choose slot ``s``'s operation in a ``stagechoice`` part."""
    from esm.surrogate import encoders as enc

    return {gene for part, _ in parts if isinstance(part, enc.StageChoiceEncoder)
            for _, _, pairs in part.groups for slot, gene in pairs if slot == s}


def _fixed_terms(parts: list[tuple[Any, int]], w: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    from esm.surrogate import encoders as enc

    fm, fp, fa, fw, fl, pix = (fixed[:, i] for i in range(6))
    out = np.zeros(len(fixed))
    for part, off in parts:
        if isinstance(part, enc.StatsEncoder):
            out += (w[off] * fm + w[off + 1] * fp + w[off + 2] * fa + w[off + 3] * fw
                    + w[off + 4] * fl + w[off + 6] * pix + w[off + 7] * fm)
        elif isinstance(part, enc.RooflineEncoder):
            nst = len(part.stages)
            c, m, ln = part._times(fm, fp, fa, fl)
            t = np.maximum(c, m) + ln
            out += (w[off + nst] * t + w[off + nst + 1] * t + w[off + nst + 2] * (c * (c >= m))
                    + w[off + nst + 3] * (m * (c < m)) + w[off + nst + 4] * ln)
    return out


def _table_genomes(space: SearchSpace, keys: list[int], base: np.ndarray) -> np.ndarray:
    choices = [int(space.choices[g]) for g in keys]
    g = np.repeat(base[None, :], int(np.prod(choices, dtype=np.int64)), axis=0)
    if keys:
        grid = np.indices(choices).reshape(len(keys), -1)
        g[:, keys] = grid.T
    return g


def build_fold(model: Any, encoder: Any, verify: bool = True, n_verify: int = 2048,
               seed: int = 0) -> Fold:
    """Fold a linear ``model`` (:class:`~esm.predictor.model.ModelArrays`) over ``encoder``.

    Parameters
    ----------
    model : ModelArrays
        The regressor; only ``linear`` models with the ``identity`` target fold.
    encoder : esm.surrogate encoder
        ``onehot``, ``lut``, ``stats``, ``layerwise``, ``roofline`` or ``fcc``.
    verify : bool
        Check the fold against the unfolded model on ``n_verify`` random genomes (max relative
        difference :data:`FOLD_RTOL`).
    seed : int
        Seed of the verification sample.

    Raises
    ------
    FoldError
        With the reason when the model does not fold or the check fails.
    """
    if model.kind != "linear":
        raise FoldError(f"a {model.kind} model is not linear in its features")
    if model.target != "identity":
        raise FoldError(f"the {model.target} target is not additive over slots")
    parts = _parts(encoder)
    space = encoder.space
    a = model.arrays
    scale = np.asarray(a["x_scale"], dtype=np.float64)
    coef = np.asarray(a["coef"], dtype=np.float64).reshape(-1)
    mean = np.asarray(a["x_mean"], dtype=np.float64)
    live = np.isfinite(scale)
    w = np.where(live, coef / np.where(live, scale, 1.0), 0.0)
    intercept = float(np.asarray(a["intercept"], dtype=np.float64).reshape(-1)[0])
    intercept -= float(np.sum(np.where(live, w * mean, 0.0)))
    if not np.all(np.isfinite(w)) or not np.isfinite(intercept):
        raise FoldError("the model has non-finite weights")

    from esm.surrogate import encoders as enc

    deps = _dependencies(space)
    S = len(deps) - 1
    gene_slots = np.asarray(space.gene_slots, dtype=np.int64)
    onehot = [(p, off) for p, off in parts if isinstance(p, enc.OneHotEncoder)]
    base = np.asarray(space.sample(1, seed=seed + 1)[0], dtype=np.int64)
    tables: list[tuple[list[int], np.ndarray]] = []
    total = 0
    for s in range(S + 1):
        keys = set(deps[s])
        if s < S and onehot:
            keys |= {int(g) for g in np.flatnonzero(gene_slots == s)}
        if s < S:
            keys |= _owned(parts, s)
        key_list = sorted(keys)
        size = int(np.prod([int(space.choices[g]) for g in key_list], dtype=np.int64))
        total += size
        if total > MAX_TABLE_VALUES:
            raise FoldError(f"the tables would hold more than {MAX_TABLE_VALUES} values")
        g = _table_genomes(space, key_list, base)
        per, fixed = _quantities(space, g)
        vals = _slot_terms(parts, w, s, per[:, s], g) if s < S else _fixed_terms(parts, w, fixed)
        if np.any(vals != 0) or s == S:
            tables.append((key_list, vals))
    for p, off in onehot:  # genes outside slots: one table each
        for gene in np.flatnonzero(p.gene_slots < 0).tolist():
            k = int(space.choices[gene])
            lo = off + int(p._offsets[gene])
            tables.append(([int(gene)], w[lo: lo + k].copy()))
    fold = _assemble(space, _merge(space, tables), intercept)
    if verify:
        check_fold(fold, model, encoder, n=n_verify, seed=seed)
    return fold


def _merge(space: SearchSpace, tables: list[tuple[list[int], np.ndarray]]
           ) -> list[tuple[list[int], np.ndarray]]:
    """Add every table whose key genes are a subset of a larger table's into that table."""
    order = sorted(range(len(tables)), key=lambda i: -len(tables[i][0]))
    kept: list[tuple[list[int], np.ndarray]] = []
    for i in order:
        keys, vals = tables[i]
        for big_keys, big_vals in kept:
            if set(keys) <= set(big_keys):
                ch = [int(space.choices[g]) for g in big_keys]
                grid = np.indices(ch).reshape(len(big_keys), -1)
                idx = np.zeros(grid.shape[1], dtype=np.int64)
                for g in keys:
                    idx = idx * int(space.choices[g]) + np.asarray(grid[big_keys.index(g)])
                big_vals += vals[idx]
                break
        else:
            kept.append((list(keys), np.array(vals, dtype=np.float64)))
    return kept


def _assemble(space: SearchSpace, tables: list[tuple[list[int], np.ndarray]],
              intercept: float) -> Fold:
    choices = np.asarray(space.choices, dtype=np.int32)
    key_genes: list[int] = []
    strides: list[int] = []
    key_ptr, table_ptr = [0], [0]
    for keys, vals in tables:
        ch = [int(choices[g]) for g in keys]
        st = [int(np.prod(ch[j + 1:], dtype=np.int64)) for j in range(len(ch))]
        key_genes += keys
        strides += st
        key_ptr.append(len(key_genes))
        table_ptr.append(table_ptr[-1] + len(vals))
    values = np.concatenate([v for _, v in tables]) if tables else np.zeros(0)
    return Fold(
        n_genes=len(choices), choices=choices,
        key_genes=np.asarray(key_genes, dtype=np.int32),
        key_strides=np.asarray(strides, dtype=np.int64),
        key_ptr=np.asarray(key_ptr, dtype=np.int64),
        table_ptr=np.asarray(table_ptr, dtype=np.int64),
        values=np.ascontiguousarray(values, dtype=np.float64), intercept=float(intercept))


def check_fold(fold: Fold, model: Any, encoder: Any, n: int = 2048, seed: int = 0) -> float:
    """Max relative difference of the fold from the unfolded model on ``n`` random genomes;
    raises :class:`FoldError` above :data:`FOLD_RTOL`."""
    from esm.predictor import reference

    g = encoder.space.sample(n, seed=seed)
    want = np.asarray(reference.predict(model, encoder.transform(g)), dtype=np.float64)
    got = fold.predict_numpy(g)
    err = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
    worst = float(err.max()) if len(err) else 0.0
    if not worst <= FOLD_RTOL:
        i = int(np.argmax(err))
        raise FoldError(f"the fold differs from the model by {worst:.3g} (relative) on genome "
                        f"{i} ({got[i]!r} vs {want[i]!r})")
    return worst
