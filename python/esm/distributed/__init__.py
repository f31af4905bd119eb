"""Running esm across a cluster with Ray (the optional extra ``esm-nas[ray]``).

One machine stays the default: :func:`esm.collect.collect` and :class:`esm.predictor.Predictor`
need nothing from here. This package only *distributes* the same work:

- :func:`collect` (:mod:`esm.distributed.ray_collect`): one long-lived Ray actor per device
  measures shards of the architecture list of :func:`esm.collect.architectures` with
  :func:`esm.collect.measure_architecture`; the driver alone writes the SQLite store, retries
  the shards of a worker that died, and never stores an architecture twice.
- :func:`predict` (:mod:`esm.distributed.ray_predict`): sharded prediction with the compiled
  predictor, over a genome array or a seeded random range whose shards every worker generates
  itself (:meth:`esm.spaces.base.SearchSpace.sample_shard`), equal to the local result.

Ray is imported lazily, when one of these functions runs; without it they raise
:class:`esm.errors.InputError` saying how to install it.
"""

from __future__ import annotations

from esm.distributed.ray_collect import collect
from esm.distributed.ray_predict import predict

__all__ = ["collect", "predict"]
