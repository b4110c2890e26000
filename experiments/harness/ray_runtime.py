"""Connecting to Ray: a local instance on loopback by default, a cluster by address.

Only experiments/ and agents/ import ray. On Linux, Ray binds a local instance to the machine's
own address and all interfaces unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set and the node
address is given as 127.0.0.1 (measured here: ../shared/STACK.md); both are set for local runs.
"""

from __future__ import annotations

import os

from journeylab.errors import InputError

# Ray reads this when it is imported, so it is set before anything here imports ray.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# Ray starts workers at niceness 15 (its ``worker_niceness`` system config): on a shared machine the
# driver then starves them (issue 14 measured sampling at 750–2,000 steps/s for twenty minutes).
# Env runners and collectors do the work here, so a local instance runs them at the driver's priority.
os.environ.setdefault("RAY_worker_niceness", "0")

LOOPBACK = "127.0.0.1"
REACH_TIMEOUT_S = 3.0


class RayConnectionError(InputError):
    """Nothing answers at the Ray address given."""


def check_reachable(address: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Fail in seconds, with the address in the message, if no Ray head answers there."""
    import socket

    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayConnectionError(f"--ray-address '{address}': expected host:port (or ray://host:port, or auto)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise RayConnectionError(
            f"--ray-address '{address}': nothing answers there ({exc.strerror or exc}); "
            "start the cluster first, or leave out --ray-address for a local instance"
        ) from None


def connect(address: str | None = None, num_cpus: int | None = None) -> str:
    """Initialise Ray once; returns where it runs ("local" or the cluster address)."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_reachable(address)
    if ray.is_initialized():
        return "existing"
    if address:
        # A cluster on this machine's loopback: the driver must join it on loopback too,
        # otherwise it registers under the machine's own address and waits for it forever.
        host = address.removeprefix("ray://").rsplit(":", 1)[0]
        on_loopback = host.startswith("127.") or host == "localhost"
        ray.init(address=address, log_to_driver=False, _node_ip_address=LOOPBACK if on_loopback else None)
        return address
    ray.init(
        _node_ip_address=LOOPBACK,
        include_dashboard=False,
        num_cpus=num_cpus,
        log_to_driver=False,
        configure_logging=False,
    )
    return "local"
