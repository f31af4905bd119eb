"""Is a space's packaged prior any help on a device measured here? A real-device check.

The visible leave-one-out targets of ``benchmarks/transfer.py`` are all devices of the prior's
own kinds. This script takes a device's measurements (a dataset CSV, for example made on this
machine with ``esm collect`` and ``esm export``) and builds it, as ``esm build --from-csv`` does,
once with the space's packaged prior (:func:`esm.prior.packaged`) and once without a prior
(``--no-prior``), at each budget and seed, scoring both on every row the build did not measure.

Usage::

    esm collect --space anb-mnasnet --n 300 --seed 7 --store cpu.db --threads 1 \\
        --clock thread_cpu
    esm export --store cpu.db --out cpu.csv
    python benchmarks/prior_on_device.py --csv cpu.csv --space anb-mnasnet

``--add-prior FILE`` (repeatable) adds a third build: the packaged prior and the user's own
devices in FILE, as ``esm build --prior packaged --prior FILE`` does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import esm
from esm import prior
from esm.errors import InputError
from esm.sampling import Pool
from esm.transfer import PriorModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import ArrayOracle, default_build, transfer_build


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", type=Path, required=True,
                    help="the device's dataset CSV (.csv or .csv.gz)")
    ap.add_argument("--space", required=True)
    ap.add_argument("--target", help="latency column (default: the CSV's only one)")
    ap.add_argument("--budgets", default="10,20,50")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--add-prior", action="append", default=[], metavar="FILE",
                    help="also build with the packaged prior and FILE's devices")
    args = ap.parse_args(argv)
    space = esm.spaces.get(args.space)
    archs, cols, values = prior.read_table(args.csv)
    if args.target is None and len(cols) != 1:
        raise InputError(f"{args.csv} has columns {cols}: name one with --target")
    col = args.target or cols[0]
    y = values[:, cols.index(col)]
    ok = np.isfinite(y)
    g = space.canonical(space.from_strs([a for a, k in zip(archs, ok, strict=True) if k]))
    y = y[ok]
    path = prior.packaged(space.name)
    if path is None:
        raise InputError(f"{space.name} has no packaged prior")
    data = prior.load(space, [path])
    models = [PriorModel(data)]
    head = "| networks | with the packaged prior ρ / MAPE |"
    if args.add_prior:
        # FILE's columns are other devices whatever their names; never the target's values
        both = prior.load(space, [path, *args.add_prior])
        both.drop_duplicates_of(g, y)
        models.append(PriorModel(both))
        head += f" packaged + {', '.join(Path(f).name for f in args.add_prior)} ρ / MAPE |"
    t0 = time.time()
    print(f"{args.csv} {col}: {len(y)} networks, median {np.median(y):.3g} ms; packaged prior "
          f"{', '.join(data.columns)}; {args.seeds} seeds, scored on every row not measured\n")
    print(head + " without a prior ρ / MAPE |")
    print("|---" * (len(models) + 2) + "|")
    for n in (int(b) for b in args.budgets.split(",")):
        cells = []
        for model in models:
            tr = np.array([transfer_build(ArrayOracle(space, Pool(space, g), y, col), model, n,
                                          s)[:2] for s in range(args.seeds)])
            cells.append(f"{tr[:, 0].mean():.3f} / {tr[:, 1].mean():.2f}")
        de = np.array([default_build(space.name, col, n, s, csv=args.csv)
                       for s in range(args.seeds)])
        print(f"| {n} | " + " | ".join(cells) + f" | {np.nanmean(de[:, 0]):.3f} / "
              f"{np.nanmean(de[:, 1]):.2f} |", flush=True)
    print(f"\n({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
