# Type stubs of esm._core (csrc/bindings/core_*.cpp). tests/test_stubs.py checks that they list
# exactly the module's public names; update both together.
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__version__: str
COST_FIELDS: tuple[str, str, str, str]

# costs (core_costs.cpp)
def space_names() -> list[str]: ...
def space_choices(space: str, config: ArrayLike) -> list[int]: ...
def space_slots(space: str, config: ArrayLike) -> int: ...
def costs(
    space: str, genomes: ArrayLike, config: ArrayLike, threads: int = 0, detail: bool = True
) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...
def validate(space: str, genomes: ArrayLike, config: ArrayLike) -> None: ...
def spec_tabulate(
    program: ArrayLike, check_genomes: int = 512
) -> tuple[NDArray[np.int64], bool]: ...

# search (core_search.cpp)
def pareto_ranks_2d(points: ArrayLike) -> NDArray[np.int64]: ...
def tournament_winners(
    violation: ArrayLike, score: ArrayLike, n: int, size: int, seed: int, threads: int = 0
) -> NDArray[np.int64]: ...

# timer (core_timer.cpp)
def time_callable(
    fn: Callable[[], Any], inner: int, samples: int, clock: str = "wall"
) -> NDArray[np.float64]: ...
def thread_cpu_time() -> float: ...
def busy_wait(seconds: float) -> None: ...
def time_busy_wait(seconds: float, inner: int, samples: int) -> NDArray[np.float64]: ...
def timer_overhead(samples: int) -> NDArray[np.float64]: ...
def clock_resolution(reads: int = 1000) -> float: ...
def clock_tick() -> float: ...
def monotonic() -> float: ...

# predictor (core_predict.cpp)
class CompiledModel:
    """A regressor compiled from plain arrays."""

    def __init__(
        self,
        kind: str,
        n_features: int,
        arrays: dict[str, Any],
        meta: dict[str, Any],
        target: str = "identity",
    ) -> None: ...
    @property
    def kind(self) -> str: ...
    @property
    def n_features(self) -> int: ...
    def predict(self, X: Any, threads: int = 0, chunk: int = 65536) -> NDArray[np.float64]: ...

class FoldedPredictor:
    """A linear model folded into lookup tables over genes (threaded)."""

    def __init__(
        self,
        choices: Any,
        key_genes: Any,
        key_strides: Any,
        key_ptr: Any,
        table_ptr: Any,
        values: Any,
        intercept: float,
    ) -> None: ...
    @property
    def n_genes(self) -> int: ...
    @property
    def n_tables(self) -> int: ...
    def predict(
        self, genomes: Any, threads: int = 0, chunk: int = 65536
    ) -> NDArray[np.float64]: ...

class FusedPredictor:
    """genomes -> costs -> features -> model in C++, chunked and threaded."""

    def __init__(
        self,
        space: str,
        config: ArrayLike,
        plan: dict[str, Any],
        model: CompiledModel | None = None,
    ) -> None: ...
    @property
    def n_features(self) -> int: ...
    @property
    def n_genes(self) -> int: ...
    @property
    def needs_costs(self) -> bool: ...
    def encode(self, genomes: Any, threads: int = 0) -> NDArray[np.float64]: ...
    def predict(
        self, genomes: Any, threads: int = 0, chunk: int = 65536
    ) -> NDArray[np.float64]: ...
