"""Trust in the desktop app: the side panel's trust action, the first-run review, and
the alert policy deciding what reaches the desktop (the log keeps everything)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from childsockets import ChildSockets, free_port
from guikit import RecordingBackend, prepare_data_dir, wait_ticks
from platforms import wine_gives_pid_0
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication

from portwatch.app import DesktopApp
from portwatch.config import trustfile
from portwatch.core.alerts import describe_event
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
from portwatch.ui.trust_review import TrustReviewDialog


def status_of(desktop: Any, pid: int) -> Status | None:
    for view in desktop.window.model.views():
        if view.listener.owner is not None and view.listener.owner.pid == pid:
            return view.status  # type: ignore[no-any-return]
    return None


@wine_gives_pid_0
def test_trust_button_makes_the_program_known(
    qtbot: Any, make_desktop: Any, data_dir: Path, child_sockets: list
) -> None:
    port = free_port()
    child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)
    desktop = make_desktop([f"{port}/tcp"])
    window = desktop.window
    qtbot.waitUntil(lambda: status_of(desktop, child.pid) is Status.UNKNOWN, timeout=15_000)
    window.watch_panel.select_port(port)
    panel = window.port_panel
    qtbot.waitUntil(lambda: len(panel.owner_cards()) == 1)
    assert panel.trust_button.isEnabled()
    with qtbot.waitSignal(desktop.trust.changed, timeout=5000):
        panel.trust_button.click()
    qtbot.waitUntil(lambda: status_of(desktop, child.pid) is Status.KNOWN, timeout=15_000)
    [entry] = trustfile.load(data_dir / "trust.json").trust_list.entries
    assert entry.spec == parse_spec(f"{port}/tcp")
    assert entry.sha256 is not None
    assert entry.script == "-c"  # the child runs inline code: pinned by its hash


@wine_gives_pid_0
def test_trust_added_by_the_command_line_is_picked_up(
    qtbot: Any, make_desktop: Any, data_dir: Path, child_sockets: list
) -> None:
    port = free_port()
    child = ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)
    desktop = make_desktop([f"{port}/tcp"])
    qtbot.waitUntil(lambda: status_of(desktop, child.pid) is Status.UNKNOWN, timeout=15_000)
    view = next(
        v
        for v in desktop.window.model.views()
        if v.listener.owner is not None and v.listener.owner.pid == child.pid
    )
    # Another process (the CLI) writes the file; the window notices on its own.
    from portwatch.core.trust import TrustList, trust_listener

    trustfile.save(
        data_dir / "trust.json",
        trust_listener(TrustList(), view.listener, parse_spec(f"{port}/tcp"), 1.0),
    )
    qtbot.waitUntil(lambda: status_of(desktop, child.pid) is Status.KNOWN, timeout=15_000)


@wine_gives_pid_0
def test_first_run_review_lists_what_already_listens(
    qtbot: Any, data_dir: Path, child_sockets: list
) -> None:
    ports = [free_port(), free_port()]
    kept = ChildSockets.start([("tcp", "127.0.0.1", ports[0], "listen")], registry=child_sockets)
    other = ChildSockets.start([("tcp", "127.0.0.1", ports[1], "listen")], registry=child_sockets)
    paths = prepare_data_dir(data_dir, [f"{p}/tcp" for p in ports])
    desktop = DesktopApp(
        paths,
        use_tray=False,
        jobs=JobRunner(),
        notification_backend=RecordingBackend(),
        first_run_review=True,
    )
    try:
        desktop.start()

        def dialog() -> TrustReviewDialog | None:
            found = [w for w in QApplication.topLevelWidgets() if isinstance(w, TrustReviewDialog)]
            return found[0] if found and found[0].isVisible() else None

        qtbot.waitUntil(lambda: dialog() is not None, timeout=15_000)
        review = dialog()
        assert review is not None
        texts = [review.list.item(i).text() for i in range(review.list.count())]
        assert any(str(ports[0]) in t for t in texts)
        assert any(str(ports[1]) in t for t in texts)
        row = next(i for i, t in enumerate(texts) if f":{ports[0]} " in t)
        review.set_checked(row, True)
        with qtbot.waitSignal(desktop.trust.changed, timeout=5000):
            review.trust_button.click()
        loaded = trustfile.load(paths.trust_file).trust_list
        assert loaded.first_run_review_done
        assert [e.spec for e in loaded.entries] == [parse_spec(f"{ports[0]}/tcp")]
        qtbot.waitUntil(lambda: status_of(desktop, kept.pid) is Status.KNOWN, timeout=15_000)
        assert status_of(desktop, other.pid) is Status.UNKNOWN
        wait_ticks(qtbot, desktop, 2)
        assert dialog() is None  # offered once
    finally:
        desktop.shutdown()


def _alert(port: int, exe: str) -> Any:
    owner = Owner(pid=port, create_time=1.0, name="x", exe=exe, sha256="a" * 64)
    listener = Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", port), owner)
    event = PortEvent(EventKind.UNKNOWN_OWNER, listener, 1.0, 1.0, watched=True)
    return describe_event(event)


def test_trusted_programs_dialog_lists_and_removes(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    from portwatch.core.trust import TrustEntry, TrustList
    from portwatch.ui.trust_list_dialog import TrustListDialog

    entries = [
        TrustEntry(parse_spec("3653/tcp"), "/usr/bin/<b>a</b>", "a" * 64, note="mine"),
        TrustEntry(parse_spec("3321"), "/usr/bin/b", "b" * 64),
    ]
    trust_list = TrustList(tuple(entries), reviewed_wall=1.0)
    desktop = make_desktop(start=False)
    trustfile.save(data_dir / "trust.json", trust_list)
    desktop.trust.reload_if_changed()
    desktop.window.trusted_action.trigger()
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, TrustListDialog))
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.list.count() == 2
    assert "/usr/bin/<b>a</b>" in dialog.list.item(0).text()  # plain text, not markup
    assert not dialog.remove_button.isEnabled()
    dialog.list.setCurrentRow(0)
    with qtbot.waitSignal(desktop.trust.changed, timeout=5000):
        dialog.remove_button.click()
    assert dialog.list.count() == 1
    assert [e.exe for e in trustfile.load(data_dir / "trust.json").trust_list] == ["/usr/bin/b"]
    dialog.reject()


def test_window_menu_pauses_alerts_and_snoozes_the_selected_port(
    qtbot: Any, make_desktop: Any, recording_backend: RecordingBackend
) -> None:
    desktop = make_desktop(["4100", "4200"])
    window, alerts = desktop.window, desktop.alerts
    # Pause everything from the menu: the log still gets the alert, the desktop does not.
    window.alerts_pause_action.trigger()
    assert alerts.alerts_paused
    assert window.alerts_pause_action.isChecked()
    shown_before = len(recording_backend.shown)
    alerts.submit([_alert(4100, "/tmp/paused")])
    assert any(e.alert.port == 4100 for e in alerts.recent())
    assert "alerts paused" in window.status_text.text()
    assert len(recording_backend.shown) == shown_before
    window.alerts_pause_action.trigger()
    assert not alerts.alerts_paused
    # Snooze the selected port for an hour: that port is quiet, the other is not.
    window.watch_panel.select_port(4200)
    snooze = next(a for a in window.findChildren(QAction) if "1 &hour" in a.text())
    snooze.trigger()
    assert "snoozed" in window.statusBar().currentMessage()
    assert "snoozed: 4200 until" in window.status_text.text()
    assert "snoozed to" in window.watch_panel.tree.topLevelItem(1).text(1)
    alerts.submit([_alert(4200, "/tmp/snoozed"), _alert(4100, "/tmp/loud")])
    assert len(recording_backend.shown) == shown_before + 1
    assert "4100" in recording_backend.shown[-1][1]
