"""Search spaces: ``esm.spaces.get(name)`` returns one; ``names()`` lists them."""

from __future__ import annotations

import importlib
from typing import Any

from esm.errors import InputError
from esm.spaces.base import COST_FIELDS, Costs, SearchSpace

# name -> "module:Class"; modules are imported on first use.
_REGISTRY: dict[str, str] = {
    "ofa-mbv3": "esm.spaces.ofa_mbv3:OfaMobileNetV3",
    "nb201": "esm.spaces.nb201:Nb201",
}


def names() -> list[str]:
    """Names of the available search spaces."""
    return list(_REGISTRY)


def space_class(name: str) -> type[SearchSpace]:
    """The class implementing space ``name``."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown search space {name!r}; known: {', '.join(_REGISTRY)}") from None
    module, cls = target.split(":")
    found: type[SearchSpace] = getattr(importlib.import_module(module), cls)
    return found


def get(name: str, **params: Any) -> SearchSpace:
    """Return the search space ``name`` built with ``params`` (e.g. ``width_mult=1.0``)."""
    cls = space_class(name)
    try:
        return cls(**params)
    except TypeError as err:
        raise InputError(f"{name}: bad parameters {params}: {err}") from None


__all__ = ["COST_FIELDS", "Costs", "SearchSpace", "get", "names", "space_class"]
