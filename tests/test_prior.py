"""esm.prior: reading and merging priors (CSV, gzipped CSV, store), leaving the target out."""

from __future__ import annotations

import csv
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import esm
from esm import prior
from esm.errors import InputError

SPACE = esm.spaces.get("nb201")


def _write(path: Path, genomes: np.ndarray, columns: dict[str, np.ndarray]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", *columns])
        for i, g in enumerate(genomes):
            w.writerow([SPACE.to_str(g), *(repr(float(v[i])) for v in columns.values())])
    return path


@pytest.fixture()
def tables(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    g = SPACE.canonical(np.unique(SPACE.canonical(SPACE.sample(400, seed=1)), axis=0))
    rng = np.random.default_rng(0)
    a = _write(tmp_path / "a.csv", g[:300], {"lat_x": rng.uniform(1, 2, 300),
                                              "lat_y": rng.uniform(3, 4, 300)})
    b = _write(tmp_path / "b.csv", g[100:], {"lat_x": rng.uniform(5, 6, len(g) - 100),
                                              "lat_z": rng.uniform(7, 8, len(g) - 100)})
    return a, b, g


def test_merge_by_architecture_and_name_collisions(tables: tuple[Path, Path, np.ndarray]
                                                   ) -> None:
    a, b, g = tables
    p = prior.load(SPACE, [a, b])
    assert p.n_rows == len(g)
    assert p.columns == ["a:lat_x", "lat_y", "b:lat_x", "lat_z"]
    assert np.isfinite(p.latency).sum(axis=0).tolist() == [300, 300, len(g) - 100, len(g) - 100]
    # every row appears once, in canonical form
    assert len(np.unique(p.genomes, axis=0)) == p.n_rows
    assert np.array_equal(p.genomes, SPACE.canonical(p.genomes))


def test_exclude_target_and_duplicates(tables: tuple[Path, Path, np.ndarray],
                                       tmp_path: Path) -> None:
    a, _, g = tables
    p = prior.load(SPACE, [a], exclude=["lat_y"])
    assert p.columns == ["lat_x"] and "lat_y (the target column)" in p.dropped
    # the same values under another name: dropped as the target's own measurements
    _, names, values = prior.read_table(a)
    p = prior.load(SPACE, [a])
    gone = p.drop_duplicates_of(g[:50], values[:50, names.index("lat_y")])
    assert gone == ["lat_y"] and p.columns == ["lat_x"]
    assert p.drop_duplicates_of(g[:50], np.full(50, 9.0)) == []


def test_network_properties_are_not_devices(tmp_path: Path) -> None:
    """Columns named for a property of the networks (Accel-NASBench's ``macs_m`` and
    ``params_m``, accuracy, FLOPs) are left out of a prior, and say why; devices whose names
    merely start alike are kept."""
    g = SPACE.canonical(np.unique(SPACE.canonical(SPACE.sample(200, seed=2)), axis=0))
    rng = np.random.default_rng(1)
    props = ["macs_m", "params_m", "Params", "FLOPs (G)", "acc", "accuracy", "top1_acc"]
    devices = ["lat_x", "accel_v1", "macbook_m1", "ms_per_image_tpu"]
    v = rng.uniform(1, 2, len(g))
    p = prior.load(SPACE, [_write(tmp_path / "t.csv", g, {c: rng.uniform(1, 2, len(g))
                                                           for c in props + devices})])
    assert p.columns == devices
    assert p.dropped == [f"{c} (a network property, not a device)" for c in props]
    with pytest.raises(InputError, match=r"no usable prior column.*macs_m"):
        prior.load(SPACE, [_write(tmp_path / "u.csv", g, {"macs_m": v})])


def test_copies_count_once(tables: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    """A device given twice (the same file, its gzip, a store it was imported into, or a
    file of a subset of its rows) is one prior column, under its own name; a network
    property is left out under a shared name too."""
    from esm.store import Store

    a, b, _ = tables
    once = prior.load(SPACE, [a, b])
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(a.read_bytes()))
    with Store(tmp_path / "s.sqlite") as st:
        st.import_csv(a, SPACE)
    archs, names, values = prior.read_table(a)
    part = tmp_path / "part.csv"
    with open(part, "w", newline="") as fh:
        csv.writer(fh).writerows([["arch", "lat_y", "macs_m"],
                                  *[[x, repr(float(v)), "1.0"] for x, v in
                                    zip(archs[:120], values[:120, names.index("lat_y")],
                                        strict=True)]])
    for extra in (a, gz, tmp_path / "s.sqlite", part):
        p = prior.load(SPACE, [a, b, extra])
        assert p.columns == once.columns, extra
        assert np.array_equal(p.latency, once.latency, equal_nan=True)
        assert all("a copy of" in d or "network property" in d for d in p.dropped)
    p = prior.load(SPACE, [part, a])  # the longer copy stays, whichever file came first
    assert p.columns == ["lat_x", "lat_y"] and np.isfinite(p.latency).sum() == 600
    assert "lat_y (a copy of lat_y in a.csv)" in p.dropped
    # values that only start alike are not copies
    g = prior.load(SPACE, [a]).genomes
    near = _write(tmp_path / "near.csv", g, {"lat_w": values[:, 0] * 1.01})
    assert prior.load(SPACE, [a, near]).columns == ["lat_x", "lat_y", "lat_w"]


def test_gzip_store_and_min_rows(tables: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    a, _, _ = tables
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(a.read_bytes()))
    p1, p2 = prior.load(SPACE, [a]), prior.load(SPACE, [gz])
    assert p1.columns == p2.columns and np.array_equal(p1.latency, p2.latency, equal_nan=True)
    from esm.store import Store

    with Store(tmp_path / "s.sqlite") as st:
        st.import_csv(a, SPACE)
    p3 = prior.load(SPACE, [tmp_path / "s.sqlite"])
    assert sorted(p3.columns) == ["lat_x", "lat_y"] and p3.n_rows == 300
    with pytest.raises(InputError, match="no usable prior column"):
        prior.load(SPACE, [a], min_rows=301)


def test_bad_priors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such prior file"):
        prior.load(SPACE, [tmp_path / "missing.csv"])
    (tmp_path / "noarch.csv").write_text("x,lat\n1,2\n")
    with pytest.raises(InputError, match="no 'arch' column"):
        prior.load(SPACE, [tmp_path / "noarch.csv"])
    (tmp_path / "other.csv").write_text("arch,lat\nnot-a-cell,1.0\n")
    with pytest.raises(InputError, match="not of space 'nb201'"):
        prior.load(SPACE, [tmp_path / "other.csv"])
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError):
        prior.load(SPACE, [tmp_path / "bin.csv"])
    with pytest.raises(InputError, match="no prior files"):
        prior.load(SPACE, [])


def test_packaged_priors_and_credit() -> None:
    for name, first in (("nb201", "lat_1080ti_1"), ("fbnet", "lat_1080ti_1"),
                        ("ofa-mbv3", "lat_2080ti_1"), ("anb-mnasnet", "macs_m")):
        path = prior.packaged(name)
        assert path is not None and path.is_file()
        with gzip.open(path, "rt") as fh:
            header = fh.readline().strip().split(",")
        assert header[0] == "arch" and header[1] == first
    assert prior.packaged("ofa-resnet50") is None
    notice = (Path(prior.__file__).parent / "data" / "priors" / "NOTICE").read_text()
    assert "HELP" in notice and "HW-NAS-Bench" in notice and "MIT License" in notice
    assert "Accel-NASBench" in notice and "Apache License, Version 2.0" in notice
    terms = (Path(prior.__file__).parent / "data" / "priors" / "LICENSE-Apache-2.0").read_text()
    assert "Version 2.0, January 2004" in terms and "END OF TERMS AND CONDITIONS" in terms
    # the FPGA and TPU columns are the devices; the published costs are not
    anb = prior.load(esm.spaces.get("anb-mnasnet"), [prior.packaged("anb-mnasnet")])
    assert anb.columns == ["lat_zcu102_1", "lat_vck190_1", "ms_per_image_zcu102",
                           "ms_per_image_vck190", "ms_per_image_tpuv2", "ms_per_image_tpuv3"]
    assert anb.n_rows == 5125


def test_packaged_prior_unusable_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    assert prior.packaged_unusable("nb201") is None
    assert prior.packaged_unusable("ofa-resnet50") is None  # ships none: nothing to miss
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "scipy" else find_spec(name, *a))
    assert "scipy" in (prior.packaged_unusable("nb201") or "")
    monkeypatch.setitem(prior.PACKAGED, "nb201", "gone.csv.gz")
    assert "nb201 prior (esm/data/priors/gone.csv.gz) is not installed" in (
        prior.packaged_unusable("nb201") or "")


@pytest.mark.parametrize("name, file", [("ofa-mbv3", "ofa_mbv3_gpu.csv"),
                                        ("anb-mnasnet", "mnasnet_anb.csv")])
def test_packaged_prior_equals_shared_data(data_dir: Path, name: str, file: str) -> None:
    path = prior.packaged(name)
    assert path is not None
    assert gzip.decompress(path.read_bytes()) == (data_dir / file).read_bytes()
