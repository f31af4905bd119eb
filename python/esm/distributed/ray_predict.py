"""Sharded prediction on Ray: a large genome set, or a seeded random range, across workers.

Each worker (a long-lived actor, ``num_cpus=threads``) loads the model once and predicts
shards with the same predictor the local ``esm predict`` uses (:func:`esm.predictor.compile`
of the model file; the surrogate's own ``predict`` when it cannot be compiled). A seeded
random range ships no genomes: a shard is ``(seed, start, count)`` and the worker generates its
rows with :meth:`esm.spaces.base.SearchSpace.sample_shard`, which equals rows
``start .. start+count-1`` of the local ``space.sample(n, seed)``. A genome array is put into
the object store shard by shard, so each shard travels once, to the worker that predicts it.

Results come back in order (one float64 array) or, with ``out_dir``, are written by the driver
as they arrive, one ``.npy`` file per shard plus ``manifest.json`` (bounded driver memory for
ranges larger than memory). A shard whose worker died is predicted again by another worker.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from esm.distributed._ray import connected, node_label
from esm.errors import InputError

#: Default rows per shard (a multiple of the compiled predictor's default chunk).
SHARD_ROWS = 1 << 18


def load_predictor(model: Any) -> tuple[Any, Callable[..., np.ndarray], bool]:
    """``(space, predict(genomes, threads, chunk), compiled)`` of a model.

    ``model`` is a model file path or the file's bytes (loaded with :func:`esm.load` and
    compiled with :func:`esm.predictor.compile`, as the local ``esm predict`` does), or a
    factory (a picklable callable) returning an object with ``space`` and
    ``predict(genomes)`` (called with ``threads`` and ``chunk`` when it takes them).
    """
    import esm

    if callable(model):
        obj = model()
    else:
        if isinstance(model, bytes):
            fd, tmp = tempfile.mkstemp(suffix=".esm")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(model)
                obj = esm.load(tmp)
            finally:
                os.unlink(tmp)
        else:
            obj = esm.load(str(model))
    space = obj.space
    if not callable(model):  # a model file: the local `esm predict`'s compiled predictor
        from esm.predictor import compile as compile_predictor

        pred = compile_predictor(obj)
        return space, lambda g, threads, chunk: np.asarray(
            pred.predict(g, threads=threads, chunk=chunk), dtype=np.float64), True
    try:  # a predictor-like object that takes the compiled predictor's arguments
        import inspect

        takes_threads = "threads" in inspect.signature(obj.predict).parameters
    except (TypeError, ValueError):
        takes_threads = False
    if takes_threads:
        return space, lambda g, threads, chunk: np.asarray(
            obj.predict(g, threads=threads, chunk=chunk), dtype=np.float64), False
    return space, lambda g, threads, chunk: np.asarray(obj.predict(g), dtype=np.float64), False


class PredictWorker:
    """Holds one loaded predictor; predicts shards (instantiated as a Ray actor)."""

    def __init__(self, model: Any, threads: int, chunk: int) -> None:
        self.space, self._predict, self.compiled = load_predictor(model)
        self.threads = int(threads)
        self.chunk = int(chunk)
        self.label = node_label()

    def info(self) -> dict[str, Any]:
        return {"label": self.label, "compiled": self.compiled, "space": self.space.name,
                "space_params": self.space.params(), "pid": os.getpid()}

    def predict_range(self, seed: int, start: int, count: int) -> np.ndarray:
        """Latencies of rows ``start .. start+count-1`` of ``space.sample(n, seed)``."""
        return self._predict(self.space.sample_shard(seed, start, count), self.threads,
                             self.chunk)

    def predict_rows(self, genomes: np.ndarray) -> np.ndarray:
        """Latencies of the given genome rows."""
        return self._predict(genomes, self.threads, self.chunk)


def predict(
    model: Any,
    genomes: Any = None,
    *,
    random: int | None = None,
    seed: int = 0,
    address: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    shard_rows: int | None = None,
    chunk: int = 65536,
    out_dir: str | os.PathLike[str] | None = None,
    max_restarts: int = 2,
    start_timeout_s: float = 300.0,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Predict latencies on a Ray cluster, shard by shard.

    Parameters
    ----------
    model : str, Path, bytes or callable
        A model file (``esm train`` / :meth:`esm.surrogate.Surrogate.save`; its bytes are
        shipped, so workers need no shared file system), or a factory returning an object with
        ``space`` and ``predict(genomes)``.
    genomes : array ``[N, G]``, optional
        Genomes to predict (exclusive with ``random``).
    random, seed : int
        Predict ``space.sample(random, seed)`` without shipping genomes.
    address : str, optional
        Ray cluster to join (default: the running session, else a local one).
    workers : int, optional
        Number of workers (default: cluster CPUs // ``threads``).
    threads : int
        Threads (and Ray CPUs) per worker.
    shard_rows : int, optional
        Rows per shard (default ``min(2**18, ceil(N / workers))``).
    chunk : int
        Rows per piece inside the compiled predictor.
    out_dir : path, optional
        Write ``shard-00000.npy``, ... and ``manifest.json`` there instead of returning the
        array (returns ``None`` and the summary).
    max_restarts : int
        Times a dead worker is restarted by Ray; a failed shard is retried on any worker.

    Returns
    -------
    (latencies or None, summary)
        ``latencies`` float64 ``[N]`` in input order; ``summary`` with ``count``, ``shards``,
        ``workers``, ``seconds``, ``per_second``, ``retried``, ``compiled``.
    """
    if (genomes is None) == (random is None):
        raise InputError("give either genomes or random=N")
    if random is not None and random < 0:
        raise InputError(f"random must be >= 0, got {random}")
    if threads < 1 or chunk < 1 or (workers is not None and workers < 1):
        raise InputError("threads, chunk and workers must be >= 1")
    if shard_rows is not None and shard_rows < 1:
        raise InputError(f"shard_rows must be >= 1, got {shard_rows}")
    if not callable(model) and not isinstance(model, bytes):
        path = Path(model)
        if not path.is_file():
            raise InputError(f"model file not found: {path}")
        model = path.read_bytes()
    out_path = None
    if out_dir is not None:
        out_path = Path(out_dir)
        out_path.mkdir(parents=True, exist_ok=True)
    with connected(address) as ray:
        return _run(ray, model, genomes, random, int(seed), workers, threads, shard_rows, chunk,
                    out_path, max_restarts, start_timeout_s)


