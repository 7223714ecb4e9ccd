"""What one steady monitoring tick costs, next to bare psutil and ``ss`` (Linux).

Two machines are imitated with sockets held by child processes:

* a busy server: 50 TCP listeners and 12,000 connection sockets (6,000 established
  pairs over loopback);
* a listener-heavy host: 6,000 listeners (3,000 TCP, 3,000 UDP).

For each it prints the CPU of one steady tick of the whole engine (netlink probe, diff,
verdicts, views, history written to a real SQLite file, alert policy), as the median
and as the mean over every tick (the mean includes the history's periodic last-seen
flushes), then the same for a bare ``psutil.net_connections('inet')`` and for running
``ss -tuanp`` (its own CPU, read from the children's rusage). Then a ``portwatch
monitor`` process is run for a while and its own CPU per poll is read from outside.

Last, the time from start to first data: ``portwatch scan --json`` as a new process,
and, in this process, building the engine and its first tick.

Run from the repository root, as root for the full picture (the netlink probe sees every
process's sockets); any user works:

    PYTHONPATH=$PWD python benchmarks/bench_engine.py [--ticks 200] [--monitor-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from portwatch.core.trust import TrustJudge, TrustList
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.engine.monitor import Monitor
from portwatch.knowledge import KnowledgeBase
from portwatch.probe.netlink import NetlinkProbe
from portwatch.store.history import HistoryStore

REPO = Path(__file__).resolve().parents[1]
WATCHED_PORT = 3653

HOLDER = r"""
import json, resource, socket, struct, sys
RESET = struct.pack("ii", 1, 0)  # reset on close: no TIME_WAIT left for the next case
tcp, udp, pairs, watched = (int(x) for x in sys.argv[1:5])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
keep, lst = [], []
for _ in range(tcp):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4096); lst.append(s)
for _ in range(udp):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); keep.append(u)
for i in range(pairs):
    target = lst[i % len(lst)]
    c = socket.create_connection(target.getsockname()); a, _ = target.accept()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    keep += [c, a]
if watched:
    w = socket.socket(); w.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    w.bind(("127.0.0.1", watched)); w.listen(64); keep.append(w)
keep += lst
print(json.dumps({"sockets": len(keep)}), flush=True)
sys.stdin.read()
"""


@contextmanager
def holders(tcp: int, udp: int, pairs: int) -> Iterator[int]:
    """A child holding the sockets; yields how many it holds."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tcp), str(udp), str(pairs), str(WATCHED_PORT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the socket holder failed (is RLIMIT_NOFILE high enough?)")
        yield int(json.loads(line)["sockets"])
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()


def cpu_per_call(call: Callable[[], object], rounds: int) -> tuple[float, float, float]:
    """(first call wall ms, median CPU ms, mean CPU ms) over ``rounds`` steady calls."""
    t0 = time.perf_counter()
    call()
    first = (time.perf_counter() - t0) * 1000
    cpus = []
    for _ in range(rounds):
        c0 = time.process_time()
        call()
        cpus.append((time.process_time() - c0) * 1000)
    return first, statistics.median(cpus), statistics.fmean(cpus)


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


def monitor_process_cpu(seconds: float, interval: float) -> float:
    """CPU ms per poll of a ``portwatch monitor`` process, measured from outside."""
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portwatch",
                "--data-dir",
                data,
                "--probe",
                "netlink",
                "monitor",
                "--interval",
                str(interval),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            time.sleep(3.0)  # imports, first poll, history created
            ps = psutil.Process(proc.pid)
            before = ps.cpu_times()
            t0 = time.monotonic()
            time.sleep(seconds)
            after = ps.cpu_times()
            elapsed = time.monotonic() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    used = float((after.user - before.user) + (after.system - before.system))
    return used * 1000 / (elapsed / interval)


def case(name: str, tcp: int, udp: int, pairs: int, args: argparse.Namespace) -> None:
    with holders(tcp, udp, pairs) as held:
        print(f"\n{name}: {tcp:,} TCP + {udp:,} UDP listeners, {2 * pairs:,} connection sockets")
        print(f"  ({held:,} sockets held by the children, plus the machine's own)")
        print(f"  {'':34}{'first':>10}{'CPU median':>12}{'CPU mean':>10}")
        rows: dict[str, tuple[float, float, float]] = {}
        with tempfile.TemporaryDirectory() as data:
            monitor = engine(Path(data))
            try:
                steady, changed = engine_ticks(monitor, args.ticks)
            finally:
                monitor.close()
        rows["portwatch engine tick, steady"] = steady
        if changed is not None:
            rows["  ticks where listeners changed"] = changed
        rows["bare psutil.net_connections"] = cpu_per_call(
            lambda: psutil.net_connections("inet"), args.slow_rounds
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
            per_poll = monitor_process_cpu(args.monitor_seconds, args.interval)
            print(
                f"  portwatch monitor process, {args.interval:g} s interval, "
                f"{args.monitor_seconds:g} s: {per_poll:.2f} ms CPU per poll"
            )
        sys.stdout.flush()


def start_to_first_data() -> None:
    print("\nTime from start to first data:")
    with tempfile.TemporaryDirectory() as data:
        walls = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "portwatch", "--data-dir", data, "scan", "--json"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                check=True,
            )
            walls.append((time.perf_counter() - t0) * 1000)
        print(f"  portwatch scan --json, new process (best of 3): {min(walls):7.1f} ms")
        t0 = time.perf_counter()
        monitor = engine(Path(data))
        try:
            result = monitor.tick()
        finally:
            monitor.close()
        ms = (time.perf_counter() - t0) * 1000
        print(f"  engine built and first tick, in process:        {ms:7.1f} ms")
        print(f"  ({len(result.views)} listeners in the first tick)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200, help="steady engine ticks per case")
    parser.add_argument("--slow-rounds", type=int, default=5, help="psutil and ss runs per case")
    parser.add_argument("--monitor-seconds", type=float, default=10.0, help="0: skip")
    parser.add_argument("--interval", type=float, default=1.0, help="monitor process interval")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(
        f"portwatch engine benchmark: {os.cpu_count()} CPUs, Linux {os.uname().release},"
        f" uid {os.getuid()}, RLIMIT_NOFILE {hard:,}"
    )
    case("Busy server", 50, 0, 6_000, args)
    case("Many listeners", 3_000, 3_000, 0, args)
    start_to_first_data()
    return 0


if __name__ == "__main__":
    sys.exit(main())
