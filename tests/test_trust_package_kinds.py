"""Package entries decided on constructed owners, the trust file's three kinds, and the
package database readers on recorded databases (the real dpkg runs in
test_trust_packages.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from platforms import needs_linux, needs_posix
from trust_fixtures import listener, owner, sha

from portwatch.config import trustfile
from portwatch.core.trust import (
    TrustEntry,
    TrustError,
    TrustJudge,
    TrustList,
    entry_for_listener,
    with_versions,
)
from portwatch.core.types import Owner, PackageInfo, SignerInfo, Status
from portwatch.core.watchlist import parse_spec
from portwatch.probe.packages import (
    DpkgDatabase,
    FileRecord,
    PackageVerifier,
    RpmDatabase,
)

SPEC = parse_spec("80/tcp")
NGINX = "/usr/sbin/nginx"
V9 = PackageInfo("nginx-core", "1.22.1-9", "dpkg", "amd64")
V10 = PackageInfo("nginx-core", "1.22.1-10", "dpkg", "amd64")


def packaged(
    package: PackageInfo | None, digest: str = "v9", problem: str | None = None, exe: str = NGINX
) -> Owner:
    base = owner(exe, sha(digest))
    return Owner(
        pid=base.pid, create_time=base.create_time, name=base.name, exe=exe,
        sha256=base.sha256, package=package, package_problem=problem,
    )  # fmt: skip


def trusted_by_package() -> TrustJudge:
    entry = entry_for_listener(listener(80, packaged(V9)), SPEC, 1.0)
    assert (entry.kind, entry.package, entry.package_version) == (
        "package",
        "nginx-core",
        V9.version,
    )
    assert entry.sha256 is None
    return TrustJudge(TrustList().with_entry(entry))


def test_upgrade_stays_known_and_says_so_plainly() -> None:
    judge = trusted_by_package()
    same = judge.judge(listener(80, packaged(V9)))
    assert same.status is Status.KNOWN and same.upgraded is None
    upgraded = judge.judge(listener(80, packaged(V10, "v10")))
    assert upgraded.status is Status.KNOWN
    assert upgraded.upgraded == "nginx-core 1.22.1-9 \u2192 1.22.1-10, verified by dpkg"


def test_an_upgrade_is_said_once_however_many_processes_and_recorded_as_asked() -> None:
    judge = trusted_by_package()
    (entry,) = judge.trust_list.entries
    first = judge.judge(listener(80, packaged(V10, "v10")))
    assert first.upgraded is not None
    # Another process of the new version (another pid): still known, nothing new to say.
    again = judge.judge(listener(80, replace(packaged(V10, "v10"), pid=4321)))
    assert again.status is Status.KNOWN and again.upgraded is None
    assert again.reason == "trusted for 80/tcp: nginx-core 1.22.1-10, verified by dpkg"
    upgrades = judge.take_upgrades()
    assert upgrades == [(entry, V10.version)]
    assert judge.take_upgrades() == []
    recorded = with_versions(judge.trust_list, upgrades)
    assert [e.package_version for e in recorded.entries] == [V10.version]
    # An entry the user changed meanwhile is theirs: left as they have it.
    edited = TrustList().with_entry(replace(entry, note="mine"))
    assert with_versions(edited, upgrades) is edited


def test_a_process_still_running_the_earlier_version_is_no_step_back() -> None:
    entry = entry_for_listener(listener(80, packaged(V10, "v10")), SPEC, 1.0)
    judge = TrustJudge(TrustList().with_entry(entry))
    # Started before the upgrade: its file was replaced on disk by the new version's.
    old = replace(packaged(V9), replaced="the executable was replaced or deleted on disk")
    verdict = judge.judge(listener(80, old))
    assert verdict.status is Status.KNOWN and verdict.upgraded is None
    assert "\u2192" not in (verdict.reason or "")
    assert judge.take_upgrades() == []


def test_the_upgraded_version_is_written_once_and_a_file_with_problems_never(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trust.json"
    entry = entry_for_listener(listener(80, packaged(V9)), SPEC, 1.0)
    trustfile.save(path, TrustList().with_entry(entry))
    recorded = trustfile.record_upgrades(path, [(entry, V10.version)])
    assert recorded is not None
    assert [e.package_version for e in trustfile.load(path).trust_list] == [V10.version]
    # Already recorded: nothing to write.
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    assert trustfile.record_upgrades(path, [(entry, V10.version)]) is None
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp
    # A file with a problem in it is the user's to fix: never rewritten by the monitor.
    broken = path.read_text().replace('"entries": [', '"entries": [{"port": "x"}, ', 1)
    path.write_text(broken)
    bumped = replace(entry, package_version=V10.version)
    assert trustfile.record_upgrades(path, [(bumped, "1.22.1-11")]) is None
    assert path.read_text() == broken


def test_changed_file_copy_and_removed_package_are_unknown() -> None:
    judge = trusted_by_package()
    edited = judge.judge(
        listener(
            80, packaged(None, "edited", "changed since nginx-core 1.22.1-10 (dpkg) installed it")
        )
    )
    assert edited.status is Status.UNKNOWN and edited.binary_changed
    assert "changed since nginx-core" in (edited.reason or "")
    copy = judge.judge(listener(80, packaged(None, "v10", exe="/tmp/nginx")))
    assert copy.status is Status.UNKNOWN and not copy.binary_changed
    removed = judge.judge(listener(80, packaged(None, "v10")))
    assert removed.status is Status.UNKNOWN and not removed.binary_changed
    assert "not part of an installed nginx-core" in (removed.reason or "")
    other = judge.judge(listener(80, packaged(PackageInfo("evil", "1", "dpkg"), "evil")))
    assert other.status is Status.UNKNOWN and other.binary_changed


def test_strongest_kind_is_chosen_and_a_kind_that_does_not_verify_is_refused() -> None:
    signed = SignerInfo("macos", team_id="ABCDE12345")
    both = Owner(pid=1, exe=NGINX, sha256=sha("x"), package=V9, signer=signed)
    assert entry_for_listener(listener(80, both), SPEC, 1.0).kind == "package"
    assert entry_for_listener(listener(80, both), SPEC, 1.0, by="signer").kind == "signer"
    assert entry_for_listener(listener(80, both), SPEC, 1.0, by="hash").kind == "hash"
    with pytest.raises(TrustError, match="changed since"):
        entry_for_listener(
            listener(80, packaged(None, problem="changed since nginx-core installed it")),
            SPEC,
            1.0,
            by="package",
        )
    # An interpreter's script that is neither packaged nor hashed cannot be pinned by
    # the interpreter's package alone: the strongest kind falls back to the hash.
    script_unread = Owner(pid=1, exe="/usr/bin/python3.11", sha256=sha("py"), package=V9,
                          script="/srv/app.py")  # fmt: skip
    assert entry_for_listener(listener(80, script_unread), SPEC, 1.0).kind == "hash"


def test_packaged_script_pins_the_script_by_its_package() -> None:
    app = PackageInfo("app", "1", "dpkg")
    py = PackageInfo("python3.11-minimal", "3.11.2-6", "dpkg")

    def running(script_package: PackageInfo | None, script_sha: str) -> Owner:
        return Owner(pid=1, exe="/usr/bin/python3.11", sha256=sha("py"), package=py,
                     script="/usr/lib/app/main.py", script_sha256=sha(script_sha),
                     script_package=script_package)  # fmt: skip

    entry = entry_for_listener(listener(80, running(app, "s1")), SPEC, 1.0)
    assert (entry.package, entry.script_package, entry.script_sha256) == (py.name, "app", None)
    judge = TrustJudge(TrustList().with_entry(entry))
    assert judge.judge(listener(80, running(app, "s2"))).status is Status.KNOWN
    assert judge.judge(listener(80, running(None, "s3"))).status is Status.UNKNOWN


def test_trust_file_keeps_all_three_kinds_and_old_files_still_load(tmp_path: Path) -> None:
    signer = SignerInfo("windows", "CN=Contoso", "CN=Contoso CA", "AB" * 20)
    tl = TrustList(
        (
            TrustEntry(SPEC, NGINX, package="nginx-core", package_version="1.22.1-9"),
            TrustEntry(parse_spec("443/tcp"), "C:\\svc.exe", signer="Contoso", signer_id=signer),
            TrustEntry(parse_spec("22/tcp"), "/usr/sbin/sshd", sha("sshd")),
        )
    )
    path = tmp_path / "trust.json"
    trustfile.save(path, tl)
    data = json.loads(path.read_text())
    assert [e["kind"] for e in data["entries"]] == ["package", "signer", "hash"]
    loaded = trustfile.load(path)
    assert loaded.problems == () and loaded.trust_list == tl
    old = {"version": 1, "entries": [{"port": "22/tcp", "exe": "/usr/sbin/sshd",
                                      "sha256": sha("sshd")}]}  # fmt: skip
    parsed, problems = trustfile.parse(json.dumps(old).encode())
    assert problems == [] and parsed.entries[0].kind == "hash"
    bad = {"entries": [{"kind": "package", "port": "22/tcp", "exe": "/x", "sha256": sha("x")},
                       {"port": "22/tcp", "exe": "/x", "package": "p", "sha256": sha("x")},
                       {"port": "22/tcp", "exe": "/x", "signer": "S",
                        "signer_id": {"platform": "windows", "subject": "CN=S"}}]}  # fmt: skip
    parsed, problems = trustfile.parse(json.dumps(bad).encode())
    assert parsed.entries == () and len(problems) == 3


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - dpkg's own format


@pytest.mark.parametrize("searches", [24, 0], ids=["lists searched", "compact index"])
def test_dpkg_records_multiarch_names_and_diversions(tmp_path: Path, searches: int) -> None:
    admin, root = tmp_path / "dpkg", tmp_path / "root"
    root.mkdir()
    real, local = b"original tool", b"replacement from another package"
    _write(admin / "status", "\n".join([
        "Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n",
        "Package: wrapper\nStatus: install ok installed\nArchitecture: all\nVersion: 2\n",
        "Package: gone\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 3\n",
    ]))  # fmt: skip
    _write(admin / "info/tool:amd64.list", "/usr\n/usr/bin\n/usr/bin/tool\n/usr/bin/plain\n")
    _write(
        admin / "info/tool:amd64.md5sums",
        f"{_md5(real)}  usr/bin/tool\n{_md5(b'p')}  usr/bin/plain\n",
    )
    _write(admin / "info/wrapper.list", "/usr/bin/tool\n")
    _write(admin / "info/wrapper.md5sums", f"{_md5(local)}  usr/bin/tool\n")
    _write(admin / "info/gone.list", "/usr/bin/gone\n")
    _write(admin / "diversions", "/usr/bin/tool\n/usr/bin/tool.real\nwrapper\n")
    _write(root / "usr/bin/tool", local)
    _write(root / "usr/bin/tool.real", real)
    _write(root / "usr/bin/plain", b"p")
    _write(root / "usr/bin/gone", b"g")
    db = DpkgDatabase(str(admin), str(root), searches_before_index=searches)
    verifier = PackageVerifier([db])

    def check(name: str) -> Any:
        return verifier.check(f"/usr/bin/{name}", str(root / "usr/bin" / name))

    tool = PackageInfo("tool", "1.0-1", "dpkg", "amd64")
    # The diverted-to file is the original package's, recorded under the original path.
    assert check("tool.real").package == tool
    # What sits at the diverted path belongs to the diverting package.
    assert check("tool").package == PackageInfo("wrapper", "2", "dpkg", "all")
    assert check("plain").package == tool
    assert check("gone").package is None and check("gone").listed_by is None
    _write(root / "usr/bin/plain", b"edited")
    edited = check("plain")
    assert edited.package is None and edited.listed_by == tool
    assert edited.problem == "changed since tool 1.0-1 (dpkg) installed it"
    # The first lookups search the lists for the path asked; the index comes later.
    assert db.indexed is (searches == 0)


def test_dpkg_builds_its_index_only_after_the_first_lookups(tmp_path: Path) -> None:
    admin, root = tmp_path / "dpkg", tmp_path / "root"
    _write(admin / "status", "Package: tool\nStatus: install ok installed\nVersion: 1\n")
    names = [f"t{n}" for n in range(6)]
    _write(admin / "info/tool.list", "".join(f"/usr/bin/{name}\n" for name in names))
    _write(
        admin / "info/tool.md5sums", "".join(f"{_md5(n.encode())}  usr/bin/{n}\n" for n in names)
    )
    for name in names:
        _write(root / "usr/bin" / name, name.encode())
    db = DpkgDatabase(str(admin), str(root), searches_before_index=3)
    verifier = PackageVerifier([db])
    found = []
    for name in names:
        found.append(verifier.check(f"/usr/bin/{name}", str(root / "usr/bin" / name)).package)
        found.append(db.indexed)
    tool = PackageInfo("tool", "1", "dpkg", None)
    assert found == [tool, False] * 3 + [tool, True] * 3
    assert db.index_builds == 2  # the lists read once, then the index


@needs_linux  # reads the running image through /proc/self/fd
@pytest.mark.parametrize("state", ["half-installed", "unpacked", "half-configured"])
def test_a_process_of_the_earlier_version_is_not_changed_while_dpkg_upgrades(
    tmp_path: Path, state: str
) -> None:
    """While dpkg swaps the files and configures the new version, a program still running
    the earlier version's (deleted) file is that version, not a changed binary."""
    admin, root = tmp_path / "dpkg", tmp_path / "root"
    old, new = b"tool 1.0", b"tool 2.0"
    _write(admin / "status", "Package: tool\nStatus: install ok installed\nVersion: 1.0\n")
    _write(admin / "info/tool.list", "/usr/bin/tool\n")
    _write(admin / "info/tool.md5sums", f"{_md5(old)}  usr/bin/tool\n")
    _write(root / "usr/bin/tool", old)
    verifier = PackageVerifier([DpkgDatabase(str(admin), str(root))])
    with open(root / "usr/bin/tool", "rb") as running:  # what a process runs: kept open
        through = f"/proc/self/fd/{running.fileno()}"
        assert verifier.check("/usr/bin/tool", through).package == PackageInfo(
            "tool", "1.0", "dpkg", None
        )
        # dpkg mid-upgrade: the new file in place of the old (deleted), the new records,
        # the package in a transitional state.
        (root / "usr/bin/tool").unlink()
        _write(root / "usr/bin/tool", new)
        _write(admin / "info/tool.md5sums", f"{_md5(new)}  usr/bin/tool\n")
        _write(admin / "status", f"Package: tool\nStatus: install ok {state}\nVersion: 2.0\n")
        during = verifier.check("/usr/bin/tool", through)
        assert during.package == PackageInfo("tool", "1.0", "dpkg", None)
        assert during.problem is None


