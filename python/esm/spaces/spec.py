"""Space specs: reading, checking and resolving the JSON that defines a search space.

A spec (format ``esm-space/1``, documented with examples in ``docs/spaces.md``) describes a
chain network: an input, a ``stem``, ``stages`` of repeated blocks and a ``head``, where any
field marked choosable in :mod:`esm.spaces.blocks` (channels, kernel, expand ratio, SE), a
stage's depth, a stage's block type and the input resolution may be a *choice*::

    {"gene": "ks", "values": [3, 5, 7]}                     # one gene per block slot
    {"gene": "e", "values": [1, 4, 6], "per": "stage"}      # one gene for the whole stage
    {"gene": "w", "values": [168, 208, 256], "text": [0, 1, 2]}   # text form shows 0/1/2

:func:`resolve` checks a spec, substitutes its parameters (``{"param": "n_classes"}``) and
returns a :class:`Resolved` tree of :class:`Layer`, :class:`Stage` and :class:`Choice` that the
compiler (:mod:`esm.spaces.compile`) and the torch builder use. Every problem is a
:class:`SpecError` naming the field (``stages[2].block.expand.values[1]``) and the reason.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from esm.errors import InputError
from esm.spaces.blocks import ACTIVATIONS, BLOCKS, CHOOSABLE, REQUIRED, STAGE_BLOCKS
from esm.spaces.reference import make_divisible

FORMAT = "esm-space/1"
_TOP = ("format", "name", "description", "source", "params", "presets", "width_mult",
        "input", "genome", "gene_name", "text", "block", "stem", "stages", "head")
_STAGE = ("type", "name", "out", "stride", "depth", "block", "slot")
_CHOICE = ("gene", "values", "range", "text", "per")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_FAMILY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Value limits (the compiled walker checks the same; docs/spaces.md, "Limits").
LIMITS = {"channels": (1, 16384), "kernel": (1, 15), "stride": (1, 16), "expand": (0, 64),
          "depth": (0, 64), "resolution": (1, 2048), "pool": (1, 16), "round": (1, 64)}


class SpecError(InputError):
    """A spec that cannot define a space; the message names the field and the reason."""


@dataclass(frozen=True)
class Choice:
    """A choice variable: a gene family, the choices' values and their text forms."""

    family: str
    values: tuple[Any, ...]
    text: tuple[Any, ...]
    kind: str
    per: str = "block"
    path: str = ""


@dataclass
class Layer:
    """A layer or block with its fields (constants or :class:`Choice`)."""

    type: str
    fields: dict[str, Any]
    path: str
    name: str | None = None  # the option name of a block chosen per slot


@dataclass
class Options:
    """A stage block chosen per slot among fixed blocks (e.g. FBNet's 9 choices)."""

    choice: Choice
    blocks: list[Layer]


@dataclass
class Stage:
    """Repeated blocks: up to ``max(depth)`` slots named ``{name}.{slot}``."""

    name: str
    out: Any
    stride: int
    depth: int | Choice
    block: Layer | Options
    slot: str
    path: str

    @property
    def depths(self) -> tuple[int, ...]:
        return self.depth.values if isinstance(self.depth, Choice) else (self.depth,)


