"""What one steady monitoring tick costs, next to bare psutil and ``ss`` (Linux).

Two machines are imitated with sockets held by child processes:

* a busy server: 50 TCP listeners and 12,000 connection sockets (6,000 established
  pairs over loopback);
* a listener-heavy host: 6,000 listeners (3,000 TCP, 3,000 UDP).

For each it prints the CPU of one steady tick of the whole engine (netlink probe, diff,
verdicts, views, history written to a real SQLite file, alert policy), and of a change
tick (the tick right after another process opened one listener), as the median
and as the mean over every tick (the mean includes the history's periodic last-seen
flushes and the socket-holder checks), then the same for a bare
``psutil.net_connections('inet')`` and for running ``ss -tuanp`` (its own CPU, read from
the children's rusage). Then a real ``portwatch monitor`` process is run and measured
from outside: its own CPU per poll from ``/proc/PID/stat`` over a window after its first
poll, and the time to its first line.

Last, the time from start to first data: ``portwatch scan --json`` as a new process to
its exit, ``portwatch monitor`` to its first line, and, in this process, building the
engine and its first tick. The machine's load is printed beside the figures: on a
shared machine they are only as good as it was quiet.

Run from the repository root, as root for the full picture (the netlink probe sees every
process's sockets); any user works:

    PYTHONPATH=$PWD python benchmarks/bench_engine.py [--ticks 200] [--monitor-seconds 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from harness import (
    WATCHED_PORT,
    Holders,
    HolderSpec,
    load,
    other_sockets,
    parse_and_isolate,
    portwatch_process,
    timed,
)

from portwatch.core.trust import TrustJudge, TrustList
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.engine.monitor import Monitor
from portwatch.knowledge import KnowledgeBase
from portwatch.probe.netlink import NetlinkProbe
from portwatch.store.history import HistoryStore


def engine_ticks(
    monitor: Monitor, rounds: int
) -> tuple[tuple[float, float, float], tuple[float, float, float] | None]:
    """(first, median, mean) CPU ms of steady ticks, and of ticks whose listeners changed
    (other programs on this machine opening or closing sockets), or None if none did."""
    t0 = time.perf_counter()
    previous = monitor.tick().sample.listeners
    first = (time.perf_counter() - t0) * 1000
    steady: list[float] = []
    changed: list[float] = []
    for _ in range(rounds):
        c0 = time.process_time()
        listeners = monitor.tick().sample.listeners
        cpu = (time.process_time() - c0) * 1000
        (steady if listeners is previous else changed).append(cpu)
        previous = listeners
    print(f"  {len(steady)} steady ticks, {len(changed)} where the listeners changed")

    def stats(values: list[float]) -> tuple[float, float, float]:
        return first, statistics.median(values), statistics.fmean(values)

    return stats(steady or [float("nan")]), stats(changed) if changed else None


OPENER = r"""
import socket, sys
held = []
for line in sys.stdin:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); held.append(s)
    print(s.getsockname()[1], flush=True)
