"""Collection runs: measure many architectures of a space into a store, resumably.

The architectures of ``collect(space, device, n, store, seed=k)`` are a deterministic function
of ``(space, n, seed)``: genomes are drawn in fixed chunks from ``numpy.random.default_rng(seed)``
and deduplicated by canonical form, so the list for ``n`` is a prefix of the list for any larger
``n``. They are measured in a random (seeded) order, interleaving cheap and expensive networks,
and every result is committed to the store at once. A run is identified by the space, its
parameters, the device, batch size, dtype, thread count, host and measurement settings;
calling ``collect`` again with the same identity measures only what is missing.

Warm-up
-------
Before the first measurement of a call the device is warmed up on the first reference
network (:func:`esm.measure.warmup.warm_up`, the device's default rule unless ``warmup``
says otherwise; ``None`` skips it): a fresh process's first timings are off by 7-17%.

Drift guard
-----------
``n_references`` fixed reference architectures (a fixed seed, independent of ``seed``) are
measured at the start of every ``collect`` call, after every ``reference_every``
measurements, and at the end. Each check is compared with the run's first check of the same
reference: ``rel_change = (m - m0) / m0``. A check is flagged as drift when
``|rel_change| > max(drift_tol, 2 * (rel_ci0 + rel_ci))`` (beyond both a fixed tolerance and
twice the two measurements' CI half-widths), and every measurement stored since the previous
check is then marked ``drift = 1``. The stored values stay raw: a flagged stretch can be
re-measured (delete its rows and run ``collect`` again), filtered out, or exported corrected
where the checks show drift beyond their noise (``esm export --drift-corrected``,
:mod:`esm.drift`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError
from esm.measure.settings import Settings
from esm.measure.timer import parse_device
from esm.measure.warmup import WarmupRule, precise, warm_up
from esm.store import Store, genome_key

if TYPE_CHECKING:
    from esm.measure import Measurement
    from esm.spaces import SearchSpace

_CHUNK = 256
REFERENCE_SEED = 0x5EED_0E5


def architectures(space: SearchSpace, n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct canonical genomes of ``space``, deterministic in ``(space, n, seed)``.

    Fewer are returned only when the space has fewer than ``n`` distinct networks reachable by
    sampling (sampling stops after 50 chunks without a new network).
    """
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    seen: set[str] = set()
    stale = 0
    while len(out) < n and stale < 50:
        before = len(out)
        for g in space.canonical(space.sample(_CHUNK, rng)):
            k = genome_key(g)
            if k not in seen:
                seen.add(k)
                out.append(g)
                if len(out) == n:
                    break
        stale = stale + 1 if len(out) == before else 0
    if not out:
        return np.zeros((0, space.genome_length), dtype=np.int32)
    return np.ascontiguousarray(np.stack(out), dtype=np.int32)


def measurement_order(todo: list[int], seed: int) -> np.ndarray:
    """The (seeded, random) order in which the indices ``todo`` of the list are measured."""
    return np.random.default_rng([seed, 1]).permutation(np.asarray(todo, dtype=np.int64))


def measure_architecture(sp: SearchSpace, genome: np.ndarray, device: str, batch_size: int,
                         settings: Settings) -> tuple[Measurement, tuple[int, ...]]:
    """Build one architecture and measure it: ``(measurement, input shape)``.

    The one measuring step of every backend (local :func:`collect` and the Ray workers of
    :mod:`esm.distributed`).
    """
    from esm.measure import measure_module

    shape = tuple(sp.input_shape(genome, batch_size))
    module = sp.build(genome)
    return measure_module(module, shape, device, settings), shape


