"""Files portwatch touches cannot be turned against it: links, devices, FIFOs, folders
others can write, a second recorder, a full disk. Real files, real FIFOs, real links,
the command run as a user runs it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwatch import files
from portwatch.store.history import HistoryStore, StoreBusy, StoreError

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX files (FIFOs, modes, links)")


def portwatch_cmd() -> list[str]:
    script = Path(sys.executable).with_name("portwatch")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "portwatch"]


def run(
    data_dir: Path, *args: str, timeout: float = 30, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    options: dict[str, object] = {"capture_output": True} if "stdout" not in kwargs else {}
    options.update(kwargs)
    if "stdout" in kwargs:
        options["stderr"] = subprocess.PIPE
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*portwatch_cmd(), "--data-dir", str(data_dir), *args],
        text=True,
        timeout=timeout,
        check=False,
        **options,
    )


def one_line(stderr: str) -> str:
    """The stderr of a refused command: exactly one line, no traceback."""
    assert "Traceback" not in stderr, stderr
    assert "Logging error" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def history(data_dir: Path) -> Path:
    path = data_dir / "history.sqlite3"
    HistoryStore.open(path).close()
    return path


# -- export ---------------------------------------------------------------------------


@posix_only
def test_export_refuses_a_symlink_and_leaves_it_and_its_target_alone(
    data_dir: Path, history: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    result = run(data_dir, "export", "-o", str(link))
    assert result.returncode == 1
    assert "symbolic link" in one_line(result.stderr)
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert victim.read_text() == "precious\n"


@posix_only
def test_export_refuses_a_fifo_without_waiting(
    data_dir: Path, history: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    result = run(data_dir, "export", "-o", str(fifo), timeout=20)
    assert result.returncode == 1
    assert "FIFO" in one_line(result.stderr)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(not IS_ROOT, reason="making a device node needs root")
def test_export_refuses_a_device_and_it_stays_a_device(
    data_dir: Path, history: Path, tmp_path: Path
) -> None:
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the null device
    except OSError as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    result = run(data_dir, "export", "-o", str(device))
    assert result.returncode == 1
    assert "character device" in one_line(result.stderr)
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_export_help_says_what_a_target_may_be(data_dir: Path) -> None:
    result = run(data_dir, "export", "--help")
    text = " ".join(result.stdout.split())
    assert "symbolic link is refused" in text
    assert "- for standard output" in text


@posix_only
def test_export_to_a_full_stdout_is_one_line_and_a_failure(data_dir: Path, history: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        result = run(data_dir, "export", "-o", "-", stdout=full)
    assert result.returncode == 1
    assert "No space left" in one_line(result.stderr)


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "64k") -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.skipif(not IS_ROOT, reason="mounting a small tmpfs (a full disk) needs root")
def test_a_failed_export_on_a_full_disk_leaves_the_previous_file(
    data_dir: Path, history: Path, tmp_path: Path
) -> None:
    with sqlite3.connect(history) as conn:
        conn.executemany(
            "INSERT INTO listeners (proto, family, address, port, exe, sha256, user, script,"
            " process, last_pid, watched, status, first_seen, last_seen)"
            " VALUES ('tcp', 'ipv4', '127.0.0.1', ?, ?, '', '', '', 'x', 1, 1, 'unknown', 1, 2)",
            [(port, "/x" * 200) for port in range(1, 2000)],
        )
    conn.close()
    with small_tmpfs(tmp_path / "small") as disk:
        previous = disk / "out.csv"
        previous.write_text("the previous export\n")
        filler = disk / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as handle:
            handle.write(b"\0" * (60 * 1024))
        result = run(data_dir, "export", "-o", str(previous))
        assert result.returncode == 1
        assert "No space left" in one_line(result.stderr)
        assert previous.read_text() == "the previous export\n"
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "out.csv"]


def test_export_never_writes_over_portwatchs_own_files(data_dir: Path, tmp_path: Path) -> None:
    assert run(data_dir, "monitor", "--duration", "0.2").returncode == 0
    (data_dir / "trust.json").write_text("{}")
    before = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    hard = tmp_path / "hard-link.csv"
    os.link(data_dir / "trust.json", hard)
    for target in (data_dir / "history.sqlite3", data_dir / "logs" / "portwatch.log", hard):
        result = run(data_dir, "export", "-o", str(target))
        assert result.returncode == 1
        assert "portwatch's own" in one_line(result.stderr)
    assert {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()} == before


def test_export_refuses_a_folder_name_and_a_read_only_file(
    data_dir: Path, history: Path, tmp_path: Path
) -> None:
    result = run(data_dir, "export", "-o", f"{tmp_path / 'new'}/")
    assert result.returncode == 1
    assert "names a folder" in one_line(result.stderr)
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept.csv"
    kept.write_text("keep me\n")
    kept.chmod(0o444)
    result = run(data_dir, "export", "-o", str(kept))
    assert result.returncode == 1
    assert "read-only" in one_line(result.stderr)
    assert kept.read_text() == "keep me\n"


def test_reading_the_history_adds_no_file(data_dir: Path) -> None:
    """export after monitor: a read-only reader of a WAL database created -wal and -shm."""
    assert run(data_dir, "monitor", "--duration", "0.2").returncode == 0

    def listing() -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(data_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in data_dir.rglob("*")
        }

    before = listing()
    result = run(data_dir, "export", "-o", "-")
    assert result.returncode == 0, result.stderr
    assert listing() == before


def test_export_of_rows_with_impossible_times(data_dir: Path, history: Path) -> None:
    with sqlite3.connect(history) as conn:
        conn.execute(
            "INSERT INTO listeners (proto, family, address, port, exe, sha256, user, script,"
            " process, last_pid, watched, status, first_seen, last_seen) VALUES"
            " ('tcp', 'ipv4', '127.0.0.1', 3653, '', '', '', '', 'x', 1, 1, 'unknown',"
            " 1e300, -1e300)"
        )
        conn.execute(
            "INSERT INTO listeners (proto, family, address, port, exe, sha256, user, script,"
            " process, last_pid, watched, status, first_seen, last_seen) VALUES"
            " ('udp', 'ipv4', '127.0.0.1', 'not a port', '', '', '', '', 'x', 1, 1, 'unknown',"
            " 99999999999999, 'soon')"
        )
    conn.close()
    result = run(data_dir, "export", "-o", "-")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stdout.splitlines()) == 3


# -- the data folder --------------------------------------------------------------------


@posix_only
def test_a_history_link_to_another_database_is_refused_and_not_written(
    data_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE mine (x)")
    conn.close()
    before = other.read_bytes()
    (data_dir / "history.sqlite3").symlink_to(other)
    result = run(data_dir, "monitor", "--duration", "0.2")
    assert result.returncode == 1
    assert "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert other.read_bytes() == before
    assert not (tmp_path / "other.db-wal").exists()


@posix_only
def test_a_dangling_history_link_creates_nothing_outside(data_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.db"
    (data_dir / "history.sqlite3").symlink_to(outside)
    with pytest.raises(StoreError, match="symbolic link"):
        HistoryStore.open(data_dir / "history.sqlite3")
    assert not outside.exists()


@posix_only
def test_a_wal_link_is_refused(data_dir: Path, history: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    (data_dir / "history.sqlite3-wal").symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link"):
        HistoryStore.open(history)
    with pytest.raises(StoreError, match="symbolic link"):
        HistoryStore.open_readonly(history)
    assert target.read_bytes() == b"keep"


@posix_only
def test_a_log_link_is_not_appended_to(data_dir: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (data_dir / "logs").mkdir(mode=0o700)
    (data_dir / "logs" / "portwatch.log").symlink_to(victim)
    result = run(data_dir, "-v", "watch", "list")
    assert result.returncode == 0, result.stderr
    assert "symbolic link" in result.stderr
    assert victim.read_text() == "untouched\n"


@posix_only
def test_a_data_folder_anyone_can_write_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    result = run(folder, "watch", "list")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "every user can write" in line and str(folder) in line
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(not IS_ROOT, reason="giving a folder to another user needs root")
def test_a_data_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o755)
    os.chown(folder, 65534, 65534)  # nobody
    result = run(folder, "watch", "list")
    assert result.returncode == 1
    assert "belongs to" in one_line(result.stderr)


@posix_only
def test_a_logs_link_in_the_data_folder_is_refused(data_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (data_dir / "logs").symlink_to(elsewhere)
    result = run(data_dir, "watch", "list")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "log folder" in line and "symbolic link" in line
    assert list(elsewhere.iterdir()) == []


@posix_only
def test_a_data_folder_that_is_not_one_is_named_for_what_it_is(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name, reason in (("file", "a regular file, not a folder"), ("dangling", "does not exist")):
        result = run(tmp_path / name, "watch", "list")
        assert result.returncode == 1
        assert reason in one_line(result.stderr)
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.skipif(not IS_ROOT, reason="giving a link to another user needs root")
def test_a_data_folder_link_another_user_owns_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    assert run(link, "watch", "list").returncode == 0  # our own link: followed
    os.lchown(link, 65534, 65534)  # nobody could point it anywhere
    result = run(link, "watch", "list")
    assert result.returncode == 1
    assert "symbolic link owned by" in one_line(result.stderr)


@pytest.mark.skipif(not IS_ROOT, reason="giving a folder to another user needs root")
def test_a_data_folder_inside_one_others_can_change_is_refused(tmp_path: Path) -> None:
    """Its owner, or anyone who can write there, could move our folder away and put one
    of theirs (or a link) in its place. A sticky folder such as /tmp is fine."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / "data").mkdir(mode=0o700)
    result = run(shared / "data", "watch", "list")
    assert result.returncode == 1
    assert f"other users can write in the folder {shared}" in one_line(result.stderr)
    assert list((shared / "data").iterdir()) == []
    shared.chmod(0o1777)
    assert run(shared / "data", "watch", "list").returncode == 0
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    (theirs / "data").mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    result = run(theirs / "data", "watch", "list")
    assert result.returncode == 1
    assert f"the folder {theirs} above it belongs to" in one_line(result.stderr)


