"""Connecting to Ray: a local instance on loopback by default, a cluster by address.

Only experiments/ and agents/ import ray. On Linux, Ray binds a local instance to the machine's
own address and all interfaces unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set and the node
address is given as 127.0.0.1 (measured here: ../shared/STACK.md); both are set for local runs.
"""

from __future__ import annotations

import os

LOOPBACK = "127.0.0.1"


def connect(address: str | None = None, num_cpus: int | None = None) -> str:
    """Initialise Ray once; returns where it runs ("local" or the cluster address)."""
    import ray

    if ray.is_initialized():
        return "existing"
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, log_to_driver=False)
        return address
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(
        _node_ip_address=LOOPBACK,
        include_dashboard=False,
        num_cpus=num_cpus,
        log_to_driver=False,
        configure_logging=False,
    )
    return "local"
