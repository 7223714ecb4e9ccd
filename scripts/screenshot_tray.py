"""A screenshot of the tray menu opened by a real click on the tray icon:

    xvfb-run -a -s "-screen 0 1280x800x24" python scripts/screenshot_tray.py OUTPUT_FOLDER

Starts ``trayer`` (an XEmbed system tray) on the X display, runs the app with its tray
against a throw-away data folder with one watched port held by an untrusted child, waits
for the status line to count it, right-clicks the icon with ``xdotool`` and saves the
screen as ``tray-menu.png`` (and the menu alone as ``tray-menu-crop.png``).
"""

from __future__ import annotations

import argparse
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
os.environ["QT_QPA_PLATFORM"] = "xcb"


def run(out: Path) -> int:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon

    from portwatch.app import DesktopApp
    from portwatch.config import watchfile
    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.paths import rooted
    from portwatch.services import settings as settings_file
    from portwatch.services.notify import NullBackend
    from portwatch.services.settings import Settings

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("portwatch")
    app.setStyle("Fusion")

    def pump_until(condition: Callable[[], object], timeout_s: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout_s
        loop = QEventLoop()
        while not condition():
            if time.monotonic() > deadline:
                return False
            QTimer.singleShot(50, loop.quit)
            loop.exec()
        return True

    trayer = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', {port})); s.listen();"
            " print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    child.stdout.readline()
    try:
        if not pump_until(QSystemTrayIcon.isSystemTrayAvailable):
            print("no system tray appeared (is trayer installed?)")
            return 1
        with tempfile.TemporaryDirectory(prefix="portwatch-tray-shot-") as folder:
            paths = rooted(Path(folder))
            paths.ensure()
            settings_file.save(paths.settings_file, Settings(poll_interval_s=0.5))
            watchfile.save(
                paths.watchlist_file,
                WatchList((parse_spec(f"{port}/tcp"), parse_spec("3653"), parse_spec("8080"))),
            )
            desktop = DesktopApp(paths, notification_backend=NullBackend())
            try:
                desktop.start(show_window=False)
                tray = desktop.tray
                if tray is None or not pump_until(tray.icon.isVisible):
                    print("the app has no tray icon")
                    return 1
                status = tray.status_action.text
                pump_until(lambda: "untrusted" in status())
                # Let trayer embed and place the icon, then click it as a person would.
                pump_until(lambda: tray.icon.geometry().width() > 0)
                pump_until(lambda: False, 1.0)
                where = tray.icon.geometry().center()
                subprocess.run(
                    ["xdotool", "mousemove", str(where.x()), str(where.y()), "click", "3"],
                    check=True,
                )
                if not pump_until(tray.menu.isVisible, 10):
                    print("the tray menu did not open")
                    return 1
                pump_until(lambda: False, 0.5)
                screen = app.primaryScreen()
                shot = screen.grabWindow(0)
                shot.save(str(out / "tray-menu.png"))
                menu_rect = tray.menu.geometry().adjusted(-40, -40, 40, 40)
                shot.copy(menu_rect.intersected(screen.geometry())).save(
                    str(out / "tray-menu-crop.png")
                )
                print(f"saved {out / 'tray-menu.png'} (status line: {status()})")
                tray.menu.close()
            finally:
                desktop.shutdown()
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=10)
        child.stdout.close()
        trayer.terminate()
        trayer.wait(timeout=10)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="folder for the PNG files")
    args = parser.parse_args()
    out = args.output.absolute()
    out.mkdir(parents=True, exist_ok=True)
    return run(out)


if __name__ == "__main__":
    sys.exit(main())
