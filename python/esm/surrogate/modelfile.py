"""The surrogate model file: one zip container of JSON metadata and ``.npy`` arrays.

Layout (schema version 1)::

    esm-surrogate.json   {"format": "esm-surrogate", "schema_version": 1,
                          "sha256": <hex>, "members": [every other member, sorted]}
    meta.json            everything else that describes the model (JSON)
    arrays/<name>.npy    NumPy arrays, read with ``allow_pickle=False``

The checksum is the SHA-256 of, for every member listed in ``members`` in order, its name,
a NUL byte, its length as 8 little-endian bytes and its bytes. Loading refuses, with an
:class:`~esm.errors.InputError`: a file that is not a zip (truncated or foreign), a missing or
foreign header, a newer schema version, a member list that does not match, a checksum
mismatch, and arrays that cannot be read without pickle. Only NumPy and the standard library
are used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from esm.errors import InputError

FORMAT = "esm-surrogate"
SCHEMA_VERSION = 1
HEADER = "esm-surrogate.json"
META = "meta.json"
_MAX_MEMBER = 4 << 30


def _digest(members: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(members):
        data = members[name]
        h.update(name.encode("utf-8") + b"\0" + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _npy_bytes(arr: np.ndarray) -> bytes:
    a = np.asarray(arr)
    if a.dtype.hasobject:
        raise InputError("model arrays must not hold Python objects")
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def write(path: str | os.PathLike[str], meta: dict[str, Any],
          arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta`` (JSON-able) and ``arrays`` to ``path`` atomically."""
    for name in arrays:
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise InputError(f"bad array name {name!r}")
    members = {META: json.dumps(meta, sort_keys=True, allow_nan=True).encode("utf-8")}
    members.update({f"arrays/{k}.npy": _npy_bytes(v) for k, v in arrays.items()})
    header = {"format": FORMAT, "schema_version": SCHEMA_VERSION,
              "sha256": _digest(members), "members": sorted(members)}
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".esm-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(HEADER, json.dumps(header, sort_keys=True))
            for name in sorted(members):
                zf.writestr(name, members[name])
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray],
                                                 dict[str, Any]]:
    """Read and verify a model file: ``(meta, arrays, header)``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    where = str(path)
    try:
        zf = zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(f"{where}: not an esm model file (truncated or foreign: {err})") from None
    with zf:
        try:
            names = set(zf.namelist())
            if HEADER not in names:
                raise InputError(f"{where}: not an esm model file (no {HEADER})")
            header = json.loads(zf.read(HEADER))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise InputError(f"{where}: not an esm model file (foreign header)")
            version = header.get("schema_version")
            if not isinstance(version, int) or version < 1:
                raise InputError(f"{where}: bad schema version {version!r}")
            if version > SCHEMA_VERSION:
                raise InputError(
                    f"{where}: written with a newer model schema (version {version}; this esm "
                    f"reads up to {SCHEMA_VERSION}); upgrade esm to load it"
                )
            listed = header.get("members")
            if not isinstance(listed, list) or set(listed) != names - {HEADER}:
                raise InputError(f"{where}: model file members do not match its header")
            members: dict[str, bytes] = {}
            for name in listed:
                info = zf.getinfo(name)
                if info.file_size > _MAX_MEMBER:
                    raise InputError(f"{where}: member {name} is too large")
                members[name] = zf.read(name)
        except InputError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError, RuntimeError,
                zlib.error) as err:
            raise InputError(f"{where}: corrupt model file ({type(err).__name__}: {err})") \
                from None
    if _digest(members) != header.get("sha256"):
        raise InputError(f"{where}: checksum mismatch: the model file was modified or damaged")
    if META not in members:
        raise InputError(f"{where}: model file lacks {META}")
    try:
        meta = json.loads(members[META])
    except ValueError as err:
        raise InputError(f"{where}: bad {META}: {err}") from None
    arrays: dict[str, np.ndarray] = {}
    for name, data in members.items():
        if not name.startswith("arrays/"):
            continue
        if not name.endswith(".npy"):
            raise InputError(f"{where}: unexpected member {name}")
        try:
            arrays[name[len("arrays/"):-4]] = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as err:
            raise InputError(f"{where}: array {name} cannot be read safely: {err}") from None
    return meta, arrays, header

