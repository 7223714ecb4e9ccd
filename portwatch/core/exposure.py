"""Who can reach a listening socket: the one rule both probes and every view use.

A socket's reach depends on more than its address: a socket bound to a device
(``SO_BINDTODEVICE``) answers only on that device, an IPv6 wildcard reaches IPv4
peers too unless it is IPv6-only, and a v4-mapped wildcard (``::ffff:0.0.0.0``)
reaches every IPv4 interface. The answer names the machine's addresses that can
reach the socket, so "local network" and "public" are facts about this host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# Scopes, from narrowest to widest.
LOCAL = "local"
NETWORK = "network"
PUBLIC = "public"

SCOPE_WORDS = {
    LOCAL: "this computer only",
    NETWORK: "local network",
    PUBLIC: "public",
}

# The firewall's say when it was not (or could not be) read: never a guess.
NOT_CHECKED = "firewall not checked"

LOOPBACK_DEVICES = frozenset({"lo", "lo0"})
# Addresses that stand for every interface (of IPv4 alone, except a plain "::").
_WILDCARDS = frozenset({"0.0.0.0", "::", "*", "", "::ffff:0.0.0.0"})  # noqa: S104
_IPV4_WILDCARDS = _WILDCARDS - {"::"}
# More addresses than this are summarised as a count: a screen line, not a dump.
MAX_NAMED = 4

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def canonical_address(address: str, ipv6: bool, device: str = "") -> str:
    """One spelling per address, whichever probe or Python version read it.

    IPv6 is compressed; a v4-mapped address keeps its dotted IPv4 tail
    (``::ffff:127.0.0.1``, never ``::ffff:7f00:1``); a link-local address carries
    its scope (``fe80::1%eth0``), taken from the bound device when the OS left it off.
    """
    if not ipv6:
        return address
    base, _sep, scope = address.partition("%")
    try:
        parsed = ipaddress.IPv6Address(base)
    except ValueError:
        return address
    mapped = parsed.ipv4_mapped
    text = f"::ffff:{mapped}" if mapped is not None else str(parsed)
    if parsed.is_link_local:
        scope = scope or device
        if scope:
            text += f"%{scope}"
    return text


def _parse(address: str) -> IPAddress | None:
    base = address.partition("%")[0]
    try:
        parsed = ipaddress.ip_address(base)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _is_public(address: IPAddress) -> bool:
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Exposure:
    """Which of this machine's addresses can reach a socket, in words for people.

    ``scope`` is ``local``, ``network`` or ``public``; ``addresses`` are the machine's
    addresses that reach it (loopback left out); ``device`` is the device the socket
    is bound to (``SO_BINDTODEVICE``), if any; ``dual_stack`` says whether an IPv6
    wildcard also takes IPv4 (None: not IPv6 wildcard, or the OS did not say).
    ``everywhere`` marks a wildcard (every interface of its family or families).
    """

    scope: str
    addresses: tuple[str, ...] = ()
    device: str | None = None
    dual_stack: bool | None = None
    everywhere: bool = False
    # The device could not be read (a probe without that information).
    device_unknown: bool = False
    # What the host firewall does with the port, in words ("firewall not checked" when
    # None); ``bypasses_firewall`` marks a port Docker publishes through its own NAT
    # rules, which the host's input rules never see.
    firewall: str | None = None
    bypasses_firewall: bool = False

    def firewall_words(self) -> str:
        """What is known about the firewall for this socket, never a guess."""
        if self.scope == LOCAL:
            return "firewall not relevant: only this computer can connect"
        if self.bypasses_firewall:
            return "published by Docker, which bypasses the host firewall's input rules"
        return self.firewall or NOT_CHECKED

    def device_note(self, show: Callable[[str], str] = str) -> str:
        """For a socket bound to a device other than loopback that no address of this
        machine reaches, why: `` (bound to device ifb0, which has no address: nothing
        reaches it)``; "" otherwise. Loopback traffic never arrives on another device,
        so a loopback address bound to one is not even this computer's to reach."""
        if self.scope != LOCAL or not self.device or self.device in LOOPBACK_DEVICES:
            return ""
        device = show(self.device)
        if self.everywhere:  # a wildcard: the device has no address of its family
            return f" (bound to device {device}, which has no address: nothing reaches it)"
        return f" (a loopback address bound to device {device}: nothing reaches it)"

    def summary(self) -> str:
        """``local network: 192.168.1.5`` / ``all interfaces, including a public address: …``."""
        if self.scope == LOCAL:
            return SCOPE_WORDS[LOCAL] + self.device_note()
        named = ", ".join(self.addresses[:MAX_NAMED])
        if len(self.addresses) > MAX_NAMED:
            named += f" and {len(self.addresses) - MAX_NAMED} more"
        if self.scope == PUBLIC:
            head = (
                "all interfaces, including a public address"
                if self.everywhere
                else "a public address"
            )
        else:
            head = "local network"
        text = f"{head}: {named}" if named else head
        if self.device:
            text += f" (bound to device {self.device})"
        if self.dual_stack is True:
            text += " (IPv4 and IPv6)"
        elif self.dual_stack is False:
            text += " (IPv6 only)"
        if self.device_unknown:
            text += " (device binding not known)"
        return text


def exposure_of(
    address: str,
    ipv6: bool,
    interfaces: Mapping[str, Sequence[str]],
    *,
    device: str = "",
    v6only: bool | None = None,
    device_unknown: bool = False,
) -> Exposure:
    """The exposure of a socket bound to ``address`` (on ``device``, if bound to one).

    ``interfaces`` maps each device of this machine to its addresses. ``v6only`` None
    for an IPv6 wildcard means the OS did not say: it is taken as dual-stack, the
    Linux default and the wider of the two.
    """
    base = address.partition("%")[0]
    wildcard = base in _WILDCARDS
    dual: bool | None = None
    if wildcard:
        if not ipv6 or base in _IPV4_WILDCARDS:
            families = {4}
        else:
            families = {6} if v6only else {4, 6}
            dual = not v6only if v6only is not None else None
    if device in LOOPBACK_DEVICES:
        return Exposure(LOCAL, device=device, dual_stack=dual, everywhere=wildcard)
    own = _parse(base)
    if own is not None and own.is_loopback:
        return Exposure(LOCAL, device=device or None, dual_stack=dual)
    reachable: list[IPAddress] = []
    if wildcard:
        for name, addresses in interfaces.items():
            if device and name != device:
                continue
            for text in addresses:
                parsed = _parse(text)
                if parsed is None or parsed.is_loopback or parsed.version not in families:
                    continue
                reachable.append(parsed)
    elif own is not None:
        reachable.append(own)
    names = sorted({_label(a, interfaces) for a in reachable})
    if not names:
        return Exposure(
            LOCAL,
            device=device or None,
            dual_stack=dual,
            everywhere=wildcard,
            device_unknown=device_unknown,
        )
    scope = PUBLIC if any(_is_public(a) for a in reachable) else NETWORK
    return Exposure(
        scope,
        addresses=tuple(names),
        device=device or None,
        dual_stack=dual,
        everywhere=wildcard and not device,
        device_unknown=device_unknown,
    )


def _label(address: IPAddress, interfaces: Mapping[str, Sequence[str]]) -> str:
    """An address as people read it; a link-local one with the device it lives on."""
    if address.version == 6 and address.is_link_local:
        for name, addresses in interfaces.items():
            if any(_parse(a) == address for a in addresses):
                return f"{address}%{name}"
    return str(address)
