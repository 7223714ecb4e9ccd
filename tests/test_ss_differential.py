"""The installed ``portwatch scan --json --all`` against ``ss -tulnpeH`` on the same sockets.

``ss`` is the reference: for every listening socket it prints the address, the device
the socket is bound to, the IPv6-only flag, the control group and every process holding
it (those the caller may inspect). portwatch must show the same rows with the same
holders, in both probes, as root and as uid 65534 (to whom ``ss`` shows fewer owners:
portwatch then shows those rows unattributed, never drops them nor names an owner), and
inside a network namespace (only there). Its exposure must follow what ``ss`` says of
the socket (device, loopback, wildcard, dual-stack or IPv6-only).

The sockets: child Python processes of every kind that matters here (device-bound,
v4-mapped, dual-stack and IPv6-only wildcards, link-local with a scope, UDP, an
SO_REUSEPORT group of two processes, an unprivileged owner whose log is a deleted file
it may not look up), and the Debian daemons whose program is installed, each started by
hand on free ports (skipped, with the reason, where absent). Only the ports these tests
opened are compared: other programs come and go on a busy machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from cli_runner import portwatch_cmd
from test_netlink_children import SocketChild, other_device, start_child

import portwatch
from portwatch.core.startedby import started_by

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ss and /proc: Linux only"),
    pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is not installed"),
]

NOBODY = 65534
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PROBES = ["netlink", "psutil"]
LOOPBACK = ("127.", "::1", "::ffff:127.")


# --- what ss says ---------------------------------------------------------------------


@dataclass
class SsRow:
    proto: str
    address: str  # portwatch's spelling: "::" for "*", mapped IPv4 dotted, no brackets
    port: int
    device: str
    pids: set[int]
    names: set[str]
    v6only: bool | None
    cgroup: str | None


_LOCAL = re.compile(r"^(\[[^\]]*\]|[^%\[\]]*?)(?:%([^:\]]+))?:(\d+)$")


def _spelling(address: str) -> str:
    address = address.strip("[]")
    if address == "*":
        return "::"
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return f"::ffff:{parsed.ipv4_mapped}"
    return str(parsed)


def parse_ss(text: str) -> list[SsRow]:
    rows = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 5:
            continue
        match = _LOCAL.match(words[4])
        assert match, line
        users = re.findall(r'\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=\d+\)', line)
        v6only = re.search(r"\bv6only:(\d)", line)
        cgroup = re.search(r"\bcgroup:(\S+)", line)
        rows.append(
            SsRow(
                proto=words[0],
                address=_spelling(match.group(1)),
                port=int(match.group(3)),
                device=match.group(2) or "",
                pids={int(pid) for _name, pid in users},
                names={name for name, _pid in users},
                v6only=None if v6only is None else v6only.group(1) == "1",
                cgroup=cgroup.group(1) if cgroup else None,
            )
        )
    return rows


# --- running ss and portwatch, as root or uid 65534, here or in a namespace ------------

# Runs the installed command's entry point as uid 65534: it starts as root so the
# interpreter and the packages load from wherever they live (CI's venv sits in a 0700
# folder), imports every module the command line uses, then gives up root for good.
AS_USER = r"""
import importlib, os, pkgutil, sys
import portwatch
for module in pkgutil.walk_packages(portwatch.__path__, "portwatch."):
    if not module.name.startswith(("portwatch.ui", "portwatch.app", "portwatch.services")):
        importlib.import_module(module.name)