class FailingDatabase:
    manager = "dpkg"

    def __init__(self) -> None:
        self.calls = 0

    def stamp(self) -> object:
        return 1

    def records(self, path: str) -> list[FileRecord]:
        self.calls += 1
        raise OSError("database locked")

    def installed(self, name: str) -> bool:
        raise OSError("database locked")


@needs_posix  # package databases list POSIX paths; a Windows path is never looked up
def test_a_failed_lookup_is_not_cached_as_no_package(tmp_path: Path) -> None:
    exe = tmp_path / "x"
    exe.write_bytes(b"x")
    db = FailingDatabase()
    verifier = PackageVerifier([db])
    assert verifier.check(str(exe)).package is None
    assert verifier.check(str(exe)).package is None
    assert db.calls == 2


@needs_posix  # package databases list POSIX paths; a Windows path is never looked up
def test_rpm_digests_from_a_recorded_answer(tmp_path: Path) -> None:
    exe = tmp_path / "sshd"
    exe.write_bytes(b"sshd binary")
    digest = hashlib.sha256(b"sshd binary").hexdigest()
    answers = {
        str(exe): (0, f"{exe}\t{digest}\t8\topenssh-server\t9.3p1-1.fc39\tx86_64\n", ""),
        "/elsewhere": (1, "file /elsewhere is not owned by any package\n", ""),
    }
    calls: list[list[str]] = []

    def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        if argv[-1] == "/hang":
            raise subprocess.TimeoutExpired("rpm", 10)
        code, out, err = answers[argv[-1]]
        return subprocess.CompletedProcess(list(argv), code, out, err)

    rpm = RpmDatabase(run, db_dirs=[str(tmp_path / "rpmdb")])
    [record] = rpm.records(str(exe))
    assert record.algorithm == "sha256" and record.digest == digest
    assert record.package == PackageInfo("openssh-server", "9.3p1-1.fc39", "rpm", "x86_64")
    assert rpm.records("/elsewhere") == []
    with pytest.raises(OSError, match="did not answer"):
        rpm.records("/hang")
    verifier = PackageVerifier([rpm])
    assert verifier.package_of(str(exe)) == record.package
    exe.write_bytes(b"sshd binary, patched")
    assert verifier.check(str(exe)).problem == (
        "changed since openssh-server 9.3p1-1.fc39 (rpm) installed it"
    )


