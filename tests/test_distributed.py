"""The Ray backend against a local Ray cluster started here (loopback, dashboard off).

Collection with two CPU workers covers the local backend's architectures; a worker that dies
mid-shard loses and duplicates nothing; sharded prediction equals local prediction.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from esm import spaces
from esm.errors import InputError

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'esm-nas[ray]')")
pytest.importorskip("torch", reason="measuring needs torch")

from esm.collect import architectures, collect  # noqa: E402
from esm.distributed import collect as ray_collect  # noqa: E402
from esm.distributed import predict as ray_predict  # noqa: E402
from esm.measure import Settings  # noqa: E402
from esm.store import Store  # noqa: E402

SPACE = "nb201"
TINY = {"channels": 4, "cells": 1, "resolution": 8}  # ~1-10 ms networks
# the fastest honest settings: a few samples per tiny network
FAST = Settings.quick(warmup_min_s=0.0, warmup_max_s=0.01, min_samples=3, max_time_s=0.03,
                      min_sample_s=2e-4, target_rel_ci=0.5, chunk=3)


@pytest.fixture(scope="module")
def cluster():
    """A private 2-CPU Ray cluster on 127.0.0.1, shut down after the module."""
    if ray.is_initialized():
        pytest.skip("a Ray session is already running in this process")
    src = str(Path(spaces.__file__).resolve().parents[2])  # .../python, for the workers
    env = {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": env}, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _keys(store: Store, run_id: int) -> list[str]:
    return [r[0] for r in store.execute("SELECT key FROM measurements WHERE run_id=?", (run_id,))]


def test_sample_shard_equals_sample() -> None:
    for name in ("ofa-mbv3", "nb201", "fbnet", "ofa-resnet50"):
        sp = spaces.get(name)
        full = sp.sample(1000, seed=7)
        parts = [sp.sample_shard(7, a, b - a) for a, b in [(0, 1), (1, 333), (333, 1000)]]
        np.testing.assert_array_equal(np.concatenate(parts), full)
        np.testing.assert_array_equal(sp.sample_shard(7, 999, 0), full[:0])
    with pytest.raises(InputError):
        spaces.get("nb201").sample_shard(0, -1, 3)


def test_collect_two_workers_equals_local(cluster, tmp_path: Path) -> None:
    n = 12
    with Store(tmp_path / "local.db") as st:
        loc = collect(SPACE, "cpu", n, st, seed=3, threads=1, settings=FAST, progress=False,
                      n_references=0, space_params=TINY)
        want = set(_keys(st, loc["run_id"]))
    with Store(tmp_path / "ray.db") as st:
        res = ray_collect(SPACE, "cpu", n, st, seed=3, settings=FAST, progress=False,
                          workers=2, shard_size=2, space_params=TINY)
        got = _keys(st, res["run_id"])
        rows = st.measurements(res["run_id"])
        assert st.run(res["run_id"])["node"] == "ray"
        prov = st.run(res["run_id"])["provenance"]
    assert res["measured"] == n and res["failed"] == 0 and res["remaining"] == 0
    assert len(got) == len(set(got)) == n
    assert set(got) == want == {",".join(map(str, g)) for g in architectures(
        spaces.get(SPACE, **TINY), n, 3)}
    # provenance: every row names the host, Ray node and device that measured it
    import json

    labels = [json.loads(r["node"]) for r in rows]
    assert all(lab["device"] == "cpu" and lab["ray_node"] and lab["host"] for lab in labels)
    assert {lab["slot"] for lab in labels} == {0, 1}  # both workers took part
    assert len(prov["workers"]) == 2 and prov["backend"] == "ray"
    # resumable: a second call measures nothing
    with Store(tmp_path / "ray.db") as st:
        again = ray_collect(SPACE, "cpu", n, st, seed=3, settings=FAST, progress=False,
                            workers=2, space_params=TINY)
    assert again["already"] == n and again["measured"] == 0


@pytest.mark.parametrize("max_restarts", [1, 0])
def test_worker_dies_mid_shard(cluster, tmp_path: Path, max_restarts: int) -> None:
    """Worker 0 exits after 3 measurements, in the middle of its second 2-arch shard: with a
    restart it comes back; without, worker 1 takes over its shards."""
    n = 10
    with Store(tmp_path / "kill.db") as st:
        res = ray_collect(SPACE, "cpu", n, st, seed=5, settings=FAST, progress=False,
                          workers=2, shard_size=2, max_restarts=max_restarts,
                          _exit_after={0: 3}, space_params=TINY)
        got = _keys(st, res["run_id"])
        assert st.integrity_check() == "ok"
    assert res["worker_deaths"] >= 1 and res["retried"] >= 1
    assert res["remaining"] == 0 and res["failed"] == 0
    assert len(got) == len(set(got)) == n  # nothing lost, nothing twice
    want = architectures(spaces.get(SPACE, **TINY), n, 5)
    assert set(got) == {",".join(map(str, g)) for g in want}
    alive = [w["alive"] for w in res["workers"]]
    assert alive == ([True, True] if max_restarts else [False, True])


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="its own GPU"):
        ray_collect(SPACE, "cuda:1", 2, tmp_path / "x.db")
    with pytest.raises(InputError, match="either genomes or random"):
        ray_predict(lambda: None)


def _toy_factory():
    """A factory of a predictor-like object (space + predict); nested, so Ray ships it by
    value and the workers need not import this test module."""

    def make():
        import numpy

        from esm import spaces as registry

        class Toy:
            space = registry.get("ofa-mbv3")

            def predict(self, g: numpy.ndarray) -> numpy.ndarray:
                c = self.space.costs(g)
                return c.macs * 1e-6 + 0.01 * c.params * 1e-3 + g.sum(axis=1)

        return Toy()

    return make


def test_sharded_predict_equals_local(cluster, tmp_path: Path) -> None:
    make = _toy_factory()
    toy = make()
    want = toy.predict(toy.space.sample(5000, seed=11))
    got, summary = ray_predict(make, random=5000, seed=11, workers=2, shard_rows=700)
    assert summary["shards"] == 8 and summary["count"] == 5000
    np.testing.assert_array_equal(got, want)
    # a genome array, shipped shard by shard, and written as shards
    g = toy.space.sample(3000, seed=2)
    none, s2 = ray_predict(make, g, workers=2, shard_rows=1000, out_dir=tmp_path / "o")
    assert none is None and s2["shards"] == 3
    import json

    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    parts = [np.load(tmp_path / "o" / m["file"]) for m in man["shards"]]
    np.testing.assert_array_equal(np.concatenate(parts), toy.predict(g))


def test_sharded_predict_model_file_cli(cluster, tmp_path: Path) -> None:
    """`esm predict --random N --seed K` gives the same numbers with and without Ray."""
    pytest.importorskip("sklearn")
    sur_mod = pytest.importorskip("esm.surrogate.surrogate")
    from esm.cli import main

    sp = spaces.get("ofa-mbv3")
    g = sp.sample(200, seed=0)
    y = 1.0 + sp.costs(g).macs * 1e-7
    path = tmp_path / "m.esm"
    sur_mod.Surrogate.fit(sp, g, y, encoding="fcc", model="ridge").save(path)
    base = ["predict", "--model", str(path), "--random", "40000", "--seed", "9"]
    assert main([*base, "--out", str(tmp_path / "local.npy")]) == 0
    assert main([*base, "--backend", "ray", "--workers", "2", "--shard-rows", "15000",
                 "--out", str(tmp_path / "ray.npy")]) == 0
    local, sharded = np.load(tmp_path / "local.npy"), np.load(tmp_path / "ray.npy")
    assert local.shape == (40000,)
    np.testing.assert_array_equal(sharded, local)
    # a CSV of architectures, sent shard by shard
    archs = sp.to_strs(sp.sample(500, seed=4))
    (tmp_path / "c.csv").write_text("arch\n" + "\n".join(f'"{a.replace(chr(34), chr(34) * 2)}"'
                                                        for a in archs) + "\n")
    base = ["predict", "--model", str(path), "--data", str(tmp_path / "c.csv")]
    assert main([*base, "--out", str(tmp_path / "l.npy")]) == 0
    assert main([*base, "--backend", "ray", "--workers", "2", "--out",
                 str(tmp_path / "r.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), np.load(tmp_path / "l.npy"))


def test_worker_resources() -> None:
    from esm.distributed.ray_collect import default_workers, worker_options

    cpu = worker_options("cpu", 2, None, 1)
    assert cpu["num_cpus"] == 2 and "num_gpus" not in cpu and cpu["max_task_retries"] == 0
    gpu = worker_options("cuda", None, None, 1)
    assert gpu["num_gpus"] == 1 and gpu["num_cpus"] == 1
    orin = worker_options("cuda", None, {"jetson_orin": 1}, 1)
    assert "num_gpus" not in orin and orin["resources"] == {"jetson_orin": 1}
    cluster = {"CPU": 16.0, "GPU": 4.0, "jetson_orin": 3.0}
    assert default_workers(cluster, cpu) == 8
    assert default_workers(cluster, gpu) == 4  # one per GPU
    assert default_workers(cluster, orin) == 3  # one per board
    assert default_workers({"CPU": 8.0}, gpu) == 0