@dataclass
class Resolved:
    """A checked spec with its parameters substituted."""

    name: str
    description: str
    params: dict[str, Any]
    input_channels: int
    resolution: int | Choice
    items: list[Layer | Stage]
    text: dict[str, Any]
    genome: list[str] | None
    gene_name: str
    spec: dict[str, Any] = field(repr=False)


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read a spec file (JSON) into a dict; the content is checked by :func:`resolve`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(f"cannot read space spec {p}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise SpecError(f"space spec {p}: not a UTF-8 text file") from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"space spec {p}: not valid JSON (line {err.lineno}, column "
                        f"{err.colno}: {err.msg})") from None
    if not isinstance(spec, dict):
        raise SpecError(f"space spec {p}: must be a JSON object")
    return spec


class _Checker:
    """Walks a spec, reporting the first problem with its field path."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.label = str(spec.get("name", "space spec")) if isinstance(spec, dict) else "spec"
        self.from_param: dict[str, str] = {}
        self.inherited: set[str] = set()  # stage block fields taken from the top-level block

    def fail(self, path: str, reason: str) -> SpecError:
        def under(q: str) -> bool:
            return path == q or path.startswith(q + ".") or path.startswith(q + "[")

        src = next((f" (from parameter {p!r})" for q, p in self.from_param.items()
                    if under(q)), "")
        if any(under(q) for q in self.inherited):
            src += " (from the top-level 'block')"
        return SpecError(f"{self.label}: {path}: {reason}{src}")

    # ------------------------------------------------------------------ scalars
    def integer(self, v: Any, path: str, limits: str | tuple[int, int]) -> int:
        lo, hi = LIMITS[limits] if isinstance(limits, str) else limits
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(path, f"must be an integer, got {v!r}")
        if not lo <= v <= hi:
            raise self.fail(path, f"must be in [{lo}, {hi}], got {v}")
        return v

    def number(self, v: Any, path: str, lo: float, hi: float) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(path, f"must be a finite number, got {v!r}")
        if not lo < v <= hi:
            raise self.fail(path, f"must be in ({lo}, {hi}], got {v}")
        return float(v)

    def keys(self, obj: Any, allowed: tuple[str, ...] | list[str], path: str) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise self.fail(path, f"must be a JSON object, got {type(obj).__name__}")
        bad = [k for k in obj if k not in allowed]
        if bad:
            raise self.fail(path, f"unknown field {bad[0]!r}; known: {', '.join(allowed)}")
        return obj

    def value(self, kind: str, v: Any, path: str) -> Any:
        """One value of a field of ``kind``."""
        if kind == "channels":
            return self.integer(v, path, "channels")
        if kind == "kernel":
            k = self.integer(v, path, "kernel")
            if k % 2 == 0:
                raise self.fail(path, f"must be odd (blocks use 'same' padding), got {k}")
            return k
        if kind == "expand":
            return self.number(v, path, *LIMITS["expand"])
        if kind == "flag":
            if not isinstance(v, bool):
                raise self.fail(path, f"must be true or false, got {v!r}")
            return v
        if kind == "depth":
            return self.integer(v, path, "depth")
        if kind == "resolution":
            return self.integer(v, path, "resolution")
        raise AssertionError(kind)  # pragma: no cover

    def choice(self, obj: dict[str, Any], kind: str, path: str, in_stage: bool) -> Choice:
        self.keys(obj, _CHOICE, path)
        fam = obj.get("gene")
        if not isinstance(fam, str) or not _FAMILY.match(fam):
            raise self.fail(f"{path}.gene", f"must be a gene family name (letters, digits, _), "
                                            f"got {fam!r}")
        if ("values" in obj) == ("range" in obj):
            raise self.fail(path, "needs exactly one of 'values' and 'range'")
        if "range" in obj:
            r = obj["range"]
            if not (isinstance(r, list) and len(r) == 3):
                raise self.fail(f"{path}.range", f"must be [min, max, step], got {r!r}")
            lo, hi, step = (self.integer(x, f"{path}.range[{i}]", (-2**31, 2**31))
                            for i, x in enumerate(r))
            if step <= 0 or lo > hi:
                raise self.fail(f"{path}.range", f"needs min <= max and step > 0, got {r}")
            raw: list[Any] = list(range(lo, hi + 1, step))
        else:
            raw = obj["values"]
            if not isinstance(raw, list) or not raw:
                raise self.fail(f"{path}.values", "must be a non-empty list")
        vals = tuple(self.value(kind, v, f"{path}.values[{i}]") for i, v in enumerate(raw))
        text = obj.get("text", list(raw))
        if not isinstance(text, list) or len(text) != len(vals):
            raise self.fail(f"{path}.text", f"must be a list of {len(vals)} values")
        for i, t in enumerate(text):
            if not (t is None or isinstance(t, (str, int, float, bool))):
                raise self.fail(f"{path}.text[{i}]", "must be a string, number or boolean")
        if len({json.dumps(t) for t in text}) != len(text):
            raise self.fail(f"{path}.text", "has repeated values")
        per = obj.get("per", "block")
        if per not in ("block", "stage"):
            raise self.fail(f"{path}.per", f"must be 'block' or 'stage', got {per!r}")
        if "per" in obj and not in_stage:
            raise self.fail(f"{path}.per", "only applies to a field of a stage's block")
        return Choice(fam, vals, tuple(text), kind, per, path)

    # ------------------------------------------------------------------ layers
    def layer(self, obj: Any, path: str, *, in_stage: bool, width: float | None,
              allow_name: bool = False) -> Layer:
        if not isinstance(obj, dict):
            raise self.fail(path, f"must be a JSON object, got {type(obj).__name__}")
        t = obj.get("type")
        if t not in BLOCKS:
            raise self.fail(f"{path}.type", f"unknown type {t!r}; known: {', '.join(BLOCKS)}")
        if in_stage and t not in STAGE_BLOCKS:
            raise self.fail(f"{path}.type", f"{t!r} cannot be a stage's block; blocks: "
                                            f"{', '.join(STAGE_BLOCKS)}")
        allowed = ["type", *BLOCKS[t]] + (["name"] if allow_name else [])
        if in_stage:
            allowed = [k for k in allowed if k not in ("out", "stride")]
        self.keys(obj, allowed, path)
        fields: dict[str, Any] = {}
        for k, default in BLOCKS[t].items():
            if in_stage and k in ("out", "stride"):
                continue
            fp = f"{path}.{k}"
            if k not in obj:
                if default is REQUIRED:
                    raise self.fail(fp, f"required by {t!r}")
                fields[k] = default
                continue
            v = obj[k]
            if k in CHOOSABLE and isinstance(v, dict):
                if allow_name:
                    raise self.fail(fp, "a block option cannot hold choices")
                if t == "linear":
                    raise self.fail(fp, "the classifier width cannot be a choice")
                c = self.choice(v, CHOOSABLE[k], fp, in_stage)
                fields[k] = _scale(c, width) if k == "out" else c
            else:
                fields[k] = self.field(t, k, v, fp, width)
        if t in ("maxpool", "avgpool"):
            if fields["stride"] is None:
                fields["stride"] = fields["kernel"]
            if fields["padding"] >= fields["kernel"]:
                raise self.fail(f"{path}.padding", "must be smaller than the kernel")
        if t == "conv" and fields["residual"]:
            if fields.get("out") is not None or fields.get("stride", 1) != 1:
                raise self.fail(f"{path}.residual", "needs stride 1 and no 'out' (channels kept)")
        name = obj.get("name")
        if allow_name and (not isinstance(name, str) or not name):
            raise self.fail(f"{path}.name", "a block option needs a name (its text form)")
        return Layer(t, fields, path, name)

    def field(self, t: str, k: str, v: Any, path: str, width: float | None) -> Any:
        if k == "out":
            if v is None and t != "linear":
                return None
            c = self.integer(v, path, "channels")
            return _scaled(c, width) if t != "linear" else c
        if k in ("kernel", "expand", "se"):
            if t in ("maxpool", "avgpool"):
                return self.integer(v, path, "pool")
            return self.value(CHOOSABLE[k], v, path)
        if k == "stride":
            return None if v is None else self.integer(v, path, "stride")
        if k == "groups":
            if v == "depthwise" and t == "conv":
                return v
            return self.integer(v, path, "channels")
        if k in ("act", "se_act", "se_gate"):
            if v is not None and v not in ACTIVATIONS:
                raise self.fail(path, f"unknown activation {v!r}; known: "
                                      f"{', '.join(ACTIVATIONS)} or null")
            return v
        if k in ("bn", "bias", "residual", "ceil_mode"):
            if not isinstance(v, bool):
                raise self.fail(path, f"must be true or false, got {v!r}")
            return v
        if k == "se_base":
            if v not in ("mid", "in"):
                raise self.fail(path, f"must be 'mid' or 'in', got {v!r}")
            return v
        if k in ("se_divisor", "se_round", "mid_round"):
            return self.integer(v, path, "round")
        if k == "shortcut":
            if v not in ("avgpool_conv", "conv"):
                raise self.fail(path, f"must be 'avgpool_conv' or 'conv', got {v!r}")
            return v
        if k == "padding":
            return self.integer(v, path, (0, 15))
        if k == "p":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise self.fail(path, f"must be a probability in [0, 1), got {v!r}")
            return float(v)
        raise AssertionError(k)  # pragma: no cover

    def stage(self, obj: Any, path: str, name: str | None, default_block: Any,
              width: float | None) -> Stage:
        self.keys(obj, _STAGE, path)
        if "type" in obj and obj["type"] != "stage":
            raise self.fail(f"{path}.type", "must be 'stage'")
        name = obj.get("name", name)
        if not isinstance(name, str) or not _NAME.match(name):
            raise self.fail(f"{path}.name", f"a stage outside 'stages' needs a name (lowercase "
                                            f"letters, digits, '.', '_', '-'), got {name!r}")
        out = obj.get("out")
        if isinstance(out, dict):
            out = _scale(self.choice(out, "channels", f"{path}.out", False), width)
        elif out is not None:
            out = _scaled(self.integer(out, f"{path}.out", "channels"), width)
        stride = self.integer(obj.get("stride", 1), f"{path}.stride", "stride")
        depth: int | Choice
        d = obj.get("depth", 1)
        if isinstance(d, dict):
            depth = self.choice(d, "depth", f"{path}.depth", False)
        else:
            depth = self.integer(d, f"{path}.depth", (1, LIMITS["depth"][1]))
        depths = depth.values if isinstance(depth, Choice) else (depth,)
        if max(depths) < 1:
            raise self.fail(f"{path}.depth", "needs at least one block")
        if min(depths) < 1 and stride != 1:
            raise self.fail(f"{path}.depth", "a stage with stride != 1 needs at least one block "
                                             "(its stride would depend on the depth)")
        slot = obj.get("slot", "block{j}")
        if not isinstance(slot, str) or not slot:
            raise self.fail(f"{path}.slot", f"must be a slot name template, got {slot!r}")
        if max(depths) > 1 and "{j}" not in slot:
            raise self.fail(f"{path}.slot", "needs '{j}' when the stage has several blocks")
        raw = _merged(default_block, obj.get("block"))
        if raw is None:
            raise self.fail(f"{path}.block", "required (or a top-level 'block' default)")
        bp = f"{path}.block"
        own = obj.get("block")
        if isinstance(raw, dict) and raw is not own:
            mine = own if isinstance(own, dict) and "options" not in raw else {}
            self.inherited |= {f"{bp}.{k}" for k in raw if k not in mine}
            if own is None or "options" in raw:
                self.inherited.add(bp)
        block: Layer | Options
        if isinstance(raw, dict) and "options" in raw:
            self.keys(raw, ("gene", "options", "per"), bp)
            opts = raw["options"]
            if not isinstance(opts, list) or not opts:
                raise self.fail(f"{bp}.options", "must be a non-empty list of blocks")
            blocks = [self.layer(o, f"{bp}.options[{i}]", in_stage=True, width=width,
                                 allow_name=True) for i, o in enumerate(opts)]
            names = [b.name for b in blocks]
            if len(set(names)) != len(names):
                raise self.fail(f"{bp}.options", "option names must differ")
            fam, per = raw.get("gene"), raw.get("per", "block")
            if not isinstance(fam, str) or not _FAMILY.match(fam):
                raise self.fail(f"{bp}.gene", f"must be a gene family name, got {fam!r}")
            if per not in ("block", "stage"):
                raise self.fail(f"{bp}.per", f"must be 'block' or 'stage', got {per!r}")
            block = Options(Choice(fam, tuple(range(len(blocks))), tuple(names), "option", per,
                                   bp), blocks)
        else:
            block = self.layer(raw, bp, in_stage=True, width=width)
        return Stage(name, out, stride, depth, block, slot, path)


def _merged(default: Any, own: Any) -> Any:
    """A stage's block: its own fields over the top-level ``block`` default."""
    if own is None:
        return copy.deepcopy(default)
    if isinstance(default, dict) and isinstance(own, dict) and "options" not in own \
            and "options" not in default and own.get("type", default.get("type")) == \
            default.get("type"):
        return {**default, **own}
    return own


def _scaled(c: int, width: float | None) -> int:
    return c if width is None else make_divisible(c * width, 8)


def _scale(c: Choice, width: float | None) -> Choice:
    if width is None:
        return c
    return Choice(c.family, tuple(_scaled(v, width) for v in c.values), c.text, c.kind, c.per,
                  c.path)


# ---------------------------------------------------------------------- parameters


def _substitute(obj: Any, values: dict[str, Any], path: str, chk: _Checker) -> Any:
    if isinstance(obj, dict):
        if "param" in obj:
            name = obj["param"]
            extra = set(obj) - {"param", "index"}
            if extra or not isinstance(name, str):
                raise chk.fail(path, "a parameter reference is {\"param\": NAME} with an "
                                     "optional \"index\"")
            if name not in values:
                raise chk.fail(path, f"unknown parameter {name!r}; declared: "
                                     f"{', '.join(values) or 'none'}")
            v = values[name]
            if "index" in obj:
                i = obj["index"]
                if not isinstance(v, list) or isinstance(i, bool) or not isinstance(i, int) \
                        or not 0 <= i < len(v):
                    raise chk.fail(path, f"index {i!r} does not select an item of parameter "
                                         f"{name!r} = {v!r}")
                v = v[i]
            chk.from_param[path] = name
            return copy.deepcopy(v)
        return {k: _substitute(v, values, f"{path}.{k}" if path else k, chk)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, values, f"{path}[{i}]", chk) for i, v in enumerate(obj)]
    return obj


