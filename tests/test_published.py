"""Port forwarders named by the container they publish, socket-activated services by
their .socket unit, and Windows services and launchd jobs by pid."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from childsockets import ChildSockets, free_port, wait_for

from portwatch.core.startedby import socket_activated
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.probe.identity import OwnerReader
from portwatch.probe.published import (
    DockerContainers,
    PublishedPorts,
    docker_proxy_target,
    rootlessport_container,
)
from portwatch.probe.service_manager import LaunchdJobs, WindowsServices, parse_launchctl_list

WEB = "3f4e8a1b2c3d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef"
# GET /containers/json as Docker Engine 24 answers it (fields portwatch reads, trimmed).
CONTAINERS_JSON = [
    {
        "Id": WEB,
        "Names": ["/web"],
        "Image": "nginx:1.25",
        "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
        "NetworkSettings": {
            "Networks": {
                "bridge": {"IPAddress": "172.17.0.2", "GlobalIPv6Address": "", "Gateway": ""}
            }
        },
    },
    {
        "Id": "0123456789abcdef" * 4,
        "Names": ["/db"],
        "NetworkSettings": {"Networks": {"app_default": {"IPAddress": "172.18.0.3"}}},
    },
]
# docker-proxy's command lines as dockerd starts them (Docker 20-24, and 25+ which
# passes the listening socket in).
PROXY_ARGV = [
    "/usr/bin/docker-proxy",
    "-proto",
    "tcp",
    "-host-ip",
    "0.0.0.0",
    "-host-port",
    "8080",
    "-container-ip",
    "172.17.0.2",
    "-container-port",
    "80",
]
PROXY_ARGV_25 = [*PROXY_ARGV, "-use-listen-fd"]


@pytest.mark.parametrize("argv", [PROXY_ARGV, PROXY_ARGV_25])
def test_docker_proxy_command_line(argv: list[str]) -> None:
    assert docker_proxy_target(argv) == ("tcp", "172.17.0.2", "80")
    assert docker_proxy_target(["/usr/bin/docker-proxy"]) is None


class _Api(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        _Api.hits.append(self.path)
        body = json.dumps(CONTAINERS_JSON).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def docker_api(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on a unix socket answering like the Docker API."""
    path = str(tmp_path / "docker.sock")
    _Api.hits = []
    server = _UnixServer(path, _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_docker_api_is_asked_once_and_cached(docker_api: str) -> None:
    now = [0.0]
    docker = DockerContainers(socket_path=docker_api, clock=lambda: now[0])
    assert docker.by_address("172.17.0.2") == (WEB, "web")
    assert docker.by_address("172.18.0.3") == ("0123456789abcdef" * 4, "db")
    assert docker.by_address("172.17.0.9") is None  # unknown: not asked again at once
    assert docker.by_address("172.17.0.9") is None
    assert _Api.hits == ["/containers/json"]
    now[0] = 31.0
    assert docker.by_address("172.17.0.9") is None
    assert len(_Api.hits) == 2


def test_an_unreadable_docker_api_is_said_not_guessed(tmp_path: Path) -> None:
    published = PublishedPorts(DockerContainers(socket_path=str(tmp_path / "absent.sock")))
    assert published.describe("docker-proxy", PROXY_ARGV, 1) == (
        "docker-proxy for the container at 172.17.0.2, its port 80/tcp"
        " (container not named; the Docker API is not readable)"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_a_real_docker_proxy_listener_is_mapped_to_its_container(
    tmp_path: Path, docker_api: str, child_sockets: list[ChildSockets]
) -> None:
    # A listener whose program file is called docker-proxy, with dockerd's arguments.
    proxy = tmp_path / "docker-proxy"
    shutil.copy2(os.path.realpath(sys.executable), proxy)
    port = free_port(host="0.0.0.0")
    child = ChildSockets.start(
        [("tcp", "0.0.0.0", port, "listen")],
        executable=str(proxy),
        registry=child_sockets,
        args=[*PROXY_ARGV[1:6], str(port), *PROXY_ARGV[7:]],
    )
    published = PublishedPorts(DockerContainers(socket_path=docker_api))
    from portwatch.probe.netlink import NetlinkProbe
    from portwatch.probe.psutil_probe import PsutilProbe

    probes: list[Any] = [
        PsutilProbe(owners=OwnerReader(published=published)),
        NetlinkProbe(owners=OwnerReader(published=published)),
    ]
    try:
        samples = [p.poll(WatchList((parse_spec(str(port)),))) for p in probes]
    finally:
        for probe in probes:
            probe.close()
    for sample in samples:
        (mine,) = [
            item
            for item in sample.listeners
            if item.port == port and item.owner and item.owner.pid == child.pid
        ]
        assert mine.owner is not None
        assert (
            mine.owner.started_by
            == "docker-proxy for docker container web (3f4e8a1b2c3d), its port 80/tcp"
        )
        assert mine.exposure is not None
        if mine.exposure.scope != "local":
            assert mine.exposure.bypasses_firewall
    # Each forwarder process is looked up once; the API was asked once for both probes'
    # owner readers' first lookups at most.
    assert 1 <= len(_Api.hits) <= 2


def test_rootlessport_is_named_by_the_conmon_holding_its_pipe(tmp_path: Path) -> None:
    # /proc as podman 4 leaves it: rootlessport (pid 100) has the sync pipe at fd 3,
    # the container's conmon (pid 200) the other end.
    proc = tmp_path / "proc"
    for pid, fds in {
        100: {"0": "/dev/null", "3": "pipe:[4242]"},
        200: {"5": "pipe:[4242]"},
    }.items():
        (proc / str(pid) / "fd").mkdir(parents=True)
        for fd, target in fds.items():
            os.symlink(target, proc / str(pid) / "fd" / fd)
    conmon_argv = ["/usr/bin/conmon", "--api-version", "1", "-c", WEB, "-u", WEB, "-n", "web"]
    listing = [(150, "bash", ["bash"]), (200, "conmon", conmon_argv)]
    assert rootlessport_container(100, lambda: listing, str(proc)) == (WEB, "web")
    published = PublishedPorts(processes=lambda: listing, proc=str(proc))
    assert published.describe("rootlessport", ["rootlessport"], 100) == (
        "rootlessport for podman container web (3f4e8a1b2c3d)"
    )
    assert published.describe("rootlessport", ["rootlessport"], 999) == (
        "rootlessport (a rootless podman container's ports; container not named)"
    )


# Accept=no: the service gets the listening sockets from its .socket unit.
@pytest.mark.parametrize(
    ("found", "names", "expected"),
    [
        (
            "systemd unit cups.service",
            "cups.socket",
            "systemd socket cups.socket (unit cups.service)",
        ),
        (
            "systemd unit dnsmasq.service",
            "dnsmasq.socket:dnsmasq.socket",
            "systemd socket dnsmasq.socket (unit dnsmasq.service)",
        ),
        ("systemd unit app.service", "web:admin", "systemd unit app.service, socket-activated"),
        ("systemd unit app.service", "", "systemd unit app.service"),
    ],
)
def test_socket_activated_services_name_their_socket(found: str, names: str, expected: str) -> None:
    assert socket_activated(found, names) == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")
def test_a_real_socket_activated_process_names_its_socket() -> None:
    # systemd sets LISTEN_PID to the service's own pid: `exec` keeps the shell's pid.
    code = (
        "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen();"
        " print(1, flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [
            "sh",
            "-c",
            'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=cups.socket exec "$0" -c "$1"',
            sys.executable,
            code,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "1"
        owner = OwnerReader().owner(child.pid)
        assert owner is not None and owner.started_by is not None
        assert owner.started_by.startswith("systemd socket cups.socket"), owner.started_by
        # Inherited from a parent (LISTEN_PID is not this process): not its socket unit.
        inherited = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "LISTEN_PID": "1", "LISTEN_FDNAMES": "cups.socket"},
        )
        try:
            assert inherited.stdout is not None and inherited.stdout.readline()
            other = OwnerReader().owner(inherited.pid)
            assert other is not None
            assert "cups.socket" not in (other.started_by or "")
        finally:
            inherited.communicate("", timeout=10)
    finally:
        child.communicate("", timeout=10)


# `launchctl list` in a user's domain (macOS 14), trimmed.
LAUNCHCTL_LIST = """PID\tStatus\tLabel
-\t0\tcom.apple.SafariHistoryServiceAgent
{pid}\t0\tcom.example.devserver
611\t0\tcom.apple.Finder
-\t-9\tcom.apple.quicklook
"""


def test_launchd_labels_from_launchctl_list() -> None:
    table = parse_launchctl_list(LAUNCHCTL_LIST.format(pid=4321))
    assert table == {4321: "com.example.devserver", 611: "com.apple.Finder"}
    reads: list[int] = []

    def run() -> str:
        reads.append(1)
        return LAUNCHCTL_LIST.format(pid=4321)

    jobs = LaunchdJobs(run, clock=lambda: 0.0)
    assert jobs.started_by(4321) == "launchd job com.example.devserver"
    assert jobs.started_by(9999) is None  # not in the listing: not named, not guessed
    assert jobs.started_by(611) == "launchd job com.apple.Finder"
    assert len(reads) == 1


def test_an_owner_on_macos_takes_its_launchd_label(child_sockets: list[ChildSockets]) -> None:
    child = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    jobs = LaunchdJobs(lambda: LAUNCHCTL_LIST.format(pid=child.pid))
    owner = OwnerReader(platform="darwin", services=jobs).owner(child.pid)
    assert owner is not None and owner.started_by == "launchd job com.example.devserver"


class _Service:
    def __init__(self, name: str, pid: int | None) -> None:
        self._name, self._pid = name, pid

    def name(self) -> str:
        return self._name

    def pid(self) -> int | None:
        return self._pid


class _WindowsPs:
    """psutil's Windows service surface, answering as a Windows 11 host did (trimmed)."""

    Error = psutil.Error

    def __init__(self) -> None:
        self.iterations = 0

    def win_service_iter(self) -> list[_Service]:
        self.iterations += 1
        return [
            _Service("Dnscache", 1236),
            _Service("nsi", 1236),
            _Service("LanmanWorkstation", 1236),
            _Service("Spooler", 2740),
            _Service("wuauserv", None),  # stopped
        ]


def test_windows_services_by_pid_svchost_shows_its_services() -> None:
    ps = _WindowsPs()
    services = WindowsServices(ps, clock=lambda: 0.0)
    assert services.started_by(2740) == "Windows service Spooler"
    assert services.started_by(1236) == "Windows services Dnscache, LanmanWorkstation, nsi"
    assert services.started_by(4000) is None
    assert ps.iterations == 1  # read once, not per process


def test_linux_owners_never_ask_a_service_manager(child_sockets: list[ChildSockets]) -> None:
    child = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    reader = OwnerReader()
    assert reader.services is None if sys.platform.startswith("linux") else True
    wait_for(lambda: reader.owner(child.pid) is not None)
