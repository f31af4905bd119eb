"""``esm search --device cuda`` (esm.search.device.device_search): the objective and the latency
budget on the device path, checked with the CPU twins of the kernels (backend="twin"); the CUDA
backend equals the twin on a GPU (gpu-marked, skipped here)."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from esm import cuda
from esm.cli import main
from esm.errors import InputError
from esm.search import device as dev
from esm.search import random_search, regularized_evolution, search
from esm.search.device import (
    DEVICE_OBJECTIVES,
    DeviceObjective,
    TwinOps,
    device_search,
    flat_pipeline,
)
from esm.search.problem import PROXIES, load_model, make_problem

MODELS = Path(__file__).resolve().parent / "fixtures" / "models"
HUBER = MODELS / "ofa_fcc_huber.esm"  # the esm train default: fcc + huber, identity target
RIDGE_LOG = MODELS / "fbnet_fcc_ridge.esm"  # another space, log target


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model(HUBER)


@pytest.fixture(scope="module")
def budget(model: Any) -> float:
    """A budget that a fifth of random networks meet."""
    lat = model.predict(model.space.sample(4000, seed=0))
    return float(np.quantile(lat, 0.2))


def _twin(model: Any, **kw: Any) -> Any:
    kw.setdefault("backend", "twin")
    return device_search(model, **kw)


@pytest.mark.parametrize("name", ["ofa-mbv3", "ofa-resnet50", "nb201", "fbnet", "anb-mnasnet"])
def test_fused_kernel_totals_equal_the_cost_stage(name: str) -> None:
    """predict_linear(costs=True): the cost totals of the latency's own walk = flat_costs."""
    from esm import _core, spaces
    from esm.predictor.plan import build_plan
    from esm.surrogate.encoders import FccEncoder

    space = spaces.get(name)
    flat = _core.FlatPipeline(space.kernel, space.config, build_plan(FccEncoder(space)))
    X, _ = flat.features(space.sample(300, seed=9))
    rng = np.random.default_rng(1)
    flat.set_linear(rng.normal(size=flat.n_features) * 1e-3, X.mean(0), X.std(0) + 1.0, 0.5,
                    "log")
    g = space.sample(2000, seed=3).astype(np.int32)
    g[7, 0] = space.choices[0]  # a bad row: NaN, zeros
    y, bad, totals = flat.predict_linear(g, True)
    y0, bad0 = flat.predict_linear(g)
    ref, _, ref_bad = _core.flat_costs(space.kernel, g, space.config, False)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(bad, bad0)
    np.testing.assert_array_equal(bad, ref_bad)
    np.testing.assert_array_equal(totals, ref)
    assert bad[7] == 0 and np.isnan(y[7]) and (totals[7] == 0).all()
    assert flat.predict_linear(g[:0], True)[2].shape == (0, 4)


def test_proxies_are_the_cpu_search_proxies() -> None:
    assert set(DEVICE_OBJECTIVES) == {"latency", *PROXIES}


@pytest.mark.parametrize("name", DEVICE_OBJECTIVES)
def test_device_values_equal_the_cpu_metrics(model: Any, name: str) -> None:
    """Latency from the folded pipeline, proxies from its cost stage = the CPU problem's values."""
    _, flat = flat_pipeline(model)
    space = model.space
    ops = TwinOps(flat, space.choices, space)
    obj = DeviceObjective(name, maximize=name == "macs", latency_budget=11.0)
    g = space.sample(3000, seed=4)
    got = obj.evaluator(ops)(g)
    prob = make_problem(latency_model=model, objective=name, latency_budget=11.0,
                        maximize=name == "macs")
    want = prob.evaluate(g)
    np.testing.assert_allclose(got["latency_ms"], want.values["latency_ms"], rtol=1e-9)
    np.testing.assert_allclose(got[obj.value_name], want.values[prob.objective.name], rtol=1e-9)
    np.testing.assert_allclose(got["score"], want.score, rtol=1e-9)
    np.testing.assert_allclose(got["violation"], want.violation, rtol=1e-9, atol=1e-12)


def test_budget_feasibility_first_and_values_of_the_returned_genomes(
        model: Any, budget: float) -> None:
    res = _twin(model, latency_budget=budget, population=1000, generations=15, top=8)
    d = res.to_dict()
    assert res.found and d["found"] and d["latency_ms"] <= budget
    assert res.evaluated == 1000 * 16 and res.generations == 15
    assert d["device"].startswith("cpu (twin") and d["algorithm"] == "device-evolution"
    assert len(d["architectures"]) == 8 and all(a["feasible"] for a in d["architectures"])
    # values are those of the returned genomes; best first; distinct networks
    space = model.space
    np.testing.assert_allclose(res.values["latency_ms"], model.predict(res.genomes), rtol=1e-9)
    np.testing.assert_array_equal(res.values["macs"], space.costs(res.genomes).macs)
    assert (np.diff(res.values["macs"]) <= 0).all()
    assert len({r.tobytes() for r in space.canonical(res.genomes)}) == len(res.genomes)
    assert d["objective"] == res.values["macs"][0] and d["best"] == res.texts()[0]
    h = [x for x in res.history if np.isfinite(x)]
    assert all(b >= a for a, b in itertools.pairwise(h))  # elitist: never worse
    assert d["per_second"] > 0 and d["time"]["search_s"] > 0
    json.dumps(d)


