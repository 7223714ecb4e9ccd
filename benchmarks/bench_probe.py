"""Probe cost against the number of sockets on the machine (Linux).

For N = 100, 1,000, 10,000 and 20,000 loopback sockets held by child processes, prints
the steady-state time per poll (median) and the CPU it costs at one poll a second for:
the netlink probe, the psutil probe, and a bare ``psutil.net_connections('inet')``;
then the ratio bare/netlink. Steady state means after the first poll (the netlink
probe's inode cache is warm); the first poll is printed separately.

Then it runs ``portwatch monitor`` (the real command: probe, diff, history, once a
second) with 1,000 sockets and reports that process's own CPU as % of one core.

The socket mix (per child, like a busy server): 5% TCP listeners, 5% bound UDP
sockets, 90% both ends of established TCP connections (closed with a reset, so no
TIME_WAIT sockets linger into the next measurement), plus a listener on watched port
3653 with 10 connections that carry a little traffic. Children each raise
RLIMIT_NOFILE to the hard limit and hold at most that many sockets, so a size that
needs more file descriptors than the hard limit is spread over several children.

Run from the repository root (as root for the full picture; any user works):

    PYTHONPATH=$PWD python benchmarks/bench_probe.py [--sizes 100,1000] [--no-monitor]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable

import psutil
from harness import WATCHED_PORT, Holders, HolderSpec, load, portwatch_process, timed

from portwatch.core.watchlist import WatchList
from portwatch.probe.netlink import NetlinkProbe
from portwatch.probe.psutil_probe import PsutilProbe

SIZES = (100, 1_000, 10_000, 20_000)
FD_HEADROOM = 64  # stdin/stdout/stderr, the interpreter's own files, the watched extras


def holder_specs(n: int, per_child: int, mix: str) -> list[HolderSpec]:
    """Children holding ``n`` sockets between them, at most ``per_child`` each: a busy
    server's mix (5% TCP listeners, 5% UDP, the rest connection pairs) or all
    listeners; the first child also listens on the watched port with 10 connections."""
    specs: list[HolderSpec] = []
    remaining = n
    while remaining > 0:
        size = min(remaining, per_child)
        tcp = max(1, size // 20) if mix == "server" else size // 2
        udp = max(1, size // 20) if mix == "server" else size - tcp
        pairs = max(0, (size - tcp - udp) // 2)
        first = not specs
        specs.append(HolderSpec(tcp, udp, pairs, WATCHED_PORT if first else 0, 10 if first else 0))
        remaining -= size
    return specs


def bench_size(
    n: int, per_child: int, watched: WatchList, mix: str = "server"
) -> dict[str, tuple[float, float, float]]:
    with Holders(holder_specs(n, per_child, mix)) as holders:
        rows: dict[str, tuple[float, float, float]] = {}
        slow_rounds = 5 if n >= 10_000 else 11
        netlink = NetlinkProbe()
        try:
            rows["netlink probe"] = measure(lambda: netlink.poll(watched), 31)
        finally:
            netlink.close()
        psutil_probe = PsutilProbe()
        rows["psutil probe"] = measure(lambda: psutil_probe.poll(watched), slow_rounds)
        rows["bare net_connections"] = measure(lambda: psutil.net_connections("inet"), slow_rounds)
        rows["_sockets"] = (float(holders.sockets), 0.0, 0.0)
        return rows


def measure(poll: Callable[[], object], rounds: int) -> tuple[float, float, float]:
    """(first poll ms, median wall ms, median CPU ms) over ``rounds`` steady polls."""
    timing = timed(poll, rounds)
    return timing.first_ms, timing.wall_ms, timing.cpu_ms


def print_size(n: int, rows: dict[str, tuple[float, float, float]]) -> None:
    held = int(rows.pop("_sockets")[0])
    print(f"\n{n:,} sockets requested ({held:,} held by the children, plus the machine's own)")
    print(f"  {'':24}{'first poll':>12}{'steady poll':>13}{'CPU/poll':>10}{'CPU at 1/s':>12}")
    for name, (first, wall, cpu) in rows.items():
        per_minute = cpu * 60 / 1000
        print(f"  {name:24}{first:10.1f} ms{wall:10.2f} ms{cpu:7.2f} ms{per_minute:7.2f} s/min")
    bare = rows["bare net_connections"][1]
    nl = rows["netlink probe"][1]
    probe = rows["psutil probe"][1]
    bare_cpu = rows["bare net_connections"][2]
    nl_cpu = rows["netlink probe"][2]
    print(
        f"  ratio bare net_connections / netlink probe: {bare / nl:6.1f}x "
        f"(by CPU time: {bare_cpu / nl_cpu:.1f}x)"
    )
    print(f"  ratio psutil probe / netlink probe:         {probe / nl:6.1f}x")


def probe_cpu(kind: str, sockets: int, per_child: int, seconds: int) -> float:
    """CPU of this process polling one probe once a second for ``seconds``, % of a core."""
    probe = NetlinkProbe() if kind == "netlink" else PsutilProbe()
    watched = WatchList.default()
    with Holders(holder_specs(sockets, per_child, "server")) as holders:
        try:
            probe.poll(watched)  # the first poll fills the caches; steady state is measured
            c0, t0 = time.process_time(), time.monotonic()
            for tick in range(1, seconds + 1):
                holders.traffic()
                probe.poll(watched)
                time.sleep(max(0.0, t0 + tick - time.monotonic()))
            return (time.process_time() - c0) / (time.monotonic() - t0) * 100
        finally:
            probe.close()


def monitor_cpu(kind: str, sockets: int, per_child: int, seconds: int) -> float:
    """Own CPU of a ``portwatch monitor --probe kind`` process over ``seconds``, % of a core.

    The command polls once a second, diffs, writes history and prints events; its CPU
    time is read from outside (``/proc/PID/stat``) after its first poll and a warm-up.
    """
    with Holders(holder_specs(sockets, per_child, "server")) as holders:
        args = ["--probe", kind, "monitor", "--interval", "1"]
        with portwatch_process(args) as run:
            run.wait_first_line(60)
            time.sleep(3)
            return run.measure(seconds, holders.traffic).percent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--no-monitor", action="store_true", help="skip the own-CPU run")
    parser.add_argument("--monitor-seconds", type=int, default=30)
    parser.add_argument(
        "--listeners",
        metavar="N",
        type=int,
        default=10_000,
        help="also a worst case: N sockets that are all listeners (half TCP, half UDP); 0: skip",
    )
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    per_child = hard - FD_HEADROOM
    max_children = 8
    print(f"portwatch probe benchmark: {os.cpu_count()} CPUs, Linux {os.uname().release}, ")
    print(
        f"RLIMIT_NOFILE hard limit {hard:,} (soft raised from {soft:,}); each holder child "
        f"keeps at most {per_child:,} sockets; running as uid {os.getuid()}"
    )
    print(
        "Socket mix: 5% TCP listeners, 5% bound UDP, 90% both ends of established TCP "
        "connections, plus a listener on watched port 3653 with 10 connections."
    )
    print(f"Machine: {load()}")
    watched = WatchList.default()
    for n in (int(s) for s in args.sizes.split(",")):
        if n > per_child * max_children:
            print(f"\n{n:,} sockets: skipped, needs more than {max_children} children at the limit")
            continue
        try:
            rows = bench_size(n, per_child, watched)
        except (OSError, RuntimeError) as exc:
            print(f"\n{n:,} sockets: skipped, could not open them ({exc})")
            continue
        print_size(n, rows)
        sys.stdout.flush()

    if args.listeners:
        n = args.listeners
        print(
            f"\nWorst case for the netlink probe: every socket a listener "
            f"({n:,}: half TCP, half UDP)"
        )
        try:
            print_size(n, bench_size(n, per_child, watched, mix="listeners"))
        except (OSError, RuntimeError) as exc:
            print(f"  skipped, could not open them ({exc})")
        sys.stdout.flush()

    if not args.no_monitor:
        seconds = args.monitor_seconds
        print(
            f"\nOwn CPU at 1 poll/s for {seconds} s with 1,000 sockets, default watch list, "
            "4 KB x 10 connections of traffic on port 3653 every second (% of one core):"
        )
        for kind in ("netlink", "psutil"):
            percent = probe_cpu(kind, 1_000, per_child, seconds)
            print(f"  {kind} probe alone, in process:            {percent:6.3f} %")
        for kind in ("netlink", "psutil"):
            percent = monitor_cpu(kind, 1_000, per_child, seconds)
            print(f"  portwatch --probe {kind} monitor process: {percent:6.3f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
