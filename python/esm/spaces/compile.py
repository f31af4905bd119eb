"""Compile a resolved space spec into genes, slots and the flat program of the C++ walker.

:func:`compile_spec` walks a :class:`esm.spaces.spec.Resolved` tree once and produces:

* the genes (one per choice occurrence: per block slot, per stage or per layer), their
  genome order, names and choice counts;
* the slots (one per block position of every stage), their stages and when each is active
  (a depth gene, or an option gene whose choice is an identity ``skip``);
* which gene belongs to which slot (:attr:`Compiled.gene_slots`) and which choices are the
  same network (:attr:`Compiled.canon`);
* the program of ``csrc/include/esm/spec.hpp``: block instructions with parameter sources,
  segments (the fixed parts between stages, and every slot) and, per segment, the genes its
  cost depends on (the channel count and spatial size entering it, and its own choices), so
  that its costs can be tabulated over those genes only.

The walk also checks what the spec alone cannot: group counts that divide the channel counts
and spatial sizes that stay positive at every resolution.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from esm._native import core
from esm.spaces.blocks import mid_channels, pool_out
from esm.spaces.spec import Choice, Layer, Options, Resolved, SpecError, Stage, resolve

# Program layout (csrc/include/esm/spec.hpp).
_MAGIC, _VERSION, _HEADER = 0x534D5345, 1, 24
_KIND = {"channels": 0, "kernel": 1, "expand": 2, "flag": 3, "depth": 4, "resolution": 5}
_OP = {"conv": 1, "linear": 2, "mbconv": 3, "fbnet": 4, "bottleneck": 5, "basic": 6,
       "skip": 7, "maxpool": 8, "avgpool": 8, "global_avgpool": 9}
_MAX_ROWS = 1 << 16
_MAX_TABLE_WORDS = 1 << 23


@dataclass(frozen=True)
class Gene:
    """One gene: its choice variable and where it sits (``slot`` -1: not one slot's)."""

    name: str
    family: str
    index: int
    choice: Choice
    slot: int


@dataclass
class _G:
    choice: Choice
    in_stage: bool
    slot: int = -1        # the slot whose activity decides whether this gene matters
    index: int = -1       # genome index, set once the order is known


@dataclass
class _Seg:
    slot: int
    guard: tuple[int, int] | None        # (depth gene id, j): active iff depth > j
    option: int | None                   # option gene id
    instrs: list[list[dict[str, Any]]]   # one list per option (one list without options)
    keys: set[int] = field(default_factory=set)


@dataclass
class _State:
    deps: frozenset[int]      # genes the channel count depends on
    vals: frozenset[int]      # its possible values
    hs: np.ndarray            # spatial size per resolution choice


@dataclass
class Binding:
    """Genome indices of the choices of one item (None: a constant)."""

    fields: dict[str, int] = field(default_factory=dict)    # a fixed layer's fields
    out: int | None = None                                   # a stage's
    depth: int | None = None
    slots: list[int] = field(default_factory=list)          # global slot id per block
    block: list[dict[str, int]] = field(default_factory=list)  # per block: field -> gene


@dataclass
class Compiled:
    """Everything a :class:`esm.spaces.specspace.SpecSpace` needs from its spec."""

    resolved: Resolved
    genes: tuple[Gene, ...]
    choices: np.ndarray
    slot_names: tuple[str, ...]
    stage_names: tuple[str, ...]
    slot_stages: np.ndarray
    gene_slots: np.ndarray
    slot_gene: np.ndarray
    slot_active: np.ndarray
    canon: tuple[np.ndarray, ...]
    resolution_gene: int
    bindings: list[Binding]
    program: np.ndarray
    tables: bool


class _Walk:
    def __init__(self, res: Resolved) -> None:
        self.res = res
        self.genes: list[_G] = []
        self.segs: list[_Seg] = []
        self.slot_names: list[str] = []
        self.slot_stage: list[int] = []
        self.stage_names: list[str] = []
        self.activity: list[tuple[int | None, list[bool] | None]] = []
        self.bindings: list[Binding] = []
        self.fixed: _Seg | None = None
        self.res_gene: int | None = None

    def gene(self, c: Choice, in_stage: bool) -> int:
        self.genes.append(_G(c, in_stage))
        return len(self.genes) - 1

    def fail(self, path: str, reason: str) -> SpecError:
        return SpecError(f"{self.res.name}: {path}: {reason}")

    # ------------------------------------------------------------------ values
    def values(self, ref: Any) -> tuple[Any, ...]:
        return self.genes[ref[1]].choice.values if isinstance(ref, tuple) else (ref,)

    def deps(self, *refs: Any) -> set[int]:
        return {r[1] for r in refs if isinstance(r, tuple)}

    def ref(self, v: Any, in_stage: bool) -> Any:
        """A field value: a constant, or ("gene", id) for a choice (a new gene)."""
        return ("gene", self.gene(v, in_stage)) if isinstance(v, Choice) else v

    # ------------------------------------------------------------------ shapes
    def spatial(self, st: _State, t: str, f: dict[str, Any], stride: int, path: str) -> _State:
        if t in ("maxpool", "avgpool"):
            hs = np.array([pool_out(int(h), f["kernel"], f["stride"], f["padding"],
                                    f["ceil_mode"]) for h in st.hs])
        elif t in ("global_avgpool", "linear"):
            return _State(st.deps, st.vals, np.ones_like(st.hs))
        else:
            hs = (st.hs - 1) // stride + 1
        if hs.min() < 1:
            r = self.genes[self.res_gene].choice.values if self.res_gene is not None else \
                (self.res.resolution,)
            raise self.fail(path, f"the spatial size drops below 1 at input resolution "
                                  f"{r[int(np.argmin(hs))]}")
        return _State(st.deps, st.vals, hs)

    def h_deps(self, st: _State) -> set[int]:
        return {self.res_gene} if self.res_gene is not None and np.ptp(st.hs) > 0 else set()

    def check_groups(self, groups: int, chans: list[int], path: str) -> None:
        bad = [c for c in chans if c % groups]
        if bad:
            raise self.fail(path, f"groups {groups} do not divide {bad[0]} channels")

    def instr(self, t: str, f: dict[str, Any], refs: dict[str, Any], stride: int, st: _State,
              out: Any, path: str) -> tuple[dict[str, Any], _State, set[int]]:
        """One instruction, the state after it and the genes its cost depends on."""
        outs = self.values(out) if out is not None else None
        new_vals = frozenset(outs) if outs is not None else st.vals
        new_deps = frozenset(self.deps(out)) if out is not None else st.deps
        keys = set(st.deps) | self.h_deps(st) | self.deps(*refs.values()) | self.deps(out)
        if t == "conv" and f["groups"] != "depthwise":
            self.check_groups(f["groups"], [*st.vals, *(outs or st.vals)], path)
        if t == "fbnet":
            mids = [mid_channels(c, e, 1) for c in st.vals for e in self.values(refs["expand"])]
            self.check_groups(f["groups"], [*st.vals, *mids, *(outs or st.vals)], path)
        if t == "linear":
            new_deps = frozenset()
        ins = {"type": t, "fields": f, "refs": refs, "stride": stride, "out": out}
        after = self.spatial(_State(new_deps, new_vals, st.hs), t, f, stride, path)
        return ins, after, keys

    # ------------------------------------------------------------------ items
    def layer(self, it: Layer, st: _State) -> _State:
        f = it.fields
        bind = Binding()
        refs: dict[str, Any] = {k: self.ref(f[k], False) for k in ("kernel", "expand", "se")
                                if k in f}
        out = self.ref(f["out"], False) if f.get("out") is not None else None
        for k, r in (*refs.items(), ("out", out)):
            if isinstance(r, tuple):
                bind.fields[k] = r[1]
        self.bindings.append(bind)
        if it.type == "dropout":
            return st
        stride = f.get("stride") or 1
        ins, after, keys = self.instr(it.type, f, refs, stride, st, out, it.path)
        if self.fixed is None:
            self.fixed = _Seg(-1, None, None, [[]])
            self.segs.append(self.fixed)
        self.fixed.instrs[0].append(ins)
        self.fixed.keys |= keys
        return after

    def stage(self, sg: Stage, st: _State) -> _State:
        self.fixed = None
        k = len(self.stage_names)
        self.stage_names.append(sg.name)
        bind = Binding()
        out = self.ref(sg.out, True) if sg.out is not None else None
        depth = self.ref(sg.depth, True)
        bind.out = out[1] if isinstance(out, tuple) else None
        bind.depth = depth[1] if isinstance(depth, tuple) else None
        depths = sg.depths
        opts = sg.block if isinstance(sg.block, Options) else None
        layers: list[Layer] = opts.blocks if opts else [sg.block]  # type: ignore[list-item]
        shared: dict[str, Any] = {}
        if opts and opts.choice.per == "stage":
            shared["option"] = self.ref(opts.choice, True)
        for k_ in ("kernel", "expand", "se"):
            v = None if opts else layers[0].fields.get(k_)
            if isinstance(v, Choice) and v.per == "stage":
                shared[k_] = self.ref(v, True)
        inner = st
        first_stage_genes = [r[1] for r in (*shared.values(), out) if isinstance(r, tuple)]
        for j in range(max(depths)):
            slot = len(self.slot_names)
            self.slot_names.append(f"{sg.name}.{sg.slot.replace('{j}', str(j))}")
            self.slot_stage.append(k)
            bind.slots.append(slot)
            refs = dict(shared)
            if opts and "option" not in refs:
                refs["option"] = self.ref(opts.choice, True)
            for k_ in ("kernel", "expand", "se"):
                v = None if opts else layers[0].fields.get(k_)
                if k_ not in refs and v is not None:
                    refs[k_] = self.ref(v, True)
            bind.block.append({k_: r[1] for k_, r in refs.items() if isinstance(r, tuple)})
            guarded = isinstance(depth, tuple) and j >= min(depths)
            if guarded:
                for k_, r in refs.items():
                    if isinstance(r, tuple) and k_ not in shared:
                        self.genes[r[1]].slot = slot
                if j == 0:
                    for g in first_stage_genes:
                        self.genes[g].slot = slot
            stride = sg.stride if j == 0 else 1
            seg = _Seg(slot, (depth[1], j) if guarded else None,
                       refs["option"][1] if opts else None, [])
            afters = []
            identity = []
            for lay in layers:
                f = dict(lay.fields)
                lrefs: dict[str, Any] = {k_: refs.get(k_, f.get(k_))
                                         for k_ in ("kernel", "expand", "se") if k_ in f}
                ins, after, keys = self.instr(lay.type, f, lrefs, stride, inner, out,
                                              f"{sg.path}.block")
                seg.instrs.append([ins])
                seg.keys |= keys | ({refs["option"][1]} if opts else set())
                afters.append(after)
                cout = self.values(out) if out is not None else tuple(inner.vals)
                identity.append(lay.type == "skip" and stride == 1 and len(inner.vals) == 1
                                and set(inner.vals) == set(cout))
            self.segs.append(seg)
            if guarded:
                self.activity.append((depth[1], [d > j for d in depths]))
            elif opts and any(identity) and opts.choice.per == "block":
                self.activity.append((refs["option"][1], [not i for i in identity]))
            else:
                self.activity.append((None, None))
            if j == 0:
                first = afters[0]
                inner = _State(frozenset(set().union(*(a.deps for a in afters))),
                               frozenset(set().union(*(a.vals for a in afters))), first.hs)
        self.bindings.append(bind)
        if min(depths) >= 1 or out is None:
            return inner
        deps = inner.deps | st.deps | {depth[1]}
        return _State(frozenset(deps), inner.vals | st.vals, inner.hs)


def _emit(w: _Walk, order: list[int]) -> tuple[np.ndarray, bool]:
    """The program array (csrc/include/esm/spec.hpp) with empty cost tables."""
    res = w.res
    G = len(order)
    params: list[list[int]] = []
    reals: list[float] = []
    seen: dict[Any, int] = {}

    def param(ref: Any, kind: str) -> int:
        if isinstance(ref, tuple):
            g = w.genes[ref[1]]
            key: Any = ("g", g.index, kind)
            vals = [float(v) for v in g.choice.values]
        else:
            key, vals = ("c", kind, float(ref)), [float(ref)]
        if key not in seen:
            seen[key] = len(params)
            params.append([w.genes[ref[1]].index if isinstance(ref, tuple) else -1,
                           len(reals), _KIND[kind]])
            reals.extend(vals)
        return seen[key]

    def encode(ins: dict[str, Any]) -> list[int]:
        t, f, refs = ins["type"], ins["fields"], ins["refs"]
        rec = [_OP[t], -1, -1, -1, -1, int(ins["stride"]), 1, 0, 0, 0, 0, 0]
        if ins["out"] is not None:
            rec[1] = param(ins["out"], "channels")
        for slot, k, kind in ((2, "kernel", "kernel"), (3, "expand", "expand"), (4, "se", "flag")):
            if k in refs and t not in ("maxpool", "avgpool"):
                rec[slot] = param(refs[k], kind)
        if t == "conv":
            rec[6] = 0 if f["groups"] == "depthwise" else int(f["groups"])
            rec[7] = (1 if f["bn"] else 0) | (2 if f["bias"] else 0) | (4 if f["residual"] else 0)
        elif t == "linear":
            rec[7] = 2 if f["bias"] else 0
        elif t == "fbnet":
            rec[6] = int(f["groups"])
        elif t == "mbconv":
            rec[8:12] = [0 if f["se_base"] == "mid" else 1, f["se_divisor"], f["se_round"],
                         f["mid_round"]]
        elif t in ("bottleneck", "basic"):
            rec[11] = f["mid_round"]
        elif t in ("maxpool", "avgpool"):
            rec[5] = int(f["stride"])
            rec[8:11] = [f["kernel"], f["padding"], int(f["ceil_mode"])]
        return rec

    res_param = param(("gene", w.res_gene) if w.res_gene is not None else res.resolution,
                      "resolution")
    instrs: list[list[int]] = []
    opts: list[list[int]] = []
    segs: list[list[int]] = []
    keys: list[list[int]] = []
    table_words = 0
    choices = [len(w.genes[i].choice.values) for i in order]
    tables = True
    for s in w.segs:
        rec = [s.slot, -1, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0]
        if s.guard is not None:
            rec[1] = param(("gene", s.guard[0]), "depth")
            rec[2] = s.guard[1]
        ranges = []
        for lst in s.instrs:
            ranges.append([len(instrs), len(lst)])
            instrs.extend(encode(i) for i in lst)
        if s.option is not None:
            rec[3] = w.genes[s.option].index
            rec[4], rec[5] = len(opts), len(ranges)
            opts.extend(ranges)
        else:
            rec[6], rec[7] = ranges[0]
        ks = sorted(w.genes[g].index for g in s.keys)
        rows = 1
        strides = []
        for g in reversed(ks):
            strides.append(rows)
            rows *= choices[g]
        rec[8], rec[9] = len(keys), len(ks)
        keys.extend([g, st] for g, st in zip(ks, reversed(strides), strict=True))
        if rows > _MAX_ROWS:
            tables = False
        rec[10], rec[11] = table_words, rows
        table_words += rows * 4
        segs.append(rec)
    if table_words > _MAX_TABLE_WORDS:
        tables = False
    if not tables:
        table_words = 0
        for rec in segs:
            rec[8] = rec[9] = rec[10] = 0
            rec[11] = 1
        keys = []
        table_words = 4  # one zero row that every segment's (unused) table points at
    sections = [np.asarray(params, np.int64).reshape(-1), np.asarray(instrs, np.int64).reshape(-1),
                np.asarray(segs, np.int64).reshape(-1), np.asarray(opts, np.int64).reshape(-1),
                np.asarray(keys, np.int64).reshape(-1),
                np.asarray(reals, np.float64).view(np.int64),
                np.asarray(choices, np.int64), np.zeros(table_words, np.int64)]
    offs = np.cumsum([_HEADER] + [len(x) for x in sections])
    head = np.zeros(_HEADER, np.int64)
    head[:8] = [_MAGIC, _VERSION, offs[-1], G, len(w.slot_names), int(tables),
                res.input_channels, res_param]
    head[8:22] = [len(params), offs[0], len(instrs), offs[1], len(segs), offs[2], len(opts),
                  offs[3], len(keys), offs[4], len(reals), offs[5], table_words, offs[7]]
    head[22] = offs[6]
    return np.concatenate([head, *sections]), tables


def compile_resolved(res: Resolved) -> Compiled:
    """Compile a resolved spec (see the module docstring)."""
    w = _Walk(res)
    if isinstance(res.resolution, Choice):
        w.res_gene = w.gene(res.resolution, False)
        hs = np.asarray(res.resolution.values, np.int64)
    else:
        hs = np.asarray([res.resolution], np.int64)
    st = _State(frozenset(), frozenset({res.input_channels}), hs)
    for it in res.items:
        st = w.stage(it, st) if isinstance(it, Stage) else w.layer(it, st)
    # genome order: families as listed (or by first appearance), genes in walk order
    fams = list(dict.fromkeys(g.choice.family for g in w.genes))
    if res.genome is not None:
        if sorted(res.genome) != sorted(fams) or len(set(res.genome)) != len(res.genome):
            raise SpecError(f"{res.name}: genome: must list each gene family once; the spec's "
                            f"families are {', '.join(fams)}")
        fams = list(res.genome)
    if not w.genes:
        raise SpecError(f"{res.name}: a space needs at least one choice")
    order = sorted(range(len(w.genes)), key=lambda i: (fams.index(w.genes[i].choice.family), i))
    for pos, i in enumerate(order):
        w.genes[i].index = pos
    per_family: dict[str, list[int]] = {}
    for i in order:
        per_family.setdefault(w.genes[i].choice.family, []).append(i)
    genes = []
    for i in order:
        g = w.genes[i]
        members = per_family[g.choice.family]
        k = members.index(i)
        idx = "" if len(members) == 1 and not g.in_stage else str(k)
        name = res.gene_name.replace("{family}", g.choice.family).replace("{index}", idx)
        genes.append(Gene(name, g.choice.family, k, g.choice, g.slot))
    if len({g.name for g in genes}) != len(genes):
        raise SpecError(f"{res.name}: gene_name: {res.gene_name!r} gives two genes one name")
    S = len(w.slot_names)
    maxc = max(len(g.choice.values) for g in genes)
    slot_gene = np.full(S, -1, np.int32)
    slot_active = np.ones((S, maxc), np.uint8)
    for s, (gid, table) in enumerate(w.activity):
        if gid is not None and table is not None:
            slot_gene[s] = w.genes[gid].index
            slot_active[s, : len(table)] = table
    canon = tuple(np.asarray([next(j for j, u in enumerate(g.choice.values)
                                   if u == v and type(u) is type(v))
                              for v in g.choice.values], np.int32) for g in genes)
    program, tables = _emit(w, order)
    if tables:
        program, ok = core.spec_tabulate(program)
        if not ok:  # pragma: no cover - a compiler bug; the interpreter stays exact
            warnings.warn(f"{res.name}: cost tables disagree with the interpreter; every "
                          "genome is interpreted (slower)", RuntimeWarning, stacklevel=3)
            tables = False
    program = np.asarray(program, np.int64)
    program.setflags(write=False)
    for b in w.bindings:
        b.fields = {k: w.genes[v].index for k, v in b.fields.items()}
        b.out = None if b.out is None else w.genes[b.out].index
        b.depth = None if b.depth is None else w.genes[b.depth].index
        b.block = [{k: w.genes[v].index for k, v in d.items()} for d in b.block]
    return Compiled(
        resolved=res, genes=tuple(genes),
        choices=np.asarray([len(g.choice.values) for g in genes], np.int32),
        slot_names=tuple(w.slot_names), stage_names=tuple(w.stage_names),
        slot_stages=np.asarray(w.slot_stage, np.int64),
        gene_slots=np.asarray([g.slot for g in genes], np.int64),
        slot_gene=slot_gene, slot_active=slot_active, canon=canon,
        resolution_gene=-1 if w.res_gene is None else w.genes[w.res_gene].index,
        bindings=w.bindings, program=program, tables=tables)


@functools.lru_cache(maxsize=64)
def _compile_cached(spec_json: str, params_json: str) -> Compiled:
    return compile_resolved(resolve(json.loads(spec_json), json.loads(params_json)))


def compile_spec(spec: dict[str, Any], params: dict[str, Any] | None = None) -> Compiled:
    """Resolve and compile ``spec`` with ``params`` (cached per spec and parameters)."""
    try:
        key = json.dumps(spec, sort_keys=True), json.dumps(params or {}, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise SpecError(f"a space spec and its parameters must be plain JSON values: {err}") \
            from None
    return _compile_cached(*key)


__all__ = ["Binding", "Compiled", "Gene", "compile_resolved", "compile_spec"]
