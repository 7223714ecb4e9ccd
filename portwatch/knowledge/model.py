"""The values the knowledge base hands out: what a port is, in plain words."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from portwatch.core.types import Proto
from portwatch.knowledge.registry import Registration

# Where a description came from, so the screen can say how much to rely on it:
# written and checked by us, written by the user, IANA's registry alone, only a name
# from the OS services database, or nothing at all.
Source = Literal["curated", "user", "registry", "os-services", "none"]

SOURCES: tuple[Source, ...] = ("curated", "user", "registry", "os-services", "none")

# The operating systems an entry's ``systems`` may name.
SYSTEMS = ("linux", "windows", "macos")


def system_of(platform: str) -> str:
    """The SYSTEMS name for a ``sys.platform`` value; "other" for an OS not in it (where
    only the entries for every system apply)."""
    if platform == "win32" or platform.startswith("cygwin"):
        return "windows"
    if platform == "darwin":
        return "macos"
    return "linux" if platform.startswith("linux") else "other"


@dataclass(frozen=True)
class Related:
    """Another port or protocol worth knowing about; ``what`` may not be a port at all."""

    what: str
    note: str


@dataclass(frozen=True)
class Check:
    """How to look at the port by hand on one platform, with the port filled in."""

    platform: str
    commands: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Entry:
    """One description as written in a TOML file: a port or range on some protocols.

    Text fields are plain text. Entries from the user's file may leave the longer
    fields empty; embedded entries may not (the schema test enforces it).
    """

    lo: int
    hi: int
    protocols: tuple[Proto, ...]
    name: str
    title: str
    summary: str
    registration: str = ""
    usage: str = ""
    security: tuple[str, ...] = ()
    related: tuple[Related, ...] = ()
    programs: tuple[str, ...] = ()
    source: Source = "curated"
    origin: str = ""
    # The operating systems the description is true on (SYSTEMS names); empty: every one.
    # Temporary-port ranges differ: a port Linux hands out is an ordinary number on Windows.
    systems: tuple[str, ...] = ()

    @property
    def is_range(self) -> bool:
        return self.lo != self.hi

    def applies_on(self, system: str) -> bool:
        """Whether the description holds on ``system`` (one of SYSTEMS)."""
        return not self.systems or system in self.systems

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1

    def ports_label(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


@dataclass(frozen=True)
class PortInfo:
    """Everything portwatch can say about one port on one protocol.

    ``lo``/``hi`` give the port or range the description covers (``lo == hi`` for a
    single port) and ``protocols`` the protocols it covers, which may be more than the
    one asked about. ``checks`` are commands with ``port`` filled in. ``programs`` are
    hints about what usually owns the port: never a reason to trust an owner.
    ``os_service`` is the name the OS services database gives the port, if any.
    ``iana`` holds the registry's services on exactly this port (for every protocol
    the description covers); ``iana_status`` what the registry says when it has no
    service there (reserved, unassigned, dynamic, or an assigned range).
    ``also_in`` names ranges that also cover the port, shown beside the answer.
    """

    port: int
    proto: Proto
    lo: int
    hi: int
    protocols: tuple[Proto, ...]
    name: str
    title: str
    summary: str
    registration: str
    usage: str
    security: tuple[str, ...]
    checks: tuple[Check, ...]
    related: tuple[Related, ...]
    programs: tuple[str, ...]
    source: Source
    os_service: str | None = None
    iana: tuple[Registration, ...] = ()
    iana_status: Registration | None = None
    also_in: tuple[str, ...] = ()

    @property
    def is_range(self) -> bool:
        return self.lo != self.hi

    @property
    def known(self) -> bool:
        """True when there is at least a name for the port."""
        return self.source != "none"

    def covers_label(self) -> str:
        """``3321/tcp+udp`` or ``3224-3324/udp``: what the description is about."""
        ports = str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"
        return f"{ports}/{'+'.join(p.value for p in self.protocols)}"

    def same_description(self, other: PortInfo) -> bool:
        """True when two lookups (say tcp and udp of one port) would read the same.
        The OS services name may differ by protocol without changing the description."""
        return replace(self, proto=other.proto, os_service=None) == replace(other, os_service=None)