def check_device(device: str) -> str:
    """Normalise ``device`` (``cpu`` / ``cuda:i``) and check that it can be used."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        raise InputError("measuring on CUDA needs torch") from None
    if not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but no CUDA GPU is usable here")
    if index >= torch.cuda.device_count():
        raise InputError(f"cuda:{index} does not exist ({torch.cuda.device_count()} GPU(s))")
    return f"cuda:{index}"


class _Progress:
    """A rich progress bar (count, ETA, current median) or nothing."""

    def __init__(self, enabled: bool, total: int, description: str) -> None:
        self._bar: Any = None
        if not enabled or total == 0:
            return
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
        except ImportError:  # pragma: no cover - rich is optional
            return
        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[last]}"), console=Console(stderr=True),
        )
        self._task = self._bar.add_task(description, total=total, last="")
        self._bar.start()

    def advance(self, last: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, last=last)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


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
    space_params: dict[str, Any] | None = None,
    n_references: int = 3,
    reference_every: int = 50,
    drift_tol: float = 0.05,
    warmup: Any = True,
) -> dict[str, Any]:
    """Measure ``n`` architectures of ``space`` on ``device`` into ``store`` (resumable).

    Parameters
    ----------
    space : SearchSpace or str
        The space (or its registry name, built with ``space_params``).
    device : str
        ``"cpu"`` or ``"cuda[:i]"``.
    n : int
        Number of distinct architectures (see :func:`architectures`).
    store : Store or str
        The store or its path (created if missing).
    batch_size, seed, threads : int
        Input batch size; seed of the architecture list; intra-op threads on the CPU
        (default: torch's current setting, recorded in the run).
    settings : Settings, optional
        Measurement methodology (default ``Settings()``).
    progress : bool
        Show a progress bar on stderr.
    n_references, reference_every, drift_tol
        Drift guard (see the module docs); ``n_references=0`` disables it.
    warmup : WarmupRule, True or None
        Warm-up before the first measurement (True: the device's default rule).

    Returns
    -------
    dict
        ``run_id``, ``requested``, ``already`` (present before this call), ``measured``,
        ``failed``, ``reference_checks``, ``drift_flags``, ``warmup`` (its report, or None),
        ``elapsed_s``, ...
    """
    from esm import spaces
    from esm.measure import provenance

    t0 = time.monotonic()
    sp = spaces.get(space, **(space_params or {})) if isinstance(space, str) else space
    dev = check_device(device)
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    if threads is not None and threads < 1:
        raise InputError(f"threads must be >= 1, got {threads}")
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}")
    s = settings or Settings()
    st = store if isinstance(store, Store) else Store(store)
    try:
        import torch
    except ImportError:
        raise InputError("esm collect needs torch to build the networks") from None
    if threads is not None:
        torch.set_num_threads(int(threads))
    used_threads = int(torch.get_num_threads())
    try:
        return _collect(sp, dev, n, st, batch_size, seed, used_threads, s, progress,
                        n_references, reference_every, drift_tol, t0, provenance, warmup)
    finally:
        if not isinstance(store, Store):
            st.close()


def _collect(sp: SearchSpace, dev: str, n: int, st: Store, batch_size: int, seed: int,
             threads: int, s: Settings, progress: bool, n_references: int,
             reference_every: int, drift_tol: float, t0: float, provenance: Any,
             warmup: Any) -> dict[str, Any]:
    run_id, _ = st.ensure_run(
        source="measured", space=sp.name, space_params=sp.params(), device=dev,
        batch_size=batch_size, dtype="float32", threads=threads,
        provenance=provenance(dev, threads), settings=s.to_dict(),
    )
    genomes = architectures(sp, n, seed)
    keys = [genome_key(g) for g in genomes]
    done = st.keys(run_id)
    todo = [i for i, k in enumerate(keys) if k not in done]
    order = measurement_order(todo, seed)

    def run_one(genome: np.ndarray) -> tuple[Measurement, tuple[int, ...]]:
        return measure_architecture(sp, genome, dev, batch_size, s)

    # drift guard
    refs = list(architectures(sp, n_references, REFERENCE_SEED)) if n_references > 0 else []
    ref_keys = [genome_key(g) for g in refs]
    checks = st.reference_checks(run_id)
    base = {c["key"]: c for c in checks if c["seq"] == min(
        (d["seq"] for d in checks if d["key"] == c["key"]), default=0)}
    seq = max((c["seq"] for c in checks), default=-1) + 1
    since_check: list[int] = []
    n_checks = 0
    drift_flags = 0

    def check_refs() -> None:
        nonlocal seq, n_checks, drift_flags
        flagged = False
        stored = len(st.keys(run_id))
        for g, k in zip(refs, ref_keys, strict=True):
            m, _ = run_one(g)
            b = base.get(k)
            rel = None
            drift = False
            if b is not None and b["median_ms"]:
                rel = (m.median_ms - b["median_ms"]) / b["median_ms"]
                noise = 2.0 * ((b["rel_ci"] or 0.0) + m.rel_ci)
                drift = abs(rel) > max(drift_tol, noise)
            st.add_reference_check(run_id, key=k, arch=sp.to_str(g), seq=seq, done=stored,
                                   measurement=m, rel_change=rel, drift=drift)
            if b is None:
                base[k] = {"median_ms": m.median_ms, "rel_ci": m.rel_ci}
            flagged |= drift
        if flagged:
            drift_flags += 1
            st.mark_drift(run_id, since_check)
        since_check.clear()
        seq += 1
        n_checks += 1

    warm = None
    rule = WarmupRule.for_device(dev) if warmup is True else warmup or None
    if len(order) and rule is not None:
        g0 = refs[0] if refs else genomes[order[0]]
        module, shape = sp.build(g0), tuple(sp.input_shape(g0, batch_size))
        from esm.measure import measure_module

        warm = warm_up(lambda: measure_module(module, shape, dev, precise(s)), rule)
    measured = failed = 0
    last_median: float | None = None
    bar = _Progress(progress, len(order), f"{sp.name} on {dev}")
    try:
        if len(order) and refs:
            check_refs()
        for count, i in enumerate(order, start=1):
            g = genomes[i]
            arch = sp.to_str(g)
            try:
                m, shape = run_one(g)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:  # a network that fails is stored as failed, once
                st.add_measurement(run_id, arch=arch, key=keys[i], genome=g,
                                   batch_size=batch_size, error=f"{type(err).__name__}: {err}")
                failed += 1
                bar.advance("failed")
                continue
            try:
                row = st.add_measurement(run_id, arch=arch, key=keys[i], genome=g,
                                         batch_size=batch_size, input_shape=shape,
                                         measurement=m)
            except InputError:  # stored meanwhile by a concurrent collector of the same run
                bar.advance("already stored")
                continue
            since_check.append(row)
            measured += 1
            last_median = m.median_ms
            bar.advance(f"median {m.median_ms:.3g} ms" + (" (unstable)" if m.unstable else ""))
            if refs and reference_every > 0 and count % reference_every == 0 \
                    and count < len(order):
                check_refs()
        if len(order) and refs:
            check_refs()
    finally:
        bar.close()
    return {
        "run_id": run_id,
        "store": str(st.path),
        "space": sp.name,
        "device": dev,
        "batch_size": batch_size,
        "threads": threads,
        "requested": len(keys),
        "already": len(keys) - len(todo),
        "measured": measured,
        "failed": failed,
        "last_median_ms": last_median,
        "reference_checks": n_checks,
        "drift_flags": drift_flags,
        "warmup": None if warm is None else warm.to_dict(),
        "elapsed_s": time.monotonic() - t0,
    }
