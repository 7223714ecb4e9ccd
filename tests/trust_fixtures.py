"""Small builders shared by the trust and alert-policy tests (values, not fakes)."""

from __future__ import annotations

import hashlib

from portwatch.core.types import (
    Endpoint,
    EventKind,
    Family,
    Listener,
    Owner,
    PortEvent,
    Proto,
)


def sha(text: str) -> str:
    """A distinct, valid SHA-256 for a label."""
    return hashlib.sha256(text.encode()).hexdigest()


def owner(
    exe: str | None = "/usr/bin/good",
    digest: str | None = None,
    *,
    pid: int = 4242,
    create_time: float | None = 100.0,
    name: str | None = None,
    script: str | None = None,
    script_sha256: str | None = None,
    note: str | None = None,
) -> Owner:
    if digest is None and exe is not None:
        digest = sha(exe)
    return Owner(
        pid=pid,
        create_time=create_time,
        name=name if name is not None else (exe.rsplit("/", 1)[-1] if exe else None),
        exe=exe,
        sha256=digest,
        user="tester",
        script=script,
        script_sha256=script_sha256,
        note=note,
    )


def listener(
    port: int = 3653,
    who: Owner | None = None,
    proto: Proto = Proto.TCP,
    address: str = "127.0.0.1",
) -> Listener:
    family = Family.IPV6 if ":" in address else Family.IPV4
    return Listener(Endpoint(proto, family, address, port), who)


def event(
    kind: EventKind,
    lst: Listener,
    mono: float = 0.0,
    *,
    watched: bool = True,
    detail: str | None = None,
    extra: dict[str, str] | None = None,
) -> PortEvent:
    return PortEvent(
        kind=kind,
        listener=lst,
        wall=1_763_700_000.0 + mono,
        mono=mono,
        watched=watched,
        detail=detail,
        extra=extra or {},
    )
