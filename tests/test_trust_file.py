"""The trust file on a real folder: round trip, atomic writes, and every kind of bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trust_fixtures import sha

from portwatch.config import trustfile
from portwatch.core.trust import TrustEntry, TrustList
from portwatch.core.watchlist import parse_spec


def good_entry(**over: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "port": "3653/tcp",
        "exe": "/usr/bin/good",
        "sha256": sha("good"),
        "script": None,
        "script_sha256": None,
        "signer": None,
        "added_wall": 1763700000.0,
        "note": "ok",
    }
    entry.update(over)
    return entry


def write(path: Path, data: object) -> None:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")


def asides(folder: Path) -> list[Path]:
    return sorted(folder.glob("trust.json.rejected-*"))


def test_missing_file_is_empty_with_review_pending(tmp_path: Path) -> None:
    loaded = trustfile.load(tmp_path / "trust.json")
    assert loaded.trust_list == TrustList()
    assert not loaded.trust_list.first_run_review_done
    assert loaded.problems == ()
    assert not (tmp_path / "trust.json").exists()


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    tl = (
        TrustList()
        .with_entry(TrustEntry(parse_spec("3653/tcp"), "/usr/bin/a", sha("a"), added_wall=5.0))
        .with_entry(
            TrustEntry(
                parse_spec("3224-3324"),
                "/usr/bin/python3",
                sha("py"),
                script="/srv/app.py",
                script_sha256=sha("app"),
                note="my <app> & co",
            )
        )
        .with_entry(TrustEntry(parse_spec("3321/udp"), None, None, signer="Tool Co (ABC)"))
        .with_review_done(1763700000.5)
    )
    trustfile.save(path, tl)
    loaded = trustfile.load(path)
    assert loaded.problems == ()
    assert loaded.trust_list == tl
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_save_is_atomic_and_keeps_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    trustfile.save(path, TrustList().with_review_done(1.0))
    before = path.read_bytes()
    # A folder where the file should be: the write fails with the OS's reason.
    blocked = tmp_path / "blocked.json"
    blocked.mkdir()
    with pytest.raises(OSError):
        trustfile.save(blocked, TrustList())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.json", "trust.json"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ('{"version": 1, "entries": [{"port": "3653", "exe": "/usr', "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object"),
        ('"just text"', "expected a JSON object"),
        ("null", "expected a JSON object"),
        ('{"entries": {"port": 3653}}', "'entries' should be a list"),
        ("\xff\xfe garbage", "not valid JSON"),
    ],
)
def test_unusable_file_is_reported_read_only_and_nothing_trusted(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "trust.json"
    write(path, content)
    original = path.read_bytes()
    loaded = trustfile.load(path)
    assert loaded.trust_list.entries == ()
    assert not loaded.complete  # a running monitor keeps the list it has
    assert any(expected in p for p in loaded.problems), loaded.problems
    # Reading never writes: the file is as it was, nothing is added beside it.
    assert path.read_bytes() == original
    assert asides(tmp_path) == []
    # The next write keeps the original for the user, then writes a clean file.
    entry = TrustEntry(parse_spec("1"), "/a", sha("a"))
    updated = trustfile.update(path, lambda tl: tl.with_entry(entry))
    [kept] = asides(tmp_path)
    assert kept.read_bytes() == original
    assert updated.set_aside == kept
    assert trustfile.load(path).problems == ()


def test_bad_entries_are_dropped_and_reported_good_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    entries = [
        good_entry(),
        good_entry(sha256="abc"),
        good_entry(sha256="z" * 64),
        good_entry(sha256=None),
        good_entry(script="/srv/a.py", script_sha256="12345"),
        good_entry(port="65536"),
        good_entry(port=True),
        good_entry(port="80.5"),
        good_entry(exe="relative/path"),
        good_entry(exe=""),
        good_entry(exe=42),
        good_entry(added_wall="yesterday"),
        "not an object",
        None,
        good_entry(port="3321", exe="/usr/bin/other", sha256=sha("other").upper()),
        good_entry(),  # a repeat of the first
    ]
    write(path, {"version": 1, "entries": entries})
    loaded = trustfile.load(path)
    kept = loaded.trust_list.entries
    assert [(str(e.spec), e.exe) for e in kept] == [
        ("3653/tcp", "/usr/bin/good"),
        ("3321", "/usr/bin/other"),
    ]
    assert kept[1].sha256 == sha("other")  # upper-case hex accepted, stored lower case
    problems = "\n".join(loaded.problems)
    for number in range(2, 14):
        assert f"entry {number} dropped" in problems, (number, problems)
    assert "'abc' is not a SHA-256" in problems
    assert "65536" in problems
    assert "entry 16 repeats" in problems
    assert loaded.complete
    assert asides(tmp_path) == []


def test_unknown_keys_are_reported_and_entry_kept(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    write(
        path,
        {
            "version": 1,
            "colour": "blue",
            "first_run_review": {"done": True, "wall": 12.0},
            "entries": [good_entry(expires="never")],
        },
    )
    loaded = trustfile.load(path)
    assert len(loaded.trust_list) == 1
    assert loaded.trust_list.reviewed_wall == 12.0
    problems = "\n".join(loaded.problems)
    assert "unknown key 'colour'" in problems
    assert "entry 1: unknown key 'expires'" in problems
    assert asides(tmp_path) == []
    assert "colour" in path.read_text()


def test_wrong_version_and_bad_review_reported(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    write(path, {"version": "2", "first_run_review": "yes", "entries": [good_entry()]})
    loaded = trustfile.load(path)
    assert len(loaded.trust_list) == 1
    assert not loaded.trust_list.first_run_review_done
    problems = "\n".join(loaded.problems)
    assert "version '2'" in problems
    assert "'first_run_review' should be an object" in problems


def test_unreadable_file_is_reported_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.mkdir()  # a folder where the file should be
    loaded = trustfile.load(path)
    assert loaded.trust_list == TrustList()
    assert "cannot use" in loaded.problems[0] and "folder" in loaded.problems[0]
    assert not loaded.complete
    assert path.is_dir()


def test_update_keeps_edits_made_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    entry_a = TrustEntry(parse_spec("3653"), "/usr/bin/a", sha("a"))
    entry_b = TrustEntry(parse_spec("3653"), "/usr/bin/b", sha("b"))
    stale = TrustList()
    trustfile.save(path, stale.with_entry(entry_a))  # e.g. `portwatch trust add` meanwhile
    result = trustfile.update(path, lambda tl: tl.with_entry(entry_b))
    assert [e.exe for e in result.trust_list] == ["/usr/bin/a", "/usr/bin/b"]
    assert trustfile.load(path).trust_list == result.trust_list


def test_update_that_raises_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    trustfile.save(path, TrustList().with_review_done(3.0))
    before = path.read_bytes()

    def refuse(tl: TrustList) -> TrustList:
        raise ValueError("cannot trust that")

    with pytest.raises(ValueError):
        trustfile.update(path, refuse)
    assert path.read_bytes() == before


def test_reloader_notices_changes_once(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    reloader = trustfile.Reloader(path)
    assert reloader.poll() is None  # still missing
    trustfile.save(path, TrustList().with_entry(TrustEntry(parse_spec("1"), "/a", sha("a"))))
    loaded = reloader.poll()
    assert loaded is not None and len(loaded.trust_list) == 1
    assert reloader.poll() is None
    write(path, "garbage")
    loaded = reloader.poll()
    assert loaded is not None and loaded.problems
    # Reported once per change, and the file is left as it is.
    assert reloader.poll() is None
    assert path.read_text() == "garbage"
