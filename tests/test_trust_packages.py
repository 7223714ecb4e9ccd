"""Trust by package with the real dpkg: .deb files built here, installed, upgraded,
tampered with, copied and removed, judged by the command a user runs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from childsockets import free_port, wait_for
from cli_runner import RunningMonitor, monitoring
from test_trust_cli import cli
from trust_processes import REAL_PYTHON, listening

from portwatch.core.types import Owner, Proto
from portwatch.core.watchlist import WatchList, WatchSpec
from portwatch.probe.identity import OwnerReader
from portwatch.probe.packages import DpkgDatabase, FileRecord, PackageVerifier
from portwatch.probe.psutil_probe import PsutilProbe

SLOW_S = 40.0
ALERTS = {"unknown-owner", "unattributed-owner", "binary-changed"}

# One package name per test run: several runs of this suite may share a machine.
PACKAGE = f"portwatch-test-listener-{os.getpid()}"
INSTALLED = f"/usr/lib/{PACKAGE}/pwlisten"
# Listens on the port given (so every version of the program uses the trusted port).
SERVE = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"""

# The program packaged: a copy of an interpreter that finds its library from wherever
# it is installed (the system's own, which is at home under /usr).
_SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin")
PROGRAM = os.path.realpath(_SYSTEM_PYTHON) if _SYSTEM_PYTHON else REAL_PYTHON

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None,
    reason="needs dpkg and root to install packages",
)


