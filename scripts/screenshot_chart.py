"""Screenshots of the activity chart with real loopback traffic, and of the 1 hour view
after a restart, for docs and layout checks.

    python scripts/screenshot_chart.py OUTPUT_FOLDER [--minutes 3]

1. Writes simulated history into a throw-away data folder through the store's own API
   (``HistoryStore.record`` with samples stamped 60 to 6 minutes ago, one every 10 s,
   with a 10-minute stretch where nothing was recorded, as if the laptop slept). This
   is the only simulated part, and only because an hour cannot be waited for.
2. Runs the app on that folder for ``--minutes`` with real children: a server that moves
   bytes both ways through one loopback connection every second (varying amounts), a
   UDP listener (no byte counters), a quiet TCP port with two connections, and 30
   listeners on a watched range. Saves ``window-traffic.png``, ``chart-traffic.png``,
   ``chart-udp.png`` and ``chart-range.png``.
3. Quits, starts a new app on the same folder (a restart) and saves
   ``window-1hour-after-restart.png`` and ``chart-24hours-after-restart.png`` once the
   history read on the pool has arrived, then ``chart-back-to-5min.png``.

Works under Xvfb (``xvfb-run -s '-screen 0 1600x1000x24'``) or ``QT_QPA_PLATFORM=offscreen``;
only loopback sockets are opened.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from loopback_traffic import LoopbackTraffic  # noqa: E402
from shot_app import grabber, pause, start_app, wait_until  # noqa: E402

# Listeners on a range, a UDP socket, and a quiet port with two connections.
HOLDER = r"""
import json, socket, sys
plan = json.loads(sys.argv[1])
held = []
for port in plan["range"]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(4); held.append(s)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", plan["udp"]))
held.append(u)
q = socket.socket(); q.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
q.bind(("127.0.0.1", plan["quiet"])); q.listen(4); held.append(q)
for _ in range(2):
    c = socket.create_connection(("127.0.0.1", plan["quiet"])); a, _ = q.accept(); held += [c, a]
