"""The trust model on constructed owners: identity decides, never a name or a pid."""

from __future__ import annotations

import pytest
from trust_fixtures import listener, owner, sha

from portwatch.core.identity import HIDDEN_SCRIPT, Identity
from portwatch.core.trust import (
    TrustEntry,
    TrustError,
    TrustJudge,
    TrustList,
    review_candidates,
    trust_listener,
)
from portwatch.core.types import Owner, Proto, Status
from portwatch.core.watchlist import WatchList, parse_spec

SPEC = parse_spec("3653/tcp")


def trusted(*owners: Owner, spec: str = "3653/tcp") -> TrustList:
    tl = TrustList()
    for who in owners:
        tl = trust_listener(tl, listener(who=who), parse_spec(spec), added_wall=1.0)
    return tl


def test_identity_needs_exe_and_hash() -> None:
    assert Identity.of(None) is None
    assert Identity.of(owner(exe=None, digest=None)) is None
    assert Identity.of(Owner(pid=1, exe="/usr/bin/x")) is None
    ident = Identity.of(owner("/usr/bin/x", sha("x").upper()))
    assert ident is not None
    assert ident.sha256 == sha("x")  # stored lower case


def test_trusted_identity_is_known_on_its_port_only() -> None:
    good = owner("/usr/bin/good")
    judge = TrustJudge(trusted(good))
    assert judge.judge(listener(3653, good)).status is Status.KNOWN
    assert judge.judge(listener(3653, good, Proto.UDP)).status is Status.UNKNOWN
    assert judge.judge(listener(3321, good)).status is Status.UNKNOWN


def test_range_spec_covers_every_port_in_it() -> None:
    good = owner("/usr/bin/good")
    tl = TrustList().with_entry(
        TrustEntry(parse_spec("3600-3700"), good.exe, good.sha256, added_wall=1.0)
    )
    judge = TrustJudge(tl)
    assert judge.judge(listener(3653, good, Proto.UDP)).status is Status.KNOWN
    assert judge.judge(listener(3701, good)).status is Status.UNKNOWN


def test_same_name_other_file_is_unknown() -> None:
    good = owner("/usr/bin/good")
    impostor = owner("/tmp/evil/good", sha("evil"), name="good")
    verdict = TrustJudge(trusted(good)).judge(listener(3653, impostor))
    assert verdict.status is Status.UNKNOWN
    assert not verdict.binary_changed


def test_renamed_process_is_judged_by_its_file_not_its_name() -> None:
    good = owner("/usr/bin/good")
    judge = TrustJudge(trusted(good))
    renamed_trusted = owner("/usr/bin/good", name="innocent")
    assert judge.judge(listener(3653, renamed_trusted)).status is Status.KNOWN
    other_named_good = owner("/usr/bin/other", name="good")
    assert judge.judge(listener(3653, other_named_good)).status is Status.UNKNOWN


def test_unreadable_executable_is_unattributed_never_known() -> None:
    good = owner("/usr/bin/good")
    judge = TrustJudge(trusted(good))
    hidden = Owner(pid=good.pid, create_time=good.create_time, name="good", note="access denied")
    verdict = judge.judge(listener(3653, hidden))
    assert verdict.status is Status.UNATTRIBUTED
    assert verdict.reason == "access denied"
    # Path known (psutil could guess it) but the file could not be hashed: still not known.
    guessed = Owner(pid=good.pid, exe=good.exe, name="good")
    assert judge.judge(listener(3653, guessed)).status is Status.UNATTRIBUTED
    assert judge.judge(listener(3653, None)).status is Status.UNATTRIBUTED


def test_pid_reuse_does_not_inherit_trust() -> None:
    good = owner("/usr/bin/good", pid=777, create_time=100.0)
    judge = TrustJudge(trusted(good))
    assert judge.judge(listener(3653, good)).status is Status.KNOWN
    # The same pid, started later, running another program.
    reused = owner("/usr/bin/evil", pid=777, create_time=250.0, name="good")
    assert judge.judge(listener(3653, reused)).status is Status.UNKNOWN
    # The same pid, later, whose executable cannot be read: not known either.
    reused_hidden = Owner(pid=777, create_time=250.0, name="good")
    assert judge.judge(listener(3653, reused_hidden)).status is Status.UNATTRIBUTED
    # A new instance of the trusted program (new pid and start time) is known by identity.
    again = owner("/usr/bin/good", pid=9999, create_time=300.0)
    assert judge.judge(listener(3653, again)).status is Status.KNOWN


