"""The SQLite store: schema, round trips, refusal of newer schemas, CSV import/export."""

from __future__ import annotations

import csv
import itertools
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from esm import spaces
from esm.cli import main
from esm.errors import InputError
from esm.measure import Measurement, Settings
from esm.store import SCHEMA_VERSION, Store, genome_key, parse_column

SPACE_FILES = {"ofa-mbv3": "ofa_mbv3_gpu.csv", "nb201": "nb201_latency.csv",
               "fbnet": "fbnet_latency.csv"}


def _space_or_skip(name):
    if name not in spaces.names():
        pytest.skip(f"space {name} is not registered yet")
    return spaces.get(name)


def _head(src: Path, dst: Path, n: int) -> Path:
    with open(src, encoding="utf-8") as fi, open(dst, "w", encoding="utf-8") as fo:
        fo.writelines(itertools.islice(fi, n + 1))
    return dst


def _meas(rng, n=12):
    return Measurement.from_samples(rng.gamma(5.0, 1.0, n) + 3, Settings.quick(), inner=2,
                                    warmup_s=0.1, warmup_iters=7)


def _run(store, **kw):
    sp = spaces.get("ofa-mbv3")
    args = dict(source="measured", space=sp.name, space_params=sp.params(), device="cpu",
                batch_size=1, threads=1, provenance={"x": 1},
                settings=Settings.quick().to_dict())
    args.update(kw)
    return store.ensure_run(**args)


def test_round_trip_and_unique(tmp_path):
    rng = np.random.default_rng(0)
    sp = spaces.get("ofa-mbv3")
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        assert st.schema_version == SCHEMA_VERSION
        rid, created = _run(st)
        assert created and _run(st) == (rid, False)
        assert _run(st, batch_size=8)[0] != rid
        g = sp.canonical(sp.sample(3, 1))
        ms = [_meas(rng) for _ in g]
        for gi, m in zip(g, ms, strict=True):
            st.add_measurement(rid, arch=sp.to_str(gi), key=genome_key(gi), genome=gi,
                               batch_size=1, input_shape=(1, 3, 224, 224), measurement=m)
        st.add_measurement(rid, arch="x", key="bad", genome=[0], batch_size=1, error="boom")
        with pytest.raises(InputError):
            st.add_measurement(rid, arch=sp.to_str(g[0]), key=genome_key(g[0]), genome=g[0],
                               batch_size=1, measurement=ms[0])
    with Store(path) as st:  # reopen
        rows = st.measurements(rid)
        assert len(rows) == 3 and len(st.measurements(rid, status=None)) == 4
        for r, m in zip(rows, ms, strict=True):
            assert np.array_equal(r["samples"], m.samples_ms)
            assert r["median_ms"] == m.median_ms and r["ci_low_ms"] == m.ci_low_ms
            assert r["inner"] == 2 and r["input_shape"] == [1, 3, 224, 224]
        genomes, lat, archs = st.dataset(rid)
        assert genomes.dtype == np.int32 and np.array_equal(genomes, g)
        assert lat.dtype == np.float64 and list(lat) == [m.median_ms for m in ms]
        assert archs == sp.to_strs(g)
        run = st.run(rid)
        assert run["settings"] == Settings.quick().to_dict() and run["provenance"] == {"x": 1}
        assert st.integrity_check() == "ok"
        assert st.execute("PRAGMA journal_mode")[0][0] == "wal"


def test_newer_schema_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(InputError, match="schema version 99"):
        Store(path)
    assert main(["export", "--store", str(path), "--out", str(tmp_path / "o.csv")]) == 2
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(InputError, match="not an esm store"):
        Store(other)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(InputError):
        Store(junk)
    with pytest.raises(InputError):
        Store(tmp_path / "missing_dir" / "s.sqlite")
    with pytest.raises(InputError):
        Store(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError):
            Store(ro / "s.sqlite")
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("name", list(SPACE_FILES))
def test_import_shared_csv_and_export(tmp_path, data_dir, name):
    sp = _space_or_skip(name)
    src = _head(data_dir / SPACE_FILES[name], tmp_path / "part.csv", 300)
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        res = st.import_csv(src, sp)
        header = next(csv.reader(open(src, encoding="utf-8")))
        assert len(res["runs"]) == len(header) - 1 and res["rows"] == 300
        runs = st.runs()
        assert [r["column"] for r in runs] == header[1:]
        assert all(r["source"] == "import:part.csv" for r in runs)
        # a second import of the same file adds nothing
        again = st.import_csv(src, sp)
        assert again["runs"] == [] and len(again["skipped_columns"]) == len(header) - 1
        out = tmp_path / "out.csv"
        st.export_csv(out)
        genomes, _, _ = st.dataset(runs[0]["id"])
        assert genomes.shape == (300 - res["duplicates"] // (len(header) - 1),
                                 sp.genome_length)
    a = list(csv.reader(open(src, encoding="utf-8")))
    b = list(csv.reader(open(out, encoding="utf-8")))
    assert b[0] == a[0]
    if res["duplicates"] == 0:  # same rows, same values
        assert [r[0] for r in b[1:]] == [r[0] for r in a[1:]]
        va = np.array([[float(v) for v in r[1:]] for r in a[1:]])
        vb = np.array([[float(v) for v in r[1:]] for r in b[1:]])
        assert np.array_equal(va, vb)


