"""Joining Ray: a cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) or a private instance on loopback
(``local``). Without Ray installed every entry point raises :class:`FleetError` with the install command.

Example:
    >>> check_address(" local ")
    'local'
    >>> check_address("my-head")
    Traceback (most recent call last):
    ...
    ValueError: ray address 'my-head' is not allowed: expected auto, local, HOST:PORT or ray://HOST:PORT
"""

from __future__ import annotations

import os
import re
from typing import Any

__all__ = ["INSTALL_HINT", "FleetError", "check_address", "connect", "disconnect", "first_line", "require_ray"]

INSTALL_HINT = "pip install 'latency-acquisition[ray]'"
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-]+:\d{1,5})$")


class FleetError(RuntimeError):
    """The fleet cannot go on: Ray missing or unreachable, no actor started, a platform with no device left."""


def require_ray() -> Any:
    """The ``ray`` module, or :class:`FleetError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise FleetError(f"profiling on a Ray cluster needs Ray, which is not installed here: {INSTALL_HINT}") \
            from None
    return ray


def check_address(address: str) -> str:
    """``address`` if it is ``auto``, ``local``, ``HOST:PORT`` or ``ray://HOST:PORT``; else :class:`ValueError`."""
    if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
        raise ValueError(f"ray address {address!r} is not allowed: expected auto, local, HOST:PORT or "
                         "ray://HOST:PORT")
    return address.strip()


def connect(address: str, *, num_cpus: int | None = None, num_gpus: int | None = None) -> bool:
    """Connect this process to Ray: ``local`` starts a private instance on loopback (``num_cpus`` default: the
    machine's cores; ``num_gpus`` default: Ray's detection); ``auto`` joins the cluster this machine belongs
    to (``ray start``, or ``RAY_ADDRESS``); ``HOST:PORT`` / ``ray://HOST:PORT`` joins that one. Returns
    ``False`` when the process was already connected (that connection is used), else ``True``."""
    address = check_address(address)
    ray = require_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address == "local":
            os.environ.pop("RAY_ADDRESS", None)  # a private instance, whatever the environment names
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, num_gpus=num_gpus, _node_ip_address="127.0.0.1",
                     runtime_env=_local_env(), **kw)
        else:
            if address != "auto":
                _check_reachable(address)
            ray.init(address=address, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FleetError(f"ray address {address!r}: no Ray cluster could be reached ({first})") from None
    return True


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """:class:`FleetError` at once when nothing listens at ``HOST:PORT`` (Ray itself retries for minutes)."""
    import socket

    host, port = address.removeprefix("ray://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise FleetError(f"ray address {address!r}: nothing answers there ({e.strerror or e}); start the cluster "
                         "with `ray start --head` on that machine, or use --ray-address local") from None


def _local_env() -> dict[str, Any]:
    """A local instance's workers see the modules the coordinator sees (its working folder: plug-ins, tests)."""
    paths = [os.getcwd(), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


def disconnect() -> None:
    """Leave Ray (a private ``local`` instance stops with it)."""
    ray = require_ray()
    if ray.is_initialized():
        ray.shutdown()


def first_line(e: BaseException) -> str:
    """An exception's message in one line (Ray's carry the remote traceback: keep its last line)."""
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    last = lines[-1]
    return last if len(lines) > 1 and ("Error" in last or ":" in last) else lines[0]
