"""The words for what is silenced right now: the status bar, the tray tooltip, the lists.

One place builds them so the window and the tray say the same thing, and a pause or a
snooze stays visible for as long as it lasts (not for a five-second message).
"""

from __future__ import annotations

import time

from portwatch.services.alert_service import AlertState


def clock_time(wall: float, now: float | None = None) -> str:
    """``14:05``, or ``Tue 14:05`` when it is not today."""
    local = time.localtime(wall)
    today = time.localtime(time.time() if now is None else now)
    if (local.tm_year, local.tm_yday) == (today.tm_year, today.tm_yday):
        return time.strftime("%H:%M", local)
    return time.strftime("%a %H:%M", local)


def silenced(monitoring_paused: bool, alerts: AlertState) -> list[str]:
    """One short phrase per thing that silences portwatch now, most important first."""
    parts = []
    if monitoring_paused:
        parts.append("monitoring paused")
    if alerts.paused:
        parts.append("alerts paused")
    if alerts.snoozed:
        specs = ", ".join(f"{spec} until {clock_time(until)}" for spec, until in alerts.snoozed[:3])
        more = f" and {len(alerts.snoozed) - 3} more" if len(alerts.snoozed) > 3 else ""
        parts.append(f"snoozed: {specs}{more}")
    if alerts.review_pending:
        parts.append("first-run review pending")
    return parts


def _listeners(count: int) -> str:
    return "1 listener" if count == 1 else f"{count} listeners"


def status_line(
    last_wall: float | None,
    listeners: int,
    watched: int,
    *,
    monitoring_paused: bool,
    alerts: AlertState,
    failed_wall: float | None = None,
) -> str:
    """The window's permanent status line.

    ``failed_wall`` is the time of a poll that failed after ``last_wall``, the last good
    one, whose counts are still shown.
    """
    if failed_wall is not None:
        failed = time.strftime("%H:%M:%S", time.localtime(failed_wall))
        head = f"Check at {failed} failed"
        if last_wall is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(last_wall))
            head += f"; showing the last good check ({stamp}): {_listeners(listeners)}"
    elif last_wall is None:
        head = "Waiting for the first check\u2026"
    else:
        stamp = time.strftime("%H:%M:%S", time.localtime(last_wall))
        head = f"Last check {stamp}: {_listeners(listeners)}, {watched} on watched ports"
    parts = silenced(monitoring_paused, alerts)
    return head + "".join(f" \u2014 {part}" for part in parts)
