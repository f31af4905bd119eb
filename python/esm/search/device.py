"""Evolution with every step on one array backend: sampling, crossover, mutation, tournaments
and the surrogate (the flat pipeline with a folded linear model) as batch operations.

:class:`CudaOps` runs them as CUDA kernels on cupy arrays (``_cuda.DeviceVariation`` and
``_cuda.DevicePipeline``): genomes never leave the device. :class:`TwinOps` runs the CPU twins
of the same kernels (``_core.variation_*``, ``_core.FlatPipeline``), which give exactly the same
genomes and scores; it is the test oracle on machines without a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from esm import _core


class DeviceOps(Protocol):
    """The batch operations :func:`device_evolution` needs (arrays of one backend, ``xp``)."""

    xp: Any

    def sample(self, n: int, seed: int) -> Any: ...
    def mutate(self, genomes: Any, rate: float, seed: int) -> Any: ...
    def crossover(self, a: Any, b: Any, seed: int) -> Any: ...
    def tournament(self, score: Any, n: int, size: int, seed: int) -> Any: ...
    def score(self, genomes: Any) -> Any: ...


class TwinOps:
    """CPU twins of the device kernels (NumPy arrays).

    Parameters
    ----------
    flat : esm._core.FlatPipeline
        The surrogate: a flat pipeline with a linear model set (``set_linear``).
    choices : numpy.ndarray
        Number of choices per gene.
    """

    xp = np

    def __init__(self, flat: Any, choices: np.ndarray) -> None:
        self.flat = flat
        self.choices = np.ascontiguousarray(choices, dtype=np.int32)

    def sample(self, n: int, seed: int) -> np.ndarray:
        return _core.variation_sample(self.choices, n, seed)

    def mutate(self, genomes: np.ndarray, rate: float, seed: int) -> np.ndarray:
        return _core.variation_mutate(self.choices, genomes, rate, seed)

    def crossover(self, a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
        return _core.variation_crossover(a, b, seed)

    def tournament(self, score: np.ndarray, n: int, size: int, seed: int) -> np.ndarray:
        return _core.variation_tournament(score, n, size, seed)

    def score(self, genomes: np.ndarray) -> np.ndarray:
        return self.flat.predict_linear(genomes)[0]


class CudaOps:
    """The same operations as CUDA kernels on cupy arrays (needs a GPU, cupy and esm._cuda).

    Parameters
    ----------
    flat : esm._core.FlatPipeline
        The surrogate with its linear model; copied to the device.
    choices : numpy.ndarray
        Number of choices per gene.
    """

    def __init__(self, flat: Any, choices: np.ndarray) -> None:
        import cupy

        from esm import _cuda

        self.xp = cupy
        self.var = _cuda.DeviceVariation(np.ascontiguousarray(choices, dtype=np.int32))
        self.pipe = _cuda.DevicePipeline.from_twin(flat)
        self.G = len(choices)

    def _stream(self) -> int:
        return int(self.xp.cuda.get_current_stream().ptr)

    def sample(self, n: int, seed: int) -> Any:
        out = self.xp.empty((n, self.G), self.xp.int32)
        self.var.sample(seed, n, out.data.ptr, self._stream())
        return out

    def mutate(self, genomes: Any, rate: float, seed: int) -> Any:
        g = self.xp.ascontiguousarray(genomes, dtype=self.xp.int32)
        out = self.xp.empty_like(g)
        self.var.mutate(seed, rate, g.data.ptr, len(g), out.data.ptr, self._stream())
        return out

    def crossover(self, a: Any, b: Any, seed: int) -> Any:
        a = self.xp.ascontiguousarray(a, dtype=self.xp.int32)
        b = self.xp.ascontiguousarray(b, dtype=self.xp.int32)
        out = self.xp.empty_like(a)
        self.var.crossover(seed, a.data.ptr, b.data.ptr, len(a), out.data.ptr, self._stream())
        return out

    def tournament(self, score: Any, n: int, size: int, seed: int) -> Any:
        s = self.xp.ascontiguousarray(score, dtype=self.xp.float64)
        out = self.xp.empty(n, self.xp.int64)
        self.var.tournament(seed, s.data.ptr, len(s), size, n, out.data.ptr, self._stream())
        return out

    def score(self, genomes: Any) -> Any:
        g = self.xp.ascontiguousarray(genomes, dtype=self.xp.int32)
        out = self.xp.empty(len(g), self.xp.float64)
        bad = self.xp.empty(len(g), self.xp.int64)
        self.pipe.predict_linear(g.data.ptr, len(g), out.data.ptr, bad.data.ptr, self._stream())
        return out


@dataclass
class DeviceSearchResult:
    """Outcome of :func:`device_evolution` (host arrays)."""

    best_genome: np.ndarray
    best_score: float
    history: list[float]
    candidates: int
    seconds: float

    @property
    def rate(self) -> float:
        """Candidates scored per second."""
        return self.candidates / self.seconds if self.seconds > 0 else float("inf")


def device_evolution(ops: DeviceOps, population: int = 65_536, generations: int = 20,
                     mutation_rate: float = 0.1, tournament_size: int = 2,
                     seed: int = 0) -> DeviceSearchResult:
    """Minimise the surrogate's score by elitist evolution, every step a batch operation.

    Each generation draws ``population`` children (tournament parents, uniform crossover,
    mutation), scores them and keeps the best ``population`` of parents and children.

    Parameters
    ----------
    ops : DeviceOps
        :class:`CudaOps` (GPU) or :class:`TwinOps` (its CPU twin: the same genomes).
    population : int
        Population and children per generation.
    generations : int
        Generations after the initial sample.
    mutation_rate : float
        Probability that a gene changes.
    tournament_size : int
        Entrants per tournament.
    seed : int
        Seed of every counter-based stream.

    Returns
    -------
    DeviceSearchResult
    """
    if population < 2 or generations < 0:
        raise ValueError("population must be >= 2 and generations >= 0")
    xp = ops.xp
    t0 = time.perf_counter()
    pop = ops.sample(population, seed)
    score = ops.score(pop)
    history = [float(score.min())]
    for gen in range(1, generations + 1):
        s = (seed * 1_000_003 + gen * 8) & 0xFFFFFFFFFFFFFFFF
        a = pop[ops.tournament(score, population, tournament_size, s + 1)]
        b = pop[ops.tournament(score, population, tournament_size, s + 2)]
        child = ops.mutate(ops.crossover(a, b, s + 3), mutation_rate, s + 4)
        cs = ops.score(child)
        allg = xp.concatenate([pop, child])
        alls = xp.concatenate([score, cs])
        keep = (np.argsort(alls, kind="stable") if xp is np else xp.argsort(alls))[:population]
        pop, score = allg[keep], alls[keep]
        history.append(float(score[0]))
    i = int(score.argmin())
    best = pop[i]
    best_h = best.get() if hasattr(best, "get") else np.asarray(best)
    return DeviceSearchResult(best_genome=np.asarray(best_h), best_score=float(score[i]),
                              history=history, candidates=population * (generations + 1),
                              seconds=time.perf_counter() - t0)
