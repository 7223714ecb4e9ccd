"""Which container a port forwarder publishes: docker-proxy and podman's rootlessport.

A published container port is held on the host by a forwarder, not by the container's
program, so its owner says nothing about what answers. The container is found where it
is readable without extra tools, once per forwarder process (the owner reader caches
owners by process instance), never on every poll:

- ``docker-proxy``: its command line names ``-container-ip`` and ``-container-port``;
  the container with that address comes from the Docker API socket when it can be
  opened (root or the docker group), its answer cached for :data:`CACHE_S`.
- ``rootlessport``: podman gives it one end of a pipe (fd 3) and the container's
  ``conmon`` the other; conmon's command line names the container (``-c ID -n NAME``).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from portwatch.core.text import clean

log = logging.getLogger(__name__)

DOCKER_SOCKET = "/var/run/docker.sock"
CACHE_S = 30.0
_TIMEOUT_S = 2.0
_MAX_REPLY = 8 * 1024 * 1024
FORWARDERS = frozenset({"docker-proxy", "rootlessport"})

# (container id, name) or None
Container = tuple[str, str]


def docker_proxy_target(argv: Sequence[str]) -> tuple[str, str, str] | None:
    """(protocol, container address, container port) from docker-proxy's command line."""
    options: dict[str, str] = {}
    for index, arg in enumerate(argv):
        name = arg.lstrip("-")
        if arg.startswith("-") and "=" in name:
            key, _eq, value = name.partition("=")
            options[key] = value
        elif arg.startswith("-") and index + 1 < len(argv):
            options.setdefault(name, argv[index + 1])
    address, port = options.get("container-ip"), options.get("container-port")
    if not address or not port or not port.isdigit():
        return None
    return options.get("proto", "tcp"), address, port


def _docker_get(path: str, socket_path: str) -> Any:
    """GET ``path`` from the Docker API on its unix socket (stdlib only)."""

    class _Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(_TIMEOUT_S)
            try:
                sock.connect(socket_path)
            except OSError:
                sock.close()
                raise
            self.sock = sock

    connection = _Connection("localhost", timeout=_TIMEOUT_S)
    try:
        connection.request("GET", path, headers={"Host": "docker"})
        reply = connection.getresponse()
        if reply.status != 200:
            raise OSError(f"docker API answered {reply.status}")
        return json.loads(reply.read(_MAX_REPLY))
    finally:
        connection.close()


class DockerContainers:
    """Container addresses → (id, name), from the Docker API, asked at most every
    :data:`CACHE_S` seconds and only when an address is not known yet."""

    def __init__(
        self,
        socket_path: str = DOCKER_SOCKET,
        fetch: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._socket = socket_path
        self._fetch = fetch or (lambda: _docker_get("/containers/json", socket_path))
        self._clock = clock
        self._by_address: dict[str, Container] = {}
        self._asked_at: float | None = None
        self.asked = 0

    def readable(self) -> bool:
        return os.access(self._socket, os.R_OK | os.W_OK)

    def by_address(self, address: str) -> Container | None:
        found = self._by_address.get(address)
        if found is not None:
            return found
        now = self._clock()
        if self._asked_at is not None and now - self._asked_at < CACHE_S:
            return None
        self._asked_at = now
        try:
            listing = self._fetch()
        except (OSError, ValueError, http.client.HTTPException) as exc:
            log.debug("docker API not readable: %s", exc)
            return None
        self.asked += 1
        self._by_address = dict(_addresses(listing))
        return self._by_address.get(address)


def _addresses(listing: Any) -> Iterable[tuple[str, Container]]:
    if not isinstance(listing, list):
        return
    for item in listing:
        if not isinstance(item, dict):
            continue
        ident = str(item.get("Id", ""))
        names = item.get("Names") or []
        name = str(names[0]).lstrip("/") if isinstance(names, list) and names else ident[:12]
        networks = (item.get("NetworkSettings") or {}).get("Networks") or {}
        if not isinstance(networks, dict):
            continue
        for network in networks.values():
            if not isinstance(network, dict):
                continue
            for key in ("IPAddress", "GlobalIPv6Address"):
                address = network.get(key)
                if isinstance(address, str) and address:
                    yield address, (ident, name)


def _pipe_of(pid: int, fd: int, proc: str) -> str | None:
    try:
        target = os.readlink(f"{proc}/{pid}/fd/{fd}")
    except OSError:
        return None
    return target if target.startswith("pipe:[") else None


def rootlessport_container(
    pid: int, processes: Callable[[], Iterable[tuple[int, str, Sequence[str]]]], proc: str = "/proc"
) -> Container | None:
    """The container whose conmon holds the other end of rootlessport's pipe (fd 3).

    ``processes`` lists (pid, name, argv) of running processes.
    """
    pipe = _pipe_of(pid, 3, proc)
    if pipe is None:
        return None
    for other, name, argv in processes():
        if name != "conmon":
            continue
        try:
            fds = os.listdir(f"{proc}/{other}/fd")
        except OSError:
            continue
        if not any(_pipe_of(other, int(fd), proc) == pipe for fd in fds if fd.isdigit()):
            continue
        ident = _option(argv, ("-c", "--cid"))
        name_of = _option(argv, ("-n", "--name"))
        if ident:
            return ident, name_of or ident[:12]
    return None


def _option(argv: Sequence[str], names: tuple[str, ...]) -> str | None:
    for index, arg in enumerate(argv):
        if arg in names and index + 1 < len(argv):
            return argv[index + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def _label(engine: str, container: Container) -> str:
    ident, name = container
    short = ident[:12]
    return (
        f"{engine} container {name} ({short})"
        if name and name != short
        else (f"{engine} container {short}")
    )


class PublishedPorts:
    """What a forwarder publishes, as a ``started_by`` text (None: not a forwarder)."""

    def __init__(
        self,
        docker: DockerContainers | None = None,
        processes: Callable[[], Iterable[tuple[int, str, Sequence[str]]]] | None = None,
        proc: str = "/proc",
    ) -> None:
        self.docker = docker or DockerContainers()
        self._processes = processes or (lambda: ())
        self._proc = proc

    def describe(self, program: str, argv: Sequence[str], pid: int) -> str | None:
        if program == "docker-proxy":
            target = docker_proxy_target(argv)
            if target is None:
                return "docker-proxy (the container it publishes is not on its command line)"
            proto, address, port = target
            found = self.docker.by_address(address)
            where = f"its port {port}/{proto}"
            if found is None:
                why = "" if self.docker.readable() else "; the Docker API is not readable"
                text = (
                    f"docker-proxy for the container at {address}, {where}"
                    f" (container not named{why})"
                )
            else:
                text = f"docker-proxy for {_label('docker', found)}, {where}"
            return clean(text)
        if program == "rootlessport":
            found = rootlessport_container(pid, self._processes, self._proc)
            if found is None:
                return "rootlessport (a rootless podman container's ports; container not named)"
            return clean(f"rootlessport for {_label('podman', found)}")
        return None


def running_processes(ps: Any) -> list[tuple[int, str, Sequence[str]]]:
    """(pid, name, argv) of the running processes named like a container monitor
    (only conmon's command line is read)."""
    found: list[tuple[int, str, Sequence[str]]] = []
    try:
        for process in ps.process_iter(["pid", "name"]):
            name = process.info.get("name") or ""
            if name != "conmon":
                continue
            try:
                found.append((int(process.info["pid"]), name, list(process.cmdline())))
            except (ps.Error, OSError):
                continue
    except (ps.Error, OSError):
        return found
    return found