"""


def change_ticks(monitor: Monitor, rounds: int) -> tuple[float, float, float]:
    """(first, median, mean) CPU ms of a tick right after another program opened one
    listener (a child process here, as on a real machine; two steady ticks between)."""
    child = subprocess.Popen(
        [sys.executable, "-c", OPENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        cpus = []
        for _ in range(rounds):
            monitor.tick()
            monitor.tick()
            child.stdin.write("open\n")
            child.stdin.flush()
            child.stdout.readline()
            c0 = time.process_time()
            monitor.tick()
            cpus.append((time.process_time() - c0) * 1000)
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    return cpus[0], statistics.median(cpus), statistics.fmean(cpus)


def ss_cpu(rounds: int) -> tuple[float, float, float] | None:
    """The same for running ``ss -tuanp``: its own CPU, from the children's rusage."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    cpus = []
    first = 0.0
    for index in range(rounds + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([ss, "-tuanp"], stdout=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if index == 0:
            first = (time.perf_counter() - t0) * 1000
            continue
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cpus.append(used * 1000)
    return first, statistics.median(cpus), statistics.fmean(cpus)


def watchlist() -> WatchList:
    return WatchList((*WatchList.default().specs, parse_spec("3224-3324")))


def engine(data: Path) -> Monitor:
    knowledge, _problems = KnowledgeBase.load(data / "ports.toml")
    return Monitor(
        NetlinkProbe(),
        HistoryStore.open(data / "history.sqlite3"),
        watchlist(),
        judge=TrustJudge(TrustList()),
        services=knowledge,
    )


def monitor_process(args: argparse.Namespace) -> tuple[float | None, float]:
    """A ``portwatch monitor`` process, measured from outside: seconds from start to its
    first line (the first poll's events), and its own CPU per poll after that (from
    ``/proc/PID/stat``)."""
    interval = args.interval
    with portwatch_process(["--probe", "netlink", "monitor", "--interval", str(interval)]) as run:
        first = run.wait_first_line(60)
        time.sleep(2 * interval)  # the polls right after the first settle the caches
        measured = run.measure(args.monitor_seconds)
    return first, measured.ms_per(interval)


def case(name: str, tcp: int, udp: int, pairs: int, args: argparse.Namespace) -> None:
    with Holders([HolderSpec(tcp, udp, pairs, WATCHED_PORT)]) as held:
        print(f"\n{name}: {tcp:,} TCP + {udp:,} UDP listeners, {2 * pairs:,} connection sockets")
        print(f"  ({held.sockets:,} sockets held by the children, {other_sockets()}; {load()})")
        print(f"  {'':34}{'first':>10}{'CPU median':>12}{'CPU mean':>10}")
        rows: dict[str, tuple[float, float, float]] = {}
        with tempfile.TemporaryDirectory() as data:
            monitor = engine(Path(data))
            try:
                steady, changed = engine_ticks(monitor, args.ticks)
                opened = change_ticks(monitor, args.change_ticks)
            finally:
                monitor.close()
        rows["portwatch engine tick, steady"] = steady
        if changed is not None:
            rows["  ticks where listeners changed"] = changed
        rows["change tick: one listener opened"] = opened
        psutil_call = timed(lambda: psutil.net_connections("inet"), args.slow_rounds)
        rows["bare psutil.net_connections"] = (
            psutil_call.first_ms,
            psutil_call.cpu_ms,
            psutil_call.cpu_mean_ms,
        )
        ss = ss_cpu(args.slow_rounds)
        if ss is not None:
            rows["ss -tuanp (its own CPU)"] = ss
        for label, (first, median, mean) in rows.items():
            print(f"  {label:34}{first:7.1f} ms{median:9.2f} ms{mean:7.2f} ms")
        tick = rows["portwatch engine tick, steady"][1]
        bare = rows["bare psutil.net_connections"][1]
        print(f"  bare psutil / engine tick (CPU median): {bare / max(tick, 1e-6):.0f}x")
        if args.monitor_seconds:
            first_line, per_poll = monitor_process(args)
            shown = "no output" if first_line is None else f"{first_line * 1000:.0f} ms"
            print(
                f"  portwatch monitor process, {args.interval:g} s interval, measured from "
                f"outside over {args.monitor_seconds:g} s: {per_poll:.2f} ms CPU per poll "
                f"(first line after {shown})"
            )
        sys.stdout.flush()


def start_to_first_data() -> None:
    """Wall time from starting a command to its first data, best of three: ``scan
    --json`` to its exit, ``monitor`` to its first line (one watched listener is open,
    so the first poll prints it)."""
    print(f"\nTime from start to first data (best of 3; {load()}):")
    with Holders([HolderSpec(watched_port=WATCHED_PORT)]):
        walls = []
        for _ in range(3):
            with portwatch_process(["scan", "--json"]) as run:
                run.proc.wait(timeout=60)
                walls.append(time.perf_counter() - run.started)
        print(f"  portwatch scan --json, new process, to its exit:  {min(walls) * 1000:7.1f} ms")
        firsts = []
        for _ in range(3):
            with portwatch_process(["--probe", "netlink", "monitor"]) as run:
                first = run.wait_first_line(60)
                if first is not None:
                    firsts.append(first)
        shown = f"{min(firsts) * 1000:7.1f} ms" if firsts else "no output"
        print(f"  portwatch monitor, new process, to its first line: {shown}")
        with tempfile.TemporaryDirectory() as data:
            t0 = time.perf_counter()
            monitor = engine(Path(data))
            try:
                result = monitor.tick()
            finally:
                monitor.close()
            ms = (time.perf_counter() - t0) * 1000
        print(f"  engine built and first tick, in this process:     {ms:7.1f} ms")
        print(f"  ({len(result.views)} listeners in the first tick)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200, help="steady engine ticks per case")
    parser.add_argument(
        "--change-ticks", type=int, default=20, help="ticks after one listener opened, per case"
    )
    parser.add_argument("--slow-rounds", type=int, default=5, help="psutil and ss runs per case")
    parser.add_argument("--monitor-seconds", type=float, default=20.0, help="0: skip")
    parser.add_argument("--interval", type=float, default=1.0, help="monitor process interval")
    args, network, hard = parse_and_isolate(parser)
    print(
        f"portwatch engine benchmark: {os.cpu_count()} CPUs, Linux {os.uname().release},"
        f" uid {os.getuid()}, RLIMIT_NOFILE {hard:,}"
    )
    print(network)
    print(
        "Targets: steady poll <= 3 ms (busy server), <= 10 ms (6,000 listeners); first data < 1 s"
    )
    case("Busy server", 50, 0, 6_000, args)
    case("Many listeners", 3_000, 3_000, 0, args)
    start_to_first_data()
    return 0


if __name__ == "__main__":
    sys.exit(main())