def test_import_gzipped_csv(tmp_path, data_dir):
    """A ``.csv.gz`` imports as its CSV, once, under any name; a cut one is refused."""
    import gzip

    sp = _space_or_skip("nb201")
    src = _head(data_dir / SPACE_FILES["nb201"], tmp_path / "part.csv", 50)
    gz = tmp_path / "part.csv.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(src.read_bytes())
    with Store(tmp_path / "s.sqlite") as st:
        first = st.import_csv(gz, sp)
        assert first["rows"] == 50 and first["runs"]
        n_runs = len(st.runs())
        for again in (gz, src, copy):  # the same columns, compressed or not, renamed or not
            res = st.import_csv(again, sp)
            assert res["runs"] == [] and len(res["skipped_columns"]) == len(first["runs"])
        assert len(st.runs()) == n_runs
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gz.read_bytes()[:40])
    with Store(tmp_path / "t.sqlite") as st, pytest.raises(InputError, match="gzip"):
        st.import_csv(cut, sp)


def _store_state(path):
    with Store(path) as st:
        return (len(st.runs()), st.execute("SELECT count(*) FROM measurements")[0][0])


@pytest.mark.parametrize("content,match", [
    ("name,lat_a_1\nx,1.0\n", "missing column 'arch'"),
    ("arch\n{}\n", "no latency columns"),
    ("arch,lat_a_1\nARCH,fast\n", "not numeric"),
    ("arch,lat_a_1\nARCH,-1\n", "finite latency"),
    ("arch,lat_a_1\nARCH,1.0,2.0\n", "fields"),
    ("arch,lat_a_1\nARCH,1.0\n{\"ks\": [3]},2.0\n", "line 3"),
])
def test_bad_csv_writes_nothing(tmp_path, content, match):
    sp = spaces.get("ofa-mbv3")
    arch = sp.to_str(sp.sample(1, 0)[0]).replace('"', '""')
    f = tmp_path / "bad.csv"
    f.write_text(content.replace("ARCH", f'"{arch}"'), encoding="utf-8")
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with Store(path) as st, pytest.raises(InputError, match=match):
        st.import_csv(f, sp)
    assert _store_state(path) == (0, 0)
    assert main(["import", str(f), "--space", "ofa-mbv3", "--store", str(path)]) == 2
    assert _store_state(path) == (0, 0)


def test_cli_import_export(tmp_path, data_dir, capsys):
    src = _head(data_dir / "ofa_mbv3_gpu.csv", tmp_path / "p.csv", 50)
    path = tmp_path / "s.sqlite"
    assert main(["import", str(src), "--space", "ofa-mbv3", "--store", str(path)]) == 0
    assert main(["export", "--store", str(path), "--out", str(tmp_path / "o.csv"),
                 "--run", "2"]) == 0
    rows = list(csv.reader(open(tmp_path / "o.csv", encoding="utf-8")))
    assert rows[0] == ["arch", "lat_2080ti_32"] and len(rows) == 51
    assert main(["export", "--store", str(path), "--out", str(tmp_path / "o.csv"),
                 "--run", "99"]) == 2
    assert main(["import", str(src), "--space", "nope", "--store", str(path)]) == 2
    assert main(["runs", "--store", str(path), "--json"]) == 0
    capsys.readouterr()


def test_parse_column():
    assert parse_column("lat_2080ti_32") == ("2080ti", 32)
    assert parse_column("lat_gold_6240") == ("gold_6240", 1)
    assert parse_column("lat_pixel3") == ("pixel3", 1)
    assert parse_column("lat_silver_4210r") == ("silver_4210r", 1)
