"""Search results, the best-so-far archive and the stopping rule shared by the algorithms."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.search.problem import Evaluation, Problem


@dataclass
class Budget:
    """When to stop: after ``generations``, ``seconds`` of wall time or ``max_evaluations``.

    Whatever comes first ends the search; at least one must be set. ``max_evaluations`` is
    exact: the last batch is cut so that exactly that many candidates are evaluated.
    """

    generations: int | None = None
    seconds: float | None = None
    max_evaluations: int | None = None

    def __post_init__(self) -> None:
        if self.generations is None and self.seconds is None and self.max_evaluations is None:
            raise InputError("set generations, seconds or max_evaluations")
        if self.generations is not None and self.generations < 0:
            raise InputError(f"generations must be >= 0, got {self.generations}")
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise InputError(f"seconds must be > 0, got {self.seconds}")
        if self.max_evaluations is not None and self.max_evaluations < 1:
            raise InputError(f"max_evaluations must be >= 1, got {self.max_evaluations}")

    def batch(self, generation: int, evaluated: int, started: float, size: int) -> int:
        """How many candidates the next generation may evaluate (0: stop)."""
        if self.generations is not None and generation >= self.generations:
            return 0
        if self.seconds is not None and time.perf_counter() - started >= self.seconds:
            return 0
        if self.max_evaluations is not None:
            return max(0, min(size, self.max_evaluations - evaluated))
        return size


class Run:
    """One search run: its stopping rule and the problem's counters at its start.

    The algorithms ask :meth:`batch` how many candidates the next generation may evaluate and
    end with :meth:`result`, which accounts evaluations and time since the start.
    """

    def __init__(self, problem: Problem, budget: Budget) -> None:
        self.problem, self.budget = problem, budget
        c = problem.counters
        self.start_eval, self.t_pred, self.t_obj = c.evaluated, c.predict_s, c.objective_s
        self.started = time.perf_counter()

    def batch(self, generation: int, size: int) -> int:
        """How many candidates the next generation may evaluate (0: stop)."""
        evaluated = self.problem.counters.evaluated - self.start_eval
        return self.budget.batch(generation, evaluated, self.started, size)

    def result(self, algorithm: str, *, genomes: np.ndarray, values: dict[str, np.ndarray],
               feasible: np.ndarray, generations: int, history: list[float], seed: int | None,
               settings: dict[str, Any], best_index: int = 0) -> SearchResult:
        """The run's :class:`SearchResult`; ``settings`` gains the budget's fields."""
        c = self.problem.counters
        b = self.budget
        return SearchResult(
            algorithm=algorithm, problem=self.problem, genomes=genomes, values=values,
            feasible=feasible, evaluated=c.evaluated - self.start_eval, generations=generations,
            wall_s=time.perf_counter() - self.started, predict_s=c.predict_s - self.t_pred,
            objective_s=c.objective_s - self.t_obj, history=history, seed=seed,
            settings={**settings, "generations": b.generations, "seconds": b.seconds,
                      "max_evaluations": b.max_evaluations},
            best_index=best_index)

    def archive_result(self, algorithm: str, archive: Archive, *, generations: int,
                       history: list[float], seed: int | None,
                       settings: dict[str, Any]) -> SearchResult:
        """:meth:`result` for the archive's best distinct networks."""
        return self.result(algorithm, genomes=archive.genomes, values=archive.values,
                           feasible=archive.violation <= 0, generations=generations,
                           history=history, seed=seed, settings=settings)


class Archive:
    """The ``k`` best distinct networks seen so far, by ``(violation, score)``.

    Distinctness is by the space's canonical genome (genes of inactive slots do not count);
    the genome kept is the one that was evaluated, so the stored values are exactly the
    metrics of the stored genome even for a surrogate that reads inactive genes.
    """

    def __init__(self, problem: Problem, k: int) -> None:
        self.problem = problem
        self.k = max(int(k), 1)
        self.genomes = np.zeros((0, problem.space.genome_length), dtype=np.int32)
        self._canon = self.genomes
        self.violation = np.zeros(0)
        self.score = np.zeros(0)
        self.values: dict[str, np.ndarray] = {}

    def offer(self, genomes: np.ndarray, ev: Evaluation) -> None:
        """Merge a batch: keep its best ``k`` candidates and the archive's, then dedupe."""
        n = genomes.shape[0]
        if n == 0:
            return
        take = min(self.k, n)
        sel = np.arange(n)
        if take < n:  # the batch's best k by (violation, score), without a full sort
            feas = np.flatnonzero(ev.violation <= 0)
            if feas.size >= take:
                sel = feas[np.argpartition(ev.score[feas], take - 1)[:take]]
            else:
                bad = np.flatnonzero(ev.violation > 0)
                need = take - feas.size
                worst = bad[np.argpartition(ev.violation[bad], need - 1)[:need]]
                sel = np.concatenate([feas, worst])
        g = np.concatenate([self.genomes, genomes[sel]])
        cg = np.concatenate([self._canon, self.problem.space.canonical(genomes[sel])])
        v = np.concatenate([self.violation, ev.violation[sel]])
        s = np.concatenate([self.score, ev.score[sel]])
        vals = {name: np.concatenate([self.values.get(name, np.zeros(0)), arr[sel]])
                for name, arr in ev.values.items()}
        order = np.lexsort((s, v))
        # First occurrence of every canonical genome in (violation, score) order, up to k: a
        # set of row bytes over the <= 2 k rows (np.unique(axis=0) cost ~1 ms per call and
        # dominated small-batch searches).
        seen: set[bytes] = set()
        kept: list[int] = []
        for i in order.tolist():
            key = cg[i].tobytes()
            if key in seen:
                continue
            seen.add(key)
            kept.append(i)
            if len(kept) == self.k:
                break
        keep = np.asarray(kept, dtype=np.int64)
        self.genomes, self.violation, self.score = g[keep], v[keep], s[keep]
        self._canon = cg[keep]
        self.values = {name: arr[keep] for name, arr in vals.items()}

    @property
    def best_score(self) -> float:
        """Best feasible score (inf when nothing feasible yet)."""
        if self.violation.size and self.violation[0] <= 0:
            return float(self.score[0])
        return math.inf


