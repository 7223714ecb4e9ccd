"""The one layer every file portwatch reads or writes goes through.

portwatch often runs as root, so each file it opens is a way in. This module decides,
in one place, what a file portwatch may touch is:

- a regular file, opened without following a symbolic link; links, devices, FIFOs and
  sockets are refused with the reason (so a FIFO cannot hang a load and ``/dev/zero``
  cannot fill memory);
- never larger than the caller's limit when read;
- written atomically (a temp file in the same folder, fsync, rename), and only ever over
  a regular file or nothing, so a failed write leaves every file as it was;
- in a folder no other user can write (or they could swap a file for a link meanwhile);
- written by one process per folder (:class:`FolderLock`).

Reading never writes. Nothing here imports the rest of portwatch.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

# Not every OS has these; 0 makes them no-ops and the lstat checks below do the work.
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)

UTF8_BOM = b"\xef\xbb\xbf"


class ResourceShortage(RuntimeError):
    """portwatch ran out of file descriptors or memory (or the system did).

    Deliberately not an OSError: it passes every handler that reads an OSError as "this
    one file or process could not be read", so a result left incomplete for want of a
    descriptor is never taken for a fact about the system (an owner "uninspectable",
    a file "not in its package", "nothing is trusted"). ``str()`` says what ran out.
    """


def shortage(exc: BaseException) -> str | None:
    """What ran out, in words, when ``exc`` says the process ran out of file
    descriptors or memory; None for any other error."""
    if isinstance(exc, ResourceShortage):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory"
    if not isinstance(exc, OSError):
        return None
    if exc.errno == errno.EMFILE:
        return f"out of file descriptors{_descriptor_limit()}"
    if exc.errno == errno.ENFILE:
        return "the system is out of file descriptors (every process together)"
    if exc.errno == errno.ENOMEM:
        return "out of memory"
    return None


def raise_if_short(exc: BaseException) -> None:
    """Raise :class:`ResourceShortage` when ``exc`` is a shortage; call it first in an
    ``except OSError`` that would otherwise take the failure for an answer."""
    reason = shortage(exc)
    if reason is not None:
        raise ResourceShortage(reason) from exc


def shortage_now() -> str | None:
    """Whether the process is out of descriptors right now (tried by opening one), for
    libraries that hide the OS's error (SQLite's "unable to open database file")."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY | _O_CLOEXEC)
    except OSError as exc:
        return shortage(exc)
    os.close(fd)
    return None


def _descriptor_limit() -> str:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return ""
    if soft == resource.RLIM_INFINITY:
        return ""
    return f" (this process may have {soft} open; raise the limit with ulimit -n)"


class RefusedFile(OSError):
    """A file portwatch will not use; ``strerror`` is the reason, ``filename`` the path."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(errno.EPERM, reason, os.fspath(path))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def kind_of(mode: int) -> str:
    """What a file of this mode is, in words ("a FIFO (named pipe)")."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def _not_regular(path: str | os.PathLike[str], mode: int) -> RefusedFile:
    if stat.S_ISLNK(mode):
        return RefusedFile(path, "it is a symbolic link; portwatch does not follow links")
    return RefusedFile(path, f"it is {kind_of(mode)}, not a regular file")


def _require_regular(path: str | os.PathLike[str], mode: int) -> None:
    """The one check, for reading and writing alike: a regular file, or the reason not."""
    if not stat.S_ISREG(mode):
        raise _not_regular(path, mode)


def _require_single_link(path: str | os.PathLike[str], links: int) -> None:
    # A file written in place (the history, its lock, the log) with a second name is
    # another file too: a hard link planted there would have root write into it.
    if links > 1:
        raise RefusedFile(
            path,
            f"it has {links} hard links (it is also another file); portwatch does not write"
            " through a link",
        )


