"""What the Connections tab costs per poll while it is on screen (it costs nothing otherwise).

Child processes hold ``--pairs`` established loopback connections (two sockets each) on
one watched port. For the watched-ports view and the every-port view this prints the CPU
of one connection poll on the sampler thread (``ConnectionTracker.poll``) with each
listing side by side: netlink socket diagnostics (what Linux uses: the kernel's dump,
tcp_info counters from the same dump, owners from the inode resolver) and psutil's
socket table (the fallback elsewhere; bytes still from tcp_info), and of one update of
the table's model on the GUI thread (offscreen Qt), as medians over ``--polls`` polls.

    PYTHONPATH=$PWD python benchmarks/bench_connections.py [--pairs 500] [--polls 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

CHILD = r"""
import socket, sys
n = int(sys.argv[1])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1024)
print(srv.getsockname()[1], flush=True)
held = []
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", srv.getsockname()[1]))
    a, _ = srv.accept()
    held += [c, a]
print("ready", flush=True)
sys.stdin.read()
"""


def cpu_ms(work: Callable[[], object], polls: int) -> float:
    times = []
    for _ in range(polls):
        start = time.process_time()
        work()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--polls", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from portwatch.core.watchlist import WatchList, parse_spec
    from portwatch.engine.connection_track import ConnectionTracker
    from portwatch.probe.connections import ConnectionLister
    from portwatch.ui.connection_model import ConnectionTableModel

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(args.pairs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    port = int(child.stdout.readline())
    assert child.stdout.readline().strip() == "ready"
    app = QApplication.instance() or QApplication([])
    try:
        watch = WatchList((parse_spec(str(port)),))
        print(f"{args.pairs} loopback connections ({2 * args.pairs} sockets) on port {port}")
        netlink_lister = ConnectionLister()
        if netlink_lister.source != "netlink":
            print("  (netlink socket diagnostics unavailable here: both columns are psutil)")
        listers = {"netlink": netlink_lister, "psutil": ConnectionLister(use_netlink=False)}
        print(f"  {'view':<13} {'rows':>6}  " + "  ".join(f"{n + ' poll':>14}" for n in listers))
        for every in (False, True):
            polls: dict[str, float] = {}
            rows = 0
            for name, lister in listers.items():
                tracker = ConnectionTracker(lambda: watch, lister)
                rows = len(tracker.poll(every).rows)
                polls[name] = cpu_ms(lambda t=tracker, e=every: t.poll(e), args.polls)
            # The model's update costs the same whichever listing fed it.
            tracker = ConnectionTracker(lambda: watch, netlink_lister)
            model = ConnectionTableModel(linger_s=0)
            model.update(tracker.poll(every).rows)

            def update(t: ConnectionTracker = tracker, e: bool = every, m: Any = model) -> None:
                m.update(t.poll(e).rows)

            both = cpu_ms(update, args.polls)
            view = "every port" if every else "watched ports"
            cells = "  ".join(f"{polls[n]:8.1f} ms CPU" for n in listers)
            print(
                f"  {view:<13} {rows:>6}  {cells}   (sampler thread); model update "
                f"{max(0.0, both - polls['netlink']):6.1f} ms CPU (GUI thread)"
            )
        app.processEvents()
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
