"""One key per connection, whichever end of it a socket row describes.

A connection between two sockets on this machine (loopback, or two local addresses)
appears in the socket tables twice, once from each end, with local and remote swapped.
Counting sockets would count such a connection twice; counting these keys counts it once.
"""

from __future__ import annotations

from portwatch.core.types import Proto

PairKey = tuple[Proto, tuple[str, int], tuple[str, int]]


def connection_pair(
    proto: Proto, local_ip: str, local_port: int, remote_ip: str, remote_port: int
) -> PairKey:
    """The same key for both ends of one connection (its two endpoints, ordered)."""
    here = (_plain(local_ip), local_port)
    there = (_plain(remote_ip), remote_port)
    return (proto, here, there) if here <= there else (proto, there, here)


def _plain(address: str) -> str:
    # A dual-stack socket sees an IPv4 peer as ::ffff:a.b.c.d while the peer's own row
    # says a.b.c.d; both must give the same key.
    lowered = address.lower()
    if lowered.startswith("::ffff:") and "." in lowered:
        return lowered[7:]
    return lowered
