"""The compiled predictor behind Surrogate.predict, model files without torch/sklearn, and
``esm predict``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from esm import InputError, spaces
from tests.conftest import ESM_PATH

pytest.importorskip("sklearn")
surrogate_mod = pytest.importorskip("esm.surrogate")

REPO = Path(__file__).resolve().parents[1]


def _latency(space: spaces.SearchSpace, g: np.ndarray) -> np.ndarray:
    c = space.costs(g)
    return 1e-8 * c.macs + 2e-7 * c.activation_bytes + 0.05 * c.layers + 0.5


@pytest.fixture(scope="module")
def ofa() -> spaces.SearchSpace:
    return spaces.get("ofa-mbv3")


@pytest.fixture(scope="module")
def models(ofa: spaces.SearchSpace, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from esm.surrogate import Surrogate

    g = ofa.sample(300, seed=0)
    y = _latency(ofa, g)
    out = {}
    d = tmp_path_factory.mktemp("models")
    for name, enc, model, params in [
        ("lut", "lut", "lut", {}),
        ("gbt", "fcc", "gbt", {"n_estimators": 40}),
        ("forest", "onehot", "forest", {"n_estimators": 10}),
        ("mlp", "stats", "mlp", {}),
        ("knn", "fcc", "knn", {}),
        ("gp", "stats", "gp", {}),
    ]:
        sur = Surrogate.fit(ofa, g, y, encoding=enc, model=model, model_params=params, seed=0)
        path = d / f"{name}.esm"
        sur.save(path)
        out[name] = (sur, path)
    return out


@pytest.mark.parametrize("name", ["lut", "gbt", "forest", "mlp", "knn", "gp"])
def test_surrogate_predict_is_compiled_and_equals_reference(
    models: dict, ofa: spaces.SearchSpace, name: str
) -> None:
    sur, _ = models[name]
    p = sur.compile()
    assert p.fused, p.fused_reason
    g = ofa.sample(2000, seed=9)
    got = sur.predict(g)
    np.testing.assert_allclose(got, sur.predict_reference(g), rtol=1e-9)
    np.testing.assert_array_equal(np.concatenate(list(sur.predict_stream([g[:700], g[700:]]))),
                                  got)
    with pytest.raises(InputError):
        sur.predict(g[:, :3])


_BLOCKED = textwrap.dedent(
    """
    import sys, importlib.abc
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "sklearn", "scipy"):
                raise ImportError("blocked: " + name)
    sys.meta_path.insert(0, Block())
    import numpy as np, esm
    sur = esm.load(sys.argv[1])
    g = np.load(sys.argv[2])
    np.save(sys.argv[3], sur.predict(g))
    assert sur.compile().fused
    bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn", "scipy")]
    assert not bad, bad
    """
)


@pytest.mark.parametrize("name", ["gbt", "knn"])
def test_model_file_predicts_without_torch_and_sklearn(
    models: dict, ofa: spaces.SearchSpace, tmp_path: Path, name: str
) -> None:
    sur, path = models[name]
    g = ofa.sample(500, seed=4)
    np.save(tmp_path / "g.npy", g)
    script = tmp_path / "child.py"
    script.write_text(_BLOCKED)
    r = subprocess.run(
        [sys.executable, str(script), str(path), str(tmp_path / "g.npy"), str(tmp_path / "p.npy")],
        capture_output=True, text=True, env={"PYTHONPATH": ESM_PATH}, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), sur.predict(g), rtol=1e-12)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esm", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": ESM_PATH}, timeout=300)


def test_cli_predict(models: dict, ofa: spaces.SearchSpace, tmp_path: Path) -> None:
    sur, path = models["gbt"]
    r = _cli("predict", "--model", str(path), "--random", "5000", "--seed", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["count"] == 5000 and out["seconds"] > 0 and out["per_second"] > 0
    assert out["fused"] is True and out["whole_space"] is False
    g = ofa.sample(5000, seed=3)
    assert out["mean_ms"] == pytest.approx(float(sur.predict(g).mean()), rel=1e-9)
    # --data CSV in, CSV out with the same architectures
    data = tmp_path / "d.csv"
    texts = ofa.to_strs(g[:20])
    data.write_text("arch,x\n" + "".join(f'"{t.replace(chr(34), chr(34) * 2)}",1\n'
                                         for t in texts))
    dst = tmp_path / "p.csv"
    r = _cli("predict", "--model", str(path), "--data", str(data), "--out", str(dst))
    assert r.returncode == 0, r.stderr
    import csv

    rows = list(csv.DictReader(dst.open()))
    assert [row["arch"] for row in rows] == texts
    np.testing.assert_allclose([float(row["latency_ms"]) for row in rows], sur.predict(g[:20]),
                               rtol=1e-5)
    # gzipped, the same; a cut gzip is a clear error (exit 2)
    import gzip

    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(data.read_bytes()))
    r = _cli("predict", "--model", str(path), "--data", str(tmp_path / "d.csv.gz"), "--out",
             str(tmp_path / "q.csv"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "q.csv").read_text() == dst.read_text()
    (tmp_path / "cut.csv.gz").write_bytes((tmp_path / "d.csv.gz").read_bytes()[:30])
    r = _cli("predict", "--model", str(path), "--data", str(tmp_path / "cut.csv.gz"))
    assert r.returncode == 2 and "not a readable CSV" in r.stderr
    npy = tmp_path / "p.npy"
    r = _cli("predict", "--model", str(path), "--random", "10", "--out", str(npy))
    assert r.returncode == 0, r.stderr
    assert np.load(npy).shape == (10,)


def test_cli_predict_bad_input(models: dict, tmp_path: Path) -> None:
    _, path = models["lut"]
    r = _cli("predict", "--model", str(tmp_path / "missing.esm"), "--random", "3")
    assert r.returncode == 2 and "not found" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nx\n")
    r = _cli("predict", "--model", str(path), "--data", str(bad))
    assert r.returncode == 2 and "arch" in r.stderr
    r = _cli("predict", "--model", str(path), "--random", "-1")
    assert r.returncode == 2
    r = _cli("predict", "--model", str(path))
    assert r.returncode == 2


def test_surrogate_falls_back_when_the_form_cannot_be_compiled(
    models: dict, ofa: spaces.SearchSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import esm.predictor
    from esm.surrogate import Surrogate

    def refuse(_: object) -> None:
        raise InputError("no compiled twin for this form")

    monkeypatch.setattr(esm.predictor, "compile", refuse)
    sur = Surrogate.load(models["gbt"][1])
    g = ofa.sample(50, seed=1)
    np.testing.assert_array_equal(sur.predict(g), sur.predict_reference(g))
    assert sur.compile() is None and "no compiled twin" in str(sur.compile_error)
    with pytest.raises(InputError, match="cannot run on 'cuda'"):
        sur.predict(g, device="cuda")
