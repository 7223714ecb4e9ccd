"""A real tray and real notifications, run under a private X server and D-Bus session:

    dbus-run-session -- xvfb-run -a python tests/tray_scenario.py

1. Starts ``trayer`` (an XEmbed system tray) and waits until Qt reports a tray.
2. Runs the desktop app with the tray and no notification server, a watched port, and a
   child process named ``a&b`` listening on it: nothing is trusted, so the owner is
   unknown. Checks the tray icon is shown in its alert state and that the alert's
   balloon (the fallback) appeared with the name as it is, not escaped.
3. Starts ``dunst`` (a notification server) and sends an alert through the D-Bus
   back-end; checks dunst received it with its markup escaped.
4. With the tray *and* dunst: a burst of alerts goes to dunst (not the balloon), as the
   first alerts one by one and one summary.

Prints one line per check and exits 0 when all pass, 1 otherwise.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

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


def balloon_labels(app: QApplication) -> list[tuple[str, str]]:
    """(text, text format) of each label of every visible balloon Qt drew for a tray
    message (XEmbed trays), read while the balloon is held."""
    from PySide6.QtWidgets import QLabel

    found = []
    for widget in app.topLevelWidgets():
        if widget.metaObject().className() == "QBalloonTip" and widget.isVisible():
            found.extend((lb.text(), lb.textFormat().name) for lb in widget.findChildren(QLabel))
    return found


def balloon_texts(app: QApplication) -> list[str]:
    return [text for text, _format in balloon_labels(app)]


def balloon_formats(app: QApplication) -> list[str]:
    """How Qt renders each label of the visible balloons (plain text or a guess)."""
    return [text_format for text, text_format in balloon_labels(app) if text]


@contextmanager
def running_trayer() -> Iterator[None]:
    """An XEmbed system tray (``trayer``) on this display, for the block's duration."""
    trayer = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        trayer.terminate()
        trayer.wait(timeout=10)


def name_owned(service: str) -> bool:
    from PySide6.QtDBus import QDBusConnection

    interface = QDBusConnection.sessionBus().interface()
    reply = interface.isServiceRegistered(service) if interface is not None else None
    return bool(reply is not None and reply.isValid() and reply.value())


@contextmanager
def running_dunst() -> Iterator[IO[str]]:
    """Our own dunst on this display, owning the notification name; yields its log
    (what it printed of each notification)."""
    from portwatch.services.dbus_notify import SERVICE

    with tempfile.TemporaryFile(mode="w+") as log:
        dunst = subprocess.Popen(["dunst", "-print"], stdout=log, stderr=subprocess.DEVNULL)
        try:
            # Sending earlier would make the bus start another dunst by activation,
            # without our display.
            pump_until(lambda: name_owned(SERVICE), 10)
            yield log
        finally:
            dunst.terminate()
            dunst.wait(timeout=10)


@contextmanager
def listening_child(code: str) -> Iterator[None]:
    """A child process running ``code``, which prints a line once it listens and then
    holds its sockets until its stdin closes."""
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()
        yield
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=10)
        if child.stdout:
            child.stdout.close()


@contextmanager
def desktop_app(watched: str, prefix: str) -> Iterator[Any]:
    """The desktop app on a fresh data folder, polling every 0.5 s, watching ``watched``."""
    from portwatch.app import DesktopApp
    from portwatch.config import watchfile
    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.paths import rooted
    from portwatch.services import settings as settings_file
    from portwatch.services.settings import Settings

    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        paths = rooted(Path(folder))
        paths.ensure()
        settings_file.save(paths.settings_file, Settings(poll_interval_s=0.5))
        watchfile.save(paths.watchlist_file, WatchList((parse_spec(watched),)))
        desktop = DesktopApp(paths)
        try:
            desktop.start()
            yield desktop
        finally:
            desktop.shutdown()


def summaries(log: IO[str]) -> list[str]:
    """The summary line of every notification dunst printed so far."""
    log.seek(0)
    return [line.strip() for line in log.read().splitlines() if line.strip().startswith("summary:")]


def tray_part(app: QApplication, failures: list[str]) -> None:
    with running_trayer():
        available = pump_until(QSystemTrayIcon.isSystemTrayAvailable, 20)
        check(available, "a system tray is available (trayer)", failures)
        if not available:
            return
        port = free_port()
        with desktop_app(f"{port}/tcp", "portwatch-tray-") as desktop:
            check(desktop.tray is not None, "the app created its tray icon", failures)
            if desktop.tray is None:
                return
            check(pump_until(desktop.tray.icon.isVisible, 10), "the tray icon is shown", failures)
            # A process name with markup characters in it: "a&b".
            with listening_child(
                "import ctypes,socket,sys; "
                "ctypes.CDLL(None).prctl(15, b'a&b', 0, 0, 0); s=socket.socket(); "
                f"s.bind(('127.0.0.1', {port})); s.listen(); "
                "print('ready', flush=True); sys.stdin.read()"
            ):
                tray_checks(app, desktop, port, failures)