def _param_values(spec: dict[str, Any], given: dict[str, Any],
                  chk: _Checker) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public parameter values, every value a reference may use)."""
    declared = spec.get("params", {})
    if not isinstance(declared, dict):
        raise chk.fail("params", "must be a JSON object of parameter defaults")
    presets = spec.get("presets", {})
    if not isinstance(presets, dict):
        raise chk.fail("presets", "must be a JSON object")
    unknown = [k for k in given if k not in declared]
    if unknown:
        raise InputError(f"{chk.label}: unknown parameter {unknown[0]!r}; known: "
                         f"{', '.join(declared) or 'none'}")
    public = {k: copy.deepcopy(given.get(k, v)) for k, v in declared.items()}
    values = dict(public)
    for p, table in presets.items():
        if p not in declared or not isinstance(table, dict):
            raise chk.fail(f"presets.{p}", "must map values of a declared parameter to objects")
        choice = public[p]
        if not isinstance(choice, str) or choice not in table:
            raise InputError(f"{chk.label}: parameter {p} must be one of {', '.join(table)}, "
                             f"got {choice!r}")
        preset = table[choice]
        if not isinstance(preset, dict):
            raise chk.fail(f"presets.{p}.{choice}", "must be a JSON object")
        for k, v in preset.items():
            if k in declared:
                if public[k] is None:
                    public[k] = values[k] = copy.deepcopy(v)
            else:
                values[k] = copy.deepcopy(v)
    return public, values


# ---------------------------------------------------------------------- resolve


def resolve(spec: dict[str, Any], params: dict[str, Any] | None = None) -> Resolved:
    """Check ``spec`` and substitute ``params`` (over its defaults) into it."""
    if not isinstance(spec, dict):
        raise SpecError(f"a space spec must be a JSON object, got {type(spec).__name__}")
    chk = _Checker(spec)
    chk.keys(spec, _TOP, "spec")
    if spec.get("format") != FORMAT:
        raise chk.fail("format", f"must be {FORMAT!r}, got {spec.get('format')!r}")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise chk.fail("name", "must be lowercase letters, digits, '.', '_' or '-', "
                               f"got {name!r}")
    public, values = _param_values(spec, dict(params or {}), chk)
    body = {k: v for k, v in spec.items() if k not in ("params", "presets")}
    s = _substitute(body, values, "", chk)
    for k in ("description", "source"):
        if not isinstance(s.get(k, ""), str):
            raise chk.fail(k, "must be a string")
    width = None
    if "width_mult" in s:
        width = chk.number(s["width_mult"], "width_mult", 0, 16)
    inp = chk.keys(s.get("input", {}), ("channels", "resolution"), "input")
    channels = chk.integer(inp.get("channels", 3), "input.channels", "channels")
    if "resolution" not in inp:
        raise chk.fail("input.resolution", "required (an integer or a choice)")
    res = inp["resolution"]
    resolution = chk.choice(res, "resolution", "input.resolution", False) \
        if isinstance(res, dict) else chk.value("resolution", res, "input.resolution")
    items: list[Layer | Stage] = []
    default_block = s.get("block")
    stage_names: set[str] = set()
    for section in ("stem", "stages", "head"):
        seq = s.get(section, [])
        if not isinstance(seq, list):
            raise chk.fail(section, "must be a list")
        for i, obj in enumerate(seq):
            path = f"{section}[{i}]"
            is_stage = section == "stages" or (isinstance(obj, dict)
                                               and obj.get("type") == "stage")
            if is_stage:
                if section == "head":
                    raise chk.fail(path, "the head cannot hold a stage")
                st = chk.stage(obj, path, f"stage{i}" if section == "stages" else None,
                               default_block, width)
                if st.name in stage_names:
                    raise chk.fail(f"{path}.name", f"stage name {st.name!r} repeats")
                stage_names.add(st.name)
                items.append(st)
            else:
                items.append(chk.layer(obj, path, in_stage=False, width=width))
    if not any(isinstance(it, Stage) for it in items):
        raise chk.fail("stages", "a space needs at least one stage")
    text = s.get("text", {"form": "keys"})
    text = chk.keys(text, ("form", "scalar", "family", "sort"), "text")
    if text.get("form") not in ("object", "list", "keys"):
        raise chk.fail("text.form", f"must be 'object', 'list' or 'keys', got "
                                    f"{text.get('form')!r}")
    genome = s.get("genome")
    if genome is not None and (not isinstance(genome, list)
                               or not all(isinstance(f, str) for f in genome)):
        raise chk.fail("genome", "must be a list of gene family names")
    gene_name = s.get("gene_name", "{family}{index}")
    if not isinstance(gene_name, str) or "{family}" not in gene_name:
        raise chk.fail("gene_name", "must be a template with '{family}' (and '{index}')")
    return Resolved(name, str(s.get("description", "")), public, channels, resolution, items,
                    text, genome, gene_name, spec)