def test_replaced_binary_is_unknown_with_both_hashes() -> None:
    old = owner("/opt/app/server", sha("v1"))
    judge = TrustJudge(trusted(old))
    new = owner("/opt/app/server", sha("v2"), pid=5000)
    verdict = judge.judge(listener(3653, new))
    assert verdict.status is Status.UNKNOWN
    assert verdict.binary_changed
    assert verdict.previous_sha256 == sha("v1")
    assert sha("v1") in (verdict.reason or "")
    assert sha("v2") in (verdict.reason or "")


def test_trusting_again_replaces_the_old_hash() -> None:
    old = owner("/opt/app/server", sha("v1"))
    new = owner("/opt/app/server", sha("v2"))
    tl = trusted(old)
    tl = trust_listener(tl, listener(who=new), SPEC, added_wall=2.0)
    assert len(tl) == 1
    judge = TrustJudge(tl)
    assert judge.judge(listener(3653, new)).status is Status.KNOWN
    assert judge.judge(listener(3653, old)).status is Status.UNKNOWN


def test_trusting_again_with_another_path_case_replaces_on_windows() -> None:
    # Windows paths name one file in any case and with either slash: the second trust is an
    # update, not a duplicate entry. POSIX paths stay case-sensitive.
    old = owner("C:\\Program Files\\App\\server.exe", sha("v1"))
    new = owner("c:/program files/app/SERVER.EXE", sha("v2"))
    tl = trust_listener(trusted(old), listener(who=new), SPEC, added_wall=2.0)
    assert len(tl) == 1
    assert TrustJudge(tl).judge(listener(3653, new)).status is Status.KNOWN
    posix = trust_listener(
        trusted(owner("/opt/App/server", sha("v1"))),
        listener(who=owner("/opt/app/server", sha("v2"))),
        SPEC,
        added_wall=2.0,
    )
    assert len(posix) == 2


def test_two_scripts_of_one_interpreter_are_different_programs() -> None:
    a = owner("/usr/bin/python3", script="/srv/a.py", script_sha256=sha("a"))
    b = owner("/usr/bin/python3", script="/srv/b.py", script_sha256=sha("b"))
    bare = owner("/usr/bin/python3")
    judge = TrustJudge(trusted(a))
    assert judge.judge(listener(3653, a)).status is Status.KNOWN
    assert judge.judge(listener(3653, b)).status is Status.UNKNOWN
    assert judge.judge(listener(3653, bare)).status is Status.UNKNOWN
    # Trusting a bare interpreter does not trust every script it could run.
    assert TrustJudge(trusted(bare)).judge(listener(3653, a)).status is Status.UNKNOWN


def test_edited_script_counts_as_a_changed_program() -> None:
    a1 = owner("/usr/bin/python3", script="/srv/a.py", script_sha256=sha("a1"))
    a2 = owner("/usr/bin/python3", script="/srv/a.py", script_sha256=sha("a2"))
    verdict = TrustJudge(trusted(a1)).judge(listener(3653, a2))
    assert verdict.status is Status.UNKNOWN
    assert verdict.binary_changed
    assert verdict.previous_sha256 == sha("a1")


def test_signer_entry_holding_only_a_name_never_matches() -> None:
    # A display name is no proof: a self-signed certificate can carry any name. Such
    # entries (written by older versions) wait for review and trust nothing meanwhile.
    tool = owner("/Applications/Tool.app/Contents/MacOS/tool", sha("v2"))
    tl = TrustList().with_entry(
        TrustEntry(SPEC, tool.exe, None, signer="Developer ID Application: Tool Co (ABC)")
    )
    assert tl.entries[0].needs_review
    asked: list[str | None] = []

    def signer_of(who: Owner) -> None:
        asked.append(who.sha256)

    judge = TrustJudge(tl, signer_of)
    assert judge.judge(listener(3653, tool)).status is Status.UNKNOWN
    assert asked == []  # nothing to verify against: a name-only entry is not asked


