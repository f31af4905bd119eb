"""``esm train`` / ``esm evaluate``: contract keys, held-out evaluation, bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esm.cli import main

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def small_csv(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = (data_dir / "ofa_mbv3_gpu.csv").read_text().splitlines()[:161]
    # two unusable latencies in lat_titan_xp_64 (last column): NaN and negative
    for i, bad in ((5, "nan"), (9, "-1.0")):
        cells = lines[i].rsplit(",", 1)
        lines[i] = cells[0] + "," + bad
    path = tmp_path_factory.mktemp("cli") / "small.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_then_evaluate_json(small_csv: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.esm"
    rc, out, _ = run(capsys, "train", "--data", str(small_csv), "--space", "ofa-mbv3",
                     "--target", "lat_titan_xp_64", "--model", "ridge", "--train-size", "60",
                     "--seed", "3", "--out", str(model), "--json")
    assert rc == 0
    tr = json.loads(out)
    assert tr["train_size"] == 60 and tr["dropped"] == 2 and tr["rows_usable"] == 158
    assert model.is_file()
    rc, out, _ = run(capsys, "evaluate", "--model", str(model), "--data", str(small_csv),
                     "--target", "lat_titan_xp_64", "--json")
    assert rc == 0
    ev = json.loads(out)
    for key in ("mape", "rmse", "r2", "acc5", "acc10", "kendall", "spearman", "n"):
        assert key in ev
    assert ev["n"] == 158 - 60 and ev["excluded_training_rows"] == 60
    assert 0 < ev["mape"] < 10 and 50 < ev["acc10"] <= 100
    # same seed -> same training rows -> same fingerprint
    rc, out, _ = run(capsys, "train", "--data", str(small_csv), "--space", "ofa-mbv3",
                     "--target", "lat_titan_xp_64", "--model", "ridge", "--train-size", "60",
                     "--seed", "3", "--out", str(tmp_path / "m2.esm"), "--json")
    assert json.loads(out)["fingerprint"] == tr["fingerprint"]
    # human output
    rc, out, _ = run(capsys, "evaluate", "--model", str(model), "--data", str(small_csv),
                     "--target", "lat_titan_xp_64")
    assert rc == 0 and "MAPE" in out and "Kendall" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--target", "lat_nope"], "unknown column 'lat_nope'"),
    (["--train-size", "1000"], "larger than the 158 usable rows"),
    (["--space", "nope"], "unknown search space"),
    (["--model", "nope"], "unknown model"),
    (["--encoding", "nope"], "unknown encoding"),
])
def test_train_bad_input_exit_2(small_csv: Path, tmp_path: Path, argv: list[str],
                                message: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = {"--data": str(small_csv), "--space": "ofa-mbv3", "--target": "lat_titan_xp_64",
            "--out": str(tmp_path / "x.esm"), "--train-size": "20", "--model": "ridge"}
    base.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    rc, _, err = run(capsys, "train", *[v for kv in base.items() for v in kv])
    assert rc == 2 and message in err and "Traceback" not in err


def test_evaluate_bad_input_exit_2(small_csv: Path, data_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.esm"
    assert run(capsys, "train", "--data", str(small_csv), "--space", "ofa-mbv3", "--target",
               "lat_titan_xp_64", "--model", "ridge", "--out", str(model))[0] == 0
    # every usable row was a training row
    rc, _, err = run(capsys, "evaluate", "--model", str(model), "--data", str(small_csv),
                     "--target", "lat_titan_xp_64")
    assert rc == 2 and "no rows" in err
    # data of another space
    rc, _, err = run(capsys, "evaluate", "--model", str(model), "--data",
                     str(data_dir / "fbnet_latency.csv"), "--target", "lat_gold_6240")
    assert rc == 2 and "model is for space 'ofa-mbv3'" in err
    rc, _, err = run(capsys, "evaluate", "--model", str(model), "--data", str(small_csv),
                     "--target", "lat_titan_xp_64", "--space", "nb201")
    assert rc == 2 and "not 'nb201'" in err
    (tmp_path / "bad.esm").write_bytes(model.read_bytes()[:100])
    rc, _, err = run(capsys, "evaluate", "--model", str(tmp_path / "bad.esm"), "--data",
                     str(small_csv), "--target", "lat_titan_xp_64")
    assert rc == 2 and "model file" in err
