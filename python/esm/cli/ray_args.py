"""Command-line options of the Ray backend, shared by ``esm collect`` and ``esm predict``."""

from __future__ import annotations

from typing import Any


def add_ray_args(p: Any, what: str) -> None:
    """``--backend``, ``--address`` and ``--workers`` (shared by collect and predict)."""
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help=f"where to {what}: this machine (default) or a Ray cluster "
                   "(pip install 'esm-nas[ray]')")
    p.add_argument("--address", default=None,
                   help="Ray backend: cluster address ('auto', 'host:6379', 'ray://host:10001'); "
                   "default: start a local Ray instance")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray backend: number of workers (default: as many as the cluster's "
                   "resources hold: one per GPU, or CPUs / threads)")