import portwatch.__main__
# What the standard library imports only when first used (it may be private to root too).
import importlib.readers, importlib.resources.readers, encodings.idna, sqlite3, csv
uid = int(sys.argv[1])
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
sys.exit(portwatch.__main__.main(sys.argv[2:]))
"""


# ss as uid 65534 (after nsenter, which needs root).
DROP_AND_RUN = (
    "import os, sys; os.setgroups([]); os.setgid(int(sys.argv[1])); os.setuid(int(sys.argv[1]));"
    " os.execvp(sys.argv[2], sys.argv[2:])"
)


@pytest.fixture(scope="module")
def readable_package() -> Iterator[str]:
    """A copy of the installed package that uid 65534 may read (its data files are read
    at run time, and the installation may be private to root)."""
    folder = tempfile.mkdtemp(prefix="portwatch-ss-")
    try:
        os.chmod(folder, 0o755)  # noqa: S103 (uid 65534 must read the copy)
        source = Path(portwatch.__file__).resolve().parent
        shutil.copytree(source, Path(folder) / "portwatch", ignore=shutil.ignore_patterns("ui"))
        for root, dirs, files in os.walk(folder):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)  # noqa: S103
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class View:
    ss: list[SsRow]
    portwatch: list[dict[str, Any]]


class Viewer:
    """``ss`` and ``portwatch scan`` run side by side, once per (probe, user, place)."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.cache: dict[tuple[str, str, int | None], View] = {}
        self.data = tempfile.mkdtemp(prefix="portwatch-ss-data-")
        os.chmod(self.data, 0o755)  # noqa: S103 (each user's data folder is inside)

    def view(self, probe: str, user: str = "root", netns_pid: int | None = None) -> View:
        key = (probe, user, netns_pid)
        if key not in self.cache:
            self.cache[key] = self._view(probe, user, netns_pid)
        return self.cache[key]

    def _view(self, probe: str, user: str, netns_pid: int | None) -> View:
        place = [] if netns_pid is None else ["nsenter", f"--net=/proc/{netns_pid}/ns/net"]
        data = Path(self.data) / f"{probe}-{user}-{netns_pid}"
        data.mkdir()
        args = ["--data-dir", str(data), "--probe", probe, "scan", "--json", "--all"]
        if user == "root":
            command = [*place, *portwatch_cmd(), *args]
            env = None
        else:
            os.chown(data, NOBODY, NOBODY)
            command = [*place, sys.executable, "-c", AS_USER, str(NOBODY), *args]
            env = {**os.environ, "PYTHONPATH": self.package}
        ss_cmd = [shutil.which("ss") or "ss", "-tulnpeH"]
        if user != "root":
            ss_cmd = [sys.executable, "-c", DROP_AND_RUN, str(NOBODY), *ss_cmd]
        # Run at once, one after the other, so the two see the same sockets.
        ss = subprocess.run(
            [*place, *ss_cmd], capture_output=True, text=True, timeout=30, check=True
        )
        scan = subprocess.run(
            command, capture_output=True, text=True, timeout=60, check=False, env=env, cwd="/"
        )
        assert scan.returncode == 0, scan.stderr
        return View(parse_ss(ss.stdout), json.loads(scan.stdout))

    def close(self) -> None:
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def viewer(readable_package: str) -> Iterator[Viewer]:
    seen = Viewer(readable_package)
    yield seen
    seen.close()


# --- the comparison -------------------------------------------------------------------

Key = tuple[str, str, int, str]


def _key_of(row: dict[str, Any]) -> Key:
    address = row["address"].partition("%")[0]
    return (row["proto"], address, row["port"], row["device"] or "")