def _run(ray: Any, model: Any, genomes: Any, random: int | None, seed: int,
         workers: int | None, threads: int, shard_rows: int | None, chunk: int,
         out_path: Path | None, max_restarts: int, start_timeout_s: float
         ) -> tuple[np.ndarray | None, dict[str, Any]]:
    t_start = time.perf_counter()
    room = int(ray.cluster_resources().get("CPU", 0) // threads)
    count = workers or room
    if count < 1 or count > room:
        raise InputError(f"the Ray cluster has room for {room} worker(s) of {threads} CPU(s), "
                         f"not {max(count, 1)}")
    cls = ray.remote(PredictWorker).options(num_cpus=threads, max_restarts=max_restarts,
                                            max_task_retries=0)
    model_ref = ray.put(model)
    actors = [cls.remote(model_ref, threads, chunk) for _ in range(count)]
    try:
        refs = [a.info.remote() for a in actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=start_timeout_s)
        if len(ready) < len(refs):
            raise InputError(f"only {len(ready)} of {count} Ray workers started within "
                             f"{start_timeout_s:g} s (each needs num_cpus={threads})")
        try:
            infos = ray.get(refs)
        except ray.exceptions.RayError as err:
            raise InputError(f"a Ray worker could not load the model: "
                             f"{getattr(err, 'cause', None) or err}") from None
        t0 = time.perf_counter()
        if genomes is not None:
            from esm import spaces

            sp = spaces.get(infos[0]["space"], **infos[0]["space_params"])
            g = sp.validate(genomes)
            n = len(g)
        else:
            g = None
            n = int(random or 0)
        size = shard_rows or max(1, min(SHARD_ROWS, -(-n // count)))
        starts = list(range(0, n, size))
        queue: deque[int] = deque(range(len(starts)))
        objs: dict[int, Any] = {}
        out = None if out_path is not None else np.empty(n, dtype=np.float64)
        manifest: list[dict[str, Any]] = []
        in_flight: dict[Any, tuple[int, int]] = {}
        busy = [0] * count
        deaths = [0] * count
        retried = 0

        def submit(k: int) -> None:
            while busy[k] < 2 and queue and deaths[k] <= max_restarts:
                s = queue.popleft()
                a, b = starts[s], min(starts[s] + size, n)
                if g is None:
                    ref = actors[k].predict_range.remote(seed, a, b - a)
                else:
                    if s not in objs:
                        objs[s] = ray.put(np.ascontiguousarray(g[a:b]))
                    ref = actors[k].predict_rows.remote(objs[s])
                in_flight[ref] = (k, s)
                busy[k] += 1

        for k in range(count):
            submit(k)
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            k, s = in_flight.pop(ready[0])
            busy[k] -= 1
            try:
                res = ray.get(ready[0])
            except ray.exceptions.RayActorError:
                deaths[k] += 1
                queue.appendleft(s)
                retried += 1
            except ray.exceptions.RayTaskError as err:
                raise InputError(f"prediction failed on a worker: {err.cause}") from None
            else:
                a = starts[s]
                objs.pop(s, None)
                if out is not None:
                    out[a:a + len(res)] = res
                else:
                    name = f"shard-{s:05d}.npy"
                    np.save(out_path / name, np.asarray(res, dtype=np.float64))  # type: ignore[operator]
                    manifest.append({"file": name, "start": a, "count": len(res)})
            for j in range(count):
                submit(j)
        if queue:
            raise InputError(f"every Ray worker died; {len(queue)} shard(s) not predicted")
        seconds = time.perf_counter() - t0
    finally:
        for a in actors:
            ray.kill(a)
    summary: dict[str, Any] = {
        "count": n, "shards": len(starts), "shard_rows": size, "workers": count,
        "threads_per_worker": threads, "seconds": seconds,
        "per_second": n / seconds if seconds > 0 else None, "retried": retried,
        "compiled": bool(infos[0]["compiled"]), "space": infos[0]["space"],
        "source": "genomes" if genomes is not None else {"random": n, "seed": seed},
        "startup_s": t0 - t_start,
        "hosts": sorted({i["label"]["host"] for i in infos}),
    }
    if out_path is not None:
        manifest.sort(key=lambda m: m["start"])
        (out_path / "manifest.json").write_text(json.dumps(
            {"summary": summary, "shards": manifest}, indent=1), encoding="utf-8")
        summary["out_dir"] = str(out_path)
    return out, summary
