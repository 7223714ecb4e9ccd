"""Screenshots of the Connections tab with real connections, for docs and layout checks.

    python scripts/screenshot_connections.py OUTPUT_FOLDER

Starts the child processes of ``scripts/screenshot.py`` (listeners with established
loopback connections, some bytes sent through them), runs the app against a throw-away
data folder and saves ``connections-watched.png`` (watched ports only),
``connections-all.png`` (every port, reverse DNS on), ``connections-menu.png`` (the row
menu) and ``close-connection-confirm.png`` (the confirmation of "Close connection…").
Works with ``QT_QPA_PLATFORM=offscreen``; only loopback sockets are opened.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from screenshot import choose_plan, start_children, stop_children  # noqa: E402
from shot_app import grabber, start_app, wait_until  # noqa: E402

# A child that serves one port and streams to itself through it (both ends in one
# process): steady traffic for the byte and rate columns.
PUMP = r"""
import socket, sys, threading, time
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
port = srv.getsockname()[1]
def serve():
    conn, _ = srv.accept()
    while conn.recv(65536):
        pass
threading.Thread(target=serve, daemon=True).start()
c = socket.create_connection(("127.0.0.1", port))
print(port, flush=True)
def pump():
    while True:
        c.sendall(b"x" * 40_000)
        time.sleep(0.1)
threading.Thread(target=pump, daemon=True).start()
sys.stdin.read()
"""


def start_pump() -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", PUMP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    return child, int(child.stdout.readline())


def run(out: Path) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QMessageBox

    from portwatch.app import DesktopApp
    from portwatch.config import watchfile
    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.paths import rooted
    from portwatch.services import settings as settings_file
    from portwatch.services.notify import NullBackend
    from portwatch.services.settings import Settings
    from portwatch.ui.listener_model import ViewRole

    _app = start_app()  # held: the application lives as long as the run
    grab = grabber(out, whole_window=False)

    with tempfile.TemporaryDirectory(prefix="portwatch-shots-") as folder:
        paths = rooted(Path(folder))
        paths.ensure()
        settings_file.save(paths.settings_file, Settings(poll_interval_s=0.5))
        plan = choose_plan()
        children = start_children(plan)
        # Some traffic, so the byte columns and rates have something to show.
        pump, pump_port = start_pump()
        ports = sorted({entry[2] for child in plan for entry in child} | {pump_port})
        watchfile.save(paths.watchlist_file, WatchList(tuple(parse_spec(str(p)) for p in ports)))
        desktop = DesktopApp(paths, use_tray=False, notification_backend=NullBackend())
        try:
            desktop.start()
            window = desktop.window
            tab = window.connections_tab
            # Room for the table's columns (the default size fits a small screen).
            window.resize(1560, 960)
            window.show_connections_tab()
            shown = window.ticks_shown
            wait_until(lambda: window.ticks_shown > shown + 6)
            wait_until(lambda: tab.model.rowCount() >= 4)
            grab(window, "connections-watched.png")
            # Every port, with host names (the setting is off by default).
            service = desktop.settings_service
            service.apply(dataclasses.replace(service.current, reverse_dns=True))
            tab.all_ports.setChecked(True)
            wait_until(lambda: tab.snapshot is not None and tab.snapshot.all_ports)
            wait_until(lambda: window.ticks_shown > shown + 14)
            grab(window, "connections-all.png")
            # The row menu and the close confirmation for one of our connections.
            proxy = tab.proxy
            row = next(
                r
                for r in range(proxy.rowCount())
                if proxy.data(proxy.index(r, 0), ViewRole).connection.local_port == plan[0][0][2]
            )
            tab.table.selectRow(row)
            menu = tab.row_actions.menu()
            menu.popup(tab.table.viewport().mapToGlobal(QPoint(40, 40)))
            wait_until(menu.isVisible)
            grab(menu, "connections-menu.png")
            menu.close()
            ask = getattr(tab.row_actions, "ask_close_connection", None)
            if ask is not None:
                box = ask(proxy.data(proxy.index(row, 0), ViewRole))
                if isinstance(box, QMessageBox):
                    wait_until(box.isVisible)
                    grab(box, "close-connection-confirm.png")
                    box.reject()
        finally:
            desktop.shutdown()
            stop_children([*children, pump])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="folder for the PNG files")
    args = parser.parse_args()
    out = args.output.absolute()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    run(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
