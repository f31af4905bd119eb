"""Connecting to Ray: import it lazily, join or start a cluster, and leave it as found."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from esm.errors import InputError


def import_ray() -> Any:
    """The ``ray`` module, or InputError with the install hint."""
    try:
        import ray
    except ImportError:
        raise InputError("the Ray backend needs Ray: pip install 'esm-nas[ray]'") from None
    return ray


@contextmanager
def connected(address: str | None = None) -> Iterator[Any]:
    """Yield ``ray`` connected to a cluster.

    An already initialised Ray session (e.g. the caller's ``ray.init(...)``) is used as is and
    left running. Otherwise ``address`` is joined (``"auto"``, ``"ray://host:10001"`` or
    ``"host:6379"``), or, with ``address=None``, a private local cluster is started on this
    machine (dashboard off); a session started here is shut down on exit.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                              "configure_logging": False}
    try:
        if address is None:
            ray.init(**kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as err:
        raise InputError(f"cannot connect to the Ray cluster at {address!r}: {err}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def node_label() -> dict[str, Any]:
    """Where the calling Ray worker runs: host name and Ray node id."""
    import socket

    ray = import_ray()
    ctx = ray.get_runtime_context()
    return {"host": socket.gethostname(), "ray_node": ctx.get_node_id()}
