"""Screenshots of the desktop app with real listeners, for docs and for checking the layout.

    python scripts/screenshot.py OUTPUT_FOLDER [--scale 2]

Starts a few child processes that listen (and connect) on the watched ports, runs the
app against a throw-away data folder until several ticks are shown, and saves:
``window-light.png``, ``window-dark.png``, ``panel-light.png``, ``panel-dark.png`` and
``window-alert-log.png`` (with the alert log open) and ``window-200.png`` (the window
at 200 % scaling, made by a second run of this script).
Works with ``QT_QPA_PLATFORM=offscreen``; only loopback sockets are opened.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from shot_app import grabber, start_app, wait_until  # noqa: E402

# A child that listens on the given ports, connects to some of them, and waits.
CHILD = r"""
import json, socket, sys
plan = json.loads(sys.argv[1])
held = []
for proto, host, port, connections in plan:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
        for _ in range(connections):
            c = socket.create_connection(("127.0.0.1", port))
            a, _addr = s.accept()
            held += [c, a]
    held.append(s)
print("ready", flush=True)
sys.stdin.read()
"""

PLAN = [
    # (protocol, host, port, established connections), one list per child process
    [("tcp", "127.0.0.1", 3653, 2)],
    # 0.0.0.0 shows the "all interfaces" reach; only loopback peers ever connect.
    [("tcp", "0.0.0.0", 3321, 1), ("udp", "127.0.0.1", 3353, 0)],  # noqa: S104
]


def _is_free(port: int) -> bool:
    import socket

    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def choose_plan() -> list[list[tuple[str, str, int, int]]]:
    """The default watched ports, or nearby free ones when something already holds them."""
    taken: set[int] = set()
    plan = []
    for child in PLAN:
        entries = []
        for proto, host, port, connections in child:
            chosen = port
            while not _is_free(chosen) or chosen in taken:
                chosen += 1
            taken.add(chosen)
            entries.append((proto, host, chosen, connections))
        plan.append(entries)
    return plan


def start_children(plan: list[list[tuple[str, str, int, int]]]) -> list[subprocess.Popen[str]]:
    children = []
    for child_plan in plan:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(child_plan)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if child.stdout is None or child.stdout.readline().strip() != "ready":
            raise SystemExit(f"a listener child could not start (ports {child_plan} busy?)")
        children.append(child)
    return children


def stop_children(children: list[subprocess.Popen[str]]) -> None:
    for child in children:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=10)
        if child.stdout:
            child.stdout.close()


def run(out: Path, scale_only: bool) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QPalette

    from portwatch.app import DesktopApp
    from portwatch.config import watchfile
    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.paths import rooted
    from portwatch.services import settings as settings_file
    from portwatch.services.notify import NullBackend
    from portwatch.services.settings import Settings

    app = start_app()
    grab = grabber(out)

    def use_scheme(dark: bool) -> None:
        hints = QGuiApplication.styleHints()
        hints.setColorScheme(Qt.ColorScheme.Dark if dark else Qt.ColorScheme.Light)
        # The offscreen platform has no theme to follow: give Fusion a matching palette.
        app.setPalette(_dark_palette(QPalette) if dark else app.style().standardPalette())

    with tempfile.TemporaryDirectory(prefix="portwatch-shots-") as folder:
        paths = rooted(Path(folder))
        paths.ensure()
        settings_file.save(paths.settings_file, Settings(poll_interval_s=0.5))
        plan = choose_plan()
        ports = sorted({entry[2] for child in plan for entry in child})
        watchfile.save(paths.watchlist_file, WatchList(tuple(parse_spec(str(p)) for p in ports)))
        children = start_children(plan)
        desktop = DesktopApp(paths, use_tray=False, notification_backend=NullBackend())
        try:
            desktop.start()
            window = desktop.window
            wait_until(lambda: window.ticks_shown >= 12)
            window.watch_panel.select_port(plan[0][0][2])
            wait_until(lambda: len(window.port_panel.owner_cards()) >= 1)
            # One more tick so new widgets are shown and laid out before grabbing.
            wait_until(lambda: window.ticks_shown >= 14)
            window.chart.redraw()
            if scale_only:
                grab(window, "window-200.png")
                return
            use_scheme(dark=False)
            wait_until(lambda: window.ticks_shown >= 15)
            grab(window, "window-light.png")
            grab(window.port_panel, "panel-light.png")
            window.alert_dock.show()
            wait_until(lambda: window.ticks_shown >= 16)
            grab(window, "window-alert-log.png")
            window.alert_dock.hide()
            use_scheme(dark=True)
            wait_until(lambda: window.ticks_shown >= 18)
            window.chart.redraw()
            grab(window, "window-dark.png")
            grab(window.port_panel, "panel-dark.png")
        finally:
            desktop.shutdown()
            stop_children(children)


def _dark_palette(palette_type: type) -> object:
    from PySide6.QtGui import QColor

    role = palette_type.ColorRole
    palette = palette_type()
    colours = {
        role.Window: "#2b2b2b",
        role.WindowText: "#e6e6e6",
        role.Base: "#1e1e1e",
        role.AlternateBase: "#2a2a2a",
        role.Text: "#e6e6e6",
        role.Button: "#353535",
        role.ButtonText: "#e6e6e6",
        role.Highlight: "#2f65ca",
        role.HighlightedText: "#ffffff",
        role.ToolTipBase: "#2b2b2b",
        role.ToolTipText: "#e6e6e6",
        role.PlaceholderText: "#9a9a9a",
        role.Link: "#6ea8fe",
    }
    for key, value in colours.items():
        palette.setColor(key, QColor(value))
    disabled = palette_type.ColorGroup.Disabled
    for key in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(disabled, key, QColor("#7a7a7a"))
    palette.setColor(disabled, role.Button, QColor("#2f2f2f"))
    return palette


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="folder for the PNG files")
    parser.add_argument("--scale", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = args.output.absolute()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.scale:
        run(out, scale_only=True)
        return 0
    run(out, scale_only=False)
    # 200 %: Qt's scale factor must be set before the application starts, so a new run.
    env = dict(os.environ, QT_SCALE_FACTOR="2")
    return subprocess.run(
        [sys.executable, __file__, str(out), "--scale", "2"], env=env, check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
