"""Latency of a torch module on a random input (``measure_module``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from esm.errors import InputError
from esm.measure.settings import Settings
from esm.measure.timer import Measurement, make_timer, measure, parse_device

if TYPE_CHECKING:
    import torch


def _check_cuda(index: int) -> None:
    import torch

    from esm import cuda

    if not torch.cuda.is_available():
        raise InputError(f"device cuda:{index} requested but torch sees no CUDA GPU")
    if index >= torch.cuda.device_count():
        raise InputError(f"cuda:{index} does not exist ({torch.cuda.device_count()} GPU(s))")
    cuda.require()


def measure_module(
    module: torch.nn.Module,
    input_shape: tuple[int, ...],
    device: str = "cpu",
    settings: Settings | None = None,
    threads: int | None = None,
    dtype: Any = None,
    seed: int = 0,
) -> Measurement:
    """Measure the forward latency of ``module`` on a random input of ``input_shape``.

    The module is put in eval mode and run under ``torch.inference_mode``. On the CPU the
    calls are timed on the monotonic clock with ``threads`` intra-op threads (default: keep
    torch's setting; the count used is what provenance records). On CUDA the CUDA timer
    records events on torch's current stream; with ``settings.cuda_graph`` the forward is
    captured once with ``torch.cuda.CUDAGraph`` and graph replays are timed.

    Parameters
    ----------
    module : torch.nn.Module
    input_shape : tuple of int
        ``(B, C, H, W)`` or any shape the module accepts.
    device : str
        ``"cpu"`` or ``"cuda[:i]"``.
    settings : Settings, optional
    threads : int, optional
        ``torch.set_num_threads`` for the measurement (CPU).
    dtype : torch.dtype, optional
        Input and parameter dtype (default float32).
    seed : int
        Seed of the random input.
    """
    import torch

    s = settings or Settings()
    kind, index = parse_device(device)
    dtype = dtype or torch.float32
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(int(threads))
    if kind == "cpu" and s.clock == "thread_cpu" and torch.get_num_threads() != 1:
        raise InputError("clock='thread_cpu' measures one thread's CPU time: use threads=1 "
                         f"(torch uses {torch.get_num_threads()})")
    if kind == "cuda":
        _check_cuda(index)
        dev = torch.device("cuda", index)
    else:
        dev = torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*input_shape, generator=gen, dtype=torch.float32).to(dev, dtype)
    module = module.to(dev, dtype).eval()
    with torch.inference_mode():
        if kind == "cpu":
            return measure(lambda: module(x), s, "cpu")
        with torch.cuda.device(index):
            stream = torch.cuda.Stream(device=dev)
            with torch.cuda.stream(stream):
                handle = int(stream.cuda_stream)
                if s.cuda_graph:
                    return _measure_graph(module, x, s, device, handle)
                return measure(lambda: module(x), s, device, stream=handle)


def _measure_graph(
    module: torch.nn.Module, x: torch.Tensor, s: Settings, device: str, stream: int
) -> Measurement:
    """CUDA-graph mode through torch (the caching allocator must know about the capture)."""
    import torch

    for _ in range(3):  # torch requires warm-up on a side stream before capture
        module(x)
    torch.cuda.current_stream().synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        module(x)
    # time graph replays with the plain event timer (graph capture in C++ is not needed here)
    timer = make_timer(device, s.replace(cuda_graph=False), stream)
    m = measure(graph.replay, s.replace(cuda_graph=False), device, stream=stream, timer=timer)
    m.settings = s
    return m