def test_review_shows_the_package_and_pins_the_chosen_kind() -> None:
    import io

    from portwatch.cli.trust import review
    from portwatch.core.watchlist import WatchList

    found = [listener(80, packaged(V9))]
    watched = WatchList((SPEC,))
    out = io.StringIO()
    strongest = review(TrustList(), found, watched, accept="1", stdin=io.StringIO(), out=out,
                       now_wall=1.0)  # fmt: skip
    assert "package nginx-core 1.22.1-9, verified by dpkg" in out.getvalue()
    assert "trusted on 80/tcp by package" in out.getvalue()
    assert strongest is not None and strongest.entries[0].kind == "package"
    pinned = review(TrustList(), found, watched, accept="1", stdin=io.StringIO(),
                    out=io.StringIO(), now_wall=1.0, by="hash")  # fmt: skip
    assert pinned is not None and pinned.entries[0].kind == "hash"


def test_old_name_only_signer_entry_is_flagged_by_the_command(tmp_path: Path) -> None:
    import os
    import sys

    data = tmp_path / "data"
    data.mkdir()
    old = {"port": "443/tcp", "exe": "/opt/tool", "sha256": None, "signer": "Tool Co"}
    (data / "trust.json").write_text(json.dumps({"version": 1, "entries": [old]}))
    env = {k: v for k, v in os.environ.items() if k != "PORTWATCH_DATA_DIR"}
    listed = subprocess.run(
        [sys.executable, "-m", "portwatch", "--data-dir", str(data), "trust", "list"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "needs review" in listed.stderr and "needs review" in listed.stdout
    assert "by signer" in listed.stdout
    # Kept as it was (nothing could verify it here), never silently dropped.
    assert json.loads((data / "trust.json").read_text())["entries"][0]["signer"] == "Tool Co"
