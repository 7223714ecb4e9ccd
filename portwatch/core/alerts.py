"""Alerts: what reaches a person out of the stream of events."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from portwatch.core.types import EventKind, PortEvent, Proto

ALERTING_KINDS = frozenset(
    {EventKind.UNKNOWN_OWNER, EventKind.BINARY_CHANGED, EventKind.UNATTRIBUTED_OWNER}
)


class Urgency(str, enum.Enum):
    NORMAL = "normal"
    LOW = "low"


@dataclass(frozen=True)
class Alert:
    """One notification. Text fields hold untrusted process data as plain text;
    notifier back-ends escape it for their medium."""

    title: str
    text: str
    port: int | None
    proto: Proto | None
    urgency: Urgency
    events: tuple[PortEvent, ...] = ()
    # For a summary alert: how many alerts were folded into it.
    folded: int = 0


class AlertPolicy(Protocol):
    """Turns the events of one tick into the alerts worth showing."""

    def alerts_for(self, events: Sequence[PortEvent], now_mono: float) -> list[Alert]: ...


def _sentence(text: str) -> str:
    """A reason as its own sentence: capital first letter, full stop at the end."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def describe_event(event: PortEvent) -> Alert:
    """A plain-words alert for one alerting event."""
    listener = event.listener
    where = f"{listener.port}/{listener.proto}"
    owner = listener.owner
    who = (owner.name or owner.exe or f"pid {owner.pid}") if owner else "an uninspectable process"
    if event.kind is EventKind.UNATTRIBUTED_OWNER:
        return Alert(
            title=f"Something you may not inspect is listening on {where}",
            text=f"{listener.endpoint.label()}: the OS does not say which program owns it.",
            port=listener.port,
            proto=listener.proto,
            urgency=Urgency.LOW,
            events=(event,),
        )
    if event.kind is EventKind.BINARY_CHANGED:
        title = f"The program on {where} changed"
    else:
        title = f"Untrusted program on {where}"
    exe = owner.exe if owner and owner.exe else "unknown path"
    text = f"{who} ({exe}) is listening on {listener.endpoint.label()}."
    if event.detail:
        text += f" {_sentence(event.detail)}"
    return Alert(title, text, listener.port, listener.proto, Urgency.NORMAL, (event,))


class EveryEventPolicy:
    """One alert per alerting event, no limits: the baseline the trust model's policy refines."""

    def alerts_for(self, events: Sequence[PortEvent], now_mono: float) -> list[Alert]:
        return [describe_event(e) for e in events if e.kind in ALERTING_KINDS and e.watched]
