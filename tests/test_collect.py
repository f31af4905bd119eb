"""Collection runs: deterministic architecture lists, resume, drift guard, CLI, crash safety."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from esm import spaces
from esm.cli import main
from esm.collect import architectures, collect
from esm.measure import Settings
from esm.store import Store, genome_key
from tests.conftest import ESM_PATH, needs_gpu

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
TINY = {"width_mult": 0.25, "resolutions": [32, 40, 4], "n_classes": 10}
FAST = Settings(warmup_min_s=0.005, warmup_max_s=0.02, warmup_window=2, min_samples=3,
                max_time_s=0.05, target_rel_ci=0.05, min_sample_s=0.0, chunk=2)


def _tiny():
    return spaces.get("ofa-mbv3", **TINY)


def test_architectures_deterministic_unique_prefix():
    sp = spaces.get("ofa-mbv3")
    a = architectures(sp, 300, seed=3)
    assert a.shape == (300, sp.genome_length) and a.dtype == np.int32
    assert np.array_equal(a, architectures(sp, 300, seed=3))
    assert np.array_equal(a[:100], architectures(sp, 100, seed=3))
    assert not np.array_equal(a[:10], architectures(sp, 10, seed=4))
    assert np.array_equal(sp.canonical(a), a)
    assert len({genome_key(g) for g in a}) == 300


def test_collect_resume_and_drift_checks(tmp_path):
    path = tmp_path / "s.sqlite"
    from esm.measure.warmup import WarmupRule

    r1 = collect(_tiny(), "cpu", 3, str(path), threads=1, settings=FAST, progress=False,
                 n_references=1, reference_every=2,
                 warmup=WarmupRule(min_s=0.0, max_s=10.0, tol=0.5))
    assert r1["measured"] + r1["failed"] == 3 and r1["already"] == 0
    assert r1["warmup"]["rounds"] >= 3  # warmed up on the reference before timing
    assert r1["reference_checks"] == 3  # start, after 2, end
    r2 = collect(_tiny(), "cpu", 4, str(path), threads=1, settings=FAST, progress=False,
                 n_references=1, reference_every=2, warmup=None)
    assert r2["warmup"] is None
    assert r2["run_id"] == r1["run_id"] and r2["already"] == 3
    assert r2["measured"] + r2["failed"] == 1
    r3 = collect(_tiny(), "cpu", 4, str(path), threads=1, settings=FAST, progress=False,
                 n_references=1)
    assert r3["measured"] == 0 and r3["reference_checks"] == 0
    with Store(path) as st:
        rows = st.measurements(r1["run_id"])
        assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
        want = {genome_key(g) for g in architectures(_tiny(), 4, 0)}
        assert {r["key"] for r in rows} == want
        checks = st.reference_checks(r1["run_id"])
        assert [c["seq"] for c in checks] == [0, 1, 2, 3, 4]
        assert checks[0]["rel_change"] is None and checks[1]["rel_change"] is not None
        run = st.run(r1["run_id"])
        assert run["threads"] == 1 and run["provenance"]["threads"] == 1
        assert Settings.from_dict(run["settings"]) == FAST


@pytest.mark.gpu
@needs_gpu
def test_cli_collect_cuda(tmp_path):
    store = tmp_path / "s.sqlite"
    assert main(["collect", "--space", "ofa-mbv3", "--space-params", json.dumps(TINY), "--n",
                 "3", "--device", "cuda", "--batch-size", "4", "--store", str(store),
                 "--settings", str(_fast_settings_file(tmp_path))]) == 0
    with Store(store) as st:
        (run,) = st.runs()
        assert run["device"] == "cuda:0" and run["batch_size"] == 4
        rows = st.measurements(run["id"])
        assert len(rows) == 3 and all(r["status"] == "ok" and r["median_ms"] > 0 for r in rows)


def _fast_settings_file(tmp_path):
    f = tmp_path / "fast.json"
    f.write_text(json.dumps(FAST.to_dict()))
    return f


def test_cli_collect_bad_input(tmp_path):
    store = tmp_path / "s.sqlite"
    base = ["collect", "--space", "ofa-mbv3", "--n", "2", "--store", str(store)]
    assert main(["collect", "--space", "nope", "--n", "2", "--store", str(store)]) == 2
    assert main([*base, "--device", "tpu"]) == 2
    assert main([*base, "--device", "cuda:7"]) == 2  # no GPU here, or no 8th GPU
    assert main([*base, "--settings", "nope"]) == 2
    assert main([*base, "--space-params", "[1]"]) == 2
    assert main([*base, "--space-params", '{"width_mult": -1}']) == 2
    assert main([*base, "--batch-size", "0"]) == 2
    assert main([*base, "--clock", "thread_cpu", "--threads", "2"]) == 2
    assert not store.exists()  # nothing half-written
    bad_store = ["collect", "--space", "ofa-mbv3", "--n", "1", "--settings",
                 str(_fast_settings_file(tmp_path))]
    assert main([*bad_store, "--store", str(tmp_path / "no" / "s.sqlite")]) == 2
    assert main([*bad_store, "--store", "/proc/esm_cannot_write.sqlite"]) == 2
    assert main([*bad_store, "--store", str(tmp_path)]) == 2


def _cli(tmp_path, store, n):
    return [sys.executable, "-m", "esm", "collect", "--space", "ofa-mbv3", "--space-params",
            json.dumps(TINY), "--n", str(n), "--store", str(store), "--threads", "1",
            "--settings", str(_fast_settings_file(tmp_path)), "--references", "1",
            "--reference-every", "3", "--no-warmup", "--json"]


def _count(store):
    if not store.exists():
        return 0
    try:
        with Store(store) as st:
            return int(st.execute("SELECT count(*) FROM measurements")[0][0])
    except Exception:  # the store is being created by the child
        return 0


def test_crash_safety_sigkill_and_resume(tmp_path):
    """SIGKILL `esm collect` at random moments, resume; every architecture exactly once."""
    store = tmp_path / "crash.sqlite"
    n = 10
    env = {**os.environ, "PYTHONPATH": ESM_PATH, "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(12345)
    counts = []
    for _ in range(3):
        before = _count(store)
        target = before + int(rng.integers(0, 3))
        proc = subprocess.Popen(_cli(tmp_path, store, n), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        # wait until a random number of new rows is stored, then kill at a random moment
        t0 = time.monotonic()
        while _count(store) < target and proc.poll() is None and time.monotonic() - t0 < 120:
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 0.5)))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if store.exists():
            with Store(store) as st:
                assert st.integrity_check() == "ok"
        counts.append(_count(store))
    done = subprocess.run(_cli(tmp_path, store, n), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["already"] + summary["measured"] + summary["failed"] == n
    with Store(store) as st:
        assert st.integrity_check() == "ok"
        assert len(st.runs()) == 1
        rid = st.runs()[0]["id"]
        keys = [k for (k,) in st.execute("SELECT key FROM measurements WHERE run_id=?", (rid,))]
        want = {genome_key(g) for g in architectures(_tiny(), n, 0)}
        assert len(keys) == n and set(keys) == want  # every architecture exactly once
        rows = st.measurements(rid)
        assert all(r["n_samples"] >= 3 and r["samples"].size == r["n_samples"] for r in rows)
        out = tmp_path / "out.csv"
        st.export_csv(out)
    exported = list(csv.reader(open(out, encoding="utf-8")))
    assert exported[0] == ["arch", "lat_cpu_1"]
    stored = {(r["arch"], r["median_ms"]) for r in rows}
    assert {(a, float(v)) for a, v in exported[1:]} == stored and len(exported) == n + 1
    assert counts == sorted(counts)  # progress is never lost


def test_drift_guard_flags_and_marks_rows(tmp_path, monkeypatch):
    """Reference medians [10, 20, 10] ms: the second check drifts, rows since check 1 marked."""
    import esm.measure
    from esm.measure import Measurement

    values = iter([10.0, 10.0, 10.0, 20.0, 10.0, 10.0])  # ref, a, a, ref, a, ref

    def fake(module, shape, device, settings):
        v = next(values)
        return Measurement.from_samples([v * 0.999, v, v * 1.001] * 3, settings)

    monkeypatch.setattr(esm.measure, "measure_module", fake)
    path = tmp_path / "d.sqlite"
    res = collect(_tiny(), "cpu", 3, str(path), threads=1, settings=FAST, progress=False,
                  n_references=1, reference_every=2, warmup=None)
    assert res["reference_checks"] == 3 and res["drift_flags"] == 1
    with Store(path) as st:
        checks = st.reference_checks(res["run_id"])
        assert [c["drift"] for c in checks] == [0, 1, 0]
        assert checks[1]["rel_change"] == pytest.approx(1.0)
        assert [r["drift"] for r in st.measurements(res["run_id"])] == [1, 1, 0]
