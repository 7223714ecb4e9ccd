"""One event as a JSON object for log pipelines (Loki, Elastic, Vector).

Field names follow the Elastic Common Schema where one fits (``@timestamp``,
``event.*``, ``network.*``, ``server.*``, ``process.*``, ``user.*``, ``host.*``); what
only portwatch knows sits under ``portwatch.*``. The README lists every field; a
test keeps the two in step. Text a process wrote stays literal (JSON escapes it),
except undecodable bytes, which become ``\\xNN`` so the line is valid UTF-8.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from typing import Any

from portwatch.core.alerts import ALERTING_KINDS
from portwatch.core.text import clean, visible
from portwatch.core.types import EventKind, PortEvent
from portwatch.core.why import WhyFields

# Bumped when a field changes meaning or goes away; new fields keep the number.
SCHEMA_VERSION = 1

_EVENT_TYPE = {
    EventKind.OPENED: "start",
    EventKind.CLOSED: "end",
    EventKind.OWNER_CHANGED: "change",
}


def utc_time(epoch: float) -> str:
    """``2026-01-31T12:00:00.123Z``: the form log pipelines parse without configuration."""
    moment = _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ip(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None and value != {}}


def event_record(
    event: PortEvent, hostname: str, sequence: int, service: str = ""
) -> dict[str, Any]:
    """The JSON object of one event (missing values are left out, never ``null``)."""
    listener = event.listener
    endpoint = listener.endpoint
    owner = listener.owner
    alerting = event.kind in ALERTING_KINDS
    who = "an uninspectable process"
    if owner is not None:
        who = f"{visible(clean(owner.name)) or '?'} (pid {owner.pid})"
    message = f"{event.kind.value} {visible(endpoint.label())} {who}"
    if alerting and event.detail:
        message += f": {visible(clean(event.detail))}"
    process: dict[str, Any] = {}
    if owner is not None:
        process = _drop_empty(
            {
                "pid": owner.pid,
                "name": clean(owner.name),
                "executable": clean(owner.exe),
                "hash": {"sha256": owner.sha256} if owner.sha256 else None,
                "start": utc_time(owner.create_time) if owner.create_time else None,
                "parent": _drop_empty(
                    {"pid": owner.parents[0][1], "name": clean(owner.parents[0][0])}
                )
                if owner.parents
                else None,
            }
        )
    previous: dict[str, Any] = {}
    if event.previous is not None:
        previous = _drop_empty(
            {
                "pid": event.previous.pid,
                "name": clean(event.previous.name),
                "executable": clean(event.previous.exe),
                "sha256": event.previous.sha256,
            }
        )
    ip = _ip(endpoint.address)
    why = WhyFields.of(event.listener)
    record: dict[str, Any] = {
        "@timestamp": utc_time(event.wall),
        "message": message,
        "event": _drop_empty(
            {
                "kind": "alert" if alerting else "event",
                "category": ["network"],
                "type": [_EVENT_TYPE.get(event.kind, "info")],
                "action": event.kind.value,
                "dataset": "portwatch.listener",
                "module": "portwatch",
                "sequence": sequence,
                "reason": clean(event.detail) if event.detail else None,
            }
        ),
        "host": {"hostname": clean(hostname)},
        "network": {"transport": endpoint.proto.value, "type": endpoint.family.value},
        "server": _drop_empty({"address": endpoint.address, "ip": ip, "port": endpoint.port}),
        "process": process,
        "user": _drop_empty({"name": clean(owner.user) if owner else None}),
        "portwatch": _drop_empty(
            {
                "schema": SCHEMA_VERSION,
                "watched": event.watched,
                "status": event.status.value if event.status else None,
                "reach": endpoint.reach,
                "service": service or None,
                "script": clean(owner.script) if owner and owner.script else None,
                "previous": previous,
                # Why it is open and who can reach it (core.why: the words every view uses).
                "started_by": why.started_by or None,
                "package": why.package or None,
                "exposure": why.exposure_scope or None,
                "reachable_from": why.reachable_from or None,
                "firewall": why.firewall or None,
                "replaced": why.replaced or None,
            }
        ),
    }
    return _drop_empty(record)
