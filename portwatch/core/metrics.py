"""Prometheus text exposition of what portwatch sees on the watched ports.

Pure: the caller feeds each poll in and writes the rendered text wherever it wants
(node_exporter's textfile collector reads it). Names follow Prometheus conventions:
a ``portwatch_`` prefix, base units in the name (``_seconds``, ``_bytes``), ``_total``
on counters. Label values that a process wrote (its name, path, user) are made
visible, escaped and bounded, so no process can break a line or forge a series.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from portwatch.core.text import clean, visible
from portwatch.core.types import ListenerView, Proto, Sample, Status
from portwatch.core.watchlist import WatchList

# Bounds so a watch list of whole ranges cannot grow the file without limit.
MAX_PORT_SERIES = 1024
MAX_INFO_SERIES = 256
MAX_LABEL_CHARS = 200

PortKey = tuple[int, Proto]


def label_value(text: str | None) -> str:
    """A label value that is safe inside ``"..."`` of the text format (see :func:`_escaped`)."""
    return _escaped(text or "")


# The same names and paths come back every poll: escape each once.
@functools.lru_cache(maxsize=4096)
def _escaped(text: str) -> str:
    """Undecodable bytes and control, bidi or invisible characters become visible
    escapes first; then backslash, double quote and newline are escaped as the
    format requires. Long values are cut (with a mark) so one process cannot bloat
    every scrape.
    """
    shown = visible(clean(text))
    if len(shown) > MAX_LABEL_CHARS:
        shown = shown[: MAX_LABEL_CHARS - 1] + "\u2026"
    return shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{label_value(value)}"' for name, value in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass
class _PortState:
    listeners: int = 0
    untrusted: int = 0
    unattributed: int = 0
    connections: int = 0
    # None until the probe has measured bytes on this port (Linux netlink, TCP).
    received: int | None = None
    sent: int | None = None


@dataclass(frozen=True, order=True)
class _Info:
    port: int
    proto: str
    address: str
    status: str
    process: str
    exe: str
    user: str


_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("portwatch_port_listeners", "gauge", "Listening sockets on a watched port."),
    (
        "portwatch_port_untrusted_listeners",
        "gauge",
        "Listeners on a watched port whose owner is not trusted (unattributed ones included).",
    ),
    (
        "portwatch_port_unattributed_listeners",
        "gauge",
        "Listeners on a watched port whose owner the OS would not name.",
    ),
    ("portwatch_port_connections", "gauge", "Established connections on a watched port."),
    (
        "portwatch_port_received_bytes_total",
        "counter",
        "Bytes received by this host's sockets on a watched port's connections (Linux, TCP).",
    ),
    (
        "portwatch_port_sent_bytes_total",
        "counter",
        "Bytes sent and acknowledged on a watched port's connections (Linux, TCP).",
    ),
)


class MetricsBook:
    """Gauges of the latest poll and counters accumulated since portwatch started."""

    def __init__(self, watchlist: WatchList) -> None:
        self._watchlist = watchlist
        self._ports: dict[PortKey, _PortState] = {}
        self._info: tuple[_Info, ...] = ()
        self._up = 0
        self._last_poll: float | None = None
        self._duration: float | None = None
        self._polls = 0
        self._failures = 0
        self._add_listed_ports()

    @property
    def watchlist(self) -> WatchList:
        return self._watchlist

    def set_watchlist(self, watchlist: WatchList) -> None:
        """Follow an edited watch list: ports no longer watched lose their series."""
        self._watchlist = watchlist
        self._ports = {k: v for k, v in self._ports.items() if watchlist.contains(*k)}
        self._info = tuple(i for i in self._info if watchlist.contains(i.port, Proto(i.proto)))
        self._add_listed_ports()

    def _add_listed_ports(self) -> None:
        # Single watched ports always have series (0 is an answer); ports of a range
        # get one once something was seen on them.
        for spec in self._watchlist:
            if spec.lo == spec.hi:
                for proto in spec.protos:
                    self._port((spec.lo, proto))

    def _port(self, key: PortKey) -> _PortState | None:
        state = self._ports.get(key)
        if state is None and len(self._ports) < MAX_PORT_SERIES:
            state = self._ports[key] = _PortState()
        return state

    def observe(
        self, sample: Sample, views: Sequence[ListenerView], duration_s: float, ok: bool
    ) -> None:
        """Take one poll in. A failed poll keeps the last gauges and reports down."""
        self._polls += 1
        self._last_poll = sample.wall
        self._duration = duration_s
        if not ok:
            self._failures += 1
            self._up = 0
            return
        self._up = 1
        for each in self._ports.values():
            each.listeners = each.untrusted = each.unattributed = each.connections = 0
        infos: list[_Info] = []
        for view in views:
            listener = view.listener
            if not view.watched:
                continue
            state = self._port((listener.port, listener.proto))
            if state is None:
                continue
            state.listeners += 1
            if view.status is not Status.KNOWN:
                state.untrusted += 1
            if view.status is Status.UNATTRIBUTED:
                state.unattributed += 1
            if len(infos) < MAX_INFO_SERIES:
                owner = listener.owner
                infos.append(
                    _Info(
                        listener.port,
                        listener.proto.value,
                        listener.endpoint.address,
                        view.status.value,
                        (owner.name or "") if owner else "",
                        (owner.exe or "") if owner else "",
                        (owner.user or "") if owner else "",
                    )
                )
        # Two sockets of one process on one address (v4-mapped, reuseport) are one series.
        self._info = tuple(sorted(set(infos)))
        for activity in sample.activity:
            if not self._watchlist.contains(activity.port, activity.proto):
                continue
            state = self._port((activity.port, activity.proto))
            if state is None:
                continue
            state.connections = activity.established
            if activity.bytes_in_delta is not None:
                state.received = (state.received or 0) + max(activity.bytes_in_delta, 0)
            if activity.bytes_out_delta is not None:
                state.sent = (state.sent or 0) + max(activity.bytes_out_delta, 0)

    def mark_stopped(self) -> None:
        """portwatch is shutting down: the file left behind must not claim it is up."""
        self._up = 0

    def render(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        family("portwatch_up", "gauge", "1 when the last poll succeeded; 0 on failure or stop.")
        lines.append(f"portwatch_up {self._up}")
        if self._last_poll is not None:
            family(
                "portwatch_last_poll_timestamp_seconds",
                "gauge",
                "When the last poll ran, in seconds since the epoch.",
            )
            lines.append(f"portwatch_last_poll_timestamp_seconds {_number(self._last_poll)}")
        if self._duration is not None:
            family("portwatch_poll_duration_seconds", "gauge", "How long the last poll took.")
            lines.append(f"portwatch_poll_duration_seconds {_number(self._duration)}")
        family("portwatch_polls_total", "counter", "Polls since portwatch started.")
        lines.append(f"portwatch_polls_total {self._polls}")
        family("portwatch_poll_failures_total", "counter", "Polls that failed entirely.")
        lines.append(f"portwatch_poll_failures_total {self._failures}")

        keys = sorted(self._ports, key=lambda k: (k[0], k[1].value))
        labels = {key: f'{{port="{key[0]}",proto="{key[1].value}"}}' for key in keys}
        for name, kind, help_text in _FAMILIES:
            rows: list[str] = []
            for key in keys:
                value = getattr(self._ports[key], _FIELD_OF[name])
                if value is not None:
                    rows.append(f"{name}{labels[key]} {value}")
            if rows:
                family(name, kind, help_text)
                lines.extend(rows)
        if self._info:
            family(
                "portwatch_listener_info",
                "gauge",
                "One series per listener on a watched port, naming its owner; always 1.",
            )
            for info in self._info:
                info_labels = _labels(
                    (
                        ("port", str(info.port)),
                        ("proto", info.proto),
                        ("address", info.address),
                        ("status", info.status),
                        ("process", info.process),
                        ("exe", info.exe),
                        ("user", info.user),
                    )
                )
                lines.append(f"portwatch_listener_info{info_labels} 1")
        return "\n".join(lines) + "\n"


# Which _PortState field each per-port family shows.
_FIELD_OF = {
    "portwatch_port_listeners": "listeners",
    "portwatch_port_untrusted_listeners": "untrusted",
    "portwatch_port_unattributed_listeners": "unattributed",
    "portwatch_port_connections": "connections",
    "portwatch_port_received_bytes_total": "received",
    "portwatch_port_sent_bytes_total": "sent",
}
