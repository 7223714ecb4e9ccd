"""Watch-list specs and the watch-list file."""

from __future__ import annotations

from pathlib import Path

import pytest

from portwatch.config import atomic, watchfile
from portwatch.core.types import Proto
from portwatch.core.watchlist import SpecError, WatchList, WatchSpec, parse_lines, parse_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3653", WatchSpec(3653, 3653, (Proto.TCP, Proto.UDP))),
        ("3653/tcp", WatchSpec(3653, 3653, (Proto.TCP,))),
        ("3653/UDP", WatchSpec(3653, 3653, (Proto.UDP,))),
        ("3224-3324/udp", WatchSpec(3224, 3324, (Proto.UDP,))),
        (" 1 ", WatchSpec(1, 1, (Proto.TCP, Proto.UDP))),
        ("65535", WatchSpec(65535, 65535, (Proto.TCP, Proto.UDP))),
    ],
)
def test_valid_specs(text: str, expected: WatchSpec) -> None:
    assert parse_spec(text) == expected
    assert parse_spec(str(expected)) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "outside 1-65535"),
        ("65536", "outside 1-65535"),
        ("-1", "negative"),
        ("abc", "expected PORT"),
        ("3324-3224", "reversed"),
        ("true", "expected PORT"),
        (True, "expected text"),
        (None, "expected text"),
        ("80.5", "whole number"),
        (80.5, "expected text"),
        ("", "empty"),
        ("3653/sctp", "unknown protocol"),
        ("1-65535", "at most"),
    ],
)
def test_bad_specs_name_value_and_reason(value: object, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(value)
    assert reason in str(info.value)
    assert repr(value) in str(info.value)


def test_membership() -> None:
    watchlist = WatchList((parse_spec("3653/tcp"), parse_spec("3224-3324/udp")))
    assert watchlist.contains(3653, Proto.TCP)
    assert not watchlist.contains(3653, Proto.UDP)
    assert watchlist.contains(3321, Proto.UDP)
    assert not watchlist.contains(3325, Proto.UDP)
    assert len(watchlist.ports()) == 1 + 101


def test_default_watch_list() -> None:
    ports = WatchList.default().ports()
    assert ports == {(p, proto) for p in (3321, 3353, 3653) for proto in (Proto.TCP, Proto.UDP)}


def test_parse_lines_keeps_valid_and_reports_each_bad_line() -> None:
    lines = [
        "# comment",
        "3653",
        "0",
        "65536",
        "-1",
        "abc",
        "true",
        "80.5",
        "null",
        "3653",
        "22/tcp",
    ]
    report = parse_lines(lines)
    assert [str(s) for s in report.watchlist] == ["3653", "22/tcp"]
    assert len(report.errors) == 8
    assert any("line 10" in e and "twice" in e for e in report.errors)


def test_huge_list_is_parsed_without_trouble() -> None:
    lines = [str(p) for p in range(1, 20001)]
    report = parse_lines(lines)
    assert len(report.watchlist) == 20000
    assert not report.errors


def test_missing_file_is_created_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "watchlist.txt"
    loaded = watchfile.load(path)
    assert loaded.watchlist == WatchList.default()
    assert path.exists()
    assert watchfile.load(path).watchlist == WatchList.default()


def test_bad_lines_are_reported_valid_lines_used_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "watchlist.txt"
    path.write_text("3653\nabc\n0\n")
    loaded = watchfile.load(path)
    assert [str(s) for s in loaded.watchlist] == ["3653"]
    assert len(loaded.problems) == 2
    assert "line 2: 'abc'" in loaded.problems[0]
    # Reading never writes: no copy beside it (which a folder watcher would see as a
    # change and reload), and the user's file is not rewritten behind their back.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["watchlist.txt"]
    assert path.read_text() == "3653\nabc\n0\n"


@pytest.mark.parametrize("content", [b"", b"\x00\x01\xff\xfe garbage", b"36", b'{"ports": [3653]}'])
def test_empty_truncated_or_wrong_shape_files_start_the_app(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "watchlist.txt"
    path.write_bytes(content)
    loaded = watchfile.load(path)
    assert isinstance(loaded.watchlist, WatchList)
    if content == b"36":
        assert [str(s) for s in loaded.watchlist] == ["36"]
    else:
        assert loaded.problems


def test_atomic_write_failure_leaves_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    atomic.write_text(path, "old")

    class Boom(Exception):
        pass

    class Exploding(str):
        def encode(self, *args: object, **kwargs: object) -> bytes:  # type: ignore[override]
            raise Boom

    with pytest.raises(Boom):
        atomic.write_text(path, Exploding("new"))
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_write_into_unwritable_folder_reports_os_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError) as info:
        atomic.write_text(blocker / "watchlist.txt", "3653\n")
    assert info.value.strerror


def test_following_a_file_never_creates_or_rewrites_it(tmp_path: Path) -> None:
    from portwatch.config.follow import Follower

    path = tmp_path / "watchlist.txt"
    path.write_text("3653\nnot a port\n")
    follower = Follower(path, watchfile.follow_load)
    assert follower.poll() is None  # unchanged
    path.unlink()  # mid-replace, or deleted by the user
    loaded = follower.poll()
    assert loaded is not None and not loaded.readable
    assert not path.exists()
    path.write_text("4000/udp\n")
    loaded = follower.poll()
    assert loaded is not None and loaded.readable
    assert [str(s) for s in loaded.watchlist] == ["4000/udp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["watchlist.txt"]


def test_saving_keeps_the_lines_it_could_not_use(tmp_path: Path) -> None:
    """A save writes the canonical list; a line that was refused was silently dropped."""
    path = tmp_path / "watchlist.txt"
    path.write_text("3653\nbadline\n")
    kept = watchfile.save(path, WatchList((parse_spec("3653"), parse_spec("4000"))))
    assert kept is not None and kept.read_text() == "3653\nbadline\n"
    assert [str(s) for s in watchfile.load(path).watchlist] == ["3653", "4000"]
    assert watchfile.save(path, WatchList((parse_spec("3653"),))) is None  # clean now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["watchlist.txt", kept.name]