@posix_only
def test_a_private_folder_is_fine(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir(mode=0o700)
    files.check_folder(folder)


# -- one recorder per data folder ---------------------------------------------------------


def test_a_second_writer_is_refused_while_the_first_records(data_dir: Path) -> None:
    path = data_dir / "history.sqlite3"
    first = HistoryStore.open(path)
    try:
        with pytest.raises(StoreBusy, match=r"pid \d+.*already recording history"):
            HistoryStore.open(path)
        result = run(data_dir, "monitor", "--duration", "0.2")
        assert result.returncode == 1
        assert "already recording history" in one_line(result.stderr)
    finally:
        first.close()
    HistoryStore.open(path).close()  # released on close


def test_a_crashed_writer_leaves_no_lock_behind(data_dir: Path) -> None:
    path = data_dir / "history.sqlite3"
    code = (
        "import os, sys; from pathlib import Path;"
        "from portwatch.store.history import HistoryStore;"
        f"HistoryStore.open(Path({str(path)!r})); os._exit(9)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 9
    HistoryStore.open(path).close()


# -- the layer itself --------------------------------------------------------------------


@posix_only
def test_reading_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            files.read_bytes(fifo, 1024)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # unblock the thread before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], files.RefusedFile)
    assert "FIFO" in str(outcome[0])


def test_reading_stops_at_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(files.RefusedFile, match="larger than"):
        files.read_bytes(big, 4096)
    assert files.read_bytes(big, 5000) == b"x" * 5000


def test_a_byte_order_mark_is_dropped() -> None:
    assert files.decode_text(b"\xef\xbb\xbf3653\n") == "3653\n"


@posix_only
def test_writing_replaces_a_regular_file_but_never_a_link(tmp_path: Path) -> None:
    target = tmp_path / "f"
    files.write_text(target, "one")
    files.write_text(target, "two")
    assert target.read_text() == "two"
    link = tmp_path / "l"
    link.symlink_to(target)
    with pytest.raises(files.RefusedFile, match="symbolic link"):
        files.write_text(link, "three")
    assert link.is_symlink() and target.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "l"]


@posix_only
def test_what_is_refused_is_named_not_the_oses_words(tmp_path: Path) -> None:
    # ELOOP, ENXIO and EISDIR read "Too many levels of symbolic links", "No such device
    # or address" and "Is a directory": the reason must say what is at the name.
    import socket

    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        for name, kind in (("dangling", "symbolic link"), ("sock", "a socket")):
            with pytest.raises(files.RefusedFile, match=kind):
                files.read_bytes(tmp_path / name, 1024)
    (tmp_path / "folder").mkdir()
    with pytest.raises(files.RefusedFile, match="a folder"):
        files.open_regular(tmp_path / "folder", os.O_WRONLY | os.O_APPEND)
    assert not (tmp_path / "nowhere").exists()


@posix_only
def test_a_dangling_trust_link_is_named_as_a_link(data_dir: Path, tmp_path: Path) -> None:
    (data_dir / "trust.json").symlink_to(tmp_path / "nowhere")
    result = run(data_dir, "trust", "list")
    assert "trust.json: it is a symbolic link" in result.stderr, result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_rows_of_any_type_do_not_stop_the_monitor_or_the_readers(
    data_dir: Path, history: Path
) -> None:
    """The history is a file anyone with root may have edited: a time that is text, a
    count that is text, infinities. Recording goes on; readers skip what is not a value."""
    with sqlite3.connect(history) as conn:
        conn.execute(
            "INSERT INTO listeners (proto, family, address, port, exe, sha256, user, script,"
            " process, last_pid, watched, status, first_seen, last_seen) VALUES"
            " ('tcp', 'ipv4', '127.0.0.1', 3653, '', '', '', '', 'x', 1, 1, 'unknown',"
            " 'then', 'soon')"
        )
        conn.execute(
            "INSERT INTO events (wall, kind, proto, family, address, port)"
            " VALUES ('late', 'listener-opened', 'tcp', 'ipv4', '127.0.0.1', 3653)"
        )
    conn.close()
    result = run(data_dir, "monitor", "--duration", "0.3")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with sqlite3.connect(history) as conn:
        conn.execute("INSERT INTO polls VALUES (60, 1, 1)")
        conn.execute(
            "INSERT INTO activity (resolution, bucket, port, proto, listeners, established,"
            " bytes) VALUES (60, 1, 3653, 'tcp', 'many', 'x', 'lots')"
        )
    conn.close()
    reader = HistoryStore.open_readonly(history)
    try:
        assert reader.first_last_seen(port=3653) is None
        (point,) = reader.activity(3653, "tcp", 60.0, 119.0, resolution=60)
        assert (point.listeners, point.established, point.bytes) == (0, 0, None)
        assert all(isinstance(e.wall, float) for e in reader.recent_events())
    finally:
        reader.close()


# -- the monitor's event file ------------------------------------------------------------


@posix_only
def test_the_event_file_is_never_one_of_portwatchs_own_nor_a_special_file(
    data_dir: Path, history: Path, tmp_path: Path
) -> None:
    # --jsonl history.sqlite3 appended JSON to the database; --jsonl trust.json emptied
    # what was trusted; a link, FIFO or device only warned, then ran without writing.
    (data_dir / "trust.json").write_text("{}")
    kept = (history, data_dir / "trust.json")
    before = [p.read_bytes() for p in kept]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "events")
    for target, reason in (
        (history, "portwatch's own history.sqlite3"),
        (data_dir / "trust.json", "portwatch's own trust.json"),
        (fifo, "FIFO"),
        (link, "symbolic link"),
        (tmp_path, "a folder"),
    ):
        result = run(data_dir, "monitor", "--duration", "0.2", "--jsonl", str(target))
        assert result.returncode == 1
        assert reason in one_line(result.stderr)
    assert [p.read_bytes() for p in kept] == before
    result = run(data_dir, "monitor", "--duration", "0.2", "--jsonl", f"{tmp_path}/new/")
    assert result.returncode == 2
    assert "names a folder" in one_line(result.stderr)
    assert not (tmp_path / "events").exists() and not (tmp_path / "new").exists()


