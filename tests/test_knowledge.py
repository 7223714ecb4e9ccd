"""Looking ports up: curated entries, range members, OS-services names, unknown ports,
and the user's own description file."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

import portwatch
from portwatch.core.types import Proto
from portwatch.knowledge import KnowledgeBase
from portwatch.knowledge.base import MAX_USER_FILE_BYTES, read_user_file
from portwatch.knowledge.registry import Registry


@pytest.fixture(scope="module")
def base() -> KnowledgeBase:
    loaded, problems = KnowledgeBase.load(None)
    assert problems == ()
    return loaded


def _os_name(port: int, proto: Proto) -> str | None:
    try:
        return socket.getservbyport(port, proto.value)
    except OSError:
        return None


def test_a_curated_port(base: KnowledgeBase) -> None:
    info = base.lookup(3653, Proto.TCP)
    assert info.source == "curated"
    assert (info.port, info.proto, info.lo, info.hi) == (3653, Proto.TCP, 3653, 3653)
    assert info.protocols == (Proto.TCP, Proto.UDP)
    assert info.name == "tsp"
    assert "RFC 5572" in info.registration
    assert any("RFC 7123" in note for note in info.security)
    assert all("3653" in cmd for check in info.checks for cmd in check.commands)
    assert base.service_name(3653, Proto.UDP) == "tsp"


def test_the_watched_ports_carry_their_key_facts(base: KnowledgeBase) -> None:
    vnsstr = base.lookup(3321, Proto.UDP)
    assert vnsstr.name == "vnsstr" and "Framehawk" in vnsstr.usage
    assert "3224-3324" in vnsstr.usage
    fatpipe = base.lookup(3353, Proto.TCP)
    assert fatpipe.name == "fatpipe" and "FatPipe" in fatpipe.usage
    tsp = base.lookup(3653, Proto.UDP)
    assert any("41" in r.what and "Not a port" in r.note for r in tsp.related)


def test_a_range_member_resolves_to_the_range_with_its_own_checks(base: KnowledgeBase) -> None:
    info = base.lookup(3300, Proto.UDP)
    assert info.source == "curated"
    assert (info.lo, info.hi, info.protocols) == (3224, 3324, (Proto.UDP,))
    assert "Framehawk" in info.title
    assert info.port == 3300
    assert all("3300" in cmd for check in info.checks for cmd in check.commands)
    assert base.service_name(3300, Proto.UDP) == info.name
    # The Framehawk range is UDP only.
    assert base.lookup(3300, Proto.TCP).name != info.name


def test_a_single_port_wins_over_the_range_around_it(base: KnowledgeBase) -> None:
    assert base.lookup(3321, Proto.UDP).name == "vnsstr"
    assert base.lookup(3322, Proto.UDP).lo == 3224


def test_ephemeral_ranges() -> None:
    linux, _ = KnowledgeBase.load(None, system="linux")
    # 32778/tcp has no IANA registration, so the curated range answers for it.
    linux_only = linux.lookup(32778, Proto.TCP)
    assert (linux_only.lo, linux_only.hi) == (32768, 60999)
    windows = linux.lookup(65000, Proto.UDP)
    assert (windows.lo, windows.hi) == (49152, 65535)
    # 40000/tcp is registered (safetynetp): the registration answers, the range is beside it.
    registered = linux.lookup(40000, Proto.TCP)
    assert registered.source == "registry" and registered.name == "safetynetp"
    assert any(note.startswith("32768-60999/tcp") for note in registered.also_in)


@pytest.mark.parametrize("system", ["windows", "macos"])
def test_linux_temporary_ports_are_not_temporary_elsewhere(system: str) -> None:
    # Windows and macOS hand out temporary ports from 49152-65535 only: there, a listener
    # on 38515 is not "linux-ephemeral", and the range is not offered beside an answer.
    other, _ = KnowledgeBase.load(None, system=system)
    info = other.lookup(38515, Proto.TCP)
    assert info.name != "linux-ephemeral" and "Linux" not in info.title
    assert not any(note.startswith("32768-60999") for note in info.also_in)
    assert not any(n.startswith("32768-60999") for n in other.lookup(40000, Proto.TCP).also_in)
    assert (other.lookup(65000, Proto.UDP).lo, other.lookup(65000, Proto.UDP).hi) == (49152, 65535)


def test_the_running_os_decides_which_ranges_apply(base: KnowledgeBase) -> None:
    expected = "linux-ephemeral" if sys.platform.startswith("linux") else None
    name = base.lookup(38515, Proto.TCP).name
    assert (name == "linux-ephemeral") == (expected is not None), name


def _first_port(base: KnowledgeBase, *, os_named: bool) -> tuple[int, Proto]:
    for port in range(1, 32768):
        for proto in (Proto.TCP, Proto.UDP):
            if (
                base.entry_for(port, proto) is None
                and not base.registry.services(port, proto)
                and (_os_name(port, proto) is not None) == os_named
            ):
                return port, proto
    pytest.skip("this machine's services database has no suitable port")


def test_a_port_only_the_os_services_database_names(base: KnowledgeBase) -> None:
    port, proto = _first_port(base, os_named=True)
    info = base.lookup(port, proto)
    assert info.source == "os-services"
    assert info.name == _os_name(port, proto)
    assert base.service_name(port, proto) == info.name
    assert info.name in info.summary
    assert all(str(port) in cmd for check in info.checks for cmd in check.commands)


def test_an_unknown_port_gets_an_honest_answer(base: KnowledgeBase) -> None:
    port, proto = _first_port(base, os_named=False)
    info = base.lookup(port, proto)
    assert info.source == "none" and not info.known
    assert info.name == "" and base.service_name(port, proto) == ""
    assert info.title == "No registered service known"
    assert "commands below" in info.usage
    assert all(str(port) in cmd for check in info.checks for cmd in check.commands)


@pytest.mark.parametrize("port", [-1, 65536, True, "80"])
def test_lookup_refuses_what_is_not_a_port(base: KnowledgeBase, port: object) -> None:
    with pytest.raises(ValueError, match="not a port number"):
        base.lookup(port, Proto.TCP)  # type: ignore[arg-type]


def test_every_port_and_protocol_resolves(base: KnowledgeBase) -> None:
    for port in range(1, 65536, 97):
        for proto in (Proto.TCP, Proto.UDP):
            info = base.lookup(port, proto)
            assert info.port == port and info.proto is proto
            assert info.lo <= port <= info.hi and proto in info.protocols
            assert base.service_name(port, proto) == info.name


def test_lookups_from_several_threads_agree(base: KnowledgeBase) -> None:
    results: list[list[str]] = []

    def work() -> None:
        results.append([base.lookup(p, Proto.UDP).name for p in range(100, 400)])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(r == results[0] for r in results)


USER_FILE = """
[[entry]]
port = 3653
protocols = ["tcp", "udp"]
name = "our-broker"
summary = "Our own tunnel broker client, installed by IT."
programs = ["/usr/sbin/gogoc"]