@pytest.mark.parametrize(
    "kwargs",
    [
        {"exe": None, "sha256": sha("x")},
        {"exe": "/usr/bin/x", "sha256": None},
        {"exe": "/usr/bin/x", "sha256": "abc"},
        {"exe": "/usr/bin/x", "sha256": sha("x").upper()},
        {"exe": "/usr/bin/x", "sha256": sha("x"), "script_sha256": sha("s")},
        {"exe": "/usr/bin/x", "sha256": None, "signer": "  "},
    ],
)
def test_bad_entries_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(TrustError):
        TrustEntry(SPEC, **kwargs)  # type: ignore[arg-type]


def test_unattributed_listener_cannot_be_trusted() -> None:
    with pytest.raises(TrustError, match="could not be inspected"):
        trust_listener(TrustList(), listener(who=Owner(pid=1)), SPEC, added_wall=0.0)
    with pytest.raises(TrustError, match="does not cover"):
        trust_listener(TrustList(), listener(3321, owner()), SPEC, added_wall=0.0)


def test_without_removes_by_spec_and_path() -> None:
    a = owner("/usr/bin/python3", script="/srv/a.py", script_sha256=sha("a"))
    b = owner("/usr/bin/python3", script="/srv/b.py", script_sha256=sha("b"))
    tl = trusted(a, b)
    assert len(tl) == 2
    assert len(tl.without(SPEC, "/usr/bin/python3", "/srv/a.py", any_script=False)) == 1
    assert len(tl.without(SPEC, "/usr/bin/python3")) == 0
    assert len(tl.without(parse_spec("3321"), "/usr/bin/python3")) == 2


def test_review_lists_untrusted_watched_listeners_once() -> None:
    good = owner("/usr/bin/good")
    bad = owner("/usr/bin/bad")
    watch = WatchList((parse_spec("3653"), parse_spec("3321")))
    judge = TrustJudge(trusted(good, spec="3653"))
    found = review_candidates(
        [
            listener(3653, good),
            listener(3653, bad),
            listener(3653, bad, address="::1"),  # same program, IPv6: listed once
            listener(3321, Owner(pid=5)),
            listener(8080, bad),  # not watched
        ],
        watch,
        judge,
    )
    assert [(lst.port, lst.owner) for lst, _, _ in found] == [(3321, Owner(pid=5)), (3653, bad)]
    assert [v.status for _, _, v in found] == [Status.UNATTRIBUTED, Status.UNKNOWN]
    assert tuple(str(spec) for _, spec, _ in found) == ("3321", "3653")
    assert not trusted(good).first_run_review_done
    assert trusted(good).with_review_done(5.0).first_run_review_done


def test_unreadable_script_is_unknown_with_the_reason() -> None:
    a = owner("/usr/bin/python3", script="/srv/a.py", script_sha256=sha("a"))
    unreadable = owner("/usr/bin/python3", script="/srv/a.py")
    verdict = TrustJudge(trusted(a)).judge(listener(3653, unreadable))
    assert verdict.status is Status.UNKNOWN
    assert "could not be read" in (verdict.reason or "")
    module = owner("/usr/bin/python3", script="-m http.server")
    assert TrustJudge(trusted(module)).judge(listener(3653, module)).status is Status.KNOWN
    java = owner("/usr/bin/java", script="class com.example.Main")
    verdict = TrustJudge(trusted(a)).judge(listener(3653, java))
    assert "could not be read" not in (verdict.reason or "")


def test_hidden_script_has_no_identity_and_cannot_borrow_the_bare_interpreter() -> None:
    bare = owner("/usr/bin/python3")
    hidden = owner("/usr/bin/python3", script=HIDDEN_SCRIPT)
    judge = TrustJudge(trusted(bare))
    assert judge.judge(listener(3653, bare)).status is Status.KNOWN
    assert judge.judge(listener(3653, hidden)).status is Status.UNATTRIBUTED
    with pytest.raises(TrustError):
        trust_listener(TrustList(), listener(3653, hidden), SPEC, added_wall=0.0)


def test_windows_paths_match_regardless_of_case_posix_paths_exactly() -> None:
    win = owner("C:\\Program Files\\Tool\\tool.exe", sha("tool"))
    judge = TrustJudge(trusted(win))
    same_file = owner("c:/program files/tool/TOOL.EXE", sha("tool"))
    assert judge.judge(listener(3653, same_file)).status is Status.KNOWN
    posix = owner("/opt/Tool/tool", sha("tool"))
    other_case = owner("/opt/tool/tool", sha("tool"))
    assert TrustJudge(trusted(posix)).judge(listener(3653, other_case)).status is Status.UNKNOWN