print("ready", flush=True)
sys.stdin.read()
"""


def free_block(count: int, start: int = 40000) -> int:
    """The first port of ``count`` free consecutive TCP ports."""
    port = start
    while True:
        if all(_free(p) for p in range(port, port + count)):
            return port
        port += count


def _free(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def simulate_history(db: Path, traffic_port: int, quiet_port: int, now: float) -> None:
    """One recorded poll every 10 s from 60 to 6 minutes ago, through the store's API;
    nothing from 35 to 25 minutes ago (asleep)."""
    from portwatch.core.types import PortActivity, Proto, Sample
    from portwatch.store.history import HistoryStore

    store = HistoryStore.open(db)
    rng = random.Random(12)
    try:
        wall = now - 3600
        while wall < now - 360:
            minutes_ago = (now - wall) / 60
            if 25 < minutes_ago < 35:
                wall += 10
                continue
            # A daily-looking swell of traffic with some noise; bytes per 10 s.
            swell = 0.5 + 0.5 * math.sin(wall / 400)
            moved_in = int(rng.uniform(0.6, 1.0) * swell * 8_000_000)
            moved_out = int(rng.uniform(0.2, 0.5) * swell * 8_000_000)
            connections = 1 + int(swell * 3)
            sample = Sample(
                wall=wall,
                mono=wall - now + 10_000,
                listeners=(),
                activity=(
                    PortActivity(
                        traffic_port,
                        Proto.TCP,
                        1,
                        connections,
                        moved_in + moved_out,
                        moved_in,
                        moved_out,
                    ),
                    PortActivity(quiet_port, Proto.TCP, 1, 2, 0, 0, 0),
                ),
                probe_name="netlink",
            )
            store.record(sample, (), ())
            wall += 10
    finally:
        store.close()


def run(out: Path, minutes: float) -> None:

    from portwatch.app import DesktopApp
    from portwatch.config import watchfile
    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.paths import rooted
    from portwatch.services import settings as settings_file
    from portwatch.services.notify import NullBackend
    from portwatch.services.settings import Settings

    _app = start_app()  # held: the application lives as long as the run
    grab = grabber(out)

    with tempfile.TemporaryDirectory(prefix="portwatch-chart-") as folder:
        paths = rooted(Path(folder))
        paths.ensure()
        settings_file.save(paths.settings_file, Settings(poll_interval_s=1.0))
        range_lo = free_block(30)
        udp = next(p for p in range(5353, 6000) if _free(p, socket.SOCK_DGRAM))
        quiet = next(p for p in range(3321, 4000) if _free(p))
        traffic = LoopbackTraffic()
        specs = [
            parse_spec(f"{traffic.port}/tcp"),
            parse_spec(f"{quiet}/tcp"),
            parse_spec(f"{udp}/udp"),
            parse_spec(f"{range_lo}-{range_lo + 29}/tcp"),
        ]
        watchfile.save(paths.watchlist_file, WatchList(tuple(specs)))
        simulate_history(paths.history_db, traffic.port, quiet, time.time())
        plan = {"range": list(range(range_lo, range_lo + 30)), "udp": udp, "quiet": quiet}
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, json.dumps(plan)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        stop = threading.Event()

        def pump() -> None:
            rng = random.Random(7)
            while not stop.is_set():
                # Bursts of 0.2-3 MB to the server and a quarter back, quiet seconds between.
                if rng.random() < 0.8:
                    count = int(rng.uniform(0.2, 3.0) * 1_000_000)
                    traffic.send(count, count // 4)
                stop.wait(1.0)

        pumper = threading.Thread(target=pump, daemon=True)
        try:
            assert holder.stdout is not None
            if holder.stdout.readline().strip() != "ready":
                raise SystemExit("the listener child could not start")
            desktop = DesktopApp(paths, use_tray=False, notification_backend=NullBackend())
            try:
                desktop.start()
                window = desktop.window
                wait_until(lambda: window.ticks_shown >= 3, 60.0)
                pumper.start()
                print(f"recording {minutes} min of real traffic", flush=True)
                pause(minutes * 60)
                chart = window.chart
                chart.choose(specs[0])
                chart.redraw()
                pause(1.5)
                grab(window, "window-traffic.png")
                grab(chart, "chart-traffic.png")
                chart.choose(specs[2])
                chart.redraw()
                pause(0.5)
                grab(chart, "chart-udp.png")
                chart.choose(specs[3])
                chart.redraw()
                pause(0.5)
                grab(chart, "chart-range.png")
            finally:
                stop.set()
                pumper.join(timeout=10)
                desktop.shutdown()

            # The restart: a new app on the same data folder.
            desktop = DesktopApp(paths, use_tray=False, notification_backend=NullBackend())
            try:
                desktop.start()
                window = desktop.window
                chart = window.chart
                wait_until(lambda: window.ticks_shown >= 5, 60.0)
                chart.choose(specs[0])
                chart.set_window(3600.0)
                wait_until(lambda: chart.history_loaded(specs[0]), 60.0)
                chart.redraw()
                pause(1.5)
                grab(window, "window-1hour-after-restart.png")
                grab(chart, "chart-1hour-after-restart.png")
                chart.set_window(86400.0)
                wait_until(lambda: chart.history_loaded(specs[0]), 60.0)
                chart.redraw()
                pause(1.0)
                grab(chart, "chart-24hours-after-restart.png")
                chart.set_window(300.0)
                chart.redraw()
                pause(1.0)
                grab(chart, "chart-back-to-5min.png")
            finally:
                desktop.shutdown()
        finally:
            stop.set()
            traffic.stop()
            if holder.stdin:
                holder.stdin.close()
            holder.wait(timeout=10)
            if holder.stdout:
                holder.stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="folder for the PNG files")
    parser.add_argument("--minutes", type=float, default=3.0, help="real traffic to record")
    args = parser.parse_args()
    out = args.output.absolute()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    run(out, args.minutes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
