"""esm.integrations.pymoo: the vectorized pymoo problem, the space's operators, NSGA-II."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from esm import spaces
from esm.errors import InputError
from esm.search import Constraint, Metric, make_problem
from esm.search.toy import CostModel, LutModel

pytest.importorskip("pymoo", reason="pymoo is not installed (pip install 'esm-nas[pymoo]')")

from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.optimize import minimize

from esm.integrations.pymoo import LatencyProblem, operators


@pytest.fixture(scope="module")
def space() -> spaces.SearchSpace:
    return spaces.get("ofa-mbv3")


@pytest.fixture(scope="module")
def model(space: spaces.SearchSpace) -> CostModel:
    return CostModel(space)


@pytest.fixture(scope="module")
def budget(space: spaces.SearchSpace, model: CostModel) -> float:
    """The 10% quantile of random architectures' latency."""
    return float(np.quantile(model.predict(space.sample(2000, seed=0)), 0.10))


def test_problem_is_integer_vectorized_and_matches_esm(space: spaces.SearchSpace,
                                                       model: CostModel, budget: float) -> None:
    p = LatencyProblem(model, objective="macs", latency_budget=budget,
                       constraints=["params<=6e6"])
    assert (p.n_var, p.n_obj, p.n_ieq_constr) == (space.genome_length, 2, 2)
    np.testing.assert_array_equal(p.xl, 0)
    np.testing.assert_array_equal(p.xu, space.choices - 1)
    assert p.vtype is int and p.objective_names == ["latency_ms", "macs"]
    g = space.sample(500, seed=1)
    out = p.evaluate(g, return_as_dictionary=True)
    assert p.esm_problem.counters.calls == 1  # one batch call for 500 candidates
    c = space.costs(g)
    np.testing.assert_allclose(out["F"][:, 0], model.predict(g))
    np.testing.assert_allclose(out["F"][:, 1], -c.macs)  # maximised: negated
    np.testing.assert_allclose(out["F"] * p.signs, np.stack([model.predict(g), c.macs], 1))
    ev = make_problem(latency_model=model, objective="macs", latency_budget=budget,
                      constraints=["params<=6e6"]).evaluate(g)
    np.testing.assert_allclose(np.maximum(out["G"], 0).sum(1), ev.violation, rtol=1e-12)
    assert ((out["G"] <= 0).all(1) == ev.feasible).all() and 0 < ev.feasible.sum() < 500
    vals = p.values(g[:3])
    np.testing.assert_allclose(vals["params"], c.params[:3])
    assert p.texts(g[:2]) == [space.to_str(g[0]), space.to_str(g[1])]


def test_operators_are_the_space_s_own(space: spaces.SearchSpace, model: CostModel) -> None:
    p = LatencyProblem(model, objective="latency")
    ops = operators(p, crossover_prob=1.0, mutation_rate=0.2)
    rng = np.random.default_rng
    x = ops["sampling"]._do(p, 50, random_state=rng(3))
    np.testing.assert_array_equal(x, space.sample(50, seed=rng(3)))
    X = np.stack([x[:25], x[25:]])
    kids = ops["crossover"]._do(p, X, random_state=rng(4))
    assert kids.shape == (1, 25, space.genome_length)
    np.testing.assert_array_equal(kids[0], space.crossover(x[:25], x[25:], seed=rng(4)))
    mut = ops["mutation"]._do(p, x, random_state=rng(5))
    np.testing.assert_array_equal(mut, space.mutate(x, rate=0.2, seed=rng(5)))
    # duplicates are the same network: genes of inactive blocks do not count
    from pymoo.core.population import Population

    a = x[:1].copy()
    a[0, space.gene_names.index("d0")] = 0  # stage 0 of depth 2: blocks 2 and 3 inactive
    b = a.copy()
    b[0, 2] = (b[0, 2] + 1) % 3  # ks2: kernel of an inactive block
    assert (space.canonical(a) == space.canonical(b)).all() and not (a == b).all()
    pop = Population.new("X", np.concatenate([x[1:5], a, b]))
    assert len(ops["eliminate_duplicates"].do(pop)) == 5
    with pytest.raises(InputError, match="search space"):
        operators(object())


