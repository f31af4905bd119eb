"""pymoo on esm surrogates: a vectorized ``Problem`` and the space's own variation operators.

:class:`LatencyProblem` is a pymoo :class:`~pymoo.core.problem.Problem` over a search space:
one integer variable per gene (bounds ``0 .. choices-1``), objectives and constraints evaluated
on the whole population in one call per generation by esm's :class:`esm.search.Problem`, i.e.
from a latency surrogate file (compiled predictor), any other surrogate file or object with
``predict``, a cost proxy (``macs``, ``params``, ...) or a callable on genome batches.

The operators make and vary genomes with the space's own methods, so every candidate is a valid
architecture: :class:`SpaceSampling` (:meth:`SearchSpace.sample`), :class:`SpaceCrossover`
(:meth:`SearchSpace.crossover`), :class:`SpaceMutation` (:meth:`SearchSpace.mutate`) and
:class:`SpaceDuplicates` (same network, same canonical genome). :func:`operators` returns all
four as keyword arguments for a pymoo genetic algorithm.

Example
-------
>>> from pymoo.algorithms.moo.nsga2 import NSGA2                       # doctest: +SKIP
>>> from pymoo.optimize import minimize                                  # doctest: +SKIP
>>> from esm.integrations.pymoo import LatencyProblem, operators        # doctest: +SKIP
>>> problem = LatencyProblem("titan.esm", objective="macs", latency_budget=20.0)  # doctest: +SKIP
>>> res = minimize(problem, NSGA2(pop_size=200, **operators(problem)), ("n_gen", 50),
...                seed=0)                                               # doctest: +SKIP
>>> problem.texts(res.X)[:3], problem.values(res.X)["latency_ms"][:3]   # doctest: +SKIP

Objectives (all minimised, as pymoo does): the predicted latency in ms and the objective's
*score*, i.e. the objective negated when it is maximised (``macs``/``params`` by default);
with ``objective="latency"`` or no latency model the problem is single-objective. Constraints
(pymoo's ``G <= 0``): each constraint's relative excess ``(value - limit) / |limit|`` (sign
flipped for ``>=``), so that pymoo's constraint violation equals esm's (see
:mod:`esm.search.problem`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.search.problem import Constraint, make_problem
from esm.search.problem import Problem as EsmProblem
from esm.spaces.base import SearchSpace

try:
    from pymoo.core.crossover import Crossover
    from pymoo.core.duplicate import DefaultDuplicateElimination
    from pymoo.core.mutation import Mutation
    from pymoo.core.problem import Problem
    from pymoo.core.sampling import Sampling
    from pymoo.core.variable import get as _get_value
except ImportError as err:
    raise ImportError(
        f"esm.integrations.pymoo needs pymoo ({err}); install it with "
        "`pip install 'esm-nas[pymoo]'` (or `pip install pymoo`)"
    ) from err

__all__ = [
    "LatencyProblem",
    "SpaceCrossover",
    "SpaceDuplicates",
    "SpaceMutation",
    "SpaceSampling",
    "operators",
]


class LatencyProblem(Problem):
    """A vectorized pymoo problem: latency surrogate + objective + constraints over a space.

    Parameters
    ----------
    latency_model : str, Path or object with ``predict(genomes)``, optional
        The latency surrogate: a model file (loaded and compiled), a loaded surrogate, a
        compiled predictor or any object with ``predict`` and ``space``.
    space : SearchSpace, optional
        Default: the latency model's space.
    objective : str, Path, callable or model
        ``"macs"`` (default), ``"params"`` and the other cost proxies, ``"latency"``, a second
        surrogate file or object of the same space (accuracy, energy), or a callable on genome
        batches ``[N, G] -> [N]``.
    maximize : bool, optional
        Direction of the objective; default: maximise ``macs``/``params``, minimise otherwise.
    latency_budget : float, optional
        Constraint ``latency_ms <= latency_budget``.
    constraints : sequence of :class:`esm.search.Constraint` or ``"NAME<=VALUE"``
        More constraints (NAME: a proxy or a surrogate file).

    Attributes
    ----------
    esm_problem : esm.search.Problem
        The esm problem that evaluates every batch (its ``counters`` count evaluations and the
        time spent in the predictor).
    space : SearchSpace
    objective_names : list of str
        What each column of ``F`` is (``"latency_ms"``, then the objective's name).
    signs : np.ndarray
        ``F * signs`` gives the metric values back (``-1`` for a maximised objective).
    """

    def __init__(
        self,
        latency_model: Any = None,
        *,
        space: SearchSpace | None = None,
        objective: Any = "macs",
        maximize: bool | None = None,
        latency_budget: float | None = None,
        constraints: Sequence[Constraint | str] = (),
    ) -> None:
        esm_problem = make_problem(space=space, latency_model=latency_model,
                                   objective=objective, maximize=maximize,
                                   latency_budget=latency_budget, constraints=constraints)
        self.esm_problem: EsmProblem = esm_problem
        self.space: SearchSpace = esm_problem.space
        lat, obj = esm_problem.latency_name, esm_problem.objective
        if lat is None or lat == obj.name:
            self.objective_names = [obj.name]
            self.signs = np.array([obj.sign])
        else:
            self.objective_names = [lat, obj.name]
            self.signs = np.array([1.0, obj.sign])
        choices = self.space.choices
        super().__init__(n_var=int(choices.shape[0]), n_obj=len(self.objective_names),
                         n_ieq_constr=len(esm_problem.constraints),
                         xl=np.zeros(choices.shape[0], dtype=np.int64),
                         xu=choices.astype(np.int64) - 1, vtype=int)

    def _evaluate(self, x: Any, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        ev = self.esm_problem.evaluate(self.space.validate(x))
        out["F"] = np.stack([ev.values[n] for n in self.objective_names], axis=1) * self.signs
        if self.esm_problem.constraints:
            out["G"] = np.stack([_signed_excess(c, ev.values[c.metric.name])
                                 for c in self.esm_problem.constraints], axis=1)

    def values(self, x: Any) -> dict[str, np.ndarray]:
        """Every metric's values (latency, objective, constraints) of genomes ``x``."""
        return self.esm_problem.evaluate(self.space.validate(x)).values

    def texts(self, x: Any) -> list[str]:
        """The space's text forms of genomes ``x`` (e.g. OFA's ``ks/e/d/r`` JSON)."""
        return self.space.to_strs(x)


def _signed_excess(con: Constraint, values: np.ndarray) -> np.ndarray:
    """pymoo's ``G``: relative excess, negative where satisfied (``sum(max(G, 0))`` is esm's
    violation)."""
    over = values - con.limit if con.op == "<=" else con.limit - values
    return over / max(abs(con.limit), 1e-12)


class SpaceSampling(Sampling):
    """Initial population from :meth:`SearchSpace.sample` (uniform over every gene's choices)."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space

    def _do(self, problem: Any, n_samples: int, *args: Any, random_state: Any = None,
            **kwargs: Any) -> np.ndarray:
        return self.space.sample(int(n_samples), seed=random_state)


class SpaceCrossover(Crossover):
    """The space's crossover: two parents, one child per mating.

    Parameters
    ----------
    space : SearchSpace
    prob : float
        Probability that a mating recombines (otherwise the child copies one parent, chosen
        by pymoo), as ``crossover_rate`` of :func:`esm.search.nsga2`.
    """

    def __init__(self, space: SearchSpace, prob: float = 0.9) -> None:
        super().__init__(n_parents=2, n_offsprings=1, prob=prob)
        self.space = space

    def _do(self, problem: Any, X: np.ndarray, *args: Any, random_state: Any = None,
            **kwargs: Any) -> np.ndarray:
        return self.space.crossover(X[0], X[1], seed=random_state)[None]


class SpaceMutation(Mutation):
    """The space's mutation: each gene changes with probability ``prob_var`` (default 1/G), at
    least one gene per genome, always to a different choice.

    Parameters
    ----------
    space : SearchSpace
    prob : float
        Probability that an offspring is mutated at all (pymoo's meaning; default 1).
    prob_var : float, optional
        Per-gene mutation rate (``mutation_rate`` of :func:`esm.search.nsga2`).
    """

    def __init__(self, space: SearchSpace, prob: float = 1.0,
                 prob_var: float | None = None) -> None:
        super().__init__(prob=prob, prob_var=prob_var)
        self.space = space

    def _do(self, problem: Any, X: np.ndarray, *args: Any, random_state: Any = None,
            **kwargs: Any) -> np.ndarray:
        rate = None if self.prob_var is None else float(_get_value(self.prob_var))
        return self.space.mutate(X, rate=rate, seed=random_state)


class SpaceDuplicates(DefaultDuplicateElimination):
    """Duplicates are genomes of the same network: equal after :meth:`SearchSpace.canonical`
    (genes of inactive layer slots do not count)."""

    def __init__(self, space: SearchSpace) -> None:
        canonical = getattr(space, "canonical", space.validate)
        super().__init__(epsilon=0.5,
                         func=lambda pop: canonical(pop.get("X")).astype(np.float64))


def operators(
    problem_or_space: LatencyProblem | SearchSpace,
    crossover_prob: float = 0.9,
    mutation_rate: float | None = None,
) -> dict[str, Any]:
    """The space's operators as keyword arguments for a pymoo genetic algorithm.

    Returns ``sampling``, ``crossover``, ``mutation`` and ``eliminate_duplicates``, e.g.
    ``NSGA2(pop_size=200, **operators(problem))``.
    """
    space = getattr(problem_or_space, "space", problem_or_space)
    if not all(callable(getattr(space, m, None)) for m in ("sample", "crossover", "mutate")):
        raise InputError(f"operators() needs a LatencyProblem or a search space, got "
                         f"{type(problem_or_space).__name__}")
    return {
        "sampling": SpaceSampling(space),
        "crossover": SpaceCrossover(space, prob=crossover_prob),
        "mutation": SpaceMutation(space, prob_var=mutation_rate),
        "eliminate_duplicates": SpaceDuplicates(space),
    }