def test_beats_cpu_evolution_and_random_search_at_equal_evaluations(
        model: Any, budget: float) -> None:
    n = 10_000
    res = _twin(model, latency_budget=budget, population=100, max_evaluations=n)
    assert res.evaluated == n and res.found
    prob = make_problem(latency_model=model, objective="macs", latency_budget=budget)
    cpu = regularized_evolution(prob, max_evaluations=n, seed=0)
    rnd = random_search(prob, max_evaluations=n, seed=0)
    assert cpu.evaluated == rnd.evaluated == n
    best = res.values["macs"][0]
    assert best >= cpu.values["macs"][0] > rnd.values["macs"][0]


def test_infeasible_budget_minimises_the_violation(model: Any) -> None:
    lat = model.predict(model.space.sample(20_000, seed=1))
    res = _twin(model, latency_budget=float(lat.min()) * 0.5, population=500, generations=10)
    assert not res.found and not res.to_dict()["found"]
    assert not res.feasible.any()
    assert res.values["latency_ms"][0] < lat.min()  # closer to the budget than random networks
    assert np.isnan(res.history).all()


@pytest.mark.parametrize("objective,maximize", [("latency", None), ("params", False),
                                                ("activation_bytes", True)])
def test_other_objectives_and_directions(model: Any, budget: float, objective: str,
                                         maximize: bool | None) -> None:
    res = _twin(model, objective=objective, maximize=maximize, latency_budget=budget * 1.2,
                population=500, generations=10)
    space = model.space
    g = space.sample(5500, seed=8)
    name = "latency_ms" if objective == "latency" else objective
    vals = model.predict(g) if objective == "latency" else getattr(space.costs(g), objective)
    ok = model.predict(g) <= budget * 1.2
    got = res.values[name][0]
    assert res.found
    assert got >= vals[ok].max() if maximize else got <= vals[ok].min()
    assert res.problem.objective.name == name


def test_same_seed_same_result_and_stopping_rules(model: Any, budget: float) -> None:
    a = _twin(model, latency_budget=budget, population=300, generations=6, seed=5)
    b = _twin(model, latency_budget=budget, population=300, generations=6, seed=5)
    c = _twin(model, latency_budget=budget, population=300, generations=6, seed=6)
    np.testing.assert_array_equal(a.genomes, b.genomes)
    assert a.history == b.history
    assert not np.array_equal(a.genomes, c.genomes)
    neg = _twin(model, latency_budget=budget, population=300, generations=2, seed=-3)
    big = _twin(model, latency_budget=budget, population=300, generations=2, seed=2**64 - 3)
    np.testing.assert_array_equal(neg.genomes, big.genomes)  # seeds are taken modulo 2**64
    r = _twin(model, latency_budget=budget, population=300, max_evaluations=1000)
    assert r.evaluated == 1000 and r.generations == 3  # 300 + 300 + 300 + 100
    r = _twin(model, latency_budget=budget, population=300, max_evaluations=200)
    assert r.evaluated == 200 and r.generations == 0
    r = _twin(model, latency_budget=budget, population=300, generations=0)
    assert r.evaluated == 300 and len(r.history) == 1
    r = _twin(model, latency_budget=budget, population=300, seconds=0.05)
    assert r.evaluated >= 300 and r.wall_s < 5
    r = search(model, latency_budget=budget, population=300, generations=2, device="cuda",
               backend="twin", mutation_rate=0.2)
    assert r.evaluated == 900 and r.settings["mutation_rate"] == 0.2


def test_log_target_model_of_another_space() -> None:
    m = load_model(RIDGE_LOG)
    lat = m.predict(m.space.sample(2000, seed=0))
    b = float(np.quantile(lat, 0.3))
    res = _twin(m, latency_budget=b, population=400, generations=8)
    assert res.found and res.values["latency_ms"][0] <= b
    np.testing.assert_allclose(res.values["latency_ms"], m.predict(res.genomes), rtol=1e-9)