[[entry]]
port = 40123
protocols = ["tcp"]
name = "build-cache"
title = "Team build cache"
summary = "The build cache daemon."

[[entry]]
range = [3300, 3310]
protocols = ["udp"]
name = "lab-gear"
summary = "Lab instruments."
"""


def test_the_user_file_adds_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "ports.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    base, problems = KnowledgeBase.load(path)
    assert problems == ()
    tsp = base.lookup(3653, Proto.UDP)
    assert (tsp.source, tsp.name, tsp.programs) == ("user", "our-broker", ("/usr/sbin/gogoc",))
    added = base.lookup(40123, Proto.TCP)
    assert (added.source, added.title) == ("user", "Team build cache")
    # The user's range beats our narrower-or-not descriptions; outside it ours remain.
    assert base.service_name(3305, Proto.UDP) == "lab-gear"
    assert base.lookup(3322, Proto.UDP).lo == 3224
    assert base.lookup(3321, Proto.TCP).name == "vnsstr"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[[entry]\nport = ", "not valid TOML"),
        (b"\xc3\x28[[entry]]", "not UTF-8"),  # \xff\xfe would be a UTF-16 mark
        (b"# " + b"x" * (MAX_USER_FILE_BYTES + 1), "larger than"),
    ],
)
def test_a_broken_user_file_is_reported_and_ignored(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "ports.toml"
    path.write_bytes(content)
    base, problems = KnowledgeBase.load(path)
    assert len(problems) == 1 and reason in problems[0] and str(path) in problems[0]
    assert base.lookup(3653, Proto.TCP).source == "curated"


def test_an_unreadable_user_file_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "ports.toml"
    folder.mkdir()
    base, problems = KnowledgeBase.load(folder)
    assert len(problems) == 1 and "cannot be read" in problems[0]
    assert base.service_name(3353, Proto.TCP) == "fatpipe"


def test_a_missing_user_file_is_normal(tmp_path: Path) -> None:
    parsed = read_user_file(tmp_path / "absent.toml")
    assert parsed.entries == () and parsed.problems == ()


def test_bad_user_entries_are_skipped_and_good_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "ports.toml"
    path.write_text(USER_FILE + '\n[[entry]]\nport = 70000\nprotocols = ["tcp"]\n', "utf-8")
    base, problems = KnowledgeBase.load(path)
    assert problems and all("entry 4" in p and "ignored" in p for p in problems)
    assert any("70000" in p for p in problems)
    assert base.service_name(40123, Proto.TCP) == "build-cache"


def test_a_fallback_points_at_the_other_protocols_description(base: KnowledgeBase) -> None:
    # 2375 is described for TCP (Docker) only, and IANA registers nothing on 2375/udp:
    # asking about UDP says what is known of TCP.
    info = base.lookup(2375, Proto.UDP)
    assert info.source in ("none", "os-services")
    assert "2375/tcp ('docker')" in info.usage


def test_the_embedded_data_loads_from_a_zipped_package(tmp_path: Path) -> None:
    # importlib.resources, not file paths: a zipped or frozen package must work too.
    package = Path(portwatch.__file__).parent
    archive = tmp_path / "portwatch.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in package.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, Path("portwatch") / path.relative_to(package))
    code = (
        "import portwatch.knowledge as k, sys;"
        "assert '.zip' in k.__file__, k.__file__;"
        "b, p = k.KnowledgeBase.load(None);"
        "print(b.service_name(3653, 'tcp'), b.service_name(3300, 'udp'), len(p))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(archive)},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tsp", "framehawk", "0"]


def test_the_copied_windows_command_matches_only_the_exact_port() -> None:
    from portwatch.services.port_names import check_command

    command = check_command(3653, "win32")
    # findstr /C:"TEXT" matches TEXT literally; bare `findstr :3653` matched these too.
    assert command == 'netstat -ano | findstr /C:":3653 "'
    needle = command.split('/C:"', 1)[1].rstrip('"')
    lines = {
        "  TCP    0.0.0.0:3653           0.0.0.0:0              LISTENING       4242": True,
        "  TCP    0.0.0.0:36530          0.0.0.0:0              LISTENING       4243": False,
        "  TCP    10.0.0.2:51000         10.0.0.9:443           ESTABLISHED     13653": False,
    }
    assert {line: needle in line for line in lines} == lines
    assert check_command(3653, "darwin") == "lsof -nP -i :3653"
    assert check_command(3653, "linux") == "ss -ltnup 'sport = :3653'"


def test_out_of_memory_for_the_registry_names_ports_from_our_own_descriptions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Little memory: IANA's registry cannot be parsed; the watch goes on with a line
    saying so, and a curated port is still named."""
    calls = []

    def no_memory() -> Registry:
        calls.append(1)
        raise MemoryError

    empty = Registry(exact={}, range_starts={}, ranges={}, header=())
    ours_only = KnowledgeBase.load(None, load_registry=lambda: empty)[0]
    short = KnowledgeBase.load(None, load_registry=no_memory)[0]
    with caplog.at_level("WARNING", logger="portwatch.knowledge.base"):
        named = short.service_name(3653, Proto.TCP)
        for port in range(1024, 1100):  # ports only IANA's registry names, too
            short.service_name(port, Proto.TCP)
    assert named and named == ours_only.service_name(3653, Proto.TCP)
    assert calls == [1]  # said once, not tried again every poll
    assert [r.message for r in caplog.records] == [
        "out of memory reading IANA's port registry; ports are named from portwatch's own"
        " descriptions only"
    ]
