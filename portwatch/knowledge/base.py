"""The knowledge base: embedded descriptions, the user's own, and the OS services names."""

from __future__ import annotations

import functools
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from importlib import resources
from pathlib import Path

from portwatch import files
from portwatch.core.types import Proto
from portwatch.knowledge import texts
from portwatch.knowledge.checks import checks_for
from portwatch.knowledge.model import Entry, PortInfo, system_of
from portwatch.knowledge.registry import Registration, Registry
from portwatch.knowledge.registry import load as load_registry
from portwatch.knowledge.schema import ParsedFile, duplicates, parse_text
from portwatch.knowledge.table import PortTable

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
    """The user's description file; a missing file is normal, a broken one a problem.
    Only a regular file of at most :data:`MAX_USER_FILE_BYTES`, not through a link
    (a FIFO would hang the start, a device fill memory)."""
    try:
        data = files.read_bytes(path, MAX_USER_FILE_BYTES)
    except FileNotFoundError:
        return ParsedFile((), ())
    except OSError as exc:
        return ParsedFile((), (f"{path}: cannot be read ({exc.strerror or exc}); ignored",))
    body, codec = files.encoding_of(data)
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        shown = "UTF-8" if codec == "utf-8" else "UTF-16"
        return ParsedFile((), (f"{path}: not {shown} text ({exc.reason}); the file is ignored",))
    return parse_text(text, str(path), "user")


def _other(proto: Proto) -> Proto:
    return Proto.UDP if proto is Proto.TCP else Proto.TCP


