from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

HAVE_TORCH = importlib.util.find_spec("torch") is not None

#: The directory holding the imported ``esm`` package (site-packages when installed, the
#: source tree's ``python/`` in a developer build), for PYTHONPATH of child processes.
ESM_PATH = str(Path(importlib.util.find_spec("esm").origin).resolve().parents[1])  # type: ignore[union-attr,arg-type]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread: the tests build many small networks on a 2-core machine, where two
    spinning OpenMP threads per process slow everything down when other work shares the cores."""
    if HAVE_TORCH:
        import torch

        torch.set_num_threads(1)