@dataclass
class SearchResult:
    """What a search found.

    Attributes
    ----------
    algorithm : str
    problem : Problem
    genomes : np.ndarray
        ``[K, G]`` genomes of distinct networks (as evaluated), best first (evolution, random
        search) or the Pareto front sorted by latency (NSGA-II). Infeasible entries
        (``feasible`` False) come last and only when fewer than ``K`` feasible networks were
        found.
    values : dict of str to np.ndarray
        Every metric's predicted value for each returned genome.
    feasible : np.ndarray
        ``[K]`` bool.
    evaluated : int
        Candidates evaluated (duplicates included).
    generations : int
    wall_s, predict_s, objective_s : float
        Total wall time, time inside predictor calls, time in proxy/callable objectives.
    history : list of float
        Best feasible objective value after each generation (NaN before the first feasible).
    seed : int or None
    settings : dict
        The algorithm's parameters.
    best_index : int
        Row of ``genomes`` holding the best feasible network (0 except for NSGA-II fronts).
    """

    algorithm: str
    problem: Problem
    genomes: np.ndarray
    values: dict[str, np.ndarray]
    feasible: np.ndarray
    evaluated: int
    generations: int
    wall_s: float
    predict_s: float
    objective_s: float
    history: list[float] = field(default_factory=list)
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    best_index: int = 0

    @property
    def found(self) -> bool:
        """Whether at least one feasible network was found."""
        return bool(self.feasible.size and self.feasible[self.best_index])

    @property
    def best(self) -> np.ndarray:
        """The best genome ``[G]`` (raises InputError when nothing feasible was found)."""
        if not self.found:
            raise InputError(self.infeasible_message())
        return self.genomes[self.best_index]

    @property
    def per_second(self) -> float:
        """Candidates evaluated per wall second, end to end."""
        return self.evaluated / self.wall_s if self.wall_s > 0 else math.inf

    @property
    def outside_predictor_share(self) -> float:
        """Share of the wall time spent outside predictor calls."""
        return 1.0 - self.predict_s / self.wall_s if self.wall_s > 0 else 0.0

    def texts(self) -> list[str]:
        """Text forms of the returned genomes."""
        return self.problem.space.to_strs(self.genomes)

    def infeasible_message(self) -> str:
        cons = "; ".join(str(c) for c in self.problem.constraints) or "none"
        msg = (f"no feasible architecture found in {self.evaluated} evaluations "
               f"(constraints: {cons})")
        lat = self.problem.latency_name
        if lat and lat in self.values and self.values[lat].size:
            best = float(self.values[lat].min())
            msg += f"; lowest predicted latency among the closest candidates: {best:.4g} ms"
        return msg

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: the architectures with their predicted values and the run stats."""
        texts = self.texts()
        b = self.best_index
        obj = self.problem.objective.name
        lat = self.problem.latency_name
        archs = []
        for i, t in enumerate(texts):
            archs.append({
                "arch": t,
                "feasible": bool(self.feasible[i]),
                **{name: float(v[i]) for name, v in self.values.items()},
            })
        d: dict[str, Any] = {
            "algorithm": self.algorithm,
            **self.problem.describe(),
            "found": self.found,
            "best": texts[b] if self.found else None,
            "latency_ms": float(self.values[lat][b]) if self.found and lat else None,
            "objective": float(self.values[obj][b]) if self.found else None,
            "evaluated": self.evaluated,
            "generations": self.generations,
            "wall_s": self.wall_s,
            "per_second": self.per_second,
            "time": {"predict_s": self.predict_s, "objective_s": self.objective_s,
                     "other_s": max(self.wall_s - self.predict_s - self.objective_s, 0.0),
                     "outside_predictor_share": self.outside_predictor_share},
            "seed": self.seed,
            "settings": self.settings,
            "architectures": archs,
            "history": [None if not math.isfinite(h) else h for h in self.history],
        }
        return d

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as a JSON file."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
