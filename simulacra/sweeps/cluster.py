"""Ray for sweeps: a local instance sized to the machine, or an existing cluster, on loopback unless told.

Measured with Ray 2.60: with the node address set to 127.0.0.1, Ray still turns it into the machine's
outward address (``resolve_ip_for_localhost``) and its gRPC servers (GCS, raylet, object manager, every
worker) listen on all interfaces, the runtime-env agent on the outward address. Ray keeps a node on
loopback only where it believes no cluster can exist, which ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` tells it
on Linux too; then every port Ray opens is bound to 127.0.0.1 (`listening` checks it, and a test). Ray is
imported here and nowhere else, when a sweep starts, so plain runs never pay for it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulacra.errors import SimError

__all__ = ["LOOPBACK_ENV", "Cluster", "is_loopback", "listening"]

# What keeps a Ray node on loopback (see the module's docstring); usage statistics stay off too.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
OBJECT_STORE_BYTES = 256 * 1024**2  # runs pass summaries, not data; Ray's default takes 30 % of memory


def is_loopback(address: str | None) -> bool:
    """Whether ``HOST[:PORT]`` (or None: a local instance) stays on this machine."""
    if address is None:
        return True
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Cluster:
    """A Ray session for one sweep: started and stopped (local), or joined and left (``--ray ADDRESS``)."""

    def __init__(self, address: str | None = None, *, cpus: int | None = None) -> None:
        """Nothing starts until the ``with`` block.

        Args:
            address: A running cluster's ``HOST:PORT`` (``ray start --head`` prints it); None starts a local
                instance with ``cpus`` CPUs (None: all of this machine's).
            cpus: CPUs of a local instance.
        """
        self.address = address
        self.cpus = cpus or os.cpu_count() or 1
        self._ray: Any = None

    def __enter__(self) -> Cluster:
        """Starts or joins Ray.

        Raises:
            SimError: Ray is not installed, or the cluster cannot be reached.
        """
        if is_loopback(self.address):
            # Read when Ray is imported (and by every process it starts, which inherit it): set it first.
            os.environ.update(LOOPBACK_ENV)
        if self.address is not None:
            # `ray start` turns token authentication on (2.60) but a joining driver sends its token (from
            # ~/.ray/auth_token or RAY_AUTH_TOKEN) only when told to; a cluster without authentication accepts it.
            os.environ.setdefault("RAY_AUTH_MODE", "token")
        try:
            import ray
            from ray._private import ray_constants
        except ImportError as err:
            msg = "sweeps run on Ray, which is not installed; install it with: pip install -e '.[ray]'"
            raise SimError(msg) from err
        if is_loopback(self.address):
            ray_constants.ENABLE_RAY_CLUSTER = False  # in case Ray was imported before the variable was set
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
        try:
            if self.address is None:
                # address "local": a new instance even when a `ray start` cluster runs here (None would join it)
                ray.init(address="local", num_cpus=self.cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                         object_store_memory=OBJECT_STORE_BYTES, **options)
            else:
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            msg = (f"--ray {self.address!r}: cannot join the Ray cluster ({str(err).splitlines()[0][:160]}); "
                   "start one with: ray start --head --node-ip-address=127.0.0.1 --port=6379")
            raise SimError(msg) from err
        self._ray = ray
        return self

    def __exit__(self, *exc: object) -> None:
        """Leaves the cluster; a local instance stops with its workers."""
        if self._ray is not None:
            self._ray.shutdown()
            self._ray = None

    def total_cpus(self) -> int:
        """CPUs the cluster has (all its nodes)."""
        return int(self._ray.cluster_resources().get("CPU", 1))

    def remote(self, function: Callable[..., Any], *, cpus: float, retries: int) -> Any:
        """``function`` as a Ray task taking ``cpus`` CPUs, re-run up to ``retries`` times if its worker dies."""
        return self._ray.remote(num_cpus=cpus, max_retries=retries, retry_exceptions=False)(function)

    def wait(self, refs: list[Any], *, timeout: float) -> list[Any]:
        """The refs among ``refs`` that are done within ``timeout`` seconds."""
        done: list[Any]
        done, _ = self._ray.wait(refs, num_returns=len(refs), timeout=timeout, fetch_local=True)
        return done

    def get(self, ref: Any) -> tuple[Any, str | None]:
        """``(result, None)``, or ``(None, why)`` when the task could not finish (its worker died too often)."""
        try:
            return self._ray.get(ref), None
        except self._ray.exceptions.RayError as err:
            return None, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"


def listening(pids: set[int] | None = None) -> list[tuple[int, str, int]]:
    """TCP sockets in LISTEN state as ``(pid, address, port)``, read from ``/proc`` (Linux).

    Args:
        pids: Only these processes' sockets; None: every process this user can see.
    """
    inodes: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or (pids is not None and int(proc.name) not in pids):
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes[int(target[8:-1])] = int(proc.name)
        except OSError:  # gone, or not ours to read
            continue
    out = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A" or int(fields[9]) not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            out.append((inodes[int(fields[9])], _address(address), int(port, 16)))
    return out


def _address(hex_address: str) -> str:
    """An address of ``/proc/net/tcp[6]`` (little-endian 32-bit words) as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)  # 4 bytes (tcp): IPv4; 16 bytes (tcp6): IPv6
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)