def compare(view: View, ports: set[int], pids: set[int] | None = None) -> list[Key]:
    """Assert portwatch shows what ss shows on ``ports`` (of ``pids`` or nobody's), and
    return the keys compared."""
    ss: dict[Key, list[SsRow]] = {}
    for row in view.ss:
        if row.port in ports and (pids is None or not row.pids or row.pids & pids):
            ss.setdefault((row.proto, row.address, row.port, row.device), []).append(row)
    seen: dict[Key, list[dict[str, Any]]] = {}
    for item in view.portwatch:
        holders = {item["pid"], *(other["pid"] for other in item["shared_with"])} - {None}
        if item["port"] in ports and (pids is None or not holders or holders & pids):
            seen.setdefault(_key_of(item), []).append(item)
    assert sorted(seen) == sorted(ss), "portwatch's rows differ from ss's"
    for key, ss_rows in ss.items():
        rows = seen[key]
        where = (key, [vars(r) for r in ss_rows], rows)
        expected = set().union(*(r.pids for r in ss_rows))
        shown = {r["pid"] for r in rows} | {o["pid"] for r in rows for o in r["shared_with"]}
        assert shown - {None} == expected, where
        if not expected:
            # Nobody this user may inspect holds it: shown, and owned by no one.
            invented = ("pid", "process", "exe", "user", "package", "started_by", "replaced")
            assert [[r[name] for name in invented] + r["parents"] for r in rows] == [
                [None] * len(invented)
            ], where
        names = set().union(*(r.names for r in ss_rows))
        for row in rows:
            if row["pid"] is not None:
                # ss prints the kernel's 15-character name; psutil may give it whole.
                assert row["process"][:15] in names, where
                _check_origin(row, ss_rows, where)
            _check_exposure(row, ss_rows[0], where)
    return sorted(ss)


def _check_exposure(row: dict[str, Any], ss: SsRow, where: Any) -> None:
    exposure = row["exposure"]
    summary = exposure["summary"]
    address, device = ss.address, ss.device
    assert (row["device"] or "") == device, where
    if device == "lo" or address.startswith(LOOPBACK):
        assert exposure["scope"] == "local", where
        assert summary.startswith("this computer only"), where
        assert row["reach"] in ("loopback", "interface"), where
        return
    if device:
        assert f"(bound to device {device}" in summary, where
        assert exposure["all_interfaces"] is False and row["reach"] == "interface", where
    elif address in ("0.0.0.0", "::", "::ffff:0.0.0.0"):
        assert exposure["all_interfaces"] is True and row["reach"] == "all", where
    if address == "::":
        assert ss.v6only is not None, where
        assert exposure["dual_stack"] is (not ss.v6only), where
        if exposure["scope"] != "local":  # (no address but loopback: nothing to tell)
            assert ("(IPv6 only)" if ss.v6only else "(IPv4 and IPv6)") in summary, where
    elif address == "::ffff:0.0.0.0":
        assert all(":" not in a for a in exposure["addresses"]), where  # IPv4 only
    if row["address"].startswith("fe80"):
        assert row["address"] == f"{address}%{device}", where  # the scope is kept


def _check_origin(row: dict[str, Any], ss_rows: list[SsRow], where: Any) -> None:
    """started_by from the control group ss names; parents from /proc."""
    groups = {r.cgroup for r in ss_rows if r.cgroup and r.cgroup.startswith("/")}
    if len(groups) == 1:
        (group,) = groups
        assert row["started_by"] == started_by(f"0::{group}\n"), where
    try:
        parent = psutil.Process(row["pid"]).ppid()
    except psutil.Error:
        return  # gone since: nothing to hold it to
    if parent > 0 and row["parents"]:
        assert row["parents"][0]["pid"] == parent, where


# --- child sockets ---------------------------------------------------------------------


SPECS: list[dict[str, Any]] = [
    {"kind": "tcp-listen", "host": "127.0.0.1"},
    {"kind": "udp", "host": "::1"},
    {"kind": "tcp-listen", "host": "::ffff:127.0.0.1", "v6only": 0},
    {"kind": "udp", "host": "::ffff:127.0.0.1", "v6only": 0},
    {"kind": "tcp-listen", "host": "::ffff:0.0.0.0", "v6only": 0},
    {"kind": "tcp-listen", "host": "::", "v6only": 0},
    {"kind": "tcp-listen", "host": "::", "v6only": 1},
    {"kind": "udp", "host": "::", "v6only": 0},
    {"kind": "udp", "host": "0.0.0.0"},
]


