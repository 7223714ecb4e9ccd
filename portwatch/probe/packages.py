"""Which installed package a file came from, verified against the package manager's record.

A file belongs to a package only when its bytes still match what the package manager
recorded at install time: dpkg's ``/var/lib/dpkg/info/PKG[:ARCH].md5sums``, rpm's file
digests. A file changed after install, a copy elsewhere or a file whose package was
removed has no package. Diversions (``dpkg-divert``) and the merged-``/usr`` aliases
(``/bin`` → ``/usr/bin``) are resolved so the real file is checked against the right
record; symlinks (alternatives such as ``/usr/bin/python3``) are resolved by the caller
(``/proc/PID/exe`` and ``realpath`` already name the real file).

Answers are cached by the file's identity (device, inode, size, mtime, ctime) and the
database's own stamp, so a steady poll reads neither the database nor the file again.

    >>> package_of("/usr/bin/python3.11")   # doctest: +SKIP
    PackageInfo(name='python3.11-minimal', version='3.11.2-6', manager='dpkg', arch='amd64')
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import shutil
import subprocess
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from portwatch import files
from portwatch.core.text import clean
from portwatch.core.types import PackageInfo
from portwatch.files import raise_if_short

log = logging.getLogger(__name__)

__all__ = [
    "DpkgDatabase",
    "FileRecord",
    "PackageCheck",
    "PackageInfo",
    "PackageVerifier",
    "RpmDatabase",
    "default_verifier",
    "package_of",
]

FileKey = tuple[int, int, int, int, int]
_CHUNK = 1 << 20
# The states in which dpkg considers a package's files in place and its records valid.
_INSTALLED_STATES = frozenset({"installed", "triggers-pending", "triggers-awaited"})
# dpkg's states while it upgrades a package: the files are being swapped, the package
# is still there (a process of the earlier version is not a changed binary).
_CHANGING_STATES = frozenset({"half-installed", "unpacked", "half-configured"})
# The top-level directories merged into /usr on current systems: a package may list
# /bin/foo while the kernel names the running file /usr/bin/foo.
_MERGED_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# dpkg paths answered by searching the file lists before the compact index is built,
# and how long the lists stay in memory for that (see DpkgDatabase).
_SEARCHES_BEFORE_INDEX = 24
_BUFFER_SECONDS = 60.0


@dataclass(frozen=True)
class FileRecord:
    """What a package manager recorded for one file: the package and the file's digest.

    ``digest`` is None where the manager keeps none for the file (then it cannot be
    verified); ``algorithm`` is a :mod:`hashlib` name (``md5``, ``sha256``, …).
    """

    package: PackageInfo
    path: str
    algorithm: str
    digest: str | None


@dataclass(frozen=True)
class PackageCheck:
    """The answer for one file.

    ``package`` is set only when the file verifies. ``listed_by`` is the package whose
    records name the path even when the bytes differ, and ``problem`` says why it does
    not verify ("changed since pw-demo 1.0 was installed (dpkg)").
    """

    package: PackageInfo | None = None
    listed_by: PackageInfo | None = None
    problem: str | None = None

    @property
    def verified(self) -> bool:
        return self.package is not None


class PackageDatabase(Protocol):
    """One package manager's records (dpkg, rpm)."""

    manager: str

    def stamp(self) -> object:
        """Something that changes whenever the database changes (cheap: a few stat calls)."""
        ...

    def records(self, path: str) -> list[FileRecord]:
        """The records of installed packages that list ``path``; [] when none does.

        Raises OSError when the database cannot be read (the answer is then not cached)."""
        ...

    def installed(self, name: str) -> bool:
        """Whether a package of that name is installed now, or being upgraded (its
        processes of the earlier version keep running through the upgrade)."""
        ...


