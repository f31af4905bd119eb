"""Package-level behaviour: light import, info, command-line basics."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import esm
from esm.cli import main, parser


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esm", *args], capture_output=True, text=True,
                          timeout=120)


def test_import_is_light_and_silent() -> None:
    code = (
        "import sys, esm; esm.spaces.get('ofa-mbv3').costs([[0]*46]);"
        "heavy = [m for m in ('torch', 'sklearn', 'matplotlib', 'esm._cuda') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]" and out.stderr == ""


def test_info_describes_build_and_devices() -> None:
    data = esm.info()
    assert data["version"] == esm.__version__
    assert "ofa-mbv3" in data["spaces"]
    assert isinstance(data["cuda_devices"], list)
    if not data["cuda_devices"]:
        assert data["cuda_reason"]  # says why there is no usable GPU


def test_info_and_spaces_commands() -> None:
    out = run_cli("info", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"] == esm.__version__
    out = run_cli("spaces", "--json")
    assert out.returncode == 0
    names = [row["name"] for row in json.loads(out.stdout)]
    assert names == esm.spaces.names()
    assert "ofa-mbv3" in run_cli("spaces").stdout


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    sub = next(a for a in parser()._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_bad_usage_exits_2_without_traceback() -> None:
    out = run_cli("no-such-command")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    out = run_cli("spaces", "--bogus")
    assert out.returncode == 2 and "Traceback" not in out.stderr
