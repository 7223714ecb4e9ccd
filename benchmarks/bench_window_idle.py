"""What the desktop app costs while nothing happens: its CPU as % of one core.

The app (window open, the default 2 s poll interval) runs as a child process on the
offscreen Qt platform (or the X display in ``DISPLAY`` with ``--display``) while child
processes hold 1,000 sockets (a busy server's mix, plus a listener on watched port 3653
with ten connections), by default in a network namespace of its own so that other
programs' sockets coming and going (other test runs) are not part of "idle". After a
warm-up its own CPU is read from ``/proc/PID/stat`` over
the measured window, once with the window shown and once started minimised to the tray.
Target: under 0.5 % of one core.

Run from the repository root (any user):

    PYTHONPATH=$PWD python benchmarks/bench_window_idle.py [--seconds 60] [--warm-up 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from harness import (
    WATCHED_PORT,
    Holders,
    HolderSpec,
    load,
    other_sockets,
    parse_and_isolate,
    portwatch_process,
)

from portwatch.services.settings import Settings

SOCKETS = HolderSpec(tcp=50, udp=50, pairs=450, watched_port=WATCHED_PORT, watched_pairs=10)


def dpkg_stamp() -> float | None:
    """When dpkg's database last changed: a change makes the app verify every owner's
    executable again (real work, but not idle), so the figure is flagged."""
    try:
        return os.stat("/var/lib/dpkg/status").st_mtime
    except OSError:
        return None


def idle_cpu(extra: list[str], args: argparse.Namespace) -> tuple[float, bool]:
    """% of one core the app used over ``args.seconds`` after ``args.warm_up``, and
    whether dpkg's database changed meanwhile."""
    env = {} if args.display else {"QT_QPA_PLATFORM": "offscreen"}
    with portwatch_process(["--probe", args.probe, *extra], env=env) as run:
        time.sleep(args.warm_up)
        if run.proc.poll() is not None:
            raise RuntimeError(f"the app exited with status {run.proc.returncode}")
        before = dpkg_stamp()
        percent = run.measure(args.seconds).percent
        return percent, dpkg_stamp() != before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--warm-up", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--probe", default="auto", choices=("auto", "netlink", "psutil"))
    parser.add_argument("--display", action="store_true", help="use $DISPLAY, not offscreen")
    args, network, _hard = parse_and_isolate(parser)
    interval = Settings().poll_interval_s
    platform = f"DISPLAY={os.environ.get('DISPLAY')}" if args.display else "offscreen"
    print(
        f"portwatch desktop app at idle: {platform}, {interval:g} s poll interval, "
        f"{args.seconds:g} s measured after {args.warm_up:g} s"
    )
    print(network)
    with Holders([SOCKETS]) as held:
        print(f"{held.sockets:,} sockets held by a child, {other_sockets()}; {load()}")
        for label, extra in (("window shown", []), ("minimised to the tray", ["--minimized"])):
            percent, dpkg_changed = idle_cpu(extra, args)
            note = "  (dpkg's database changed meanwhile)" if dpkg_changed else ""
            print(f"  {label:24} {percent:6.3f} % of one core   (target < 0.5 %){note}")
            sys.stdout.flush()
    print(f"after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
