"""The type stubs python/esm/_core.pyi and _cuda.pyi list exactly what the compiled modules
export: the same public names, the same class members, and for every function and method the
same parameter names with defaults in the same places (read from pybind11's signatures)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest

import esm

STUBS = Path(esm.__file__).parent


def _split_params(sig: str) -> list[tuple[str, bool]]:
    """(name, has default) of a pybind11 signature line ``name(a: T, b: U = 1) -> R``."""
    inner = sig[sig.index("(") + 1 : sig.rindex(") ->")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    out = []
    for p in parts:
        name = p.split(":")[0].strip()
        if name != "self":
            out.append((name, "=" in p.split(":", 1)[1] if ":" in p else False))
    return out


def _stub_params(fn: ast.FunctionDef) -> list[tuple[str, bool]]:
    args = [a.arg for a in fn.args.args if a.arg != "self"]
    n_defaults = len(fn.args.defaults)
    return [(a, i >= len(args) - n_defaults) for i, a in enumerate(args)]


def _runtime_params(obj: Any) -> list[tuple[str, bool]]:
    return _split_params((obj.__doc__ or "").strip().splitlines()[0])


def _public(names: Any) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def _check(module: Any, stub: Path) -> None:
    tree = ast.parse(stub.read_text())
    stub_top: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            stub_top[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stub_top[node.target.id] = node
    assert _public(stub_top) == _public(dir(module)), stub.name
    for name in _public(stub_top):
        node, obj = stub_top[name], getattr(module, name)
        if isinstance(node, ast.FunctionDef):
            assert _stub_params(node) == _runtime_params(obj), f"{stub.name}: {name}"
        elif isinstance(node, ast.ClassDef):
            members = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
            assert _public(members) == _public(vars(obj)), f"{stub.name}: class {name}"
            for m, fn in members.items():
                attr = getattr(obj, m)
                is_property = any(isinstance(d, ast.Name) and d.id == "property"
                                  for d in fn.decorator_list)
                assert is_property == isinstance(attr, property), f"{stub.name}: {name}.{m}"
                if is_property:
                    continue
                assert _stub_params(fn) == _runtime_params(attr), f"{stub.name}: {name}.{m}"
            if "__init__" not in members:  # then Python cannot construct it
                assert "Initialize self" in (obj.__init__.__doc__ or ""), f"{stub.name}: {name}"


def test_core_stub_matches_the_module() -> None:
    _check(importlib.import_module("esm._core"), STUBS / "_core.pyi")


def test_cuda_stub_matches_the_module() -> None:
    try:
        mod = importlib.import_module("esm._cuda")
    except ImportError:
        pytest.skip("esm was built without the CUDA module")
    _check(mod, STUBS / "_cuda.pyi")


def test_signature_parser() -> None:
    sig = ("f(space: str, genomes: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], "
           "threads: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple")
    assert _split_params(sig) == [("space", False), ("genomes", False), ("threads", True)]
