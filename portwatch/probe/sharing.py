"""Every process that can accept on an endpoint, for both probes.

A listening socket can be held by several processes: a child inherits it across
fork, a descriptor is passed over a Unix socket, or several sockets join one
SO_REUSEPORT group on the same address and port. Each holder can take the port's
connections, so the trust judgement needs all of them, not only the one the OS
tables name (psutil names a socket's highest-pid holder only).
"""

from __future__ import annotations

from collections.abc import Sequence

from portwatch.core.types import Endpoint, Listener, Owner

# One socket as a probe found it: where, the owner it reports it under, and the other
# processes holding that same socket.
SocketRow = tuple[Endpoint, Owner | None, Sequence[Owner]]


def listeners_with_holders(rows: Sequence[SocketRow]) -> list[Listener]:
    """One listener per row, each with ``shared_with`` set to every other process
    holding a socket on the same endpoint (its own socket's other holders, and the
    holders of the other sockets of an SO_REUSEPORT group)."""
    return [
        Listener(endpoint, owner, shared)
        for (endpoint, owner, _others), shared in zip(rows, shared_holders(rows), strict=True)
    ]


def shared_holders(rows: Sequence[SocketRow]) -> list[tuple[Owner, ...]]:
    """Per row, the ``shared_with`` of its listener (see :func:`listeners_with_holders`),
    for a probe that builds a listener only when something about it changed."""
    by_endpoint: dict[Endpoint, dict[int, Owner]] = {}
    for endpoint, owner, others in rows:
        holders = by_endpoint.get(endpoint)
        if holders is None:
            holders = by_endpoint[endpoint] = {}
        if owner is not None:
            holders.setdefault(owner.pid, owner)
        for holder in others:
            holders.setdefault(holder.pid, holder)
    out: list[tuple[Owner, ...]] = []
    for endpoint, owner, _others in rows:
        holders = by_endpoint[endpoint]
        if not holders or (len(holders) == 1 and owner is not None and owner.pid in holders):
            # Most sockets have one holder, their owner: nothing to sort or share.
            out.append(())
            continue
        mine = owner.pid if owner is not None else None
        out.append(tuple(holder for pid, holder in sorted(holders.items()) if pid != mine))
    return out
