"""Search spaces: ``esm.spaces.get(name)`` returns one; ``names()`` lists the built-in ones.

Every built-in space except ``nb201`` is a spec file shipped in ``esm/spaces/specs``; a user's
spec file works wherever a name does (``get("my.json")``, ``load(path)``, ``--space PATH``),
and so does a spec dict (``from_spec(d)``). See ``docs/spaces.md`` for the format.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
from pathlib import Path
from typing import Any

from esm.errors import InputError
from esm.spaces.base import COST_FIELDS, Costs, SearchSpace
from esm.spaces.spec import SpecError, load_spec

_SPECS = Path(__file__).parent / "specs"
#: Hand-written spaces: name -> "module:Class" (imported on first use).
_CLASSES: dict[str, str] = {"nb201": "esm.spaces.nb201:Nb201"}
_ORDER = ("ofa-mbv3", "ofa-resnet50", "nb201", "fbnet", "anb-mnasnet")


def _spec_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(_SPECS.glob("*.json"))}


def names() -> list[str]:
    """Names of the built-in search spaces."""
    known = set(_spec_files()) | set(_CLASSES)
    return [n for n in _ORDER if n in known] + sorted(known - set(_ORDER))


@functools.cache
def _builtin(name: str) -> str | None:
    path = _spec_files().get(name)
    return None if path is None else json.dumps(load_spec(path))


def builtin_spec(name: str) -> dict[str, Any] | None:
    """The packaged spec of built-in space ``name`` (a copy), or None."""
    text = _builtin(name)
    return None if text is None else json.loads(text)


def from_spec(spec: dict[str, Any], **params: Any) -> SearchSpace:
    """The space defined by ``spec`` (a dict in the ``esm-space/1`` format) and ``params``."""
    from esm.spaces.specspace import SpecSpace

    return SpecSpace(copy.deepcopy(spec), **params)


def load(path: str | Path, **params: Any) -> SearchSpace:
    """The space defined by the spec file at ``path``."""
    return from_spec(load_spec(path), **params)


def _is_path(name: str) -> bool:
    return name.endswith(".json") or "/" in name or "\\" in name or Path(name).is_file()


def spec(name: str) -> dict[str, Any]:
    """The spec of a built-in space or of a spec file (raises for hand-written spaces)."""
    found = builtin_spec(name)
    if found is not None:
        return found
    if name in _CLASSES:
        raise InputError(f"{name} is a hand-written space, not defined by a spec")
    if _is_path(name):
        return load_spec(name)
    raise InputError(f"unknown search space {name!r}; known: {', '.join(names())}")


def get(name: str, **params: Any) -> SearchSpace:
    """The search space ``name`` (a built-in name or a spec file) built with ``params``.

    ``params`` are the space's parameters (e.g. ``width_mult=1.0``); ``spec=`` gives the spec
    itself (as :meth:`SearchSpace.params` records it for spaces that are not built in).
    """
    if not isinstance(name, str):
        raise InputError(f"a space name must be a string, got {type(name).__name__}")
    if "spec" in params:
        sp = params.pop("spec")
        if not isinstance(sp, dict) or sp.get("name") != name:
            raise InputError(f"the spec given for space {name!r} is not that space's spec")
        return from_spec(sp, **params)
    if name in _CLASSES:
        module, cls = _CLASSES[name].split(":")
        try:
            space: SearchSpace = getattr(importlib.import_module(module), cls)(**params)
            return space
        except TypeError as err:
            raise InputError(f"{name}: bad parameters {params}: {err}") from None
    found = builtin_spec(name)
    if found is not None:
        return from_spec(found, **params)
    if _is_path(name):
        return load(name, **params)
    raise InputError(f"unknown search space {name!r}; known: {', '.join(names())} "
                     "(or a spec file)")


__all__ = ["COST_FIELDS", "Costs", "SearchSpace", "SpecError", "builtin_spec", "from_spec",
           "get", "load", "names", "spec"]
