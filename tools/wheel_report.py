"""Describe a built esm wheel: tags, size, compiled modules and the GPU code they carry.

For each extension module: its size and the shared libraries it needs (ELF ``DT_NEEDED``);
for ``esm._cuda`` also the GPU architectures of its embedded CUDA fat binaries (``.nv_fatbin``
section): ``sm_XX`` machine code (SASS) and ``compute_XX`` PTX that the driver can compile for
newer GPUs. Reads the wheel with the standard library only.

Usage: python tools/wheel_report.py WHEEL [--json]
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any

FATBIN_MAGIC = 0xBA55ED50
FATBIN_KINDS = {1: "ptx", 2: "sass"}


def elf_sections(data: bytes) -> dict[str, bytes]:
    """Sections of a 64-bit little-endian ELF file by name."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    entsize, count, names_at = struct.unpack_from("<HHH", data, 0x3A)
    heads = [struct.unpack_from("<IIQQQQ", data, shoff + i * entsize) for i in range(count)]
    names = data[heads[names_at][4]: heads[names_at][4] + heads[names_at][5]]
    out = {}
    for name_off, kind, _flags, _addr, offset, size in heads:
        name = names[name_off: names.index(b"\0", name_off)].decode()
        out[name] = b"" if kind == 8 else data[offset: offset + size]  # 8: SHT_NOBITS
    return out


def needed_libraries(sections: dict[str, bytes]) -> list[str]:
    """``DT_NEEDED`` entries of the dynamic section."""
    dyn, strings = sections.get(".dynamic", b""), sections.get(".dynstr", b"")
    out = []
    for i in range(0, len(dyn) - 15, 16):
        tag, val = struct.unpack_from("<qQ", dyn, i)
        if tag == 0:
            break
        if tag == 1:  # DT_NEEDED
            out.append(strings[val: strings.index(b"\0", val)].decode())
    return out


def fatbin_architectures(blob: bytes) -> dict[str, list[int]]:
    """``{"sass": [...], "ptx": [...]}``: SM versions in a ``.nv_fatbin`` section.

    The section holds one fat binary per CUDA translation unit: a 16-byte header (magic,
    version, header size, payload size), then entries of (kind, version, header size, padded
    payload size, ..., SM version at byte 28).
    """
    found: dict[str, set[int]] = {"sass": set(), "ptx": set()}
    off = 0
    while off + 16 <= len(blob):
        magic, _version, head, size = struct.unpack_from("<IHHQ", blob, off)
        if magic != FATBIN_MAGIC:
            off += 8  # fat binaries are 8-byte aligned
            continue
        pos, end = off + head, off + head + size
        while pos + 32 <= end:
            kind, _v, entry_head, padded = struct.unpack_from("<HHII", blob, pos)
            sm = struct.unpack_from("<I", blob, pos + 28)[0]
            if kind in FATBIN_KINDS:
                found[FATBIN_KINDS[kind]].add(sm)
            pos += entry_head + padded
        off = end
    return {k: sorted(v) for k, v in found.items()}


def describe(wheel: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/WHEEL"))
        tags = [line.split(":", 1)[1].strip() for line in zf.read(meta).decode().splitlines()
                if line.startswith("Tag:")]
        modules = {}
        for info in zf.infolist():
            if not info.filename.endswith(".so"):
                continue
            sections = elf_sections(zf.read(info))
            mod: dict[str, Any] = {"bytes": info.file_size, "needs": needed_libraries(sections)}
            if ".nv_fatbin" in sections:
                mod["fatbin_bytes"] = len(sections[".nv_fatbin"])
                mod["gpu"] = fatbin_architectures(sections[".nv_fatbin"])
            modules[info.filename] = mod
    return {"wheel": wheel.name, "bytes": wheel.stat().st_size, "tags": tags,
            "modules": modules}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    d = describe(args.wheel)
    if args.json:
        print(json.dumps(d, indent=1))
        return 0
    print(f"  {d['wheel']}: {d['bytes'] / 1024:.0f} KiB, tags {', '.join(d['tags'])}")
    for name, m in d["modules"].items():
        print(f"    {name}: {m['bytes'] / 1024:.0f} KiB, needs {', '.join(m['needs'])}")
        if "gpu" in m:
            g = m["gpu"]
            print(f"      GPU code ({m['fatbin_bytes'] / 1024:.0f} KiB): SASS "
                  f"{', '.join(f'sm_{a}' for a in g['sass'])}; PTX "
                  f"{', '.join(f'compute_{a}' for a in g['ptx'])}")
    if not any(n.rsplit("/", 1)[-1].startswith("_core") for n in d["modules"]):
        print("wheel_report: no esm._core in the wheel", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
