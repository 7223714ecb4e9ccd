"""What the benchmarks share: sockets held by child processes, CPU timings, and a
portwatch process (the ``monitor`` command or the desktop app) measured from outside.

Not a benchmark itself; the ``bench_*.py`` scripts beside it import it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import portwatch

# The checkout whose portwatch is imported: child processes run the same code.
REPO = Path(portwatch.__file__).resolve().parents[1]
WATCHED_PORT = 3653  # in the default watch list
_TICKS = os.sysconf("SC_CLK_TCK")
_CLONE_NEWNET = 0x40000000

HOLDER = r"""
import json, resource, socket, struct, sys, time
RESET = struct.pack("ii", 1, 0)  # reset on close: no TIME_WAIT left for the next measurement
tcp, udp, pairs, watched, watched_pairs = (int(x) for x in sys.argv[1:6])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
keep, lst = [], []
def pair(listener):
    c = socket.create_connection(listener.getsockname()); a, _ = listener.accept()
    for s in (c, a):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    keep.extend((c, a))
    return c, a
for _ in range(tcp):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4096); lst.append(s)
for _ in range(udp):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); keep.append(u)
for i in range(pairs):
    pair(lst[i % len(lst)])
moving = []
if watched:
    w = socket.socket(); w.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for attempt in range(60):  # another program (a test) may hold the port a moment
        try:
            w.bind(("127.0.0.1", watched)); break
        except OSError:
            time.sleep(0.5)
    w.listen(64); keep.append(w)
    moving = [pair(w) for _ in range(watched_pairs)]
keep += lst
print(json.dumps({"sockets": len(keep)}), flush=True)
for line in sys.stdin:  # "traffic": move a few KB over each watched connection
    for c, a in moving:
        c.sendall(b"x" * 4096); got = 0
        while got < 4096:
            got += len(a.recv(4096))
    print("ok", flush=True)
"""


@dataclass(frozen=True)
class HolderSpec:
    """What one child holds: TCP listeners, bound UDP sockets, established pairs (two
    sockets each, spread over the listeners), and optionally a listener on a watched
    port with ``watched_pairs`` connections that :meth:`Holders.traffic` moves data on."""

    tcp: int = 0
    udp: int = 0
    pairs: int = 0
    watched_port: int = 0
    watched_pairs: int = 0


class Holders:
    """Child processes holding sockets, one per :class:`HolderSpec`."""

    def __init__(self, specs: Sequence[HolderSpec]) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.sockets = 0
        for spec in specs:
            proc = subprocess.Popen(
                [sys.executable, "-c", HOLDER]
                + [str(v) for v in (spec.tcp, spec.udp, spec.pairs, spec.watched_port)]
                + [str(spec.watched_pairs)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.procs.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                self.close()
                raise RuntimeError(
                    "a socket holder failed (RLIMIT_NOFILE too low, or the watched port taken)"
                )
            self.sockets += int(json.loads(line)["sockets"])

    def traffic(self) -> None:
        """Move a few KB over the first child's watched connections."""
        proc = self.procs[0]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        proc.stdout.readline()

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=60)
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs = []

    def __enter__(self) -> Holders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Timing:
    """One call timed: the first (cold) call's wall time, then steady calls' medians
    and the mean CPU (the mean includes the occasional expensive call), all in ms."""

    first_ms: float
    wall_ms: float
    cpu_ms: float
    cpu_mean_ms: float


def timed(call: Callable[[], object], rounds: int) -> Timing:
    """Time ``call``: once cold, then ``rounds`` steady calls."""
    t0 = time.perf_counter()
    call()
    first = (time.perf_counter() - t0) * 1000
    walls, cpus = [], []
    for _ in range(rounds):
        c0, t0 = time.process_time(), time.perf_counter()
        call()
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return Timing(first, statistics.median(walls), statistics.median(cpus), statistics.fmean(cpus))


def process_cpu_s(pid: int) -> float:
    """A process's own CPU so far (user + system), from ``/proc/PID/stat``."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        raw = fh.read()
    fields = raw[raw.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14 and 15: utime, stime


@dataclass(frozen=True)
class Measured:
    """A portwatch process measured from outside."""

    first_line_s: float | None  # from start to its first line of output (first data)
    cpu_s: float  # its own CPU over the measured window
    window_s: float

    @property
    def percent(self) -> float:
        """CPU as a percentage of one core."""
        return self.cpu_s / self.window_s * 100

    def ms_per(self, interval_s: float) -> float:
        """CPU per poll at ``interval_s``."""
        return self.cpu_s * 1000 / (self.window_s / interval_s)


@contextmanager
def portwatch_process(args: Sequence[str], env: dict[str, str] | None = None) -> Iterator[Running]:
    """``python -m portwatch --data-dir TMP ARGS...`` as a child; its output is read
    (and the time of the first line kept) on a thread."""
    with tempfile.TemporaryDirectory() as data:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "portwatch", "--data-dir", data, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        )
        running = Running(proc, started)
        try:
            yield running
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
            running.reader.join(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


class Running:
    """A started portwatch child: when it first printed, and its CPU over a window."""

    def __init__(self, proc: subprocess.Popen[bytes], started: float) -> None:
        self.proc = proc
        self.started = started
        self.first_line: float | None = None
        self._first = threading.Event()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            ready, _, _ = select.select([out], [], [], 1.0)
            if not ready:
                if self.proc.poll() is not None:
                    return
                continue
            line = out.readline()
            if not line:
                return
            if self.first_line is None:
                self.first_line = time.perf_counter() - self.started
                self._first.set()

    def wait_first_line(self, timeout_s: float) -> float | None:
        """Seconds from start to the first line of output, or None if none came."""
        self._first.wait(timeout_s)
        return self.first_line

    def measure(self, seconds: float, each_second: Callable[[], object] | None = None) -> Measured:
        """Its own CPU over the next ``seconds`` (calling ``each_second`` once a second)."""
        c0, t0 = process_cpu_s(self.proc.pid), time.monotonic()
        for tick in range(1, int(seconds) + 1):
            if each_second is not None:
                each_second()
            time.sleep(max(0.0, t0 + tick - time.monotonic()))
        cpu = process_cpu_s(self.proc.pid) - c0
        return Measured(self.first_line, cpu, time.monotonic() - t0)


_network = {"own": False}


def other_sockets() -> str:
    """What else is on the measured network, for the lines that count sockets."""
    return "and no others" if _network["own"] else "plus the machine's own"


def own_network(wanted: bool) -> str:
    """With ``wanted``, move this process (and every child it starts from now on) into a
    network namespace of its own with only loopback up: other programs' sockets (other
    test runs on a shared machine) then neither show up nor change while measuring.
    Needs root on Linux. Returns a line saying which network was measured."""
    if wanted and os.geteuid() == 0 and sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) == 0:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            _network["own"] = True
            return "network: a namespace of its own (only the benchmark's sockets)"
    return "network: the machine's (its other sockets, and their changes, included)"


def parse_and_isolate(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, str, int]:
    """Add ``--machine-network`` to ``parser``, parse the command line, then measure in a
    network of its own (unless asked not to) with RLIMIT_NOFILE raised to its hard limit
    (the socket holders need many). Returns the arguments, the network line to print
    and that limit."""
    parser.add_argument(
        "--machine-network",
        action="store_true",
        help="measure in the machine's network namespace, not one of its own (root only)",
    )
    args = parser.parse_args()
    network = own_network(not args.machine_network)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return args, network, hard


def load() -> str:
    """The machine's load averages, to print beside the figures."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"
