"""The immutable values that flow from the probe through the engine to storage and screen."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from portwatch.core.exposure import Exposure


class Proto(str, enum.Enum):
    """Transport protocol of a socket."""

    TCP = "tcp"
    UDP = "udp"

    def __str__(self) -> str:
        return self.value


class Family(str, enum.Enum):
    """Address family of a socket."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"

    def __str__(self) -> str:
        return self.value


class Status(str, enum.Enum):
    """How far portwatch can vouch for the owner of a listener.

    ``UNATTRIBUTED`` means the OS would not tell us who owns the socket (or the
    owner's executable could not be read); it is never treated as known.
    ``UNWATCHED`` is the neutral status of a listener on a port nobody asked to
    watch: trust only matters on watched ports, so its owner is not judged.
    """

    KNOWN = "known"
    UNKNOWN = "unknown"
    UNATTRIBUTED = "unattributed"
    UNWATCHED = "unwatched"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PackageInfo:
    """The installed package a file came from, as the package manager records it.

    ``name`` is the package name without an architecture (``nginx-core``); ``arch`` is
    set where the manager tells packages of several architectures apart (dpkg's
    ``PKG:ARCH``); ``manager`` says whose records vouch for it (``dpkg``, ``rpm``).
    """

    name: str
    version: str
    manager: str
    arch: str | None = None

    def label(self) -> str:
        """``nginx-core 1.22.1-9`` for people."""
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class SignerInfo:
    """A code signature the OS verified, named by what cannot be chosen by the signer.

    Windows (Authenticode): the leaf certificate's ``subject`` and ``issuer`` and its
    SHA-1 ``thumbprint``. macOS: the ``team_id`` from an Apple-anchored certificate
    chain, or ``apple`` True for Apple's own system code. A display name alone is never
    an identity: anyone can make a self-signed certificate with any name.
    """

    platform: str  # "windows" | "macos"
    subject: str | None = None
    issuer: str | None = None
    thumbprint: str | None = None
    team_id: str | None = None
    apple: bool = False

    def label(self) -> str:
        """Who signed, for people: the subject's common name or the Team ID."""
        if self.platform == "macos":
            if self.team_id:
                return f"Team ID {self.team_id}"
            return "Apple" if self.apple else "unknown signer"
        return _common_name(self.subject) or self.subject or self.thumbprint or "unknown signer"


def _common_name(subject: str | None) -> str | None:
    """The CN of an X.500 subject (``CN=Contoso Ltd, O=Contoso`` → ``Contoso Ltd``)."""
    if not subject:
        return None
    for part in subject.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().upper() == "CN" and value.strip():
            return value.strip().strip('"')
    return None


@dataclass(frozen=True)
class Owner:
    """The process that owns a socket, as far as the OS lets us see it.

    ``exe`` is read from the OS directly (on Linux ``/proc/<pid>/exe``), never guessed
    from the command line; ``sha256`` is the hash of the file that process runs.
    ``script`` is the script or module an interpreter runs (part of its identity);
    whole command lines are never kept because they can carry passwords.
    """

    pid: int
    create_time: float | None = None
    name: str | None = None
    exe: str | None = None
    sha256: str | None = None
    user: str | None = None
    script: str | None = None
    script_sha256: str | None = None
    # Code the process was told to load besides its own program (LD_PRELOAD, PYTHONPATH,
    # NODE_OPTIONS, `node -r FILE`, `java -javaagent:…`), as text for people. Trust pins
    # a program's files, not this, so such a process is never known.
    extra_code: str | None = None
    # The installed package the executable (and the script) verifiably came from: set
    # only when the file's bytes match the package manager's record.
    package: PackageInfo | None = None
    script_package: PackageInfo | None = None
    # Why a file that a package installed does not verify ("changed since pw 1.0 was
    # installed"), for the "binary changed" verdict.
    package_problem: str | None = None
    # The verified code signer of the executable (Windows, macOS); None elsewhere.
    signer: SignerInfo | None = None
    # Why the program running is not the file at ``exe`` any more (deleted, or
    # replaced on disk since the process started); None when it is, or cannot be told.
    replaced: str | None = None
    # What started the process (``systemd unit nginx.service``, ``docker container
    # 3f4e…``, ``user session 2 (uid 1000)``), where the OS says; None elsewhere.
    started_by: str | None = None
    # The parent chain as (name, pid), nearest first, up to five levels or init.
    parents: tuple[tuple[str, int], ...] = ()
    # Why some details are missing ("access denied", "process exited"), for people.
    note: str | None = None

    @property
    def identified(self) -> bool:
        """True when the executable and its hash were read: the minimum for an identity."""
        return bool(self.exe) and bool(self.sha256)

    @property
    def instance(self) -> tuple[int, float | None]:
        """(pid, create_time): tells a process apart from a later one that reuses its pid."""
        return (self.pid, self.create_time)


