"""Search algorithms, problems, verification and the ``esm search`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from esm import spaces
from esm.cli import main
from esm.errors import InputError
from esm.search import (
    Constraint,
    Metric,
    make_problem,
    non_dominated_sort,
    nsga2,
    random_search,
    regularized_evolution,
    search,
    verify,
)
from esm.search import problem as problem_mod
from esm.search.toy import CostModel, LutModel


@pytest.fixture(scope="module")
def space() -> spaces.SearchSpace:
    return spaces.get("ofa-mbv3")


@pytest.fixture(scope="module")
def model(space: spaces.SearchSpace) -> CostModel:
    return CostModel(space)


@pytest.fixture(scope="module")
def budget(space: spaces.SearchSpace, model: CostModel) -> float:
    """A tight budget: the 5% quantile of random architectures' latency."""
    return float(np.quantile(model.predict(space.sample(2000, seed=0)), 0.05))


def _same(a: Any, b: Any) -> None:
    np.testing.assert_array_equal(a.genomes, b.genomes)
    for k in a.values:
        np.testing.assert_array_equal(a.values[k], b.values[k])
    assert a.evaluated == b.evaluated


@pytest.mark.parametrize("algorithm", ["evolution", "nsga2", "random"])
def test_same_seed_same_result(model: CostModel, budget: float, algorithm: str) -> None:
    kw: dict[str, Any] = dict(objective="macs", latency_budget=budget, algorithm=algorithm,
                              population=60, generations=5)
    a, b = search(model, seed=3, **kw), search(model, seed=3, **kw)
    _same(a, b)
    c = search(model, seed=4, **kw)
    assert not np.array_equal(a.genomes, c.genomes)


def test_evolution_respects_budget_and_reports(model: CostModel, budget: float,
                                               space: spaces.SearchSpace) -> None:
    res = search(model, objective="macs", latency_budget=budget, population=100, batch=25,
                 max_evaluations=2000, seed=1)
    assert res.found and res.evaluated == 2000
    assert res.generations == (2000 - 100) // 25
    lat = model.predict(res.genomes)
    np.testing.assert_allclose(lat, res.values["latency_ms"])  # values are the model's
    assert np.all(lat[res.feasible] <= budget)
    macs = space.costs(res.genomes).macs
    np.testing.assert_array_equal(macs, res.values["macs"])
    assert np.all(np.diff(res.values["macs"][res.feasible]) <= 0)  # best first (maximised)
    assert len({tuple(g) for g in space.canonical(res.genomes)}) == len(res.genomes)  # distinct
    hist = np.array(res.history)
    assert np.all(np.diff(hist[~np.isnan(hist)]) >= 0)  # best-so-far never gets worse
    d = res.to_dict()
    assert d["best"] == space.to_str(res.best) and d["latency_ms"] <= budget
    assert d["per_second"] > 0 and 0 <= d["time"]["outside_predictor_share"] <= 1


def test_evolution_beats_random_search_at_equal_evaluations(
    model: CostModel, budget: float
) -> None:
    evo, rnd = [], []
    for seed in range(4):
        kw = dict(objective="macs", latency_budget=budget, max_evaluations=3000, seed=seed)
        evo.append(search(model, algorithm="evolution", population=100, batch=20, **kw))
        rnd.append(search(model, algorithm="random", population=500, **kw))
    assert all(r.evaluated == 3000 for r in evo + rnd)
    e = np.mean([r.values["macs"][0] for r in evo])
    r = np.mean([r.values["macs"][0] for r in rnd])
    assert all(x.found for x in evo + rnd)
    assert e > 1.02 * r, (e, r)


def test_nsga2_front_is_non_dominated_sorted_and_feasible(
    model: CostModel, budget: float, space: spaces.SearchSpace
) -> None:
    res = search(model, objective="macs", latency_budget=2 * budget, algorithm="nsga2",
                 population=80, generations=15, seed=2)
    assert res.found and res.feasible.all() and res.genomes.shape[0] > 3
    lat, macs = res.values["latency_ms"], res.values["macs"]
    assert np.all(lat <= 2 * budget)
    assert np.all(np.diff(lat) >= 0)
    F = np.stack([lat, -macs], axis=1)
    assert np.all(non_dominated_sort(F) == 0)
    assert res.best_index == int(np.argmax(macs))
    np.testing.assert_allclose(model.predict(res.genomes), lat)
    assert res.evaluated == 80 * 16


