"""The window's status line counts in words people read: one listener, two listeners."""

from __future__ import annotations

import time

from portwatch.services.alert_service import AlertState
from portwatch.ui.status import status_line


def test_the_status_line_says_one_listener_in_the_singular() -> None:
    now = time.time()
    one = status_line(now, 1, 0, monitoring_paused=False, alerts=AlertState())
    assert ": 1 listener, 0 on watched ports" in one
    many = status_line(now, 3, 1, monitoring_paused=False, alerts=AlertState())
    assert ": 3 listeners, 1 on watched ports" in many
    failed = status_line(
        now - 2, 1, 0, monitoring_paused=False, alerts=AlertState(), failed_wall=now
    )
    assert failed.endswith("): 1 listener")
