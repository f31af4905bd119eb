"""Measurement across a fleet of devices on Ray, written by one driver into one store.

Design
------
- **Same list, same step.** The architectures are :func:`esm.collect.architectures` of
  ``(space, n, seed)`` in the order of :func:`esm.collect.measurement_order` (the local
  backend's), and each worker measures with :func:`esm.collect.measure_architecture` (the local
  backend's step). So a Ray collection and a local one of the same ``(space, n, seed)`` cover
  the same set of architectures; only the device that measured each one differs.
- **One actor per device.** :class:`MeasureWorker` is a long-lived Ray actor that holds its
  device exclusively through Ray resources: ``num_gpus=1`` for ``device="cuda"`` (Ray sets
  ``CUDA_VISIBLE_DEVICES``, the actor measures on its ``cuda:0``), ``num_cpus=threads`` for CPU
  workers, or the custom resources given (e.g. ``{"jetson_orin": 1}`` for edge boards started
  with ``ray start --resources '{"jetson_orin": 1}'``).
- **Shards, streamed.** The list is cut into shards of ``shard_size`` architectures; every
  worker has at most two shards in flight (the next one already waits in its queue) and the
  driver collects finished shards with ``ray.wait`` as they come.
- **One writer.** Only the driver writes the SQLite store (committing each row at once), so
  there are no concurrent writers; workers return measurements as plain objects.
- **Nothing lost, nothing twice.** A worker or node that dies fails its in-flight shards; the
  driver puts the architectures of those shards that are not stored back at the front of the
  queue as single-architecture shards, for any live worker (actors are restarted by Ray up to
  ``max_restarts`` times and keep being used). An architecture whose worker died
  ``max_attempts`` times is stored as failed (a network that crashes its worker must not stop
  the run). The driver keeps the set of stored keys and the store's ``UNIQUE(run_id, key)``
  refuses a second row, so a retried shard never duplicates a row. An interrupted collection
  is resumed by running it again: stored architectures are skipped.
- **Provenance.** Every row's ``node`` column is a JSON object naming the host, Ray node id,
  device (and GPU ids) and worker slot that measured it; the run's provenance holds each
  worker's full :func:`esm.measure.provenance`.

The drift guard of the local backend (reference re-measurements) is not run here.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.distributed._ray import connected, import_ray, node_label
from esm.errors import InputError

if TYPE_CHECKING:
    from esm.measure import Settings
    from esm.spaces import SearchSpace
    from esm.store import Store

#: Shards in flight per worker (one being measured, one waiting in the actor's queue).
DEPTH = 2


class MeasureWorker:
    """One device, measuring lists of architectures (instantiated as a Ray actor).

    Parameters
    ----------
    space, space_params : str, dict
        The search space, rebuilt in the worker from its registry name.
    device : {"cpu", "cuda"}
        Kind of device; a CUDA worker measures on the GPU Ray assigned to it.
    batch_size : int
    settings : dict
        :meth:`esm.measure.Settings.to_dict` of the measurement settings.
    threads : int or None
        torch intra-op threads of the worker (None: torch's default).
    slot : int
        The worker's number in the driver (recorded in provenance).
    exit_after : int, optional
        Test hook: the process exits (as if killed) after this many measurements, in its
        first incarnation only (not after Ray restarted it).
    """

    def __init__(self, space: str, space_params: dict[str, Any], device: str, batch_size: int,
                 settings: dict[str, Any], threads: int | None, slot: int,
                 exit_after: int | None = None) -> None:
        import torch

        from esm import spaces
        from esm.measure import Settings, provenance

        ray = import_ray()
        self.space = spaces.get(space, **space_params)
        self.settings = Settings.from_dict(settings)
        self.batch_size = int(batch_size)
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.threads = int(torch.get_num_threads())
        label = node_label()
        if device == "cuda":
            if not torch.cuda.is_available():
                raise InputError(f"Ray worker on {label['host']}: no usable CUDA GPU")
            self.device = "cuda:0"  # Ray restricts CUDA_VISIBLE_DEVICES to this actor's GPU
            label["gpu_ids"] = [str(g) for g in ray.get_gpu_ids()]
            label["gpu"] = torch.cuda.get_device_name(0)
        else:
            self.device = "cpu"
        label.update(device=self.device, slot=int(slot))
        self.label = label
        self.provenance = provenance(self.device, self.threads)
        self.exit_after = None
        if exit_after is not None and not ray.get_runtime_context() \
                .was_current_actor_reconstructed:
            self.exit_after = exit_after
        self.count = 0

    def info(self) -> dict[str, Any]:
        """Where this worker runs (``label``), its threads and full provenance."""
        return {"label": self.label, "threads": self.threads, "provenance": self.provenance,
                "pid": os.getpid()}

    def measure(self, items: list[tuple[int, list[int]]]) -> list[dict[str, Any]]:
        """Measure ``(index, genome)`` items; one result per item, in order.

        A result is ``{"index", "measurement", "shape"}`` or ``{"index", "error"}`` (a
        network that fails to build or run, stored as failed like the local backend does).
        """
        from esm.collect import measure_architecture

        out: list[dict[str, Any]] = []
        for index, genome in items:
            g = np.asarray(genome, dtype=np.int32)
            try:
                m, shape = measure_architecture(self.space, g, self.device, self.batch_size,
                                                self.settings)
                out.append({"index": index, "measurement": m, "shape": list(shape)})
            except Exception as err:
                out.append({"index": index, "error": f"{type(err).__name__}: {err}"})
            self.count += 1
            if self.exit_after is not None and self.count >= self.exit_after:
                os._exit(1)  # test hook: die mid-shard, results of this shard unsent
        return out


def worker_options(device: str, threads: int | None, resources: dict[str, float] | None,
                   max_restarts: int) -> dict[str, Any]:
    """Ray actor options that give one worker one device exclusively."""
    opts: dict[str, Any] = {"num_cpus": threads or 1, "max_restarts": int(max_restarts),
                            "max_task_retries": 0}  # the driver re-assigns, not Ray
    if resources:
        opts["resources"] = dict(resources)
    elif device == "cuda":
        opts["num_gpus"] = 1
    return opts


def default_workers(cluster: dict[str, float], opts: dict[str, Any]) -> int:
    """How many workers of ``opts`` the cluster's total resources hold."""
    need: dict[str, float] = {"CPU": float(opts.get("num_cpus") or 0)}
    if opts.get("num_gpus"):
        need["GPU"] = float(opts["num_gpus"])
    need.update({k: float(v) for k, v in opts.get("resources", {}).items()})
    counts = [int(cluster.get(k, 0.0) // v) for k, v in need.items() if v > 0]
    return min(counts) if counts else 0


def _device_kind(device: str) -> str:
    from esm.measure.timer import parse_device

    kind, _ = parse_device(device)
    if kind == "cuda" and device.strip() not in ("cuda", "gpu"):
        raise InputError(f"with the Ray backend every worker gets its own GPU: pass device "
                         f"'cuda', not {device!r}")
    return kind


def collect(
    space: SearchSpace | str,
    device: str,
    n: int,
    store: Store | str,
    batch_size: int = 1,
    seed: int = 0,
    threads: int | None = None,
    settings: Settings | None = None,
    progress: bool = True,
    *,
    address: str | None = None,
    workers: int | None = None,
    resources: dict[str, float] | None = None,
    shard_size: int = 4,
    max_restarts: int = 2,
    max_attempts: int = 3,
    space_params: dict[str, Any] | None = None,
    start_timeout_s: float = 300.0,
    _exit_after: dict[int, int] | None = None,
) -> dict[str, Any]:
    """Measure ``n`` architectures of ``space`` on a Ray cluster into ``store`` (resumable).

    Parameters
    ----------
    space, n, store, batch_size, seed, settings, progress
        As in :func:`esm.collect.collect` (same architecture list and order).
    device : {"cpu", "cuda"}
        Device kind of every worker.
    threads : int, optional
        Threads (and Ray CPUs) per worker (default 1).
    address : str, optional
        Ray cluster to join (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``). Default: an
        already initialised Ray session, else a private local cluster on this machine.
    workers : int, optional
        Number of workers (default: as many as the cluster's resources hold).
    resources : dict, optional
        Custom Ray resources per worker, e.g. ``{"jetson_orin": 1}``; they replace the default
        ``num_gpus=1`` of CUDA workers, and name the run's device.
    shard_size : int
        Architectures per shard (the unit of work and of retry).
    max_restarts : int
        Times Ray restarts a worker that died; past that its shards go to the others.
    max_attempts : int
        Worker deaths an architecture may cause before it is stored as failed.
    space_params : dict, optional
        Parameters of a space given by name.
    start_timeout_s : float
        How long to wait for all workers to be placed and started.

    Returns
    -------
    dict
        ``run_id``, ``requested``, ``already``, ``measured``, ``failed``, ``retried`` (architectures
        put back after a worker died), ``worker_deaths``, ``remaining`` (0 unless every worker
        died), ``workers`` (their labels), ``elapsed_s``, ...
    """
    from esm import spaces
    from esm.measure import Settings
    from esm.store import Store

    t0 = time.monotonic()
    sp = spaces.get(space, **(space_params or {})) if isinstance(space, str) else space
    kind = _device_kind(device)
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}")
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be >= 1, got {threads}")
    if workers is not None and workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    if shard_size < 1 or max_restarts < 0 or max_attempts < 1:
        raise InputError("need shard_size >= 1, max_restarts >= 0, max_attempts >= 1")
    for k, v in (resources or {}).items():
        if not isinstance(k, str) or not isinstance(v, (int, float)) or v <= 0:
            raise InputError(f"resources must map names to positive amounts, got {k!r}: {v!r}")
    s = settings or Settings()
    st = store if isinstance(store, Store) else Store(store)
    try:
        with connected(address) as ray:
            return _run(ray, sp, kind, n, st, batch_size, seed, threads, s, progress, workers,
                        resources or {}, shard_size, max_restarts, max_attempts,
                        start_timeout_s, _exit_after or {}, t0)
    finally:
        if not isinstance(store, Store):
            st.close()


def _start_workers(ray: Any, sp: SearchSpace, kind: str, batch_size: int, s: Settings,
                   threads: int | None, opts: dict[str, Any], count: int,
                   exit_after: dict[int, int], timeout: float) -> tuple[list[Any], list[Any]]:
    cls = ray.remote(MeasureWorker)
    actors = [cls.options(**opts).remote(sp.name, sp.params(), kind, batch_size, s.to_dict(),
                                         threads, i, exit_after.get(i)) for i in range(count)]
    refs = [a.info.remote() for a in actors]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    if len(ready) < len(refs):
        for a in actors:
            ray.kill(a)
        raise InputError(f"only {len(ready)} of {count} Ray workers started within {timeout:g} "
                         f"s; each needs {opts_text(opts)} (cluster: "
                         f"{ray.cluster_resources()})")
    try:
        infos = ray.get(refs)
    except ray.exceptions.RayError as err:
        for a in actors:
            ray.kill(a)
        cause = getattr(err, "cause", None) or err
        raise InputError(f"a Ray worker could not start: {cause}") from None
    return actors, infos


def opts_text(opts: dict[str, Any]) -> str:
    parts = [f"num_cpus={opts.get('num_cpus')}"]
    if opts.get("num_gpus"):
        parts.append(f"num_gpus={opts['num_gpus']}")
    parts += [f"{k}={v}" for k, v in opts.get("resources", {}).items()]
    return ", ".join(parts)


def _run(ray: Any, sp: SearchSpace, kind: str, n: int, st: Store, batch_size: int, seed: int,
         threads: int | None, s: Settings, progress: bool, workers: int | None,
         resources: dict[str, float], shard_size: int, max_restarts: int, max_attempts: int,
         start_timeout_s: float, exit_after: dict[int, int], t0: float) -> dict[str, Any]:
    from esm.collect import _Progress, architectures, measurement_order
    from esm.store import _json, genome_key

    opts = worker_options(kind, threads, resources, max_restarts)
    room = default_workers(ray.cluster_resources(), opts)
    count = workers or room
    if count < 1 or count > room:
        raise InputError(f"the Ray cluster has room for {room} worker(s) needing "
                         f"{opts_text(opts)}, not {max(count, 1)} (cluster: "
                         f"{ray.cluster_resources()})")
    genomes = architectures(sp, n, seed)
    keys = [genome_key(g) for g in genomes]
    actors, infos = _start_workers(ray, sp, kind, batch_size, s, threads or 1, opts, count,
                                   exit_after, start_timeout_s)
    startup_s = time.monotonic() - t0
    try:
        label = "_".join(sorted(resources)) if resources else kind
        run_id, _ = st.ensure_run(
            source="measured", space=sp.name, space_params=sp.params(), device=label,
            batch_size=batch_size, dtype="float32", threads=threads or 1, node="ray",
            provenance={"backend": "ray", "ray": ray.__version__,
                        "workers": [i["provenance"] | {"ray": i["label"]} for i in infos]},
            settings=s.to_dict(),
            identity_extra={"backend": "ray", "resources": resources},
        )
        stored = set(st.keys(run_id))
        todo = [i for i, k in enumerate(keys) if k not in stored]
        order = [int(i) for i in measurement_order(todo, seed)]
        queue: deque[list[int]] = deque(order[b:b + shard_size]
                                        for b in range(0, len(order), shard_size))
        slots = [{"actor": a, "label": _json(i["label"]), "deaths": 0, "gen": 0, "busy": 0,
                  "alive": True, "ready": True} for a, i in zip(actors, infos, strict=True)]
        in_flight: dict[Any, tuple[int, int, list[int] | None]] = {}
        attempts: dict[int, int] = {}
        tally = {"measured": 0, "failed": 0, "retried": 0, "deaths": 0, "duplicates": 0}
        bar = _Progress(progress, len(order), f"{sp.name} on {count} Ray worker(s)")

        def store_row(i: int, node: str, res: dict[str, Any]) -> None:
            if keys[i] in stored:
                tally["duplicates"] += 1
                return
            g = genomes[i]
            try:
                if "measurement" in res:
                    st.add_measurement(run_id, arch=sp.to_str(g), key=keys[i], genome=g,
                                       batch_size=batch_size, input_shape=res["shape"],
                                       measurement=res["measurement"], node=node)
                    tally["measured"] += 1
                    bar.advance(f"median {res['measurement'].median_ms:.3g} ms")
                else:
                    st.add_measurement(run_id, arch=sp.to_str(g), key=keys[i], genome=g,
                                       batch_size=batch_size, error=res["error"], node=node)
                    tally["failed"] += 1
                    bar.advance("failed")
            except InputError:  # stored meanwhile by another collector of the same run
                tally["duplicates"] += 1
            stored.add(keys[i])

        def submit(k: int) -> None:
            slot = slots[k]
            while slot["alive"] and slot["ready"] and slot["busy"] < DEPTH and queue:
                idx = queue.popleft()
                items = [(i, genomes[i].tolist()) for i in idx]
                ref = slot["actor"].measure.remote(items)
                in_flight[ref] = (k, int(slot["gen"]), idx)
                slot["busy"] += 1

        def ping(k: int) -> None:  # wait for a restarting worker before giving it work
            in_flight[slots[k]["actor"].info.remote()] = (k, int(slots[k]["gen"]), None)

        def lost_worker(k: int, gen: int) -> None:
            slot = slots[k]
            if gen != slot["gen"]:
                return  # the same death, seen through another of its shards
            slot["gen"] += 1
            slot["deaths"] += 1
            tally["deaths"] += 1
            slot["ready"] = False
            if slot["deaths"] > max_restarts:
                slot["alive"] = False
            else:
                ping(k)  # answered once Ray restarted it; ActorDiedError if it will not be

        try:
            for k in range(count):
                submit(k)
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                ref = ready[0]
                k, gen, idx = in_flight.pop(ref)
                slot = slots[k]
                if idx is None:  # a ping
                    try:
                        info = ray.get(ref)
                    except ray.exceptions.ActorUnavailableError:
                        time.sleep(0.1)  # still restarting
                        ping(k)
                    except ray.exceptions.RayError:
                        slot["alive"] = False  # gone for good
                    else:
                        slot["ready"] = True
                        slot["label"] = _json(info["label"])
                    for j in range(count):
                        submit(j)
                    continue
                slot["busy"] -= 1
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayError as err:
                    if isinstance(err, ray.exceptions.RayActorError):
                        lost_worker(k, gen)
                    lost = [i for i in idx if keys[i] not in stored]
                    for i in reversed(lost):
                        attempts[i] = attempts.get(i, 0) + 1
                        if attempts[i] >= max_attempts:
                            store_row(i, str(slot["label"]), {
                                "error": f"its Ray worker died {attempts[i]} times while "
                                f"measuring it: {type(err).__name__}"})
                        else:
                            queue.appendleft([i])
                            tally["retried"] += 1
                else:
                    for res in results:
                        store_row(int(res["index"]), str(slot["label"]), res)
                for j in range(count):
                    submit(j)
        finally:
            bar.close()
        ws = [{"label": json.loads(str(sl["label"])), "deaths": sl["deaths"],
               "alive": sl["alive"]} for sl in slots]
        return {
            "run_id": run_id, "store": str(st.path), "space": sp.name, "device": label,
            "backend": "ray", "batch_size": batch_size, "threads": threads or 1,
            "requested": len(keys), "already": len(keys) - len(todo),
            "measured": tally["measured"], "failed": tally["failed"],
            "retried": tally["retried"], "worker_deaths": tally["deaths"],
            "duplicates_skipped": tally["duplicates"],
            "remaining": sum(len(q) for q in queue), "workers": ws,
            "startup_s": startup_s, "elapsed_s": time.monotonic() - t0,
        }
    finally:
        for a in actors:
            ray.kill(a)