def _device_specs() -> list[dict[str, Any]]:
    """Sockets bound to a device (SO_BINDTODEVICE needs root here)."""
    specs: list[dict[str, Any]] = [
        {"kind": "tcp-listen", "host": "0.0.0.0", "device": "lo"},
        {"kind": "udp", "host": "0.0.0.0", "device": "lo"},
        {"kind": "tcp-listen", "host": "::", "device": "lo", "v6only": 0},
    ]
    other = other_device()
    if other is not None:
        name, link_local = other
        specs += [
            {"kind": "tcp-listen", "host": "0.0.0.0", "device": name},
            {"kind": "udp", "host": "::", "device": name, "v6only": 1},
        ]
        if link_local:
            specs.append({"kind": "tcp-listen", "host": f"{link_local}%{name}"})
    return specs


@dataclass
class Machine:
    """What the tests started: children, daemons, and the ports and pids to compare."""

    children: dict[str, SocketChild] = field(default_factory=dict)
    daemons: dict[str, Daemon] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)  # not installed: skipped
    broken: dict[str, str] = field(default_factory=dict)  # installed, would not start
    no_netns: str = "needs root"

    def child_ports(self, *names: str) -> set[int]:
        return {
            item["port"]
            for name in names
            if name in self.children
            for item in self.children[name].opened
            if "port" in item
        }

    def child_pids(self, *names: str) -> set[int]:
        return {self.children[name].pid for name in names if name in self.children}


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    started = Machine()
    logs = tmp_path_factory.mktemp("root-only")
    logs.chmod(0o700)
    log = (logs / "daemon.log").open("w")
    try:
        started.children["root"] = start_child(SPECS + (_device_specs() if ROOT else []))
        group = start_child([{"kind": "tcp-listen", "host": "127.0.0.1", "reuseport": 1}])
        started.children["group-1"] = group
        started.children["group-2"] = start_child(
            [
                {
                    "kind": "tcp-listen",
                    "host": "127.0.0.1",
                    "reuseport": 1,
                    "port": group.opened[0]["port"],
                }
            ]
        )
        if ROOT:
            # Another user's sockets, and an SO_REUSEPORT group of two of its processes;
            # one logs to a deleted file in a folder only root may search.
            nobody = start_child(
                [*SPECS[:3], {"kind": "tcp-listen", "host": "0.0.0.0", "reuseport": 1}],
                user=NOBODY,
                group=NOBODY,
                stderr=log,
            )
            started.children["nobody"] = nobody
            started.children["nobody-2"] = start_child(
                [
                    {
                        "kind": "tcp-listen",
                        "host": "0.0.0.0",
                        "reuseport": 1,
                        "port": nobody.opened[-1]["port"],
                    }
                ],
                user=NOBODY,
                group=NOBODY,
            )
            (logs / "daemon.log").unlink()
            if shutil.which("unshare") and shutil.which("nsenter"):
                try:
                    started.children["netns"] = start_child(
                        [{"kind": "tcp-listen", "host": "0.0.0.0"}, {"kind": "udp", "host": "::"}],
                        prefix=["unshare", "-n"],
                    )
                except RuntimeError as exc:  # a container may forbid new namespaces
                    started.no_netns = f"unshare -n failed: {exc}"
            else:
                started.no_netns = "unshare or nsenter is not installed"
        for name, start in DAEMONS.items():
            reason = start.missing()
            if reason:
                started.absent[name] = reason
                continue
            try:
                started.daemons[name] = start()
            except (AssertionError, OSError, subprocess.SubprocessError) as exc:
                started.broken[name] = f"{name} is installed but did not start: {exc}"
        yield started
    finally:
        for daemon in started.daemons.values():
            daemon.stop()
        for child in started.children.values():
            child.stop()
        log.close()


