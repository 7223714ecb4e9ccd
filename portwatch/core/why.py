"""Why a port is open and who can reach it, in the words every view shares.

The table's columns, the side panel's sentence, the CSV export and the history all
take their text from here, so "started by" and "reachable from" read the same
everywhere. Text that came from a process or the OS is passed through ``show`` (the
caller's escaping: visible escapes on screen, nothing for storage).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from portwatch.core.exposure import LOCAL, MAX_NAMED, PUBLIC, SCOPE_WORDS, Exposure
from portwatch.core.types import Listener, Owner

Show = Callable[[str], str]


def _same(text: str) -> str:
    return text


def parents_text(owner: Owner | None, show: Show = _same) -> str:
    """``bash (1200) < sshd (900) < systemd (1)``: the parent chain, nearest first."""
    if owner is None:
        return ""
    return " < ".join(f"{show(name)} ({pid})" for name, pid in owner.parents)


def package_text(owner: Owner | None, show: Show = _same) -> str:
    """``nginx-core 1.22.1-9`` when the executable verifiably came from a package."""
    if owner is None or owner.package is None:
        return ""
    return show(owner.package.label())


def reachable_from(exposure: Exposure | None, show: Show = _same) -> str:
    """``local network: 192.168.1.5`` — the exposure summary, or "" when not worked out."""
    return show(exposure.summary()) if exposure is not None else ""


def _named(addresses: tuple[str, ...], show: Show) -> str:
    named = ", ".join(show(a) for a in addresses[:MAX_NAMED])
    if len(addresses) > MAX_NAMED:
        named += f" and {len(addresses) - MAX_NAMED} more"
    return named


def reach_phrase(exposure: Exposure | None, show: Show = _same) -> str:
    """``reachable from the local network at 192.168.1.5`` for a sentence."""
    if exposure is None:
        return "who can reach it was not worked out"
    if exposure.scope == LOCAL:
        return f"reachable from {SCOPE_WORDS[LOCAL]}{exposure.device_note(show)}"
    named = _named(exposure.addresses, show)
    if exposure.scope == PUBLIC:
        if exposure.everywhere:
            text = "reachable from all interfaces, including a public address"
            text += f" ({named})" if named else ""
        else:
            text = f"reachable from the internet at {named}" if named else "reachable publicly"
    else:
        text = f"reachable from the local network at {named}" if named else "reachable locally"
    if exposure.device:
        text += f" (bound to device {show(exposure.device)})"
    if exposure.dual_stack is False:
        text += " over IPv6 only"
    return text


def started_phrase(listener: Listener, show: Show = _same) -> str:
    """``Started by systemd unit nginx.service (package nginx-core 1.22.1-9)``; honest
    when the OS does not say (the nearest parent, or that it is not known)."""
    owner = listener.owner
    if owner is None:
        return "The OS does not say which program owns it"
    package = package_text(owner, show)
    tail = f" (package {package})" if package else ""
    if owner.started_by:
        return f"Started by {show(owner.started_by)}{tail}"
    if owner.parents:
        name, pid = owner.parents[0]
        return f"Started by {show(name)} (pid {pid}){tail}"
    if package:
        return f"From package {package}; what started it is not known"
    return "What started it is not known"


def sentence(listener: Listener, show: Show = _same) -> str:
    """The side panel's answer: "Started by systemd unit nginx.service (package
    nginx-core 1.22.1-9), reachable from the local network at 192.168.1.5." followed by
    what the firewall does, when the socket is reachable from elsewhere."""
    text = f"{started_phrase(listener, show)}, {reach_phrase(listener.exposure, show)}."
    exposure = listener.exposure
    if exposure is not None and exposure.scope != LOCAL:
        words = exposure.firewall_words()
        text += f" {words[0].upper()}{words[1:]}."
    return text


@dataclass(frozen=True)
class WhyFields:
    """The "why is it open" fields as plain text, for CSV rows and history columns."""

    started_by: str = ""
    package: str = ""
    parents: str = ""
    exposure_scope: str = ""
    reachable_from: str = ""
    firewall: str = ""
    replaced: str = ""

    @classmethod
    def of(cls, listener: Listener) -> WhyFields:
        owner = listener.owner
        exposure = listener.exposure
        return cls(
            started_by=(owner.started_by or "") if owner else "",
            package=package_text(owner),
            parents=parents_text(owner),
            exposure_scope=exposure.scope if exposure else "",
            reachable_from=reachable_from(exposure),
            firewall=exposure.firewall_words() if exposure else "",
            replaced=(owner.replaced or "") if owner else "",
        )

    def values(self) -> tuple[str, ...]:
        return (
            self.started_by,
            self.package,
            self.parents,
            self.exposure_scope,
            self.reachable_from,
            self.firewall,
            self.replaced,
        )


WHY_COLUMNS = (
    "started_by",
    "package",
    "parents",
    "exposure_scope",
    "reachable_from",
    "firewall",
    "replaced",
)