@dataclass(frozen=True, order=True)
class Endpoint:
    """Where a socket listens: protocol, family, local address and port."""

    proto: Proto
    family: Family
    address: str
    port: int
    # The device the socket is bound to (SO_BINDTODEVICE), "" when none or not known:
    # two sockets on one address and port bound to two devices are two listeners.
    device: str = ""

    @property
    def reach(self) -> str:
        """Who can connect: ``loopback``, ``all`` interfaces, or one ``interface``
        (a socket bound to a device other than loopback, whatever its address)."""
        if self.device in ("lo", "lo0"):
            return "loopback"
        if self.device:
            return "interface"
        if self.address in ("0.0.0.0", "::", "*", "", "::ffff:0.0.0.0"):
            return "all"
        if self.address.startswith("127.") or self.address in ("::1", "localhost"):
            return "loopback"
        if self.address.startswith("::ffff:127."):
            return "loopback"
        return "interface"

    def label(self) -> str:
        """``tcp 127.0.0.1:3653`` or ``udp [::1]:3653`` for people and logs."""
        host = f"[{self.address}]" if self.family is Family.IPV6 else self.address
        on = f" on {self.device}" if self.device and "%" not in self.address else ""
        return f"{self.proto} {host}:{self.port}{on}"


@dataclass(frozen=True)
class Listener:
    """A socket waiting for peers: TCP in LISTEN, or UDP bound with no remote address.

    ``shared_with`` lists the other processes that can accept on this endpoint: other
    holders of the same socket (inherited across fork, passed as a file descriptor)
    and members of the same SO_REUSEPORT group. Each of them can take the port's
    connections, so each must be trusted for the listener to be known.
    """

    endpoint: Endpoint
    owner: Owner | None = None
    shared_with: tuple[Owner, ...] = ()
    # Which of this machine's addresses reach the socket (None: not worked out). It
    # follows the host's addresses, not the socket, so it takes no part in equality.
    exposure: Exposure | None = field(default=None, compare=False)

    @property
    def proto(self) -> Proto:
        return self.endpoint.proto

    @property
    def port(self) -> int:
        return self.endpoint.port

    @property
    def attributed(self) -> bool:
        """True when the owner's executable and hash are known (pid alone is not enough)."""
        return self.owner is not None and self.owner.identified

    @property
    def holders(self) -> tuple[Owner | None, ...]:
        """Every process that can accept on this listener: the owner first."""
        return (self.owner, *self.shared_with)


@dataclass(frozen=True)
class PortActivity:
    """Activity on one watched port in one poll."""

    port: int
    proto: Proto
    listeners: int
    established: int
    # Bytes moved on the port's connections since the previous poll, where the probe
    # can measure it (the Linux netlink probe); None where it cannot.
    bytes_delta: int | None = None
    # The same, split by direction from this host's sockets: received, and sent and
    # acknowledged by the peer. None where the probe cannot measure it.
    bytes_in_delta: int | None = None
    bytes_out_delta: int | None = None


@dataclass(frozen=True)
class Sample:
    """One poll of the OS connection tables.

    ``wall`` is epoch seconds for people and history; ``mono`` is the monotonic clock
    used for scheduling and rate limits. ``partial`` says the OS showed only part of
    the system, with ``partial_reason`` in plain words.
    """

    wall: float
    mono: float
    listeners: tuple[Listener, ...]
    activity: tuple[PortActivity, ...] = ()
    partial: bool = False
    partial_reason: str | None = None
    probe_name: str = ""


class EventKind(str, enum.Enum):
    """What changed between two samples."""

    OPENED = "listener-opened"
    CLOSED = "listener-closed"
    OWNER_CHANGED = "owner-changed"
    UNKNOWN_OWNER = "unknown-owner"
    UNATTRIBUTED_OWNER = "unattributed-owner"
    BINARY_CHANGED = "binary-changed"
    # A program trusted by package started from a newer version of that package: still
    # known, recorded plainly ("nginx-core 1.22.1-9 → 1.22.1-10, verified by dpkg").
    PACKAGE_UPGRADED = "package-upgraded"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PortEvent:
    """A change seen on a listener, stamped with the poll that saw it."""

    kind: EventKind
    listener: Listener
    wall: float
    mono: float
    watched: bool = False
    previous: Owner | None = None
    detail: str | None = None
    status: Status | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ListenerView:
    """A listener as people see it: whether it is watched, how its owner was judged,
    and the port's service name."""

    listener: Listener
    watched: bool
    status: Status
    service: str = ""
    reason: str | None = None