def test_nsga2_improves_on_its_initial_population(model: CostModel, budget: float) -> None:
    short = search(model, objective="macs", latency_budget=budget, algorithm="nsga2",
                   population=60, generations=0, seed=5)
    long = search(model, objective="macs", latency_budget=budget, algorithm="nsga2",
                  population=60, generations=30, seed=5)
    assert long.found
    best_short = short.values["macs"][short.best_index] if short.found else 0
    assert long.values["macs"][long.best_index] > best_short


def test_values_belong_to_the_returned_genomes(space: spaces.SearchSpace) -> None:
    """A LUT over raw genes reads inactive genes too: reported values must still be exact."""
    lut = LutModel(space, seed=2)
    budget = float(np.quantile(lut.predict(space.sample(2000, seed=0)), 0.05))
    for algorithm in ("evolution", "nsga2"):
        res = search(lut, objective="macs", latency_budget=budget, algorithm=algorithm,
                     population=60, generations=10, seed=0)
        np.testing.assert_array_equal(lut.predict(res.genomes), res.values["latency_ms"])
        assert np.all(lut.predict(res.genomes)[res.feasible] <= budget)
        canon = space.canonical(res.genomes)
        assert len({tuple(g) for g in canon}) == len(canon)


def test_callable_objective_constraints_and_seconds(space: spaces.SearchSpace) -> None:
    lut = LutModel(space, seed=1)
    calls: list[int] = []

    def acc(g: np.ndarray) -> np.ndarray:  # a fake accuracy: more depth and kernel is better
        calls.append(len(g))
        return g.sum(axis=1).astype(np.float64)

    prob = make_problem(latency_model=lut, objective=acc, maximize=True, latency_budget=4.0,
                        constraints=["params<=6e6"])
    res = regularized_evolution(prob, population=50, batch=50, seconds=0.3, seed=0)
    assert res.found and res.evaluated == sum(calls) and len(calls) == res.generations + 1
    assert min(calls) == 50  # whole batches, never one candidate at a time
    assert np.all(res.values["params"][res.feasible] <= 6e6)
    assert np.all(res.values["latency_ms"][res.feasible] <= 4.0)
    assert res.problem.describe()["constraints"] == ["latency_ms <= 4", "params <= 6e+06"]


def test_infeasible_budget_reports_closest(model: CostModel) -> None:
    res = search(model, objective="macs", latency_budget=1e-3, max_evaluations=300,
                 population=50, seed=0)
    assert not res.found and not res.feasible.any()
    with pytest.raises(InputError, match="no feasible architecture"):
        _ = res.best
    res2 = search(model, objective="macs", latency_budget=1e-3, algorithm="nsga2",
                  population=30, generations=2)
    assert not res2.found and res2.to_dict()["best"] is None


def test_bad_problems(model: CostModel, space: spaces.SearchSpace) -> None:
    with pytest.raises(InputError, match="unknown objective"):
        make_problem(latency_model=model, objective="flops")
    with pytest.raises(InputError, match="budget"):
        make_problem(latency_model=model, latency_budget=0)
    with pytest.raises(InputError, match="NAME<=VALUE"):
        make_problem(latency_model=model, constraints=["macs=3"])
    with pytest.raises(InputError):
        Constraint(Metric("macs", "proxy"), 1.0, "<")
    other = spaces.get("ofa-mbv3", width_mult=1.0)
    with pytest.raises(InputError, match="space"):
        make_problem(space=other, latency_model=model)
    with pytest.raises(InputError, match="unknown algorithm"):
        search(model, algorithm="annealing")
    bad = make_problem(latency_model=model, objective=lambda g: np.zeros(3))
    with pytest.raises(InputError, match="returned 3 values"):
        bad.evaluate(space.sample(5, seed=0))
    with pytest.raises(InputError):
        nsga2(bad, population=1)
    with pytest.raises(InputError):
        random_search(bad, batch=0)


