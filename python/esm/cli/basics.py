"""``esm info`` and ``esm spaces``."""

from __future__ import annotations

import argparse
from typing import Any

from esm.cli.output import add_json_flag, emit_json


def register(sub: Any) -> None:
    p = sub.add_parser("info", help="what was built and which devices are usable")
    add_json_flag(p)
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("spaces", help="list the search spaces, or show one's spec",
                       description="List the built-in search spaces. With --show, print the "
                       "spec of a spec-defined space (a built-in name or a spec file), to copy "
                       "and edit into a new space (docs/spaces.md).")
    p.add_argument("--show", default=None, metavar="NAME|PATH",
                   help="print this space's spec (JSON) after checking that it compiles")
    add_json_flag(p)
    p.set_defaults(func=cmd_spaces)


def cmd_info(args: argparse.Namespace) -> int:
    from esm.info import info

    data = info()
    if args.json:
        emit_json(data)
        return 0
    print(f"esm {data['version']}  (core: {data['core']})")
    print(f"python {data['python']}; CPU: {data['cpu']['model']} ({data['cpu']['cores']} cores)")
    if data["cuda_built"]:
        print(f"CUDA module: built (runtime {data['cuda_runtime']}, driver {data['cuda_driver']})")
    else:
        print("CUDA module: not built")
    if data["cuda_devices"]:
        for d in data["cuda_devices"]:
            gib = d["total_memory"] / 2**30
            print(f"  cuda:{d['index']}  {d['name']}  sm_{d['compute_capability']}  {gib:.1f} GiB")
    else:
        print(f"CUDA devices: none ({data['cuda_reason']})")
    print("spaces: " + ", ".join(data["spaces"]))
    opt = data["optional"]
    print("optional: " + ", ".join(f"{k}{'' if v else ' (missing)'}" for k, v in opt.items()))
    return 0


def cmd_spaces(args: argparse.Namespace) -> int:
    import json

    from esm import spaces

    if args.show is not None:
        spec = spaces.spec(args.show)
        spaces.from_spec(spec)  # a spec that does not compile is refused (exit 2)
        if args.json:
            emit_json(spec)
        else:
            print(json.dumps(spec, indent=2))
        return 0
    rows: list[dict[str, Any]] = []
    for name in spaces.names():
        s = spaces.get(name)
        rows.append({"name": name, "genes": s.genome_length, "slots": len(s.slot_names),
                     "size": s.size, "description": s.description, "params": s.params()})
    if args.json:
        emit_json(rows)
        return 0
    for r in rows:
        size = float(r["size"])
        print(f"{r['name']:<14} genes={r['genes']:<3} size={size:<9.3g} {r['description']}")
    return 0
