"""Time of the transfer model's fit as the measured networks grow: the hyperparameter
likelihood on the n x n kernel against the block factors' space
(:class:`esm.transfer.TransferFit`, ``weight_space``), in one run, on the same networks.

Per space (prior: every other column of ``../shared/data``; target: the first column), ``n``
random networks fitted with :meth:`esm.transfer.PriorModel.fit` both ways. Prints the seconds,
their ratio and the largest relative difference of the two fits' predictions on every row
(the same fit up to rounding).

Usage::

    python benchmarks/transfer_fit_time.py [--spaces nb201,fbnet,ofa-mbv3] [--n 100,200,500]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transfer as bench  # noqa: E402
from esm.prior import PriorData  # noqa: E402
from esm.transfer import PriorModel, TransferFit  # noqa: E402


def timed_fit(model: PriorModel, g: np.ndarray, y: np.ndarray, weight_space: bool
              ) -> tuple[float, TransferFit]:
    TransferFit.weight_space = weight_space
    try:
        t0 = time.perf_counter()
        fit = model.fit(g, y)
        return time.perf_counter() - t0, fit
    finally:
        TransferFit.weight_space = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spaces", default="nb201,fbnet,ofa-mbv3")
    ap.add_argument("--n", default="100,200,500")
    args = ap.parse_args()
    print("| space | networks | kernel s | factors s | ratio | max prediction difference |")
    print("|---|---|---|---|---|---|")
    for sname in args.spaces.split(","):
        space, g, cols, Y = bench.load(sname)
        prior = PriorData(space, g, Y[:, 1:], cols[1:], ["benchmark"] * (len(cols) - 1))
        model = PriorModel(prior)
        for n in map(int, args.n.split(",")):
            rows = np.random.default_rng(0).permutation(len(g))[:n]
            tk, fk = timed_fit(model, g[rows], Y[rows, 0], False)
            tw, fw = timed_fit(model, g[rows], Y[rows, 0], True)
            diff = float(np.max(np.abs(fw.predict(g) / fk.predict(g) - 1.0)))
            print(f"| {sname} | {n} | {tk:.2f} | {tw:.2f} | {tk / tw:.1f}x | {diff:.1e} |",
                  flush=True)


if __name__ == "__main__":
    main()