# --- Debian daemons, started by hand on free ports -------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(ports: Sequence[int], proc: subprocess.Popen[bytes], name: str) -> None:
    """Until ss lists a listener on each of ``ports`` (without connecting: a daemon may
    fork a process per connection, holding its sockets for a moment)."""
    deadline = time.monotonic() + 15
    for port in ports:
        while True:
            listed = subprocess.run(
                ["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True, check=False
            )
            if listed.stdout.strip():
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start listening on {port}")
            time.sleep(0.05)


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen[bytes]
    ports: set[int]
    folder: Path

    def pids(self) -> set[int]:
        try:
            main = psutil.Process(self.proc.pid)
            return {main.pid, *(child.pid for child in main.children(recursive=True))}
        except psutil.Error:
            return set()

    def settle(self, workers: int) -> None:
        """Wait until its ``workers`` children exist (they hold its sockets too)."""
        deadline = time.monotonic() + 15
        while len(self.pids()) < 1 + workers:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start {workers} workers")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class DaemonStart:
    """How to start one daemon in the foreground on free ports, and what it needs."""

    def __init__(
        self,
        program: str,
        build: Callable[[str, Path, list[int]], list[str]],
        ports: int = 1,
        root_only: bool = False,
        user: str | None = None,
        needs: Sequence[str] = (),
        workers: int = 0,
    ) -> None:
        self.workers = workers  # child processes it forks to hold its sockets too
        self.program = program
        self.build = build
        self.port_count = ports
        self.root_only = root_only
        self.user = user
        self.needs = needs

    def executable(self) -> str | None:
        if os.path.isabs(self.program):
            return self.program if os.access(self.program, os.X_OK) else None
        return shutil.which(self.program) or shutil.which(self.program, path="/usr/sbin:/sbin")

    def missing(self) -> str:
        if self.executable() is None:
            return f"{self.program} is not installed"
        if self.root_only and not ROOT:
            return f"{self.program} needs root to start here"
        for path in self.needs:
            if not os.path.exists(path):
                return f"{self.program} needs {path}"
        return ""

    def __call__(self) -> Daemon:
        exe = self.executable()
        assert exe is not None
        # Its own folder under /tmp, which a daemon running as its own user can reach.
        folder = Path(tempfile.mkdtemp(prefix=f"portwatch-{Path(self.program).name}-"))
        uid = None
        if self.user and ROOT:
            uid = user_id(self.user)
            os.chown(folder, uid, -1)
        ports = [_free_port() for _ in range(self.port_count)]
        try:
            argv = self.build(exe, folder, ports)
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                user=uid,
                cwd=folder,
                # Its own process group: a daemon may signal its whole group on the way out.
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        daemon = Daemon(self.program, proc, set(ports), folder)
        try:
            _wait_listening(ports[:1], proc, self.program)
            daemon.settle(self.workers)
        except AssertionError:
            daemon.stop()
            raise
        return daemon


def user_id(user: str) -> int:
    import pwd

    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return NOBODY


def _nginx(exe: str, folder: Path, ports: list[int]) -> list[str]:
    temp = " ".join(
        f"{kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    temp += f" uwsgi_temp_path {folder}/uwsgi; scgi_temp_path {folder}/scgi;"
    (folder / "nginx.conf").write_text(
        f"daemon off; worker_processes 2; pid {folder}/nginx.pid; error_log {folder}/e.log;\n"
        "events { worker_connections 32; }\n"
        f"http {{ access_log off; {temp}\n"
        f"  server {{ listen 127.0.0.1:{ports[0]}; listen [::1]:{ports[1]};"
        f" listen [::]:{ports[2]} ipv6only=on; return 204; }} }}\n"
    )
    return [exe, "-c", str(folder / "nginx.conf"), "-p", str(folder), "-e", str(folder / "e.log")]


def _redis(exe: str, folder: Path, ports: list[int]) -> list[str]:
    return [exe, "--port", str(ports[0]), "--bind", "127.0.0.1 ::1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(folder),
            "--logfile", ""]  # fmt: skip


def _postgres(exe: str, folder: Path, ports: list[int]) -> list[str]:
    initdb = Path(exe).with_name("initdb")
    subprocess.run(
        [str(initdb), "-D", str(folder / "data"), "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
        user=user_id("postgres") if ROOT else None,
        cwd=folder,
        timeout=60,
    )
    # Every address (0.0.0.0 and an IPv6-only ::), as packaged servers often do;
    # pg_hba.conf from initdb lets only this machine in. No autovacuum: its workers,
    # forked from the server, hold its sockets for a moment after they start.
    return [exe, "-D", str(folder / "data"), "-p", str(ports[0]), "-k", str(folder),
            "-c", "listen_addresses=*", "-c", "fsync=off",
            "-c", "autovacuum=off"]  # fmt: skip


def _postgres_program() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return str(found[-1]) if found else "/usr/lib/postgresql/15/bin/postgres"


def _sshd(exe: str, folder: Path, ports: list[int]) -> list[str]:
    key = folder / "host_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return [exe, "-D", "-e", "-f", "/dev/null", "-h", str(key), "-p", str(ports[0]),
            "-o", "ListenAddress=127.0.0.1", "-o", "ListenAddress=::1",
            "-o", "PidFile=none"]  # fmt: skip


def _dnsmasq(exe: str, folder: Path, ports: list[int]) -> list[str]:
    # TCP and UDP on each address; a DNS forwarder with nothing to forward to.
    return [exe, "-k", "--conf-file=/dev/null", f"--port={ports[0]}", "--bind-interfaces",
            "--listen-address=127.0.0.1", "--listen-address=::1", "--no-resolv",
            "--no-hosts", "--pid-file=", "--user=nobody"]  # fmt: skip


def _memcached(exe: str, folder: Path, ports: list[int]) -> list[str]:
    return [exe, "-p", str(ports[0]), "-U", str(ports[0]), "-l", "127.0.0.1,::1",
            "-u", "nobody"]  # fmt: skip


def _named(exe: str, folder: Path, ports: list[int]) -> list[str]:
    # One socket per address and worker thread: IPv6 on each address of each device,
    # link-local ones bound to their device, as they are at start (no rescans while the
    # test runs). No control channel (its port is fixed).
    (folder / "named.conf").write_text(
        f'options {{ directory "{folder}"; pid-file "{folder}/named.pid";'
        f" listen-on port {ports[0]} {{ 127.0.0.1; }}; listen-on-v6 port {ports[0]} {{ any; }};"
        " recursion no; automatic-interface-scan no; };\ncontrols { };\n"
    )
    return [exe, "-f", "-n", "2", "-c", str(folder / "named.conf")]


def _apache(exe: str, folder: Path, ports: list[int]) -> list[str]:
    modules = "/usr/lib/apache2/modules"
    user = "User www-data\nGroup www-data\n" if ROOT else ""
    # Two children, never more or fewer: they hold the sockets too, and must not come
    # and go between ss and portwatch.
    (folder / "httpd.conf").write_text(
        f"ServerName localhost\nListen 127.0.0.1:{ports[0]}\nListen [::]:{ports[1]}\n"
        f"PidFile {folder}/httpd.pid\nErrorLog {folder}/error.log\n"
        f"Mutex file:{folder} default\nDefaultRuntimeDir {folder}\n{user}"
        f"LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so\n"
        f"LoadModule authz_core_module {modules}/mod_authz_core.so\n"
        "StartServers 2\nMinSpareServers 2\nMaxSpareServers 2\nMaxRequestWorkers 2\n"
    )
    return [exe, "-f", str(folder / "httpd.conf"), "-DFOREGROUND"]


def _haproxy(exe: str, folder: Path, ports: list[int]) -> list[str]:
    # "interface lo": a Debian daemon's own device-bound socket (SO_BINDTODEVICE).
    (folder / "haproxy.cfg").write_text(
        "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 1s\n"
        "  timeout server 1s\n"
        f"frontend f\n  bind 127.0.0.1:{ports[0]}\n  bind :::{ports[1]} v4v6\n"
        f"  bind 0.0.0.0:{ports[2]} interface lo\n  default_backend b\n"
        "backend b\n  server s 127.0.0.1:9\n"
    )
    return [exe, "-db", "-f", str(folder / "haproxy.cfg")]


DAEMONS: dict[str, DaemonStart] = {
    "nginx": DaemonStart("nginx", _nginx, ports=3, workers=2),
    "redis": DaemonStart("redis-server", _redis),
    "postgresql": DaemonStart(_postgres_program(), _postgres, user="postgres"),
    "sshd": DaemonStart("sshd", _sshd, root_only=True, needs=("/run/sshd",)),
    "dnsmasq": DaemonStart("dnsmasq", _dnsmasq, root_only=True),
    "memcached": DaemonStart("memcached", _memcached, root_only=True),
    "named": DaemonStart("named", _named, user="bind"),
    "apache2": DaemonStart("apache2", _apache, ports=2, workers=2),
    "haproxy": DaemonStart("haproxy", _haproxy, ports=3, root_only=True),
}


# --- the tests ---------------------------------------------------------------------------


def _users() -> list[Any]:
    return [
        "root" if ROOT else "self",
        pytest.param("nobody", marks=pytest.mark.skipif(not ROOT, reason="needs root to drop")),
    ]


@pytest.mark.parametrize("user", _users())
@pytest.mark.parametrize("probe", PROBES)
def test_child_sockets_as_ss_shows_them(
    machine: Machine, viewer: Viewer, probe: str, user: str
) -> None:
    names = [n for n in machine.children if n != "netns"]
    view = viewer.view(probe, "root" if user == "self" else user)
    keys = compare(view, machine.child_ports(*names), machine.child_pids(*names))
    assert len(keys) >= len(SPECS)
    # The viewer's own SO_REUSEPORT group: two sockets, one row for each process.
    group = ("group-1", "group-2") if user != "nobody" else ("nobody", "nobody-2")
    port = machine.children[group[1]].opened[-1]["port"]
    rows = [r for r in view.portwatch if r["port"] == port]
    assert sorted(r["pid"] for r in rows) == sorted(machine.child_pids(*group))
    if "netns" in machine.children:
        # A socket in another network namespace is not this namespace's listener.
        netns = machine.children["netns"].pid
        assert not [r for r in view.portwatch if r["pid"] == netns]


@pytest.mark.parametrize("user", _users())
@pytest.mark.parametrize("probe", PROBES)
@pytest.mark.parametrize("daemon", list(DAEMONS))
def test_debian_daemon_as_ss_shows_it(
    machine: Machine, viewer: Viewer, daemon: str, probe: str, user: str
) -> None:
    if daemon in machine.absent:
        pytest.skip(machine.absent[daemon])
    if daemon in machine.broken:
        pytest.fail(machine.broken[daemon])
    started = machine.daemons[daemon]
    pids = started.pids()
    view = viewer.view(probe, "root" if user == "self" else user)
    keys = compare(view, started.ports, pids)
    assert keys, f"{daemon} shows no listener"
    if user != "nobody":
        # As its owner (or root), every row names one of the daemon's processes, and the
        # package dpkg says its executable came from.
        rows = [r for r in view.portwatch if r["port"] in started.ports and r["pid"] in pids]
        assert rows and all(r["exe"] for r in rows)
        if probe == PROBES[0] and shutil.which("dpkg-query"):
            for exe in {r["exe"] for r in rows}:
                owner = subprocess.run(
                    ["dpkg-query", "-S", exe], capture_output=True, text=True, check=False
                )
                expected = owner.stdout.partition(":")[0] if owner.returncode == 0 else None
                packages = {r["package"]["name"] if r["package"] else None for r in rows}
                assert packages == {expected}, (exe, owner.stdout, packages)


@pytest.mark.skipif(not ROOT, reason="unshare -n and nsenter need root")
@pytest.mark.parametrize("user", ["root", "nobody"])
@pytest.mark.parametrize("probe", PROBES)
def test_a_namespaced_listener_is_shown_only_inside(
    machine: Machine, viewer: Viewer, probe: str, user: str
) -> None:
    if "netns" not in machine.children:
        pytest.skip(machine.no_netns)
    child = machine.children["netns"]
    view = viewer.view(probe, user, netns_pid=child.pid)
    ports = machine.child_ports("netns")
    keys = compare(view, ports, {child.pid})
    assert {key[2] for key in keys} == ports