def test_verify_compares_with_stated_error(model: CostModel, budget: float) -> None:
    pytest.importorskip("torch")  # verify builds each network
    res = search(model, objective="macs", latency_budget=budget, max_evaluations=500, seed=0)
    shapes: list[tuple[int, ...]] = []

    def fake_measure(module: Any, shape: tuple[int, ...]) -> float:
        shapes.append(shape)
        return float(model.predict(res.genomes[len(shapes) - 1])[0]) * 1.1

    model.metrics = {"train": {"mape": 1.0}, "validation": {"mape": 12.0}}  # type: ignore[attr-defined]
    try:
        v = verify(res, k=3, measure=fake_measure)
    finally:
        del model.metrics  # type: ignore[attr-defined]
    assert v["k"] == 3 and len(shapes) == 3 and shapes[0][0] == 1
    assert v["stated_mape"] == 12.0 and v["stated_from"] == "validation"
    np.testing.assert_allclose([r["rel_error"] for r in v["rows"]], -100 / 11 * np.ones(3))
    assert v["within_stated"] == 3 and v["mape_within_stated"]


def test_verify_normalises_by_the_drift_reference(model: CostModel, budget: float) -> None:
    """The machine is 1.5x slower now than when the surrogate was built: the reference network
    (measured before and after) says so, and the measured latencies are scaled back."""
    pytest.importorskip("torch")  # verify builds each network
    res = search(model, objective="macs", latency_budget=budget, max_evaluations=500, seed=0)
    space = res.problem.space
    ref = space.sample(1, seed=5)[0]
    ref_ms = float(model.predict(ref[None])[0])
    calls: list[int] = []

    def slow_device(module: Any, shape: tuple[int, ...]) -> float:
        calls.append(0)
        n = len(calls)
        g = ref if n in (1, 5) else res.genomes[n - 2]  # reference, 3 networks, reference
        return float(model.predict(g[None])[0]) * 1.5 * (1.1 if n > 1 else 1.0)

    model.info = {"target": {"drift_reference": {"arch": space.to_str(ref),  # type: ignore[attr-defined]
                                                 "median_ms": ref_ms}},
                  "metrics": {"validation": {"mape": 4.0, "ape95": 9.0}}}
    try:
        v = verify(res, k=3, measure=slow_device)
    finally:
        del model.info  # type: ignore[attr-defined]
    assert len(calls) == 5
    assert v["speed_ratio"] == pytest.approx(1.5 * np.sqrt(1.1))
    for row in v["rows"]:
        assert row["measured_raw_ms"] == pytest.approx(row["predicted_ms"] * 1.65)
        assert row["rel_error"] == pytest.approx((np.sqrt(1.1) / 1.1 - 1) * 100)
    assert v["stated_mape"] == 4.0 and v["error_bound"] == 9.0 and v["within_bound"] == 3


