"""Alerts and trust in the running app: at the right time, for exactly what was chosen,
and with every silencing state visible. Real child processes hold the sockets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from childsockets import ChildSockets, free_port
from fakeclock import FakeClock
from guikit import RecordingBackend, prepare_data_dir, wait_ticks
from platforms import wine_gives_pid_0
from PySide6.QtWidgets import QApplication

from portwatch.app import DesktopApp
from portwatch.config import trustfile
from portwatch.core.alerts import Alert, Urgency, describe_event
from portwatch.core.types import (
    Endpoint,
    EventKind,
    Family,
    Listener,
    Owner,
    PortEvent,
    Proto,
    Status,
)
from portwatch.core.watchlist import parse_spec
from portwatch.services.background import JobRunner
from portwatch.services.settings import Settings
from portwatch.ui.trust_review import TrustReviewDialog
from portwatch.ui.trust_scope_dialog import TrustScopeDialog


def status_of(desktop: Any, pid: int, proto: Proto | None = None, port: int | None = None) -> Any:
    for view in desktop.window.model.views():
        listener = view.listener
        if listener.owner is None or listener.owner.pid != pid:
            continue
        if (proto is None or listener.proto is proto) and (port is None or listener.port == port):
            return view.status
    return None


def visible_dialog(kind: type) -> Any:
    found = [w for w in QApplication.topLevelWidgets() if isinstance(w, kind) and w.isVisible()]
    return found[0] if found else None


def _review_desktop(data_dir: Path, specs: list[str], backend: RecordingBackend) -> DesktopApp:
    paths = prepare_data_dir(data_dir, specs)
    return DesktopApp(
        paths,
        use_tray=False,
        jobs=JobRunner(),
        notification_backend=backend,
        first_run_review=True,
    )


@wine_gives_pid_0
def test_first_start_goes_to_the_review_and_only_what_comes_later_alerts(
    qtbot: Any, data_dir: Path, child_sockets: list
) -> None:
    there, later = free_port(), free_port()
    early = ChildSockets.start([("tcp", "127.0.0.1", there, "listen")], registry=child_sockets)
    backend = RecordingBackend()
    desktop = _review_desktop(data_dir, [f"{there}/tcp", f"{later}/tcp"], backend)
    try:
        desktop.start()
        qtbot.waitUntil(lambda: visible_dialog(TrustReviewDialog) is not None, timeout=15_000)
        assert status_of(desktop, early.pid) is Status.UNKNOWN
        wait_ticks(qtbot, desktop, 3)
        # Already listening at first start: listed in the review, not raised as an alert.
        assert backend.shown == []
        assert desktop.window.alert_log.count() == 0
        assert "first-run review pending" in desktop.window.status_text.text()
        # Appears after the first start: alerts as usual, review or not.
        ChildSockets.start([("tcp", "127.0.0.1", later, "listen")], registry=child_sockets)
        qtbot.waitUntil(lambda: len(backend.shown) == 1, timeout=15_000)
        assert str(later) in backend.shown[0][1]
        visible_dialog(TrustReviewDialog).reject()  # "Ask me later": still pending
        wait_ticks(qtbot, desktop, 2)
        assert len(backend.shown) == 1
    finally:
        desktop.shutdown()


@wine_gives_pid_0
def test_the_review_trusts_only_the_ticked_protocol(
    qtbot: Any, data_dir: Path, child_sockets: list
) -> None:
    port = free_port()
    child = ChildSockets.start(
        [("tcp", "127.0.0.1", port, "listen"), ("udp", "127.0.0.1", port, "listen")],
        registry=child_sockets,
    )
    desktop = _review_desktop(data_dir, [str(port)], RecordingBackend())
    try:
        desktop.start()
        qtbot.waitUntil(lambda: visible_dialog(TrustReviewDialog) is not None, timeout=15_000)
        review = visible_dialog(TrustReviewDialog)
        texts = [review.list.item(i).text() for i in range(review.list.count())]
        assert len(texts) == 2
        tcp_row = next(i for i, t in enumerate(texts) if t.startswith("tcp"))
        review.set_checked(tcp_row, True)
        with qtbot.waitSignal(desktop.trust.changed, timeout=5000):
            review.trust_button.click()
        [entry] = trustfile.load(data_dir / "trust.json").trust_list.entries
        assert entry.spec == parse_spec(f"{port}/tcp")
        qtbot.waitUntil(
            lambda: status_of(desktop, child.pid, Proto.TCP) is Status.KNOWN, timeout=15_000
        )
        assert status_of(desktop, child.pid, Proto.UDP) is Status.UNKNOWN
        assert "first-run review pending" not in desktop.window.status_text.text()
    finally:
        desktop.shutdown()


@wine_gives_pid_0
def test_trust_from_the_panel_covers_the_listener_shown_unless_more_is_chosen(
    qtbot: Any, make_desktop: Any, data_dir: Path, child_sockets: list
) -> None:
    lo = free_port()
    ports = [lo, lo + 1]
    child = ChildSockets.start(
        [("tcp", "127.0.0.1", p, "listen") for p in ports], registry=child_sockets
    )
    desktop = make_desktop([f"{lo}-{lo + 9}"])
    window = desktop.window
    qtbot.waitUntil(
        lambda: status_of(desktop, child.pid, port=lo) is Status.UNKNOWN, timeout=15_000
    )
    window.show_port(lo, Proto.TCP)
    panel = window.port_panel
    qtbot.waitUntil(panel.trust_button.isEnabled)
    panel.trust_button.click()
    dialog = visible_dialog(TrustScopeDialog)
    assert dialog is not None
    choices = [b.text() for b in dialog.buttons]
    # Each choice says exactly what it trusts; the listener's own port is the default.
    assert choices[0] == f"{lo}/tcp only (the listener shown)"
    assert f"{lo}/tcp and {lo}/udp" in choices[1]
    assert f"{lo}-{lo + 9}/tcp and {lo}-{lo + 9}/udp (10 ports)" in choices[2]
    assert dialog.buttons[0].isChecked()
    with qtbot.waitSignal(desktop.trust.changed, timeout=5000):
        dialog.accept()
    [entry] = trustfile.load(data_dir / "trust.json").trust_list.entries
    assert entry.spec == parse_spec(f"{lo}/tcp")
    qtbot.waitUntil(lambda: status_of(desktop, child.pid, port=lo) is Status.KNOWN, timeout=15_000)
    wait_ticks(qtbot, desktop, 1)
    assert status_of(desktop, child.pid, port=lo + 1) is Status.UNKNOWN
    # Widening is the explicit choice in the same confirmation.
    window.show_port(lo + 1, Proto.TCP)
    qtbot.waitUntil(panel.trust_button.isEnabled)
    panel.trust_button.click()
    dialog = visible_dialog(TrustScopeDialog)
    dialog.buttons[2].setChecked(True)
    with qtbot.waitSignal(desktop.trust.changed, timeout=5000):
        dialog.accept()
    specs = {e.spec for e in trustfile.load(data_dir / "trust.json").trust_list.entries}
    assert parse_spec(f"{lo}-{lo + 9}") in specs
    qtbot.waitUntil(
        lambda: status_of(desktop, child.pid, port=lo + 1) is Status.KNOWN, timeout=15_000
    )


def test_paused_monitoring_stays_visible_until_resumed(qtbot: Any, make_desktop: Any) -> None:
    desktop = make_desktop(["4100"])
    window = desktop.window
    wait_ticks(qtbot, desktop, 1)
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: "monitoring paused" in window.status_text.text(), timeout=5000)
    window.statusBar().clearMessage()  # the five-second message is long gone
    assert "monitoring paused" in window.status_text.text()
    window.pause_action.trigger()
    qtbot.waitUntil(lambda: "monitoring paused" not in window.status_text.text(), timeout=5000)


def test_a_summary_opens_the_alert_log(qtbot: Any, make_desktop: Any) -> None:
    window = make_desktop(start=False).window
    window.show()
    summary = Alert("…and 5 more alerts on watched ports", "x", None, None, Urgency.NORMAL, (), 5)
    assert not window.alert_dock.isVisible()
    window.open_alert(summary)
    qtbot.waitUntil(window.alert_dock.isVisible)


def _unknown_on(port: int) -> Alert:
    owner = Owner(pid=port, create_time=1.0, name="x", exe="/tmp/x", sha256="a" * 64)
    listener = Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", port), owner)
    return describe_event(PortEvent(EventKind.UNKNOWN_OWNER, listener, 1.0, 1.0, watched=True))


def test_the_settings_file_and_the_dialog_govern_alerts_and_the_poll_interval(
    qtbot: Any, make_desktop: Any, recording_backend: RecordingBackend
) -> None:
    """Each setting reaches the service it governs, at start and when changed."""
    clock = FakeClock()
    saved = Settings(poll_interval_s=3600.0, notifications=False, alert_cooldown_s=120.0)
    desktop = make_desktop(["4100"], settings=saved, clock=clock)
    alerts, service = desktop.alerts, desktop.settings_service
    wait_ticks(qtbot, desktop, 1)  # the first tick, at once; the next is an hour away
    # Notifications off in the file: logged, not shown.
    alerts.submit([_unknown_on(4100)])
    assert recording_backend.shown == []
    assert "notifications off" in alerts.recent()[-1].shown_by
    assert service.apply(replace(service.current, notifications=True))
    # The file's cooldown (two minutes), not the default half hour.
    alerts.submit([_unknown_on(4100)])
    assert len(recording_backend.shown) == 1
    clock.advance(119)
    alerts.submit([_unknown_on(4100)])
    assert len(recording_backend.shown) == 1
    clock.advance(1)
    alerts.submit([_unknown_on(4100)])
    assert len(recording_backend.shown) == 2
    # A cooldown changed in the dialog is the one used from then on.
    assert service.apply(replace(service.current, alert_cooldown_s=600.0))
    clock.advance(599)
    alerts.submit([_unknown_on(4100)])
    assert len(recording_backend.shown) == 2
    clock.advance(1)
    alerts.submit([_unknown_on(4100)])
    assert len(recording_backend.shown) == 3
    # A shorter poll interval takes effect without waiting out the hour.
    assert service.apply(replace(service.current, poll_interval_s=0.5))
    wait_ticks(qtbot, desktop, 2, timeout=10_000)