def _dpkg(*args: str) -> subprocess.CompletedProcess[str]:
    # Others may run apt on this machine: share their lock when it is there.
    lock = Path("/work/apt.lock")
    prefix = ["flock", str(lock)] if lock.parent.is_dir() and shutil.which("flock") else []
    return subprocess.run(
        [*prefix, "dpkg", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _build(tmp_path: Path, version: str, extra: bytes) -> Path:
    """A .deb of PACKAGE at ``version`` holding a program that listens on a port (a copy
    of the real interpreter; ``extra`` bytes make each version's file different)."""
    deb = tmp_path / f"{PACKAGE}_{version}.deb"
    if deb.exists():
        return deb
    root = tmp_path / f"pkg-{version}"
    exe = root / INSTALLED.lstrip("/")
    exe.parent.mkdir(parents=True)
    # Bytes after the ELF image make each version's file different; it runs the same.
    exe.write_bytes(Path(PROGRAM).read_bytes() + extra)
    os.chmod(exe, 0o755)  # noqa: S103 - an installed program is world-executable
    control = root / "DEBIAN"
    control.mkdir()
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (control / "control").write_text(
        f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: {arch}\n"
        "Maintainer: portwatch tests <tests@example.invalid>\n"
        "Description: a listener for portwatch's package trust tests\n"
    )
    digest = hashlib.md5(exe.read_bytes()).hexdigest()  # noqa: S324 - dpkg's own format
    (control / "md5sums").write_text(f"{digest}  {INSTALLED.lstrip('/')}\n")
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Znone", "--build", str(root), str(deb)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return deb


@pytest.fixture
def install(tmp_path: Path) -> Iterator[Callable[[str, bytes], None]]:
    def do(version: str, extra: bytes) -> None:
        done = _dpkg("-i", str(_build(tmp_path, version, extra)))
        assert done.returncode == 0, done.stderr

    _dpkg("--purge", PACKAGE)
    try:
        yield do
    finally:
        _dpkg("--purge", PACKAGE)


def _row(data: Path, port: int) -> dict[str, object]:
    scan = cli(data, "scan", "--json")
    assert scan.returncode == 0, scan.stderr
    rows = [row for row in json.loads(scan.stdout) if row["port"] == port]
    assert len(rows) == 1, rows
    return rows[0]  # type: ignore[no-any-return]


def _monitor_once(data: Path) -> str:
    run = cli(data, "monitor", "--duration", "0.5", "--interval", "0.2")
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_trust_by_package_survives_an_upgrade_and_nothing_else(
    install: Callable[[str, bytes], None], tmp_path: Path, data_dir: Path
) -> None:
    install("1.0", b"")
    with listening([INSTALLED, "-c", SERVE, "0"]) as v1:
        port = v1.port
        assert cli(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
        assert _row(data_dir, port)["package"] == {"name": PACKAGE, "version": "1.0"}
        # Without --by the strongest identity that verifies is chosen, and said.
        added = cli(data_dir, "trust", "add", f"{port}/tcp", "--exe", INSTALLED)
        assert added.returncode == 0, added.stderr
        assert "(by package)" in added.stdout
        assert f"package {PACKAGE} 1.0" in added.stdout
        assert _row(data_dir, port)["status"] == "known"
        listed = cli(data_dir, "trust", "list")
        assert "by package" in listed.stdout
        assert f"package {PACKAGE} (trusted at 1.0)" in listed.stdout

    # An upgrade keeps the trust, and the monitor says so plainly.
    install("2.0", b"\0version 2")
    serve = [INSTALLED, "-c", SERVE, str(port)]
    with listening(serve):
        row = _row(data_dir, port)
        assert row["status"] == "known"
        assert row["package"] == {"name": PACKAGE, "version": "2.0"}
        out = _monitor_once(data_dir)
        assert f"{PACKAGE} 1.0 \u2192 2.0, verified by dpkg" in out
        assert "package-upgraded" in out

    # The installed file edited after install: it no longer verifies.
    with open(INSTALLED, "ab") as handle:
        handle.write(b"\0tampered")
    with listening(serve):
        row = _row(data_dir, port)
        assert row["status"] == "unknown"
        assert row["package"] is None
        out = _monitor_once(data_dir)
        assert "binary-changed" in out
        assert f"changed since {PACKAGE} 2.0 (dpkg) installed it" in out

    # A faithful copy elsewhere is not the package's file.
    install("2.0", b"\0version 2")
    copy = tmp_path / "elsewhere" / "pwlisten"
    copy.parent.mkdir()
    shutil.copy2(INSTALLED, copy)
    with listening([str(copy), "-c", SERVE, str(port)]):
        row = _row(data_dir, port)
        assert (row["status"], row["package"]) == ("unknown", None)

    # The package removed while its program still runs: not trusted any more.
    with listening(serve):
        assert _row(data_dir, port)["status"] == "known"
        removed = _dpkg("--purge", PACKAGE)
        assert removed.returncode == 0, removed.stderr
        row = _row(data_dir, port)
        assert (row["status"], row["package"]) == ("unknown", None)


def owner_of(probe: PsutilProbe, watched: WatchList, pid: int) -> Owner:
    found = [
        item.owner for item in probe.poll(watched).listeners if item.owner and item.owner.pid == pid
    ]
    assert found and found[0] is not None
    return found[0]


def test_steady_polls_never_read_the_package_database(
    install: Callable[[str, bytes], None],
) -> None:
    install("1.0", b"")
    asked: list[str] = []

    class CountingDpkg(DpkgDatabase):
        def records(self, path: str) -> list[FileRecord]:
            asked.append(path)
            return super().records(path)

    database = CountingDpkg()
    verifier = PackageVerifier([database])
    probe = PsutilProbe(owners=OwnerReader(packages=verifier))
    with listening([INSTALLED, "-c", SERVE, "0"]) as child:
        watched = WatchList((WatchSpec(child.port, child.port, (Proto.TCP,)),))
        mine = [
            item
            for item in probe.poll(watched).listeners
            if item.owner and item.owner.pid == child.pid
        ]
        assert mine and mine[0].owner is not None
        package = mine[0].owner.package
        assert package is not None and (package.name, package.version) == (PACKAGE, "1.0")
        # Other programs on this machine may start meanwhile, and others may run dpkg
        # (which rightly invalidates every answer): judge a round of polls during which
        # dpkg's records stayed put. Ours is never looked up again in it, and the
        # database index is not rebuilt.
        for _attempt in range(20):
            stamp, builds, before = database.stamp(), database.index_builds, len(asked)
            for _ in range(5):
                probe.poll(watched)
            if database.stamp() == stamp:
                break
        else:
            pytest.skip("dpkg's database kept changing on this machine")
        assert INSTALLED not in asked[before:]
        assert database.index_builds == builds
        assert verifier.check(INSTALLED).package == package
        assert INSTALLED not in asked[before:]
        # A change of the database (an upgrade) is noticed on the next lookup.
        install("2.0", b"\0v2")
        upgraded = verifier.package_of(INSTALLED)
        assert upgraded is not None and upgraded.version == "2.0"
        assert database.index_builds > builds
        # The program started before the upgrade still runs the old, now deleted, file:
        # it is the previous version of the package, still installed; not a changed binary.
        still = owner_of(probe, watched, child.pid)
        assert still.package == package and still.package_problem is None
        # Once the package is removed, that is over.
        assert _dpkg("--purge", PACKAGE).returncode == 0
        gone = owner_of(probe, watched, child.pid)
        assert gone.package is None
    probe.close()


def _two_free_ports() -> int:
    """A port whose next one is free too (one trust entry covers both)."""
    for _ in range(100):
        port = free_port()
        if port < 65535 and _bindable(port + 1):
            return port
    raise AssertionError("no two consecutive free ports")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _seen(monitor: RunningMonitor, port: int, pid: int, kind: str | None = None) -> bool:
    return any(e["pid"] == pid for e in monitor.events_for(port, kind))


def test_an_upgrade_is_said_once_and_its_version_recorded(
    install: Callable[[str, bytes], None], data_dir: Path
) -> None:
    install("1.0", b"")
    port = _two_free_ports()
    spec = f"{port}-{port + 1}/tcp"
    assert cli(data_dir, "watch", "add", spec).returncode == 0
    with listening([INSTALLED, "-c", SERVE, str(port)]):
        added = cli(data_dir, "trust", "add", spec, "--exe", INSTALLED, "--by", "package")
        assert added.returncode == 0, added.stderr
        with monitoring(data_dir) as monitor:
            wait_for(lambda: monitor.events_for(port, "listener-opened"), timeout=SLOW_S)
            # Upgraded while it runs: this process goes on running 1.0 (its file deleted),
            # new processes run 2.0.
            install("2.0", b"\0version 2")
            for _ in range(2):  # two processes of the new version, one after the other
                with listening([INSTALLED, "-c", SERVE, str(port + 1)]) as new:
                    wait_for(lambda pid=new.pid: _seen(monitor, port + 1, pid), timeout=SLOW_S)
                wait_for(
                    lambda pid=new.pid: _seen(monitor, port + 1, pid, "listener-closed"),
                    timeout=SLOW_S,
                )
            recorded = f"package {PACKAGE} (trusted at 2.0)"
            wait_for(lambda: recorded in cli(data_dir, "trust", "list").stdout, timeout=SLOW_S)
        # Said once, for the first process of the new version.
        upgrades = [e for e in monitor.events if e["event"] == "package-upgraded"]
        assert [(e["port"], e["detail"]) for e in upgrades] == [
            (port + 1, f"{PACKAGE} 1.0 \u2192 2.0, verified by dpkg")
        ]
        # The process of the earlier version, judged against the recorded 2.0, stayed
        # trusted, and never read as an upgrade "2.0 \u2192 1.0".
        # (Only these two ports: the default watch list may see other programs here.)
        alerts = [
            e for e in monitor.events if e["event"] in ALERTS and e["port"] in (port, port + 1)
        ]
        assert not alerts, [(e["port"] - port, e["pid"], e.get("detail")) for e in alerts]
        assert "\u2192 1.0" not in "".join(monitor.raw)
        assert "Traceback" not in "".join(monitor.raw)
        # The next run has nothing more to say about it.
        with listening([INSTALLED, "-c", SERVE, str(port + 1)]):
            out = _monitor_once(data_dir)
        assert "package-upgraded" not in out
        assert "\u2192" not in out


def test_a_trust_file_with_problems_is_not_rewritten_to_record_an_upgrade(
    install: Callable[[str, bytes], None], data_dir: Path
) -> None:
    install("1.0", b"")
    serve = [INSTALLED, "-c", SERVE, "0"]
    with listening(serve) as v1:
        port = v1.port
        assert cli(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
        added = cli(data_dir, "trust", "add", f"{port}/tcp", "--exe", INSTALLED)
        assert added.returncode == 0, added.stderr
    # The user's hand-edited file has a mistake in it: it is theirs to fix.
    trust_file = data_dir / "trust.json"
    content = json.loads(trust_file.read_text())
    content["entries"].append({"port": "not a port", "exe": "/usr/bin/x"})
    trust_file.write_text(json.dumps(content, indent=2))
    before = trust_file.read_bytes()
    install("2.0", b"\0version 2")
    with listening([INSTALLED, "-c", SERVE, str(port)]):
        out = _monitor_once(data_dir)
    assert f"{PACKAGE} 1.0 \u2192 2.0, verified by dpkg" in out
    assert out.count("package-upgraded") == 1
    assert trust_file.read_bytes() == before
