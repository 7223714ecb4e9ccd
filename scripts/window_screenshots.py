"""Screenshots of acting on rows and seeing what changed, for checking by eye.

    DISPLAY=:99 python scripts/window_screenshots.py OUTPUT_FOLDER

Needs a real X display (the context menu is its own window): saves
``row-menu.png`` (the listeners table's context menu, grabbed from the screen),
``header-menu.png`` (the column chooser), ``changes-light.png`` and ``changes-dark.png``
(a new row green and a closed row red and struck) and ``panel-four-sockets.png`` (the
side panel for one process on four sockets). Only loopback sockets are opened.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from childsockets import ChildSockets, free_port  # noqa: E402
from screenshot import _dark_palette  # type: ignore[import-not-found]  # noqa: E402
from shot_app import pause, start_app, wait_until  # noqa: E402


def main(out: Path) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication, QWidget

    from portwatch.app import DesktopApp
    from portwatch.config import watchfile
    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.paths import rooted
    from portwatch.services import settings as settings_file
    from portwatch.services.notify import NullBackend
    from portwatch.services.settings import Settings
    from portwatch.ui.listener_model import Column

    app = start_app()
    out.mkdir(parents=True, exist_ok=True)

    def grab(widget: QWidget, name: str) -> None:
        widget.window().repaint()
        pause(0.2)
        widget.grab().save(str(out / name))
        print(f"saved {out / name}")

    def grab_screen(name: str) -> None:
        pause(0.4)
        screen = QGuiApplication.primaryScreen()
        screen.grabWindow(0).save(str(out / name))
        print(f"saved {out / name}")

    children: list[ChildSockets] = []
    with tempfile.TemporaryDirectory(prefix="portwatch-shots-") as folder:
        paths = rooted(Path(folder))
        paths.ensure()
        settings_file.save(paths.settings_file, Settings(poll_interval_s=0.5))
        four, closing, coming = free_port(), free_port(), free_port()
        specs = (parse_spec(str(four)), parse_spec(str(closing)), parse_spec(str(coming)))
        watchfile.save(paths.watchlist_file, WatchList(specs))
        children.append(
            ChildSockets.start(
                [
                    ("tcp", "127.0.0.1", four, "listen"),
                    ("udp", "127.0.0.1", four, "listen"),
                    ("tcp", "::1", four, "listen"),
                    ("udp", "::1", four, "listen"),
                ]
            )
        )
        goner = ChildSockets.start([("tcp", "127.0.0.1", closing, "listen")])
        children.append(goner)
        desktop = DesktopApp(paths, use_tray=False, notification_backend=NullBackend())
        try:
            desktop.start()
            window = desktop.window
            wait_until(lambda: window.ticks_shown >= 4)
            window.select_port_everywhere(four, None)
            wait_until(lambda: len(window.port_panel.owner_cards()) == 1)
            wait_until(lambda: window.ticks_shown >= 6)
            grab(window, "panel-four-sockets.png")

            table = window.table
            row = table.rowAt(5)
            table.selectRow(row)
            pos = QPoint(
                table.columnViewportPosition(Column.PROCESS) + 10,
                table.rowViewportPosition(row) + 5,
            )
            table.customContextMenuRequested.emit(pos)
            grab_screen("row-menu.png")
            for menu in QApplication.topLevelWidgets():
                if menu.objectName() == "rowMenu":
                    menu.close()
            header = table.horizontalHeader()
            header.customContextMenuRequested.emit(QPoint(40, 5))
            grab_screen("header-menu.png")
            for menu in QApplication.topLevelWidgets():
                if menu.objectName() == "columnChooser":
                    menu.close()

            table.clearSelection()
            newcomer: ChildSockets | None = None
            for dark in (False, True):
                if dark:
                    app.setPalette(_dark_palette(type(app.palette())))  # type: ignore[arg-type]
                    goner = ChildSockets.start([("tcp", "127.0.0.1", closing, "listen")])
                    children.append(goner)
                    wait_until(
                        lambda: any(v.listener.port == closing for v in window.model.live_views())
                    )
                    pause(6.0)  # the "new" mark of its return ends
                    if newcomer is not None:
                        children.remove(newcomer)
                        newcomer.stop()
                    wait_until(lambda: window.model.row_of(coming) < 0)
                    pause(6.0)
                newcomer = ChildSockets.start([("tcp", "127.0.0.1", coming, "listen")])
                children.append(newcomer)
                goner.stop()
                children.remove(goner)
                wait_until(lambda: window.model.row_of(coming) >= 0)
                wait_until(
                    lambda: not any(v.listener.port == closing for v in window.model.live_views())
                )
                grab(window, "changes-dark.png" if dark else "changes-light.png")
        finally:
            desktop.shutdown()
            for child in children:
                child.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("shots"))