def check_in_place(path: str | os.PathLike[str]) -> bool:
    """:func:`check_target` for a file that is written in place rather than replaced
    (SQLite's database and side files): also refused when it has another hard link."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    _require_regular(path, st.st_mode)
    _require_single_link(path, st.st_nlink)
    return True


def open_regular(
    path: str | os.PathLike[str], flags: int, mode: int = 0o600, *, follow: bool = False
) -> int:
    """``os.open`` that only ever yields a regular file, never through a link (unless
    ``follow``: a program the user names, such as ``/bin/ls``, may be one); opened for
    writing, never one with a second hard link.

    Opening is non-blocking so that a FIFO is refused instead of waiting for a writer.
    Raises :class:`RefusedFile` for links and special files, OSError for the rest.
    """
    nofollow = 0 if follow else _O_NOFOLLOW
    if not _O_NOFOLLOW and not follow:
        # No O_NOFOLLOW (Windows): check first; the folder checks keep others out.
        check_target(path)
    try:
        fd = os.open(
            path, flags | nofollow | _O_NONBLOCK | _O_CLOEXEC | _O_NOCTTY | _O_BINARY, mode
        )
    except OSError as exc:
        # The OS's words for these ("Too many levels of symbolic links", "No such device
        # or address", "Is a directory") do not say what is wrong: say what is there.
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            try:
                found = os.stat(path) if follow else os.lstat(path)
            except OSError:
                raise exc from None
            if not stat.S_ISREG(found.st_mode):
                raise _not_regular(path, found.st_mode) from None
        raise
    try:
        found = os.fstat(fd)
        _require_regular(path, found.st_mode)
        if flags & (os.O_WRONLY | os.O_RDWR):
            _require_single_link(path, found.st_nlink)
        if _O_NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str | os.PathLike[str], limit: int) -> bytes:
    """The content of a regular file of at most ``limit`` bytes.

    Raises FileNotFoundError when it is missing, :class:`RefusedFile` for a link, a
    special file or one that is too large, OSError otherwise.
    """
    fd = open_regular(path, os.O_RDONLY)
    try:
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise RefusedFile(path, f"it is larger than {_size(limit)}; portwatch reads at most that")
    return b"".join(chunks)


_BOMS = ((UTF8_BOM, "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def encoding_of(raw: bytes) -> tuple[bytes, str]:
    """The text without its byte-order mark, and its encoding: UTF-8 unless a mark says
    UTF-16 (Notepad's "Unicode", PowerShell 5's ``>`` and ``Out-File`` write that)."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return raw[len(bom) :], codec
    return raw, "utf-8"


def decode_text(raw: bytes) -> str:
    """Text with a leading byte-order mark dropped (editors on Windows add one; a UTF-16
    one is read as UTF-16); undecodable bytes become U+FFFD so that the parser can name
    the line."""
    body, codec = encoding_of(raw)
    return body.decode(codec, errors="replace")


def read_text(path: str | os.PathLike[str], limit: int) -> str:
    """:func:`read_bytes` decoded with :func:`decode_text`."""
    return decode_text(read_bytes(path, limit))


def _size(limit: int) -> str:
    if limit >= 1 << 20 and limit % (1 << 20) == 0:
        return f"{limit >> 20} MiB"
    if limit >= 1 << 10 and limit % (1 << 10) == 0:
        return f"{limit >> 10} KiB"
    return f"{limit} bytes"


# -- writing ---------------------------------------------------------------------------


