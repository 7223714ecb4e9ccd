"""A real tray and real notifications, run under a private X server and D-Bus session:

    dbus-run-session -- xvfb-run -a python tests/tray_scenario.py

1. Starts ``trayer`` (an XEmbed system tray) and waits until Qt reports a tray.
2. Runs the desktop app with the tray, a watched port, and a child process listening on
   it: nothing is trusted, so the owner is unknown. Checks the tray icon is shown in its
   alert state and that the alert's balloon appeared.
3. Starts ``dunst`` (a notification server) and sends an alert through the D-Bus
   back-end (the no-tray path on Linux); checks dunst received it with its markup escaped.

Prints one line per check and exits 0 when all pass, 1 otherwise.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
os.environ["QT_QPA_PLATFORM"] = "xcb"

from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QSystemTrayIcon  # noqa: E402


def pump_until(condition: Callable[[], object], timeout_s: float) -> bool:
    """Run the event loop until ``condition()`` is truthy or the time is up."""
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    while not condition():
        if time.monotonic() > deadline:
            return False
        QTimer.singleShot(50, loop.quit)
        loop.exec()
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check(ok: bool, what: str, failures: list[str]) -> None:
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def balloon_texts(app: QApplication) -> list[str]:
    """Text of every visible balloon Qt drew for a tray message (XEmbed trays)."""
    from PySide6.QtWidgets import QLabel

    texts = []
    for widget in app.topLevelWidgets():
        if widget.metaObject().className() == "QBalloonTip" and widget.isVisible():
            texts.extend(label.text() for label in widget.findChildren(QLabel))
    return texts


def tray_part(app: QApplication, failures: list[str]) -> None:
    from portwatch.app import DesktopApp
    from portwatch.config import watchfile
    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.paths import rooted
    from portwatch.services import settings as settings_file
    from portwatch.services.settings import Settings

    trayer = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    child = None
    try:
        available = pump_until(QSystemTrayIcon.isSystemTrayAvailable, 20)
        check(available, "a system tray is available (trayer)", failures)
        if not available:
            return
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="portwatch-tray-") as folder:
            paths = rooted(Path(folder))
            paths.ensure()
            settings_file.save(paths.settings_file, Settings(poll_interval_s=0.5))
            watchfile.save(paths.watchlist_file, WatchList((parse_spec(f"{port}/tcp"),)))
            desktop = DesktopApp(paths)
            try:
                desktop.start()
                check(desktop.tray is not None, "the app created its tray icon", failures)
                if desktop.tray is None:
                    return
                check(
                    pump_until(desktop.tray.icon.isVisible, 10), "the tray icon is shown", failures
                )
                child = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        "import socket,sys; s=socket.socket(); "
                        f"s.bind(('127.0.0.1', {port})); s.listen(); "
                        "print('ready', flush=True); sys.stdin.read()",
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert child.stdout is not None
                child.stdout.readline()
                tray = desktop.tray
                check(
                    pump_until(lambda: tray.alerting, 20),
                    "the tray icon switched to its alert state",
                    failures,
                )
                check(
                    pump_until(lambda: desktop.window.alert_log.count() >= 1, 20),
                    "the alert is in the in-app alert log",
                    failures,
                )
                shown_by = [e.shown_by for e in desktop.notifier.recent()]
                check(
                    "tray message" in shown_by, f"the alert went to the tray ({shown_by})", failures
                )
                found = pump_until(
                    lambda: any(str(port) in text for text in balloon_texts(app)), 10
                )
                check(found, f"a tray balloon mentions port {port}", failures)
                # Clicking the balloon opens the window on that port.
                desktop.window.hide()
                balloons = [
                    w
                    for w in app.topLevelWidgets()
                    if w.metaObject().className() == "QBalloonTip" and w.isVisible()
                ]
                if balloons:
                    QTest.mouseClick(balloons[0], Qt.MouseButton.LeftButton)
                opened = pump_until(
                    lambda: desktop.window.isVisible() and desktop.window.port_panel.port == port,
                    10,
                )
                check(opened, "clicking the balloon opens the window on that port", failures)
                # The window hides to the tray instead of quitting.
                desktop.window.close()
                check(
                    not desktop.window.isVisible(), "closing hides the window to the tray", failures
                )
            finally:
                desktop.shutdown()
    finally:
        if child is not None:
            if child.stdin:
                child.stdin.close()
            child.wait(timeout=10)
            if child.stdout:
                child.stdout.close()
        trayer.terminate()
        trayer.wait(timeout=10)


def name_owned(service: str) -> bool:
    from PySide6.QtDBus import QDBusConnection

    interface = QDBusConnection.sessionBus().interface()
    reply = interface.isServiceRegistered(service) if interface is not None else None
    return bool(reply is not None and reply.isValid() and reply.value())


def dbus_part(app: QApplication, failures: list[str]) -> None:
    from portwatch.core.alerts import Alert, Urgency
    from portwatch.core.types import Proto
    from portwatch.services.notify import DBusNotificationBackend, Notifier

    with tempfile.TemporaryFile(mode="w+") as log:
        dunst = subprocess.Popen(["dunst", "-print"], stdout=log, stderr=subprocess.DEVNULL)
        try:
            backend = DBusNotificationBackend()
            # Wait for *our* dunst to own the name: sending earlier would make the bus
            # start another dunst by activation, without our display.
            check(
                pump_until(lambda: backend.available() and name_owned(backend.SERVICE), 10),
                "the D-Bus notification service is there (dunst)",
                failures,
            )
            notifier = Notifier(backend)
            notifier.notify(
                Alert(
                    "Untrusted program on 3653/tcp",
                    "<b>evil</b>&x (/tmp/x) is listening on tcp 127.0.0.1:3653.",
                    3653,
                    Proto.TCP,
                    Urgency.NORMAL,
                )
            )

            def received() -> bool:
                log.seek(0)
                return "Untrusted program on 3653/tcp" in log.read()

            check(pump_until(received, 10), "dunst received the notification", failures)
            log.seek(0)
            text = log.read()
            check(
                "&lt;b&gt;evil&lt;/b&gt;&amp;x" in text and "<b>evil</b>" not in text,
                "process text reached the server escaped, not as markup",
                failures,
            )
            check(
                notifier.recent()[-1].shown_by == "desktop notification",
                "the alert log records the desktop notification",
                failures,
            )
        finally:
            dunst.terminate()
            dunst.wait(timeout=10)


def main() -> int:
    app = QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)
    failures: list[str] = []
    tray_part(app, failures)
    dbus_part(app, failures)
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed", flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