# -- hard links ---------------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize(
    "name", ["history.sqlite3", "history.sqlite3.lock", "history.sqlite3-wal", "logs/portwatch.log"]
)
def test_a_file_written_in_place_is_never_a_hard_link(
    data_dir: Path, tmp_path: Path, name: str
) -> None:
    """The lock was truncated to a pid, the history got portwatch's tables, the log was
    appended to: through a second name for another file."""
    victim = tmp_path / "victim"
    if name == "history.sqlite3":
        with sqlite3.connect(victim) as conn:
            conn.execute("CREATE TABLE mine (x)")
        conn.close()
    else:
        victim.write_bytes(b"precious\n")
    before = victim.read_bytes()
    (data_dir / "logs").mkdir(mode=0o700)
    os.link(victim, data_dir / name)
    result = run(data_dir, "-v", "monitor", "--duration", "0.2")
    assert "Traceback" not in result.stderr
    assert "hard links" in result.stderr, result.stderr
    assert victim.read_bytes() == before


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        ("PRAGMA user_version = 3", "is missing"),
        ("CREATE TABLE listeners (a); PRAGMA user_version = 3", "is missing"),
        ("CREATE TABLE x (y); PRAGMA user_version = -3", "schema number -3"),
        ("CREATE TABLE listeners (a)", "portwatch did not make"),
    ],
    ids=["no-tables", "wrong-tables", "negative-version", "foreign-table"],
)
def test_a_history_whose_tables_are_not_portwatchs_is_set_aside(
    data_dir: Path, make: str, reason: str
) -> None:
    """A file whose version number promises tables it lacks ended the monitor in a
    traceback ("no such table"); it is moved aside like any damaged history."""
    path = data_dir / "history.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(make)
    conn.close()
    result = run(data_dir, "monitor", "--duration", "0.2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert reason in result.stderr and "moved to" in result.stderr
    assert run(data_dir, "export", "-o", "-").returncode == 0