def check_target(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` may be replaced by a write: True when a regular file is there,
    False when nothing is. Raises :class:`RefusedFile` for anything else (a link is
    never replaced, a device or FIFO never written)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    _require_regular(path, st.st_mode)
    return True


def one_of(target: Path, candidates: Iterable[Path]) -> Path | None:
    """The candidate that ``target`` names, if any: the same entry in the same folder
    (whatever links lead there), or a hard link to the same file. For refusing to write
    a report over a file of portwatch's own."""
    try:
        here = os.path.realpath(target.parent)
        found = os.lstat(target)
    except OSError:
        found = None
        here = None
    for candidate in candidates:
        if candidate.name == target.name and os.path.realpath(candidate.parent) == here:
            return candidate
        if found is not None:
            try:
                if os.path.samestat(found, os.lstat(candidate)):
                    return candidate
            except OSError:
                continue
    return None


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically: the file is then the old or the new
    version, never half of one, and a failure (a full disk) leaves it untouched.

    ``path`` must be a regular file or not exist (:func:`check_target`). Raises
    OSError with the OS's reason; no temp file is left behind.
    """
    target = Path(path)
    check_target(target)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"the folder {folder} does not exist", str(folder))
    # mkstemp creates with O_EXCL in the same folder: nothing can be waiting there for us.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode != 0o600 and hasattr(os, "chmod"):
            os.chmod(tmp_name, mode)
        # Again, just before the rename: something may have appeared meanwhile.
        check_target(target)
        replace_with_retry(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(folder)


# Windows refuses to replace a file another program holds open without FILE_SHARE_DELETE
# (Excel showing the last export, an antivirus scan, another portwatch reading settings):
# ERROR_ACCESS_DENIED (5) or ERROR_SHARING_VIOLATION (32). Such holds are usually brief, so
# the replace is retried for about two seconds before giving up with the reason.
_HELD_WINERRORS = frozenset({5, 32})
_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.5, 0.75)
HELD_BY_ANOTHER_PROGRAM = (
    "another program has the file open (close it there, for example in Excel, and try again)"
)


class FileHeldError(PermissionError):
    """The target stayed open in another program for every retry (Windows)."""


def _is_held(exc: OSError) -> bool:
    return getattr(exc, "winerror", None) in _HELD_WINERRORS


def replace_with_retry(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    replace: Callable[[str | os.PathLike[str], str | os.PathLike[str]], None] = os.replace,
    sleep: Callable[[float], None] = time.sleep,
    is_held: Callable[[OSError], bool] = _is_held,
) -> None:
    """``os.replace``, retried while another program holds ``target`` open (Windows).

    Raises :class:`FileHeldError`, whose message says why, when the hold outlasts the
    retries; any other error at once.
    """
    for delay in (*_RETRY_DELAYS, None):
        try:
            replace(source, target)
            return
        except OSError as exc:
            if not is_held(exc):
                raise
            if delay is None:
                raise FileHeldError(exc.errno, HELD_BY_ANOTHER_PROGRAM, str(target)) from exc
            sleep(delay)


def write_text(path: str | os.PathLike[str], text: str, mode: int = 0o600) -> None:
    """:func:`write_bytes` of UTF-8 text."""
    write_bytes(path, text.encode("utf-8"), mode)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on Windows, where it is not needed.
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def set_aside(
    path: Path,
    reason: str,
    companions: tuple[str, ...] = (),
    *,
    replace: Callable[[str | os.PathLike[str], str | os.PathLike[str]], None] = os.replace,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Move a file portwatch cannot use out of the way (``NAME.REASON-TIME``), keeping it
    for the user; ``companions`` are suffixes of files that travel with it (``-wal``).
    Only a regular file is moved. Returns the new path; raises OSError."""
    check_target(path)
    aside = _aside_name(path, reason)
    _move_or_copy(path, aside, replace, sleep)
    for suffix in companions:
        side = path.with_name(path.name + suffix)
        if check_target(side):
            _move_or_copy(side, aside.with_name(aside.name + suffix), replace, sleep)
    return aside


def _aside_name(path: Path, reason: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.{reason}-{stamp}")
    counter = 1
    while os.path.lexists(aside):
        aside = path.with_name(f"{path.name}.{reason}-{stamp}-{counter}")
        counter += 1
    return aside


def keep_copy(path: Path, data: bytes, reason: str) -> Path:
    """Write ``data`` (what ``path`` held) beside it as ``NAME.REASON-TIME`` before
    ``path`` is replaced: a copy, so that a failure leaves every file as it was."""
    aside = _aside_name(path, reason)
    write_bytes(aside, data)
    return aside


def _move_or_copy(
    path: Path,
    aside: Path,
    replace: Callable[[str | os.PathLike[str], str | os.PathLike[str]], None],
    sleep: Callable[[float], None],
) -> None:
    try:
        replace_with_retry(path, aside, replace=replace, sleep=sleep)
    except FileHeldError:
        # Windows cannot rename a file another handle keeps open (a reader's SQLite
        # connection, in this process or another). Such handles share writing, so the
        # file is copied aside and emptied in place instead: the same result for the user,
        # and an empty file is what a fresh database starts from.
        fd = open_regular(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with open(path, "rb") as source, os.fdopen(fd, "wb") as target:
            while chunk := source.read(1 << 20):
                target.write(chunk)
            target.flush()
            os.fsync(target.fileno())
        with open(path, "r+b") as emptied:
            emptied.truncate(0)


# -- folders -----------------------------------------------------------------------------


def check_folder(folder: str | os.PathLike[str]) -> None:
    """Refuse, with the reason, a folder another user could change files in.

    Such a user could swap a file for a link between our check and our use of it, or
    plant one before we create it. Accepted: owned by us or root, and writable by no
    one else (a group write bit is fine for a group of one, the user's own).
    """
    if os.name != "posix":
        return  # ACLs decide there; the per-user profile folders are private by default
    st = os.stat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise RefusedFile(folder, f"it is {kind_of(st.st_mode)}, not a folder")
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise RefusedFile(
            folder,
            f"it belongs to {_user_name(st.st_uid)}, not to {_user_name(me)}; that user"
            " could swap portwatch's files for links",
        )
    if st.st_mode & stat.S_IWOTH:
        raise RefusedFile(
            folder,
            f"every user can write in it (mode {stat.S_IMODE(st.st_mode):o}); use a private"
            " folder (chmod o-w)",
        )
    if st.st_mode & stat.S_IWGRP and _group_has_others(st.st_gid, st.st_uid):
        raise RefusedFile(
            folder,
            f"other members of the group {_group_name(st.st_gid)} can write in it (mode"
            f" {stat.S_IMODE(st.st_mode):o}); use a private folder (chmod g-w)",
        )


def prepare_folder(folder: str | os.PathLike[str], *, link_ok: bool = True) -> None:
    """Create ``folder`` if it is missing, then :func:`check_folder` it.

    A symbolic link there is refused when ``link_ok`` is False (a folder portwatch made
    inside its own, such as ``logs``: a link would send its files elsewhere). Otherwise
    (a folder the user named) it is followed only when we or root own the link, as the
    kernel's protected_symlinks does in shared folders: another user could repoint it.
    """
    path = Path(folder)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        path.mkdir(parents=True, exist_ok=True)
        st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        if not link_ok:
            raise RefusedFile(path, "it is a symbolic link; portwatch does not follow links")
        if os.name == "posix" and st.st_uid not in (os.geteuid(), 0):
            raise RefusedFile(
                path,
                f"it is a symbolic link owned by {_user_name(st.st_uid)}, who could point it"
                " elsewhere; give the folder itself",
            )
        if not path.exists():
            raise RefusedFile(
                path, f"it is a symbolic link to {os.readlink(path)}, which does not exist"
            )
    elif not stat.S_ISDIR(st.st_mode):
        raise RefusedFile(path, f"it is {kind_of(st.st_mode)}, not a folder")
    check_folder(path)
    _check_above(path)


def _check_above(folder: Path) -> None:
    """Refuse a folder inside one another user can rename things in: they could move
    ours away and put a link or a folder of theirs in its place between our checks and
    our writes. A sticky folder (``/tmp``) lets only an entry's owner move it."""
    if os.name != "posix":
        return
    me = os.geteuid()
    real = Path(os.path.realpath(folder))
    for above in real.parents:
        st = os.stat(above)
        if st.st_uid not in (me, 0):
            raise RefusedFile(
                folder,
                f"the folder {above} above it belongs to {_user_name(st.st_uid)}, who could"
                " move it and put another in its place; use a folder of your own",
            )
        if st.st_mode & stat.S_ISVTX:
            continue  # only an entry's owner (or the folder's) may move it
        open_to_others = st.st_mode & stat.S_IWOTH or (
            st.st_mode & stat.S_IWGRP and _group_has_others(st.st_gid, st.st_uid)
        )
        if open_to_others:
            raise RefusedFile(
                folder,
                f"other users can write in the folder {above} above it (mode"
                f" {stat.S_IMODE(st.st_mode):o}) and could put another folder in its place",
            )


def _user_name(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)


def _group_has_others(gid: int, owner: int) -> bool:
    """Whether anyone but ``owner`` belongs to the group (unknown counts as yes)."""
    try:
        import grp
        import pwd

        group = grp.getgrgid(gid)
        owner_name = pwd.getpwuid(owner).pw_name
    except (ImportError, KeyError):
        return True
    if any(member != owner_name for member in group.gr_mem):
        return True
    return any(entry.pw_gid == gid and entry.pw_uid != owner for entry in pwd.getpwall())


# -- one writer per folder -------------------------------------------------------------------


class FolderLock:
    """An exclusive lock on a file in a folder, held while this object lives.

    Taken with ``flock`` (``msvcrt.locking`` on Windows), so a crashed holder releases
    it. The lock file holds the holder's pid, for the message a second writer shows.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, path: Path) -> FolderLock | None:
        """The lock, or None when another process holds it. Raises OSError otherwise."""
        fd = open_regular(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                os.close(fd)
                return None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return cls(fd, path)

    @staticmethod
    def holder(path: Path) -> int | None:
        """The pid written by the current holder, when it can be read."""
        try:
            text = read_bytes(path, 64).decode("ascii", errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.close(fd)  # closing drops the lock; the file stays (removing it would race)


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True