class KnowledgeBase:
    """Answers "what is port N/proto?" from the user's, curated, IANA and OS names.

    One order decides every answer (describe, the side panel, the table, JSON, CSV):
    the user's ports.toml, then a curated entry for that exact port, then IANA's
    registration of that exact port, then a curated range, then the OS services
    database, then nothing. A range that also covers the port is mentioned beside the
    answer, never in place of an exact registration.

    Build it once with :meth:`load`; :meth:`lookup` and :meth:`service_name` are cheap
    enough to call on every poll for every listener. Safe to share between threads.
    """

    def __init__(
        self,
        curated: Iterable[Entry],
        user: Iterable[Entry] = (),
        registry: Registry | None = None,
        system: str | None = None,
        load_registry: Callable[[], Registry] = load_registry,
    ) -> None:
        # Descriptions true only on another OS (Linux's temporary-port range, say) are
        # left out: the answer follows the OS portwatch runs on.
        system = system or system_of(sys.platform)
        curated = [e for e in curated if e.applies_on(system)]
        user = [e for e in user if e.applies_on(system)]
        self._user = PortTable(user)
        self._exact = PortTable(e for e in curated if not e.is_range)
        self._ranges = PortTable(e for e in curated if e.is_range)
        # IANA's registry (14,000 rows) is parsed on the first port asked, not at start.
        self._registry = registry
        self._load_registry = load_registry
        self._os_names: dict[tuple[int, Proto], str | None] = {}
        self._cached = functools.lru_cache(maxsize=CACHE_SIZE)(self._build)
        self._names = functools.lru_cache(maxsize=CACHE_SIZE)(self._name)

    @property
    def registry(self) -> Registry:
        """IANA's registry, parsed on first use (once per process, shared)."""
        if self._registry is None:
            try:
                self._registry = self._load_registry()
            except MemoryError:
                # Port names are a help, not the watch: go on with our own descriptions.
                log.warning(
                    "out of memory reading IANA's port registry; ports are named from"
                    " portwatch's own descriptions only"
                )
                self._registry = Registry(exact={}, range_starts={}, ranges={}, header=())
        return self._registry

    @classmethod
    def load(
        cls,
        user_file: Path | None = None,
        system: str | None = None,
        load_registry: Callable[[], Registry] = load_registry,
    ) -> tuple[KnowledgeBase, tuple[str, ...]]:
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
        base = cls(curated, user.entries, system=system, load_registry=load_registry)
        return base, user.problems

    def entry_for(self, port: int, proto: Proto) -> Entry | None:
        """The user's or curated description that answers for the port, if any: the
        user's, else a curated exact entry, else (when IANA registers nothing on the
        exact port) a curated range."""
        key = (port, proto)
        entry = self._user.get(key) or self._exact.get(key)
        if entry is None and not self.registry.services(port, proto):
            entry = self._ranges.get(key)
        return entry

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
        """A short name for the table and the CSV ``service`` column; "" when unknown.
        The same order as :meth:`lookup`."""
        if type(port) is not int or not 0 <= port <= 65535:
            return ""
        return self._names(port, Proto(proto))

    def _name(self, port: int, proto: Proto) -> str:
        entry = self.entry_for(port, proto)
        if entry is not None:
            return entry.name
        services = self.registry.services(port, proto)
        if services:
            return services[0].name
        return self.os_service(port, proto) or ""

    def lookup(self, port: int, proto: Proto) -> PortInfo:
        """Everything known about ``port``/``proto``; raises ValueError only for a
        number that is not a port."""
        # type() rather than isinstance(): True is an int, and would hit port 1's cache entry.
        if type(port) is not int or not 0 <= port <= 65535:
            raise ValueError(f"{port!r} is not a port number (0-65535)")
        return self._cached(port, proto)

    def describe(
        self, port: int, protos: tuple[Proto, ...]
    ) -> tuple[list[PortInfo], list[PortInfo]]:
        """What ``describe`` and the side panel show for ``port`` on ``protos``: the
        descriptions to show in full (one when both protocols read the same), and
        lesser answers for the other protocol to mention briefly beside a curated or
        user description rather than repeat the whole layout for."""
        infos = [self.lookup(port, proto) for proto in protos]
        if len(infos) == 2 and infos[0].same_description(infos[1]):
            return infos[:1], []
        if (
            len(infos) == 2
            and all(
                i.source == "none" and not i.usage.count("portwatch does describe") for i in infos
            )
            and infos[0].iana_status == infos[1].iana_status
        ):
            # Nothing known on either protocol, and the registry says the same of both.
            both = (Proto.TCP, Proto.UDP)
            info = texts.unknown_info(port, protos[0], checks_for(port, both), protocols=both)
            return [replace(info, iana_status=infos[0].iana_status)], []
        rich = [i for i in infos if i.source in ("user", "curated")]
        if len(infos) == 2 and len(rich) == 1:
            return rich, [i for i in infos if i is not rich[0]]
        return infos, []

    def _iana(self, port: int, protocols: Iterable[Proto]) -> tuple[Registration, ...]:
        rows: list[Registration] = []
        for proto in protocols:
            rows.extend(r for r in self.registry.services(port, proto) if r not in rows)
        return tuple(rows)

    def _also_in(
        self, port: int, protocols: Iterable[Proto], chosen: Entry | None
    ) -> tuple[str, ...]:
        """Ranges that cover the port besides the answer given, on any of ``protocols``."""
        notes: list[str] = []
        for proto in protocols:
            curated = self._ranges.get((port, proto))
            if curated is not None and curated is not chosen:
                label = "+".join(p.value for p in curated.protocols)
                notes.append(f"{curated.ports_label()}/{label} ({curated.name}: {curated.title})")
            row = self.registry.range_for(port, proto)
            if row is not None and row.is_service:
                notes.append(f"{row.label()} (IANA: {row.name}, {row.description})")
        return tuple(dict.fromkeys(notes))

    def _build(self, port: int, proto: Proto) -> PortInfo:
        proto = Proto(proto)
        os_name = self.os_service(port, proto)
        entry = self.entry_for(port, proto)
        if entry is not None:
            # One port of a range speaks only for the protocol asked about.
            covered = entry.protocols if not entry.is_range else (proto,)
            iana = self._iana(port, covered)
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
                iana=iana,
                iana_status=None if iana else self.registry.status(port, proto),
                also_in=self._also_in(port, entry.protocols, entry),
            )
        services = self.registry.services(port, proto)
        if services:
            return self._registry_info(port, proto, services, os_name)
        other = _other(proto)
        other_entry = self.entry_for(port, other)
        # "Nothing known about 5353/tcp" should still point at what we know of 5353/udp.
        hint = (
            f"portwatch does describe {port}/{other.value} ('{other_entry.name}'); a program "
            "may use one number on both protocols, so that description may help."
            if other_entry is not None
            else ""
        )
        status = self.registry.status(port, proto)
        if os_name is not None:
            info = self._os_services_info(port, proto, os_name, hint=hint)
        else:
            info = texts.unknown_info(port, proto, checks_for(port, (proto,)), hint=hint)
        return replace(info, iana_status=status, also_in=self._also_in(port, (proto,), None))

    def _registry_info(
        self, port: int, proto: Proto, services: tuple[Registration, ...], os_name: str | None
    ) -> PortInfo:
        # tcp+udp in one description when IANA registers the same services on both.
        other = _other(proto)
        same = (
            self.registry.services(port, other) == services and self.entry_for(port, other) is None
        )
        protocols = tuple(sorted((proto, other), key=lambda p: p.value)) if same else (proto,)
        info = texts.registry_info(
            port, proto, protocols, services, checks_for(port, protocols), os_name
        )
        return replace(info, also_in=self._also_in(port, protocols, None))

    def _os_services_info(self, port: int, proto: Proto, os_name: str, *, hint: str) -> PortInfo:
        # One description for both protocols when the OS names them alike, so that
        # `describe` shows it once.
        other = _other(proto)
        same = (
            self.entry_for(port, other) is None
            and not self.registry.services(port, other)
            and self.os_service(port, other) == os_name
        )
        protocols = (Proto.TCP, Proto.UDP) if same else (proto,)
        checks = checks_for(port, protocols)
        return texts.os_services_info(port, proto, protocols, os_name, checks, hint=hint)
