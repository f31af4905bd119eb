"""Text forms of spec-defined spaces: genomes to and from compact JSON.

A spec's ``text`` picks one of three forms (values are the choices' ``text`` values):

``{"form": "object", "scalar": ["r"]}``
    An object with one key per gene family, in genome order, holding the list of the family's
    values; families named in ``scalar`` (one gene each) hold the value itself. Once-for-All:
    ``{"ks":[...],"e":[...],"d":[...],"r":224}``.
``{"form": "list", "family": "block"}``
    A list of the values of the only family. FBNet: ``["k3_e1","skip",...]``.
``{"form": "keys", "sort": true}``
    An object with one key per gene name (sorted with ``sort``). Accel-NASBench:
    ``{"block0_e":6,"block0_k":3,...}``.

Parsing is strict: every key present and no other, and each value equal to one of its
gene's choices with a matching type (an integer choice refuses 2.0, a boolean refuses 1).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.spaces.compile import Compiled, Gene
from esm.spaces.spec import SpecError


def _same(v: Any, t: Any) -> bool:
    """Whether parsed value ``v`` is choice text ``t`` (bool, int, float and str kept apart;
    an integer matches a float choice)."""
    if isinstance(t, bool) or isinstance(v, bool):
        return isinstance(t, bool) and isinstance(v, bool) and v == t
    if isinstance(t, int):
        return isinstance(v, int) and v == t
    if isinstance(t, float):
        return isinstance(v, (int, float)) and v == t
    return type(v) is type(t) and v == t


class TextForm:
    """Converts genomes of one compiled space to and from its text form."""

    def __init__(self, c: Compiled) -> None:
        self.name = c.resolved.name
        self.genes = c.genes
        cfg = c.resolved.text
        self.form = cfg["form"]
        self.families: dict[str, list[int]] = {}
        for i, g in enumerate(c.genes):
            self.families.setdefault(g.family, []).append(i)
        self.scalar = set(cfg.get("scalar", []))
        self.sort = bool(cfg.get("sort", False))
        if self.form == "object":
            for f in self.scalar:
                if len(self.families.get(f, [])) != 1:
                    raise SpecError(f"{self.name}: text.scalar: {f!r} must be a family of "
                                    "exactly one gene")
        if self.form == "list":
            fam = cfg.get("family")
            if list(self.families) != [fam]:
                raise SpecError(f"{self.name}: text.family: the list form needs the space's "
                                f"only gene family, got {fam!r}")

    def _text(self, g: Gene, v: int) -> Any:
        return g.choice.text[v]

    def to_str(self, genome: np.ndarray) -> str:
        row = [int(v) for v in genome]
        if self.form == "list":
            obj: Any = [self._text(g, row[i]) for i, g in enumerate(self.genes)]
        elif self.form == "object":
            obj = {}
            for fam, idx in self.families.items():
                vals = [self._text(self.genes[i], row[i]) for i in idx]
                obj[fam] = vals[0] if fam in self.scalar else vals
        else:
            obj = {g.name: self._text(g, row[i]) for i, g in enumerate(self.genes)}
        return json.dumps(obj, separators=(",", ":"), sort_keys=self.sort)

    def _index(self, i: int, v: Any, where: str, text: str) -> int:
        g = self.genes[i]
        for k, t in enumerate(g.choice.text):
            if _same(v, t):
                return k
        raise InputError(f"{self.name}: {where} is {v!r}, must be one of "
                         f"{list(g.choice.text)} in {text!r}")

    def from_str(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise InputError(f"{self.name}: architecture must be a string, got "
                             f"{type(text).__name__}")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{self.name}: not a JSON architecture {text!r}: {err}") from None
        n = len(self.genes)
        out = np.zeros(n, np.int32)
        if self.form == "list":
            if not isinstance(obj, list) or len(obj) != n:
                raise InputError(f"{self.name}: need a JSON list of {n} values, got {text!r}")
            for i, v in enumerate(obj):
                out[i] = self._index(i, v, f"item {i}", text)
            return out
        if not isinstance(obj, dict):
            raise InputError(f"{self.name}: need a JSON object, got {text!r}")
        keys = list(self.families) if self.form == "object" else [g.name for g in self.genes]
        if set(obj) != set(keys):
            missing = [k for k in keys if k not in obj]
            extra = sorted(k for k in obj if k not in keys)
            what = f"missing {missing[0]!r}" if missing else f"unexpected key {extra[0]!r}"
            raise InputError(f"{self.name}: {what} in {text!r}")
        if self.form == "keys":
            for i, g in enumerate(self.genes):
                out[i] = self._index(i, obj[g.name], g.name, text)
            return out
        for fam, idx in self.families.items():
            vals = obj[fam]
            if fam in self.scalar:
                vals = [vals]
            elif not isinstance(vals, list) or len(vals) != len(idx):
                raise InputError(f"{self.name}: {fam!r} must be a list of {len(idx)} values "
                                 f"in {text!r}")
            for k, (i, v) in enumerate(zip(idx, vals, strict=True)):
                where = fam if fam in self.scalar else f"{fam}[{k}]"
                out[i] = self._index(i, v, where, text)
        return out