@pytest.mark.parametrize("model_file,needle", [
    ("ofa_stats_knn.esm", "linear surrogates only"),
    ("resnet_fcc_gbt.esm", "linear surrogates only"),
])
def test_models_the_device_pipeline_cannot_run(model_file: str, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        _twin(MODELS / model_file, latency_budget=10.0, generations=1, population=10)


def test_unsupported_options(model: Any) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"objective": str(RIDGE_LOG)}, "not supported on the device"),
        ({"objective": lambda g: g.sum(1)}, "named objective"),
        ({"objective": "energy"}, "not supported on the device"),
        ({"constraints": ["params<=5e6"]}, "constraint"),
        ({"algorithm": "nsga2"}, "only evolution"),
        ({"algorithm": "random"}, "only evolution"),
        ({"device": "tpu"}, "cpu, cuda or cuda:N"),
        ({"population": 1}, "population"),
        ({"latency_budget": -1.0}, "positive"),
    ]
    for kw, needle in cases:
        args: dict[str, Any] = {"latency_budget": 10.0, "generations": 1, **kw}
        with pytest.raises(InputError, match=needle):
            _twin(model, **args)
    with pytest.raises(InputError, match="not available on the device"):
        search(model, latency_budget=10.0, device="cuda", batch=10)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["search", "--model", str(HUBER), *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(cuda.available() and importlib.util.find_spec("cupy") is not None,
                    reason="a usable GPU and cupy are here")
def test_cli_device_cuda_without_a_gpu_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "--latency-budget", "11", "--device", "cuda")
    assert code == 2 and out == ""
    assert "CUDA" in err or "cupy" in err


def test_cli_device_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for extra, needle in [
        (["--algorithm", "nsga2"], "only evolution"),
        (["--constraint", "params<=5e6"], "constraint"),
        (["--batch", "10"], "--batch"),
        (["--objective", str(RIDGE_LOG)], "not supported on the device"),
        (["--device", "gpu"], "cpu, cuda or cuda:N"),
    ]:
        code, _, err = _cli(capsys, "--latency-budget", "11", "--device", "cuda", *extra)
        assert code == 2 and needle in err, (extra, err)
    code, _, err = main(["search", "--model", str(MODELS / "ofa_stats_knn.esm"),
                         "--latency-budget", "11", "--device", "cuda:0"]), *capsys.readouterr()
    assert code == 2 and "linear surrogates only" in err


@pytest.fixture
def twin_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--device cuda`` runs on the twins (the CLI path without a GPU)."""
    real = dev._backend
    monkeypatch.setattr(dev, "_backend", lambda backend, index: real("twin", index))


def test_cli_device_text_and_json(twin_cli: None, capsys: pytest.CaptureFixture[str],
                                  tmp_path: Path, budget: float) -> None:
    args = ["--latency-budget", f"{budget}", "--device", "cuda", "--population", "512",
            "--generations", "5", "--top", "3"]
    code, out, _ = _cli(capsys, *args)
    assert code == 0
    assert "device-evolution on ofa-mbv3: maximize macs subject to latency_ms <=" in out
    assert "evaluated 3,072 candidates" in out and "5 generations of 512" in out
    assert out.count(" ms  macs=") == 3
    code, out, _ = _cli(capsys, *args, "--json", "--out", str(tmp_path / "r.json"))
    d = json.loads(out)
    assert code == 0 and d["found"] and d["latency_ms"] <= budget and d["evaluated"] == 3072
    assert d["device"].startswith("cpu (twin") and d["model"] == str(HUBER)
    assert {"best", "objective", "per_second", "wall_s", "architectures"} <= set(d)
    assert json.loads((tmp_path / "r.json").read_text())["best"] == d["best"]
    code, _, err = _cli(capsys, "--latency-budget", "0.01", "--device", "cuda",
                        "--population", "100", "--generations", "2")
    assert code == 1 and "no feasible architecture" in err


def test_cli_cpu_default_unchanged_and_verify_device_option(
        capsys: pytest.CaptureFixture[str], budget: float) -> None:
    code, out, _ = _cli(capsys, "--latency-budget", f"{budget}", "--generations", "3", "--json")
    d = json.loads(out)
    assert code == 0 and d["algorithm"] == "evolution" and d["device"] == "cpu"
    code, _, err = _cli(capsys, "--latency-budget", f"{budget}", "--generations", "1",
                        "--verify", "1", "--verify-device", "tpu")
    assert code == 2 and "tpu" in err


# ---------------------------------------------------------------------- on a GPU
@pytest.mark.gpu
@pytest.mark.skipif(not cuda.available() or importlib.util.find_spec("cupy") is None,
                    reason="needs a usable CUDA GPU, esm built with CUDA and cupy")
def test_cuda_objective_search_equals_twin(model: Any, budget: float) -> None:
    kw: dict[str, Any] = {"latency_budget": budget, "population": 4096, "generations": 6,
                          "seed": 3}
    twin = device_search(model, backend="twin", **kw)
    gpu = device_search(model, backend="cuda", **kw)
    assert gpu.settings["device"] == "cuda:0"
    np.testing.assert_array_equal(gpu.genomes[0], twin.genomes[0])
    np.testing.assert_allclose(gpu.history, twin.history, rtol=1e-9)
    np.testing.assert_allclose(gpu.values["latency_ms"][0], twin.values["latency_ms"][0],
                               rtol=1e-6)
    lat = device_search(model, backend="cuda", objective="latency", **kw)
    np.testing.assert_array_equal(
        lat.genomes[0], device_search(model, backend="twin", objective="latency", **kw).genomes[0])