def tray_checks(app: QApplication, desktop: Any, port: int, failures: list[str]) -> None:
    """What the tray shows of an untrusted program on the watched port."""
    tray = desktop.tray
    check(
        pump_until(lambda: tray.alerting, 20), "the tray icon switched to its alert state", failures
    )
    check(
        pump_until(lambda: desktop.window.alert_log.count() >= 1, 20),
        "the alert is in the in-app alert log",
        failures,
    )
    status = tray.status_action.text
    check(
        pump_until(lambda: status() == "Watching 1 port, 1 untrusted program", 10),
        f"the tray menu's status line counts the untrusted program ({status()})",
        failures,
    )
    shown_by = [e.shown_by for e in desktop.alerts.recent()]
    check("tray message" in shown_by, f"the alert went to the tray ({shown_by})", failures)
    found = pump_until(lambda: any(str(port) in text for text in balloon_texts(app)), 10)
    check(found, f"a tray balloon mentions port {port}", failures)
    texts = balloon_texts(app)
    check(
        any("a&b" in text for text in texts) and not any("&amp;" in text for text in texts),
        f"the balloon shows the name a&b as it is ({texts})",
        failures,
    )
    formats = balloon_formats(app)
    check(
        bool(formats) and set(formats) == {"PlainText"},
        f"Qt draws the balloon's text as plain text, so no escaping ({formats})",
        failures,
    )
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
        lambda: desktop.window.isVisible() and desktop.window.port_panel.port == port, 10
    )
    check(opened, "clicking the balloon opens the window on that port", failures)
    # The window hides to the tray instead of quitting.
    desktop.window.close()
    check(not desktop.window.isVisible(), "closing hides the window to the tray", failures)


def dbus_part(app: QApplication, failures: list[str]) -> None:
    from portwatch.core.alerts import Alert, Urgency
    from portwatch.core.types import Endpoint, EventKind, Family, Listener, Owner, PortEvent, Proto
    from portwatch.services.alert_service import AlertService
    from portwatch.services.dbus_notify import SERVICE, DBusNotificationBackend

    with running_dunst() as log:
        backend = DBusNotificationBackend()
        check(
            backend.available() and name_owned(SERVICE),
            "the D-Bus notification service is there (dunst)",
            failures,
        )
        check(
            "body-markup" in backend.capabilities(),
            "the server says it reads markup in the body",
            failures,
        )
        owner = Owner(pid=4242, create_time=1.0, name="<b>evil</b>&x", exe="/tmp/x")
        listener = Listener(Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", 3653), owner)
        event = PortEvent(EventKind.UNKNOWN_OWNER, listener, 1.0, 1.0, watched=True)
        alert = Alert(
            "Untrusted program on 3653/tcp",
            "<b>evil</b>&x (/tmp/x) is listening on tcp 127.0.0.1:3653.",
            3653,
            Proto.TCP,
            Urgency.NORMAL,
            (event,),
        )
        service = AlertService(backend)
        service.submit([alert])

        def received() -> bool:
            return any("Untrusted program on 3653/tcp" in line for line in summaries(log))

        check(pump_until(received, 10), "dunst received the notification", failures)
        log.seek(0)
        text = log.read()
        check(
            "&lt;b&gt;evil&lt;/b&gt;&amp;x" in text and "<b>evil</b>" not in text,
            "process text reached the server escaped, not as markup",
            failures,
        )
        check(
            service.recent()[-1].shown_by == "desktop notification",
            "the alert log records the desktop notification",
            failures,
        )
        backend.close()


def burst_part(app: QApplication, failures: list[str]) -> None:
    """Tray and notification server together: a burst goes to the server, readable."""
    with running_trayer(), running_dunst() as log:
        if not pump_until(QSystemTrayIcon.isSystemTrayAvailable, 20):
            check(False, "a system tray is available for the burst", failures)
            return
        lo = free_port()
        ports = [lo + i for i in range(6)]
        with desktop_app(f"{lo}-{lo + 9}/tcp", "portwatch-burst-") as desktop:
            pump_until(lambda: desktop.window.ticks_shown >= 1, 10)
            with listening_child(
                "import socket,sys; held=[]\n"
                f"for p in {ports}:\n"
                "    s=socket.socket(); s.bind(('127.0.0.1', p)); s.listen(); held.append(s)\n"
                "print('ready', flush=True); sys.stdin.read()"
            ):
                burst_checks(desktop, log, failures)


def burst_checks(desktop: Any, log: IO[str], failures: list[str]) -> None:
    """Six alerts at once: three shown one by one, then one summary, all in the log."""
    check(
        pump_until(lambda: len(desktop.alerts.recent()) >= 7, 20),
        "the burst's six alerts and its summary are in the alert log",
        failures,
    )
    check(
        pump_until(lambda: len(summaries(log)) >= 4, 10),
        f"dunst shows three alerts and one summary ({summaries(log)})",
        failures,
    )
    got = summaries(log)
    check(
        len(got) == 4 and "more alerts" in got[-1] and "more" not in got[0],
        "the alerts come first, one by one, then a single summary",
        failures,
    )
    # The person clicks a notification: the server tells us over D-Bus.
    opened: list[object] = []
    desktop.alerts.open_requested.connect(opened.append)
    subprocess.run(["dunstctl", "action", "0"], check=False, timeout=10)
    check(
        pump_until(lambda: bool(opened), 10),
        "clicking a desktop notification opens portwatch on that alert",
        failures,
    )
    shown_by = {e.shown_by for e in desktop.alerts.recent()}
    check(
        "desktop notification" in shown_by and "tray message" not in shown_by,
        f"with a tray, the notification server is still used ({shown_by})",
        failures,
    )


def main() -> int:
    app = QApplication([sys.argv[0]])
    app.setQuitOnLastWindowClosed(False)
    failures: list[str] = []
    tray_part(app, failures)
    dbus_part(app, failures)
    burst_part(app, failures)
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed", flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