def test_pymoo_nsga2_finds_a_feasible_front(space: spaces.SearchSpace, model: CostModel,
                                             budget: float) -> None:
    p = LatencyProblem(model, objective="macs", latency_budget=budget)
    res = minimize(p, NSGA2(pop_size=60, **operators(p)), ("n_gen", 15), seed=1)
    assert p.esm_problem.counters.evaluated <= 60 * 15 and p.esm_problem.counters.calls == 15
    X = space.validate(res.X)  # integer genomes inside the space
    vals = p.values(X)
    assert (vals["latency_ms"] <= budget).all() and (res.CV <= 0).all()
    F = res.F
    dominated = [((F <= f).all(1) & (F < f).any(1)).any() for f in F]
    assert not any(dominated)
    # better than the best of the initial random population under the same budget
    first = space.sample(60, seed=np.random.default_rng(1))
    ok = model.predict(first) <= budget
    start = space.costs(first).macs[ok].max() if ok.any() else 0
    assert vals["macs"].max() > start
    # same seed, same result
    p2 = LatencyProblem(model, objective="macs", latency_budget=budget)
    res2 = minimize(p2, NSGA2(pop_size=60, **operators(p2)), ("n_gen", 15), seed=1)
    np.testing.assert_array_equal(res.X, res2.X)


def test_single_objective_callable_and_constraint_objects(space: spaces.SearchSpace,
                                                          model: CostModel) -> None:
    energy = LutModel(space, seed=3)

    def layers_x2(g: np.ndarray) -> np.ndarray:
        return 2.0 * space.costs(g).layers

    con = Constraint(Metric("layers_x2", "callable", layers_x2), 80.0, "<=")
    p = LatencyProblem(model, objective=energy, constraints=[con], latency_budget=20.0)
    assert p.objective_names == ["latency_ms", "LutModel"] and p.n_ieq_constr == 2
    p1 = LatencyProblem(model, objective="latency", constraints=["macs>=3e8"])
    assert p1.n_obj == 1 and p1.objective_names == ["latency_ms"]
    res = minimize(p1, GA(pop_size=40, **operators(p1)), ("n_gen", 10), seed=0)
    assert space.costs(space.validate(res.X[None])).macs[0] >= 3e8
    with pytest.raises(InputError, match="objective"):
        LatencyProblem(model, objective="flops")
    with pytest.raises(InputError, match="space"):
        LatencyProblem(model, objective=LutModel(spaces.get("ofa-mbv3", width_mult=1.0)))


def test_model_file_through_the_compiled_predictor(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    import csv
    import itertools

    import esm
    from esm.surrogate import Surrogate

    space = spaces.get("ofa-mbv3")
    with open(data_dir / "ofa_mbv3_gpu.csv", newline="") as f:
        rows = list(itertools.islice(csv.DictReader(f), 300))
    g = space.from_strs(r["arch"] for r in rows)
    y = np.array([float(r["lat_titan_xp_64"]) for r in rows])
    path = tmp_path / "titan.esm"
    Surrogate.fit(space, g, y, encoding="lut", model="ridge", column="lat_titan_xp_64").save(path)
    p = LatencyProblem(str(path), objective="params", latency_budget=float(np.median(y)))
    lat_metric: Any = p.esm_problem.latency
    assert lat_metric is not None and lat_metric.model.predictor is not None  # compiled
    x = space.sample(100, seed=0)
    F = p.evaluate(x, return_values_of=["F"])
    np.testing.assert_allclose(F[:, 0], esm.load(str(path)).predict(x), rtol=1e-9)


def test_import_without_pymoo_says_how_to_install() -> None:
    code = ("import sys; sys.modules['pymoo'] = None\n"
            "try:\n    import esm.integrations.pymoo\n"
            "except ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pip install 'esm-nas[pymoo]'" in out.stdout
