"""Screenshots of the alert moments on a real X display with a tray and a notification server.

    dbus-run-session -- python scripts/alert_screenshots.py OUTPUT_FOLDER

Needs ``DISPLAY`` to point at an X server (e.g. ``Xvfb :92 -screen 0 1600x1000x24``),
with ``trayer`` and ``dunst`` on the PATH; starts both itself. Saves, each as the whole
screen (``*-screen.png``, with the tray and the notifications) and as the window:

1. ``review-pending``: first start with programs already on watched ports: the first-run
   review is open, no alert was raised, the status bar says the review is pending;
2. ``burst``: eight new listeners on a watched range: three notifications, then one
   summary, on the notification server;
3. ``range-watchlist``: a range on the watch list, selected, with a snoozed port and the
   alert log open;
4. ``paused``: alerts paused: the status line says so and the tray icon has its badge
   (``paused-tray.png`` is the tray corner, enlarged).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

CHILD = r"""
import ctypes, json, socket, sys
name, plan = sys.argv[1], json.loads(sys.argv[2])
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
held = []
for proto, port in plan:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", port))
    if kind == socket.SOCK_STREAM:
        s.listen(8)
    held.append(s)
print("ready", flush=True)
sys.stdin.read()
"""


def free_block(count: int) -> int:
    """The first of ``count`` consecutive TCP and UDP ports free on loopback."""
    import socket

    # Below the ephemeral range, so other programs' short-lived sockets stay out of the shots.
    for lo in range(23000, 32000, count + 7):
        try:
            for port in range(lo, lo + count):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return lo
    raise SystemExit("no free block of ports")


def start_child(name: str, plan: list[tuple[str, int]]) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, name, json.dumps(plan)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise SystemExit(f"child {name} did not start")
    return child


def screen(path: Path) -> None:
    subprocess.run(["import", "-window", "root", str(path)], check=True)
    print(f"saved {path}", flush=True)


def summaries(log: IO[str]) -> list[str]:
    log.seek(0)
    return [line.strip() for line in log.read().splitlines() if line.strip().startswith("summary:")]


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtWidgets import QApplication, QSystemTrayIcon
    from shot_app import grabber, pause, start_app, wait_until

    from portwatch.app import DesktopApp
    from portwatch.config import watchfile
    from portwatch.core.alert_policy import SNOOZE_HOUR_S
    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.paths import rooted
    from portwatch.services import settings as settings_file
    from portwatch.services.settings import Settings
    from portwatch.ui.trust_review import TrustReviewDialog

    app = start_app()
    app.setQuitOnLastWindowClosed(False)

    grab = grabber(out, whole_window=False)
    helpers: list[subprocess.Popen[bytes]] = []
    children: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryFile(mode="w+") as log, tempfile.TemporaryDirectory() as folder:
        helpers.append(
            subprocess.Popen(
                ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        helpers.append(subprocess.Popen(["dunst", "-print"], stdout=log, stderr=subprocess.DEVNULL))
        desktop = None
        try:
            wait_until(QSystemTrayIcon.isSystemTrayAvailable, 20)
            lo = free_block(48)
            single = lo + 45
            paths = rooted(Path(folder))
            paths.ensure()
            settings_file.save(paths.settings_file, Settings(poll_interval_s=1.0))
            watchfile.save(
                paths.watchlist_file,
                WatchList((parse_spec(f"{lo}-{lo + 39}/tcp"), parse_spec(str(single)))),
            )
            # Already listening at first start: a web server on the range, a cache on the
            # single port (TCP and UDP).
            children.append(start_child("webapp", [("tcp", lo), ("tcp", lo + 1)]))
            children.append(start_child("cache&co", [("tcp", single), ("udp", single)]))
            desktop = DesktopApp(paths, first_run_review=True)
            desktop.start()
            window = desktop.window
            window.move(0, 30)

            def review() -> TrustReviewDialog | None:
                found = [
                    w
                    for w in QApplication.topLevelWidgets()
                    if isinstance(w, TrustReviewDialog) and w.isVisible()
                ]
                return found[0] if found else None

            wait_until(lambda: review() is not None)
            wait_until(lambda: window.ticks_shown >= 3)
            pause(1.0)
            screen(out / "review-pending-screen.png")
            grab(window, "review-pending-window.png")
            dialog = review()
            assert dialog is not None
            grab(dialog, "review-pending-dialog.png")
            print("alerts at first start:", len(desktop.alerts.recent()), flush=True)
            dialog.later_button.click()

            # A burst: one program takes eight ports of the watched range.
            children.append(start_child("burst", [("tcp", lo + 10 + i) for i in range(8)]))
            wait_until(lambda: len(summaries(log)) >= 4, 20)
            pause(1.0)
            screen(out / "burst-screen.png")
            print("dunst summaries:", summaries(log), flush=True)

            # The range on the watch list, a snoozed port, the alert log.
            window.watch_panel.select_port(single)
            desktop.alerts.snooze(parse_spec(str(single)), SNOOZE_HOUR_S)
            window.watch_panel.select_port(lo)
            window.alert_dock.show()
            pause(2.5)
            screen(out / "range-watchlist-screen.png")
            grab(window, "range-watchlist-window.png")

            window.alerts_pause_action.trigger()
            pause(1.5)
            screen(out / "paused-screen.png")
            width = QApplication.primaryScreen().geometry().width()
            subprocess.run(
                [
                    "convert",
                    str(out / "paused-screen.png"),
                    "-crop",
                    f"80x30+{width - 80}+0",
                    "+repage",
                    "-scale",
                    "400%",
                    str(out / "paused-tray.png"),
                ],
                check=True,
            )
        finally:
            if desktop is not None:
                desktop.shutdown()
            for child in children:
                if child.stdin:
                    child.stdin.close()
                child.wait(timeout=10)
                if child.stdout:
                    child.stdout.close()
            for helper in helpers:
                helper.terminate()
                helper.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
