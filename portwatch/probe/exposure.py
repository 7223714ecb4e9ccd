"""This machine's addresses and device names, for working out a socket's exposure.

Both probes give a listener its exposure through :func:`listener_exposure`, so they
cannot differ in how a socket's address, device and IPv6-only flag are read.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

from portwatch.core.exposure import Exposure, canonical_address, exposure_of
from portwatch.core.types import Endpoint, Family
from portwatch.files import raise_if_short


def host_interfaces(ps: Any = psutil) -> dict[str, list[str]]:
    """Each device of this machine with its IPv4 and IPv6 addresses ({} if unreadable)."""
    try:
        table = ps.net_if_addrs()
    except (OSError, AttributeError, RuntimeError) as exc:
        raise_if_short(exc)  # no descriptor for the query is no answer about devices
        return {}
    out: dict[str, list[str]] = {}
    for name, addresses in table.items():
        out[str(name)] = [
            str(a.address)
            for a in addresses
            if a.family in (socket.AF_INET, socket.AF_INET6) and a.address
        ]
    return out


def device_name(ifindex: int) -> str:
    """The name of device ``ifindex`` (0: not bound); ``if7`` when it has gone."""
    if ifindex <= 0:
        return ""
    try:
        return socket.if_indextoname(ifindex)
    except OSError as exc:
        raise_if_short(exc)
        return f"if{ifindex}"


def endpoint_of(endpoint: Endpoint, device: str) -> Endpoint:
    """``endpoint`` in its one spelling, with the device it is bound to."""
    ipv6 = endpoint.family is Family.IPV6
    address = canonical_address(endpoint.address, ipv6, device)
    if address == endpoint.address and device == endpoint.device:
        return endpoint
    return Endpoint(endpoint.proto, endpoint.family, address, endpoint.port, device)


def listener_exposure(
    endpoint: Endpoint,
    interfaces: Mapping[str, Sequence[str]],
    v6only: bool | None,
    device_known: bool = True,
) -> Exposure:
    """The exposure of a listener at ``endpoint`` (already in :func:`endpoint_of` form)."""
    return exposure_of(
        endpoint.address,
        endpoint.family is Family.IPV6,
        interfaces,
        device=endpoint.device,
        v6only=v6only,
        device_unknown=not device_known,
    )
