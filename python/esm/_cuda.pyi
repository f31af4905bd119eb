# Type stubs of esm._cuda (csrc/bindings/cuda_*.cpp), built only where a CUDA compiler is found.
# tests/test_stubs.py checks that they list exactly the module's public names; update both
# together.
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

# devices (cuda_module.cpp)
def runtime_version() -> int: ...
def driver_version() -> int: ...
def devices() -> tuple[list[dict[str, Any]], str]: ...

# timer (cuda_timer.cpp)
class Graph:
    """A captured CUDA graph (see EventTimer)."""

class EventTimer:
    def __init__(self, device: int = 0, pool: int = 256, l2_flush: bool = False) -> None: ...
    def time(
        self, fn: Callable[[], Any], stream: int, inner: int, samples: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
    def capture_graph(self, fn: Callable[[], Any], stream: int, inner: int) -> Graph: ...
    def time_graph(
        self, graph: Graph, stream: int, samples: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
    def max_clock_mhz(self) -> float: ...
    @property
    def pool(self) -> int: ...
    @property
    def device(self) -> int: ...
    @property
    def l2_bytes(self) -> int: ...
    @property
    def flush_bytes(self) -> int: ...

def nvml_info(device: int = 0) -> dict[str, str]: ...

# predictor (cuda_predict.cpp)
class DeviceModel:
    @property
    def n_features(self) -> int: ...
    def predict_device(self, X_ptr: int, n: int, out_ptr: int, stream: int = 0) -> None: ...
    def predict_host(self, X: ArrayLike, chunk: int = 1048576) -> NDArray[np.float64]: ...

def linear_model(
    x_mean: ArrayLike, x_scale: ArrayLike, target: str, coef: ArrayLike, intercept: float
) -> DeviceModel: ...
def trees_model(
    x_mean: ArrayLike,
    x_scale: ArrayLike,
    target: str,
    feature: ArrayLike,
    threshold: ArrayLike,
    left: ArrayLike,
    right: ArrayLike,
    value: ArrayLike,
    roots: ArrayLike,
    base: float,
    rule: str,
    input_dtype: str,
) -> DeviceModel: ...

class DeviceLut:
    def __init__(
        self,
        table: ArrayLike,
        offset: ArrayLike,
        gene_slot: ArrayLike,
        slot_gene: ArrayLike,
        slot_active: ArrayLike,
        max_choice: int,
        bias: float,
        log_target: bool,
    ) -> None: ...
    @property
    def n_genes(self) -> int: ...
    def predict_device(self, genomes_ptr: int, n: int, out_ptr: int, stream: int = 0) -> None: ...
    def predict_host(self, genomes: ArrayLike, chunk: int = 1048576) -> NDArray[np.float64]: ...

def synchronize(stream: int = 0) -> None: ...

# flat pipeline (cuda_pipeline.cpp)
class DevicePipeline:
    def __init__(self, space: str, config: ArrayLike) -> None: ...
    @property
    def n_genes(self) -> int: ...
    @property
    def n_slots(self) -> int: ...
    @property
    def shared_bytes(self) -> int: ...
    def costs(
        self, genomes: int, n: int, totals: int, slots: int, bad: int, stream: int = 0
    ) -> None: ...