# ---------------------------------------------------------------------- command line
@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: CostModel) -> dict[str, Path]:
    """Stand-in surrogate files: the loader is patched to return toy models by file name."""
    lat = tmp_path / "lat.esm"
    energy = tmp_path / "energy.esm"
    other = tmp_path / "other.esm"
    for p in (lat, energy, other):
        p.write_text("stand-in")
    models = {lat.name: model, energy.name: LutModel(model.space, seed=3),
              other.name: LutModel(spaces.get("ofa-mbv3", width_mult=1.0))}

    def load(path: str | Path) -> Any:
        p = Path(path)
        if not p.exists():
            raise InputError(f"surrogate file not found: {p}")
        return models[p.name]

    monkeypatch.setattr(problem_mod, "load_model", load)
    return {"lat": lat, "energy": energy, "other": other}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["search", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_and_out(files: dict[str, Path], budget: float, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "res.json"
    code, stdout, _ = _run(capsys, "--model", str(files["lat"]), "--latency-budget",
                           str(budget), "--population", "50", "--generations", "4",
                           "--seed", "1", "--json", "--out", str(out))
    assert code == 0
    d = json.loads(stdout)
    for key in ("best", "latency_ms", "objective", "evaluated", "per_second"):
        assert d[key] is not None
    assert d["objective_name"] == "macs" and d["direction"] == "maximize"
    assert d["objective"] == d["architectures"][0]["macs"]
    assert d["latency_ms"] <= budget and d["evaluated"] == 50 + 4 * 12
    assert json.loads(out.read_text())["best"] == d["best"]


def test_cli_nsga2_file_objective_human(files: dict[str, Path], budget: float,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = _run(capsys, "--model", str(files["lat"]), "--latency-budget",
                           str(2 * budget), "--objective", str(files["energy"]),
                           "--algorithm", "nsga2", "--population", "40", "--generations", "3")
    assert code == 0
    assert "minimize energy" in stdout and "Pareto front" in stdout


@pytest.mark.parametrize("argv, message", [
    (["--latency-budget", "0"], "latency-budget"),
    (["--latency-budget", "-3"], "latency-budget"),
    (["--latency-budget", "5", "--objective", "flops"], "unknown objective"),
    (["--latency-budget", "5", "--seconds", "0"], "seconds"),
    (["--latency-budget", "5", "--population", "0"], "population"),
    (["--latency-budget", "5", "--constraint", "macs~4"], "NAME<=VALUE"),
])
def test_cli_bad_input_exit_2(files: dict[str, Path], capsys: pytest.CaptureFixture[str],
                              argv: list[str], message: str) -> None:
    code, _, err = _run(capsys, "--model", str(files["lat"]), *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_cli_space_mismatch_and_missing_file(files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--model", str(files["lat"]), "--latency-budget", "5",
                        "--objective", str(files["other"]))
    assert code == 2 and "space" in err
    code, _, err = _run(capsys, "--model", str(tmp_path / "nope.esm"), "--latency-budget", "5")
    assert code == 2 and "not found" in err


def test_cli_no_feasible_exit_1(files: dict[str, Path], capsys: pytest.CaptureFixture[str]
                                ) -> None:
    code, stdout, err = _run(capsys, "--model", str(files["lat"]), "--latency-budget", "1e-4",
                             "--population", "20", "--generations", "2", "--json")
    assert code == 1 and "no feasible architecture" in err
    assert json.loads(stdout)["found"] is False


# ---------------------------------------------------------------------- real surrogate files
@pytest.fixture(scope="module")
def surrogate_files(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    """Two small LUT surrogates fitted to measured OFA-MBv3 latencies, plus one of another
    space variant (width 1.0)."""
    pytest.importorskip("sklearn")
    import csv
    import itertools

    from esm.surrogate import Surrogate

    space = spaces.get("ofa-mbv3")
    with open(data_dir / "ofa_mbv3_gpu.csv", newline="") as f:
        rows = list(itertools.islice(csv.DictReader(f), 300))
    g = space.from_strs(r["arch"] for r in rows)
    out = tmp_path_factory.mktemp("surrogates")
    files = {}
    for name, col, sp in [("lat", "lat_2080ti_64", space), ("titan", "lat_titan_xp_64", space),
                          ("narrow", "lat_titan_xp_64", spaces.get("ofa-mbv3", width_mult=1.0))]:
        y = np.array([float(r[col]) for r in rows])
        sur = Surrogate.fit(sp, g, y, encoding="lut", model="ridge", column=col)
        files[name] = out / f"{name}.esm"
        sur.save(files[name])
    return files


def test_search_with_saved_surrogate_files(surrogate_files: dict[str, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import esm

    lat = problem_mod.load_model(surrogate_files["lat"])
    assert lat.predictor is not None, lat.compile_error  # searched through compiled code
    sur = esm.load(str(surrogate_files["lat"]))  # type: ignore[attr-defined]
    g = lat.space.sample(50, seed=0)
    np.testing.assert_allclose(lat.predict(g), sur.predict(g), rtol=1e-9)
    budget = float(np.quantile(lat.predict(lat.space.sample(1000, seed=1)), 0.1))
    code, stdout, _ = _run(capsys, "--model", str(surrogate_files["lat"]), "--latency-budget",
                           f"{budget:.6f}", "--objective", str(surrogate_files["titan"]),
                           "--maximize", "--population", "40", "--generations", "5", "--json")
    assert code == 0
    d = json.loads(stdout)
    assert d["objective_name"] == "titan" and d["direction"] == "maximize"
    best = lat.space.from_str(d["best"])
    assert lat.predict(best[None])[0] <= budget
    np.testing.assert_allclose(lat.predict(best[None])[0], d["latency_ms"], rtol=1e-9)
    code, _, err = _run(capsys, "--model", str(surrogate_files["lat"]), "--latency-budget",
                        "30", "--objective", str(surrogate_files["narrow"]))
    assert code == 2 and "space" in err
    # a file that is not a surrogate: refused as bad input
    bad = surrogate_files["lat"].parent / "bad.esm"
    bad.write_text("not a model")
    code, _, err = _run(capsys, "--model", str(bad), "--latency-budget", "30")
    assert code == 2, err


def test_cli_verify_measures_on_cpu(surrogate_files: dict[str, Path],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    lat = problem_mod.load_model(surrogate_files["lat"])
    budget = float(np.quantile(lat.predict(lat.space.sample(1000, seed=1)), 0.02))
    code, stdout, err = _run(capsys, "--model", str(surrogate_files["lat"]), "--latency-budget",
                             f"{budget:.6f}", "--population", "30", "--generations", "2",
                             "--verify", "1", "--measure-preset", "quick", "--threads", "1",
                             "--clock", "thread_cpu", "--json")
    assert code == 0, err
    v = json.loads(stdout)["verify"]
    row = v["rows"][0]
    assert v["k"] == 1 and row["measured_ms"] > 0
    assert row["rel_error"] == pytest.approx(
        (row["predicted_ms"] - row["measured_ms"]) / row["measured_ms"] * 100)
    assert v["stated_from"] == "train" and v["stated_mape"] > 0


def test_single_objective_nsga2_minimises_latency(model: CostModel) -> None:
    res = search(model, objective="latency", algorithm="nsga2", population=40, generations=10,
                 seed=0)
    assert res.found and res.problem.objective.name == "latency_ms"
    lat = res.values["latency_ms"]
    assert res.best_index == 0 and lat[0] == lat.min()
    rnd = model.predict(model.space.sample(400, seed=0))
    assert lat[0] < np.quantile(rnd, 0.05)


@pytest.mark.parametrize("size", [2, 3, 25])
@pytest.mark.parametrize("impl", ["compiled", "numpy"])
def test_tournament_winner_ranks_follow_the_exact_distribution(size: int, impl: str) -> None:
    """Winners of size-k tournaments with replacement: rank r (0 = best by violation, then
    score) wins with probability ((P - r) / P) ** k - ((P - r - 1) / P) ** k."""
    from esm.search import evolution

    tournament_winners = (evolution.tournament_winners if impl == "compiled"
                          else evolution.tournament_winners_numpy)
    rng = np.random.default_rng(1)
    pop = 40
    violation = np.where(rng.random(pop) < 0.4, rng.random(pop), 0.0)
    score = rng.permutation(pop).astype(np.float64)
    rank = np.empty(pop, np.int64)
    rank[np.lexsort((score, violation))] = np.arange(pop)
    n = 200_000
    won = rank[tournament_winners(np.random.default_rng(2), violation, score, n, size)]
    freq = np.bincount(won, minlength=pop) / n
    r = np.arange(pop)
    exact = ((pop - r) / pop) ** size - ((pop - r - 1) / pop) ** size
    assert np.abs(freq - exact).max() < 0.006
    # a feasible member always beats an infeasible one
    best_bad = rank[violation > 0].min()
    assert (won < best_bad).mean() == pytest.approx(exact[:best_bad].sum(), abs=0.006)


def test_compiled_tournament_is_seeded_thread_independent_and_checked() -> None:
    from esm._native import core

    rng = np.random.default_rng(0)
    v, s = np.where(rng.random(1000) < 0.5, rng.random(1000), 0.0), rng.random(1000)
    one = core.tournament_winners(v, s, 50_000, 7, 123, threads=1)
    assert np.array_equal(one, core.tournament_winners(v, s, 50_000, 7, 123, threads=2))
    assert not np.array_equal(one, core.tournament_winners(v, s, 50_000, 7, 124))
    assert one.min() >= 0 and one.max() < 1000
    # ties in violation and score: the first drawn wins, so every tied member can win
    tied = core.tournament_winners(np.zeros(5), np.zeros(5), 10_000, 3, 1)
    assert set(np.unique(tied)) == set(range(5))
    for bad in [(v[:10], s, 5, 2), (v, s, 5, 0), (v, s, -1, 2), (v[:0], s[:0], 5, 2),
                (np.full(1000, np.nan), s, 5, 2), (v.reshape(10, 100), s.reshape(10, 100), 5, 2)]:
        with pytest.raises(ValueError):
            core.tournament_winners(*bad, 0)


def test_archive_keeps_best_distinct_in_order() -> None:
    """Archive.offer keeps the first (best by violation, then score) of each canonical genome,
    at most k, best first, across batches; the values stay aligned with the genomes."""
    from esm.search.problem import Evaluation
    from esm.search.result import Archive

    space = spaces.get("ofa-mbv3")
    problem = make_problem(space, objective="macs", maximize=False)
    arch = Archive(problem, 4)
    g = space.sample(6, seed=3)
    dup = g.copy()  # the same genomes again, worse scores: must not displace the originals
    rng = np.random.default_rng(0)
    score = rng.permutation(6).astype(np.float64)
    arch.offer(g, Evaluation(values={"x": score * 10}, score=score, violation=np.zeros(6)))
    arch.offer(dup, Evaluation(values={"x": score * 100}, score=score + 0.5,
                               violation=np.zeros(6)))
    best = np.argsort(score)[:4]
    np.testing.assert_array_equal(arch.genomes, g[best])
    np.testing.assert_array_equal(arch.score, score[best])
    np.testing.assert_array_equal(arch.values["x"], score[best] * 10)
    # an infeasible candidate ranks after every feasible one
    bad = space.sample(1, seed=99)
    arch.offer(bad, Evaluation(values={"x": np.zeros(1)}, score=np.array([-1e9]),
                               violation=np.array([1.0])))
    assert not any((arch.genomes == bad[0]).all(1))


def test_default_batch_schedule_keeps_the_historical_loop(model: CostModel,
                                                          budget: float) -> None:
    """The default batch is ``P // 4`` for the first RAMP_START generations, so runs of up to
    ~100k evaluations (P = 100) are the historical loop exactly; then it grows to MAX_BATCH."""
    from esm.search import evolution

    assert evolution.default_batch(100, 0) == 25
    assert evolution.default_batch(100, evolution.RAMP_START - 1) == 25
    assert evolution.default_batch(100, evolution.RAMP_START) == 50
    assert evolution.default_batch(100, evolution.RAMP_START + evolution.RAMP_EVERY) == 100
    assert evolution.default_batch(100, 10**9) == evolution.MAX_BATCH
    assert evolution.default_batch(3, 0) == 1
    prob = make_problem(latency_model=model, objective="macs", latency_budget=budget)
    old = regularized_evolution(prob, population=100, batch=25, max_evaluations=5000, seed=3)
    new = regularized_evolution(prob, population=100, max_evaluations=5000, seed=3)
    np.testing.assert_array_equal(old.genomes, new.genomes)
    assert old.history == new.history and old.evaluated == new.evaluated == 5000


def test_batch_larger_than_population(model: CostModel, budget: float) -> None:
    prob = make_problem(latency_model=model, objective="macs", latency_budget=budget)
    res = regularized_evolution(prob, population=20, batch=500, generations=6, seed=0)
    assert res.evaluated == 20 + 6 * 500 and res.generations == 6
    assert res.found and res.settings["batch"] == 500
    capped = regularized_evolution(prob, population=20, batch=500, max_evaluations=1000, seed=0)
    assert capped.evaluated == 1000
    with pytest.raises(InputError, match="batch"):
        regularized_evolution(prob, population=20, batch=0)