def _stat_stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class DpkgDatabase:
    """dpkg's records under ``/var/lib/dpkg``: the ``info/*.list`` and ``*.md5sums`` files,
    ``status`` for versions and ``diversions``.

    dpkg keeps no index from path to package, so every package's file list is read.
    The first lookups after start (or a database change) search the lists, read into
    one buffer, for the paths asked (about 40 ms for 130 000 files, then a millisecond
    a path); building the compact index costs ten times as much, so it is built only
    once :data:`_SEARCHES_BEFORE_INDEX` paths have been asked, or the buffer is
    :data:`_BUFFER_SECONDS` old: the buffer (the lists' size, several MB) is then
    dropped. The index is a sorted array of 64-bit path hashes and package numbers
    (about 2 MB for 100 000 files), each hit confirmed against the package's own files.
    """

    manager = "dpkg"

    def __init__(
        self,
        admin_dir: str = "/var/lib/dpkg",
        root: str = "/",
        searches_before_index: int = _SEARCHES_BEFORE_INDEX,
    ) -> None:
        self.admin_dir = admin_dir
        self._searches_before_index = searches_before_index
        self._info = os.path.join(admin_dir, "info")
        self._root = root
        self._loaded_stamp: object = None
        self._hashes: array[int] = array("q")
        self._owners: array[int] = array("l")
        self._stems: list[str] = []
        self._indexed = False
        # Before the index: every list in one buffer ("\n" before each path and after
        # each line), where each installed package's list starts, and what it answered.
        self._lists: bytes | None = None
        self._list_starts: list[int] = []
        self._lists_read_at = 0.0
        self._searches = 0
        self._versions: dict[str, PackageInfo] = {}
        self._changing: set[str] = set()
        self._divert_from: dict[str, tuple[str, str]] = {}
        self._divert_to: dict[str, tuple[str, str]] = {}
        self._aliases = self._merged_aliases()
        self.index_builds = 0  # for tests and benchmarks

    def stamp(self) -> tuple[object, object]:
        return (
            _stat_stamp(os.path.join(self.admin_dir, "status")),
            _stat_stamp(os.path.join(self.admin_dir, "diversions")),
        )

    def _merged_aliases(self) -> list[tuple[str, str]]:
        """(real prefix, listed prefix) pairs, e.g. ("/usr/bin", "/bin")."""
        out: list[tuple[str, str]] = []
        for top in _MERGED_DIRS:
            here = os.path.join(self._root, top.lstrip("/"))
            if os.path.islink(here):
                real = os.path.realpath(here)
                rel = os.path.relpath(real, os.path.realpath(self._root))
                out.append(("/" + rel, top))
        return out

    # -- building the index ------------------------------------------------------------

    @property
    def indexed(self) -> bool:
        """Whether lookups use the compact index (not a search of the lists)."""
        return self._indexed

    def _ensure_current(self) -> None:
        """Versions and diversions as of the database's current stamp; forgets the
        path lookups of an older stamp."""
        stamp = self.stamp()
        if stamp == self._loaded_stamp:
            return
        if stamp[0] is None:
            raise OSError(f"{self.admin_dir}/status cannot be read")
        self._versions = self._read_status()
        self._read_diversions()
        self._loaded_stamp = stamp
        self._indexed = False
        self._hashes, self._owners, self._stems = array("q"), array("l"), []
        self._lists, self._list_starts, self._searches = None, [], 0

    def _installed_lists(self) -> list[tuple[str, bytes]]:
        """(stem, contents) of the file list of every installed package."""
        out: list[tuple[str, bytes]] = []
        for name in os.listdir(self._info):
            if not name.endswith(".list"):
                continue
            stem = name[: -len(".list")]
            if self._package(stem) is None:
                continue
            try:
                with open(os.path.join(self._info, name), "rb") as handle:
                    out.append((stem, handle.read()))
            except OSError as exc:
                raise_if_short(exc)  # else lists missing packages would be kept
                continue
        return out

    def _prepare_lookup(self) -> None:
        """Make sure a path can be looked up: the lists in a buffer for the first
        searches, the compact index after (see the class docstring)."""
        self._ensure_current()
        if self._indexed:
            return
        if self._lists is not None and (
            self._searches >= self._searches_before_index
            or time.monotonic() - self._lists_read_at > _BUFFER_SECONDS
        ):
            self._build_index()
            return
        if self._searches_before_index <= 0:
            self._build_index()
            return
        if self._lists is None:
            stems: list[str] = []
            starts: list[int] = []
            parts: list[bytes] = [b"\n"]
            offset = 1
            for stem, data in self._installed_lists():
                stems.append(stem)
                starts.append(offset)
                parts.append(data)
                offset += len(data)
                if data and not data.endswith(b"\n"):
                    parts.append(b"\n")  # the needle needs one after the last path
                    offset += 1
            self._lists = b"".join(parts)
            self._list_starts, self._stems = starts, stems
            self._lists_read_at = time.monotonic()
            self.index_builds += 1
        self._searches += 1

    def _build_index(self) -> None:
        pairs: list[tuple[int, int]] = []
        stems: list[str] = []
        for number, (stem, data) in enumerate(self._installed_lists()):
            stems.append(stem)
            pairs.extend((hash(line), number) for line in data.split(b"\n") if line)
        pairs.sort()
        self._hashes = array("q", (h for h, _ in pairs))
        self._owners = array("l", (n for _, n in pairs))
        self._stems = stems
        self._lists, self._list_starts = None, []
        self._indexed = True
        self.index_builds += 1

    def _read_status(self) -> dict[str, PackageInfo]:
        """Installed packages by ``name`` and ``name:arch``; those dpkg is unpacking or
        configuring (an upgrade under way) go to ``_changing``."""
        out: dict[str, PackageInfo] = {}
        changing: set[str] = set()
        with open(os.path.join(self.admin_dir, "status"), "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line[:1] in (" ", "\t") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            name = fields.get("package")
            state = fields.get("status", "").split()
            if name and state and state[-1] in _CHANGING_STATES:
                changing.add(name)
            if not name or not state or state[-1] not in _INSTALLED_STATES:
                continue
            arch = fields.get("architecture") or None
            info = PackageInfo(
                name=clean(name) or name,
                version=clean(fields.get("version", "?")) or "?",
                manager=self.manager,
                arch=arch,
            )
            out.setdefault(name, info)
            if arch:
                out[f"{name}:{arch}"] = info
        self._changing = changing
        return out

    def _read_diversions(self) -> None:
        self._divert_from, self._divert_to = {}, {}
        try:
            with open(os.path.join(self.admin_dir, "diversions"), encoding="utf-8") as handle:
                lines = handle.read().split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise_if_short(exc)
            return
        for index in range(0, len(lines) - 2, 3):
            source, target, by = lines[index], lines[index + 1], lines[index + 2]
            if source and target:
                self._divert_from[source] = (target, by)
                self._divert_to[target] = (source, by)

    def _package(self, stem: str) -> PackageInfo | None:
        return self._versions.get(stem)

    def installed(self, name: str) -> bool:
        self._ensure_current()
        return name in self._versions or name in self._changing

    # -- answering ---------------------------------------------------------------------

    def _listed_paths(self, path: str) -> list[str]:
        """``path`` and the names a package may list it under (merged-/usr aliases)."""
        out = [path]
        for real, listed in self._aliases:
            if path.startswith(real + "/"):
                out.append(listed + path[len(real) :])
        return out

    def records(self, path: str) -> list[FileRecord]:
        self._prepare_lookup()
        found: list[FileRecord] = []
        for alias in self._listed_paths(path):
            only: str | None = None
            exclude: str | None = None
            listed = alias
            if alias in self._divert_to:
                # The real file of a diverted path: it is the original package's file,
                # recorded under the path it was diverted from.
                listed, exclude = self._divert_to[alias]
            elif alias in self._divert_from:
                by = self._divert_from[listed][1]
                if by == ":":
                    continue  # diverted by the administrator: no package owns what is there
                only = by
            for stem in self._stems_listing(listed):
                name = stem.split(":", 1)[0]
                if (only is not None and name != only) or (exclude is not None and name == exclude):
                    continue
                record = self._record(stem, listed)
                if record is not None:
                    found.append(record)
        return found

    def _stems_listing(self, path: str) -> list[str]:
        if self._lists is not None:
            return self._search_lists(path)
        key = hash(os.fsencode(path))
        start = bisect.bisect_left(self._hashes, key)
        stems: list[str] = []
        for index in range(start, len(self._hashes)):
            if self._hashes[index] != key:
                break
            stems.append(self._stems[self._owners[index]])
        return stems

    def _search_lists(self, path: str) -> list[str]:
        """The packages whose list names ``path``, searched in the buffered lists."""
        assert self._lists is not None
        needle = b"\n" + os.fsencode(path) + b"\n"
        stems: list[str] = []
        at = self._lists.find(needle)
        while at >= 0:
            stem = self._stems[bisect.bisect_right(self._list_starts, at + 1) - 1]
            if stem not in stems:
                stems.append(stem)
            at = self._lists.find(needle, at + 1)
        return stems

    def _record(self, stem: str, path: str) -> FileRecord | None:
        package = self._package(stem)
        if package is None:
            return None
        relative = os.fsencode(path.lstrip("/"))
        try:
            with open(os.path.join(self._info, f"{stem}.md5sums"), "rb") as handle:
                for line in handle:
                    digest, _, listed = line.rstrip(b"\n").partition(b"  ")
                    if listed == relative:
                        return FileRecord(package, path, "md5", digest.decode("ascii").lower())
        except (OSError, UnicodeDecodeError) as exc:
            raise_if_short(exc)
        # No digest: confirm the path really is in the package (not a hash collision).
        try:
            with open(os.path.join(self._info, f"{stem}.list"), "rb") as handle:
                if os.fsencode(path) in handle.read().split(b"\n"):
                    return FileRecord(package, path, "md5", None)
        except OSError as exc:
            raise_if_short(exc)
        return None


# rpm's FILEDIGESTALGO numbers (RFC 4880 hash ids) → hashlib names.
_RPM_ALGOS = {"1": "md5", "2": "sha1", "8": "sha256", "9": "sha384", "10": "sha512"}
_RPM_FORMAT = (
    "[%{FILENAMES}\\t%{FILEDIGESTS}\\t%{=FILEDIGESTALGO}\\t%{=NAME}\\t"
    "%{=VERSION}-%{=RELEASE}\\t%{=ARCH}\\n]"
)
Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class RpmDatabase:
    """rpm's records, asked with ``rpm -qf`` (only on a cache miss: a new file or a
    changed database), with a timeout."""

    manager = "rpm"

    def __init__(
        self,
        run: Runner = subprocess.run,
        db_dirs: Sequence[str] = ("/var/lib/rpm", "/usr/lib/sysimage/rpm"),
        timeout_s: float = 10.0,
    ) -> None:
        self._run = run
        self._db_dirs = tuple(db_dirs)
        self._timeout = timeout_s

    def stamp(self) -> object:
        stamps: list[object] = []
        for folder in self._db_dirs:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue
            stamps.extend((name, _stat_stamp(os.path.join(folder, name))) for name in names)
        return tuple(stamps)

    def installed(self, name: str) -> bool:
        try:
            result = self._run(
                ["rpm", "-q", "--", name],
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OSError(f"rpm did not answer within {self._timeout:g} s") from exc
        return result.returncode == 0

    def records(self, path: str) -> list[FileRecord]:
        try:
            result = self._run(
                ["rpm", "-qf", "--queryformat", _RPM_FORMAT, "--", path],
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OSError(f"rpm did not answer within {self._timeout:g} s") from exc
        if result.returncode != 0:
            if "not owned" in (result.stdout + result.stderr):
                return []
            raise OSError(f"rpm -qf failed: {(clean(result.stderr.strip()) or '')[:200]}")
        found: list[FileRecord] = []
        for line in result.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) != 6 or parts[0] != path:
                continue
            listed, digest, algo, name, version, arch = parts
            package = PackageInfo(
                name=clean(name) or name,
                version=clean(version) or version,
                manager=self.manager,
                arch=None if arch in ("", "(none)", "noarch") else arch,
            )
            algorithm = _RPM_ALGOS.get(algo, "md5" if algo in ("", "(none)") else "")
            if not algorithm:
                found.append(FileRecord(package, listed, "md5", None))
                continue
            found.append(FileRecord(package, listed, algorithm, digest.lower() or None))
        return found


class PackageVerifier:
    """Answers "which package did this file verifiably come from", cached.

    ``databases`` are asked in order; the first whose records list the file decides.
    A check that could not be made (unreadable file, database error, timeout) is not
    cached: it is asked again next time rather than remembered as "no package".
    """

    def __init__(self, databases: Sequence[PackageDatabase], max_entries: int = 2048) -> None:
        self.databases = tuple(databases)
        self._cache: OrderedDict[tuple[FileKey, object], PackageCheck] = OrderedDict()
        # (device, inode, size, mtime) -> package, for files seen verified. A program
        # still running after its package was upgraded runs a deleted file that the new
        # records no longer describe; that file cannot be written any more (a running
        # executable is busy), so what it verified as stays true while it is installed.
        self._verified: OrderedDict[tuple[int, int, int, int], PackageInfo] = OrderedDict()
        self._max = max_entries
        self.looked_up = 0  # database lookups actually made, for tests and benchmarks

    def stamp(self) -> object:
        """Changes whenever any database changes: a cached answer is only good until then."""
        return tuple(db.stamp() for db in self.databases)

    def check(self, path: str, open_path: str | None = None) -> PackageCheck:
        """Check the file at ``path`` (read through ``open_path`` when given, e.g.
        ``/proc/PID/exe`` so the bytes are those the process runs)."""
        if not self.databases or not path.startswith("/"):
            return PackageCheck()
        try:
            # Only a regular file is read: a script's owner may have put a FIFO (an open
            # that waits for ever) or a device at its path since it was hashed.
            fd = files.open_regular(open_path or path, os.O_RDONLY, follow=True)
            with os.fdopen(fd, "rb") as handle:
                return self._check_open(path, handle)
        except OSError as exc:
            raise_if_short(exc)
            log.debug("no package check for %s: %s", path, exc)
            return PackageCheck(problem=f"could not be checked ({exc.strerror or exc})")

    def _check_open(self, path: str, handle: Any) -> PackageCheck:
        st = os.fstat(handle.fileno())
        key = ((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns), self.stamp())
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        self.looked_up += 1
        records: list[FileRecord] = []
        for database in self.databases:
            records = database.records(path)  # OSError: not cached
            if records:
                break
        answer = _decide(records, _digests(handle, {r.algorithm for r in records if r.digest}))
        seen = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if answer.package is not None:
            self._verified[seen] = answer.package
            if len(self._verified) > self._max:
                self._verified.popitem(last=False)
        elif st.st_nlink == 0 and seen in self._verified:
            earlier = self._verified[seen]
            if any(
                db.manager == earlier.manager and db.installed(earlier.name)
                for db in self.databases
            ):
                answer = PackageCheck(package=earlier, listed_by=earlier)
        self._cache[key] = answer
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return answer

    def package_of(self, path: str, open_path: str | None = None) -> PackageInfo | None:
        """The package ``path`` verifiably came from, or None."""
        return self.check(path, open_path).package


def _digests(handle: Any, algorithms: set[str]) -> dict[str, str]:
    if not algorithms:
        return {}
    hashers = {name: hashlib.new(name) for name in algorithms}
    handle.seek(0)
    while chunk := handle.read(_CHUNK):
        for hasher in hashers.values():
            hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def _decide(records: list[FileRecord], digests: dict[str, str]) -> PackageCheck:
    if not records:
        return PackageCheck()
    for record in records:
        if record.digest is not None and digests.get(record.algorithm) == record.digest:
            return PackageCheck(package=record.package, listed_by=record.package)
    first = records[0]
    label = f"{first.package.label()} ({first.package.manager})"
    if all(r.digest is None for r in records):
        return PackageCheck(listed_by=first.package, problem=f"{label} keeps no digest for it")
    return PackageCheck(listed_by=first.package, problem=f"changed since {label} installed it")


def default_databases() -> list[PackageDatabase]:
    """The package managers present on this system."""
    found: list[PackageDatabase] = []
    if os.path.isfile("/var/lib/dpkg/status"):
        found.append(DpkgDatabase())
    if shutil.which("rpm") and any(
        os.path.isdir(d) and os.listdir(d) for d in ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
    ):
        found.append(RpmDatabase())
    return found


_shared: list[PackageVerifier] = []


def default_verifier() -> PackageVerifier:
    """One shared verifier for this process (its cache is what makes polls cheap)."""
    if not _shared:
        _shared.append(PackageVerifier(default_databases()))
    return _shared[0]


def package_of(path: str) -> PackageInfo | None:
    """The installed package the file at ``path`` verifiably came from, or None."""
    return default_verifier().package_of(path)
