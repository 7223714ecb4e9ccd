"""The knowledge base: embedded descriptions, the user's own, and the OS services names."""

from __future__ import annotations

import functools
import logging
import socket
import threading
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from portwatch.core.types import Proto
from portwatch.knowledge import texts
from portwatch.knowledge.checks import checks_for
from portwatch.knowledge.model import Entry, PortInfo
from portwatch.knowledge.schema import ParsedFile, duplicates, parse_text

log = logging.getLogger(__name__)

RESOURCE_PACKAGE = "portwatch.resources"
RESOURCE_FOLDER = "knowledge"
# A description file larger than this is not hand-written; refuse rather than parse it.
MAX_USER_FILE_BYTES = 1024 * 1024
# Lookups are cached; a poll repeats the same few hundred ports, so this is plenty while
# keeping memory bounded when something (a benchmark) asks about every port.
CACHE_SIZE = 8192

# getservbyport returns a pointer into a static buffer in most C libraries and CPython
# releases the GIL around it, so two threads must not call it at once.
_services_lock = threading.Lock()


def embedded_files() -> tuple[tuple[str, str], ...]:
    """(file name, text) of every embedded description file, in name order."""
    folder = resources.files(RESOURCE_PACKAGE).joinpath(RESOURCE_FOLDER)
    found = [
        (item.name, item.read_text(encoding="utf-8"))
        for item in folder.iterdir()
        if item.name.endswith(".toml") and item.is_file()
    ]
    return tuple(sorted(found))


def parse_embedded() -> tuple[ParsedFile, ...]:
    """Every embedded file, parsed and validated (the schema test checks the problems)."""
    return tuple(parse_text(text, name, "curated") for name, text in embedded_files())


def read_user_file(path: Path) -> ParsedFile:
    """The user's description file; a missing file is normal, a broken one a problem."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_USER_FILE_BYTES + 1)
    except FileNotFoundError:
        return ParsedFile((), ())
    except OSError as exc:
        return ParsedFile((), (f"{path}: cannot be read ({exc.strerror or exc}); ignored",))
    if len(data) > MAX_USER_FILE_BYTES:
        return ParsedFile(
            (), (f"{path}: larger than {MAX_USER_FILE_BYTES} bytes; the file is ignored",)
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParsedFile((), (f"{path}: not UTF-8 text ({exc.reason}); the file is ignored",))
    return parse_text(text, str(path), "user")


def _layer(entries: Iterable[Entry], into: dict[tuple[int, Proto], Entry]) -> None:
    # Widest first, so narrower ranges and then single ports overwrite them: the most
    # specific description wins. Ties keep file order (sorted() is stable).
    for entry in sorted(entries, key=lambda e: -e.width):
        for proto in entry.protocols:
            for port in range(entry.lo, entry.hi + 1):
                into[(port, proto)] = entry


class KnowledgeBase:
    """Answers "what is port N/proto?" from curated, user and OS-services descriptions.

    Build it once with :meth:`load`; :meth:`lookup` and :meth:`service_name` are cheap
    enough to call on every poll for every listener. Safe to share between threads.
    """

    def __init__(self, curated: Iterable[Entry], user: Iterable[Entry] = ()) -> None:
        table: dict[tuple[int, Proto], Entry] = {}
        # The user's entries go on top: they override ours, even a range over a port.
        _layer(curated, table)
        _layer(user, table)
        self._table = table
        self._os_names: dict[tuple[int, Proto], str | None] = {}
        self._cached = functools.lru_cache(maxsize=CACHE_SIZE)(self._build)

    @classmethod
    def load(cls, user_file: Path | None = None) -> tuple[KnowledgeBase, tuple[str, ...]]:
        """The embedded descriptions plus ``user_file``; returns the base and the
        problems found in the user's file (each a line for the user). Problems in the
        embedded data are logged: the schema test keeps them from shipping."""
        curated: list[Entry] = []
        for parsed in parse_embedded():
            for problem in parsed.problems:
                log.warning("embedded port descriptions: %s", problem)
            curated.extend(parsed.entries)
        for problem in duplicates(curated):
            log.warning("embedded port descriptions: %s", problem)
        user = read_user_file(user_file) if user_file is not None else ParsedFile((), ())
        return cls(curated, user.entries), user.problems

    def entry_for(self, port: int, proto: Proto) -> Entry | None:
        """The curated or user description that covers the port, if any."""
        return self._table.get((port, proto))

    def os_service(self, port: int, proto: Proto) -> str | None:
        """The OS services database's name for the port, cached."""
        key = (port, proto)
        try:
            return self._os_names[key]
        except KeyError:
            pass
        with _services_lock:
            try:
                name: str | None = socket.getservbyport(port, proto.value)
            except (OSError, OverflowError):
                name = None
        self._os_names[key] = name
        return name

    def service_name(self, port: int, proto: Proto) -> str:
        """A short name for the table and the CSV ``service`` column; "" when unknown."""
        entry = self._table.get((port, proto))
        if entry is not None:
            return entry.name
        return self.os_service(port, proto) or ""

    def lookup(self, port: int, proto: Proto) -> PortInfo:
        """Everything known about ``port``/``proto``; raises ValueError only for a
        number that is not a port."""
        # type() rather than isinstance(): True is an int, and would hit port 1's cache entry.
        if type(port) is not int or not 0 <= port <= 65535:
            raise ValueError(f"{port!r} is not a port number (0-65535)")
        return self._cached(port, proto)

    def _build(self, port: int, proto: Proto) -> PortInfo:
        proto = Proto(proto)
        os_name = self.os_service(port, proto)
        entry = self._table.get((port, proto))
        if entry is not None:
            return PortInfo(
                port=port,
                proto=proto,
                lo=entry.lo,
                hi=entry.hi,
                protocols=entry.protocols,
                name=entry.name,
                title=entry.title,
                summary=entry.summary,
                registration=entry.registration,
                usage=entry.usage,
                security=entry.security,
                checks=checks_for(port, entry.protocols),
                related=entry.related,
                programs=entry.programs,
                source=entry.source,
                os_service=os_name,
            )
        other = Proto.UDP if proto is Proto.TCP else Proto.TCP
        other_entry = self._table.get((port, other))
        # "Nothing known about 5353/tcp" should still point at what we know of 5353/udp.
        hint = (
            f"portwatch does describe {port}/{other.value} ('{other_entry.name}'); a program "
            "may use one number on both protocols, so that description may help."
            if other_entry is not None
            else ""
        )
        if os_name is not None:
            return self._os_services_info(port, proto, os_name, hint=hint)
        return texts.unknown_info(port, proto, checks_for(port, (proto,)), hint=hint)

    def _os_services_info(self, port: int, proto: Proto, os_name: str, *, hint: str) -> PortInfo:
        # One description for both protocols when the OS names them alike, so that
        # `describe` shows it once.
        other = Proto.UDP if proto is Proto.TCP else Proto.TCP
        same = self._table.get((port, other)) is None and self.os_service(port, other) == os_name
        protocols = (Proto.TCP, Proto.UDP) if same else (proto,)
        checks = checks_for(port, protocols)
        return texts.os_services_info(port, proto, protocols, os_name, checks, hint=hint)
