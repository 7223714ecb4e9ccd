"""Trust against real processes on loopback, read through the real probe."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from trust_processes import (
    LISTEN_CODE,
    REAL_PYTHON,
    listener_of,
    listening,
    python_copy,
    wait_for,
    watch,
)

from portwatch.core.alert_policy import RateLimitedPolicy
from portwatch.core.trust import TrustJudge, TrustList, trust_listener
from portwatch.core.types import EventKind, Listener, Sample, Status
from portwatch.core.watchlist import WatchSpec
from portwatch.engine.monitor import Monitor
from portwatch.probe.psutil_probe import PsutilProbe

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses /proc and copies of the interpreter"
)


def file_sha(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def spec_for(lst: Listener) -> WatchSpec:
    return WatchSpec(lst.port, lst.port, (lst.proto,))


def trust(lst: Listener, trust_list: TrustList | None = None) -> TrustList:
    return trust_listener(trust_list or TrustList(), lst, spec_for(lst), added_wall=1.0)


def retarget(trust_list: TrustList, port: int) -> TrustList:
    """The same trust entries moved to ``port`` (children get ephemeral ports)."""
    out = TrustList(reviewed_wall=trust_list.reviewed_wall)
    for entry in trust_list:
        out = out.with_entry(replace(entry, spec=WatchSpec(port, port, entry.spec.protos)))
    return out


@pytest.fixture
def probe() -> PsutilProbe:
    return PsutilProbe()


@pytest.fixture
def trusted_program(tmp_path: Path, probe: PsutilProbe) -> tuple[Path, TrustList]:
    """A program named ``portd`` (an interpreter copy with its own hash), trusted on the
    port it listened on, and that trust list."""
    exe = python_copy(tmp_path / "trusted" / "portd", extra=b"\0portd build 1")
    with listening([str(exe), "-c", LISTEN_CODE]) as child:
        lst = listener_of(probe, child)
    assert lst.owner is not None
    assert lst.owner.exe == str(exe)
    assert lst.owner.sha256 == file_sha(exe)
    return exe, trust(lst)


def test_trusted_program_is_known(
    trusted_program: tuple[Path, TrustList], probe: PsutilProbe
) -> None:
    exe, trust_list = trusted_program
    with listening([str(exe), "-c", LISTEN_CODE]) as child:
        lst = listener_of(probe, child)
        judged = TrustJudge(retarget(trust_list, lst.port)).judge(lst)
    assert judged.status is Status.KNOWN, judged.reason


def test_interpreter_copy_renamed_to_trusted_name_is_unknown(
    trusted_program: tuple[Path, TrustList], probe: PsutilProbe, tmp_path: Path
) -> None:
    _, trust_list = trusted_program
    impostor = python_copy(tmp_path / "elsewhere" / "portd")
    with listening([str(impostor), "-c", LISTEN_CODE]) as child:
        lst = listener_of(probe, child)
        verdict = TrustJudge(retarget(trust_list, lst.port)).judge(lst)
    assert lst.owner is not None
    assert lst.owner.name == "portd"
    assert verdict.status is Status.UNKNOWN
    assert not verdict.binary_changed


def test_process_renaming_itself_is_unknown(
    trusted_program: tuple[Path, TrustList], probe: PsutilProbe
) -> None:
    _, trust_list = trusted_program
    with listening([REAL_PYTHON, "-c", LISTEN_CODE, "1", "portd"]) as child:
        lst = listener_of(probe, child)
        verdict = TrustJudge(retarget(trust_list, lst.port)).judge(lst)
    assert lst.owner is not None
    assert lst.owner.name == "portd"  # the rename took effect...
    assert lst.owner.exe == REAL_PYTHON  # ...but the executable is read from the OS
    assert verdict.status is Status.UNKNOWN


def test_replaced_file_at_trusted_path_is_unknown_and_alert_says_binary_changed(
    tmp_path: Path, probe: PsutilProbe
) -> None:
    exe = python_copy(tmp_path / "bin" / "server", extra=b"\0server v1")
    old_sha = file_sha(exe)
    with listening([str(exe), "-c", LISTEN_CODE]) as child:
        trust_list = trust(listener_of(probe, child))
    python_copy(exe, extra=b"\0server v2 (not the one you trusted)")
    new_sha = file_sha(exe)
    assert new_sha != old_sha
    with listening([str(exe), "-c", LISTEN_CODE]) as child:
        trust_list = retarget(trust_list, child.port)
        judge = TrustJudge(trust_list)
        monitor = Monitor(
            probe, None, watch(child.port), judge=judge, alert_policy=RateLimitedPolicy()
        )
        alerts = []
        events = []
        # Tick until the child shows up (its first tick already sees it).
        for _ in range(50):
            result = monitor.tick()
            events += result.events
            alerts += result.alerts
            if any(e.kind is EventKind.BINARY_CHANGED for e in events):
                break
        lst = listener_of(probe, child)
        verdict = judge.judge(lst)
    assert verdict.status is Status.UNKNOWN
    assert verdict.binary_changed
    assert verdict.previous_sha256 == old_sha
    [changed] = [e for e in events if e.kind is EventKind.BINARY_CHANGED]
    assert changed.listener.owner is not None
    assert changed.listener.owner.sha256 == new_sha
    [alert] = alerts
    assert "changed" in alert.title
    assert old_sha in alert.text
    assert new_sha in alert.text


def test_file_replaced_while_running_is_judged_by_what_runs(
    tmp_path: Path, probe: PsutilProbe
) -> None:
    exe = python_copy(tmp_path / "bin" / "server", extra=b"\0server v1")
    with listening([str(exe), "-c", LISTEN_CODE]) as child:
        lst = listener_of(probe, child)
        judge = TrustJudge(trust(lst))
        # Swap the file on disk under the running process: what runs is still v1.
        python_copy(exe, extra=b"\0server v2")
        fresh = PsutilProbe()
        again = listener_of(fresh, child)
        assert again.owner is not None and lst.owner is not None
        assert again.owner.sha256 == lst.owner.sha256
        assert judge.judge(again).status is Status.KNOWN


def test_two_scripts_of_one_interpreter_are_told_apart(tmp_path: Path, probe: PsutilProbe) -> None:
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(LISTEN_CODE + f"\n# {name}\n")
    # Started with relative paths: resolved against the child's working folder.
    with listening([sys.executable, "a.py"], cwd=tmp_path) as child_a:
        lst_a = listener_of(probe, child_a)
    assert lst_a.owner is not None
    assert lst_a.owner.exe == REAL_PYTHON
    assert lst_a.owner.script == str((tmp_path / "a.py").resolve())
    assert lst_a.owner.script_sha256 == file_sha(tmp_path / "a.py")
    trust_list = trust(lst_a)
    with (
        listening([sys.executable, "a.py"], cwd=tmp_path) as child_a,
        listening([sys.executable, str(tmp_path / "b.py")]) as child_b,
    ):
        again_a = listener_of(probe, child_a)
        lst_b = listener_of(probe, child_b)
        verdict_a = TrustJudge(retarget(trust_list, again_a.port)).judge(again_a)
        verdict_b = TrustJudge(retarget(trust_list, lst_b.port)).judge(lst_b)
    assert lst_b.owner is not None
    assert lst_b.owner.script == str((tmp_path / "b.py").resolve())
    assert verdict_a.status is Status.KNOWN
    assert verdict_b.status is Status.UNKNOWN


def test_inline_code_is_identified_by_its_hash_not_its_text(probe: PsutilProbe) -> None:
    with listening([sys.executable, "-c", LISTEN_CODE]) as child:
        lst = listener_of(probe, child)
    assert lst.owner is not None
    assert lst.owner.script == "-c"
    assert lst.owner.script_sha256 == hashlib.sha256(LISTEN_CODE.encode()).hexdigest()
    trust_list = trust(lst)
    other_code = LISTEN_CODE + "\n# something else\n"
    with listening([sys.executable, "-c", other_code]) as child:
        other = listener_of(probe, child)
        verdict = TrustJudge(retarget(trust_list, other.port)).judge(other)
    assert verdict.status is Status.UNKNOWN
    assert verdict.binary_changed  # same interpreter, same "-c", other code


def test_wait_for_gives_up_with_a_message(probe: PsutilProbe) -> None:
    with pytest.raises(AssertionError, match="not met"):
        wait_for(probe, watch(1), lambda sample: False, timeout=0.05)


@pytest.mark.parametrize("kind", ["psutil", "netlink"])
def test_every_probe_identifies_the_script(tmp_path: Path, kind: str) -> None:
    from portwatch.probe import ProbeError, create

    try:
        probe = create(kind)
    except ProbeError as exc:
        pytest.skip(f"{kind} probe not available here: {exc}")
    script = tmp_path / "serve.py"
    script.write_text(LISTEN_CODE)
    try:
        with listening([sys.executable, str(script)]) as child:

            def mine(sample: Sample) -> bool:
                return any(
                    x.port == child.port and x.owner is not None and x.owner.pid == child.pid
                    for x in sample.listeners
                )

            sample = wait_for(probe, watch(child.port), mine)
        [lst] = [x for x in sample.listeners if x.port == child.port]
    finally:
        probe.close()
    assert lst.owner is not None
    assert lst.owner.script == str(script.resolve())
    assert lst.owner.script_sha256 == file_sha(script)
