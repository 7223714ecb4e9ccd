"""``portwatch monitor``: poll headless, record history, print events as they happen."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from portwatch import files
from portwatch.cli import CommandError, common
from portwatch.config import trustfile, watchfile
from portwatch.config.follow import Follower
from portwatch.core.alerts import ALERTING_KINDS
from portwatch.core.problems import Outage
from portwatch.core.text import visible
from portwatch.core.trust import TrustJudge
from portwatch.core.types import EventKind, PortEvent
from portwatch.core.watchlist import WatchList
from portwatch.engine import jsonl
from portwatch.engine.jsonl import JsonlSink
from portwatch.engine.monitor import Monitor
from portwatch.engine.schedule import MIN_INTERVAL_S, TickSchedule
from portwatch.engine.schedule import run as schedule_run
from portwatch.engine.sinks import Sinks, TickSink
from portwatch.engine.textfile import TextfileSink
from portwatch.files import ResourceShortage
from portwatch.paths import Paths
from portwatch.stop_requests import StopRequests
from portwatch.store.history import HistoryStore, StoreError, StoreUnavailable

MAX_INTERVAL_S = 3600.0
# About a century: long enough for "run forever", short enough for any clock arithmetic.
MAX_DURATION_S = 3.2e9


def _seconds(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: seconds within [low, high]; anything else is refused by name
    (exit status 2), never clamped."""

    def parse(text: str) -> float:
        shown = _shown(text)
        try:
            # float() also reads Arabic-Indic digits and "1_0"; seconds are written in ASCII.
            value = float(text) if text.isascii() and "_" not in text else math.nan
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown} is not a number of seconds") from None
        if math.isnan(value) and text.strip().lower().lstrip("+-") != "nan":
            raise argparse.ArgumentTypeError(f"{shown} is not a number of seconds")
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{shown} is outside {low:g}-{high:g} seconds")
        return value

    return parse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitor", help="poll without a window, record history and print events"
    )
    parser.add_argument(
        "--interval",
        type=_seconds(MIN_INTERVAL_S, MAX_INTERVAL_S),
        default=1.0,
        metavar="SECONDS",
        help=f"poll period, {MIN_INTERVAL_S:g}-{MAX_INTERVAL_S:g} (1)",
    )
    parser.add_argument(
        "--duration",
        type=_seconds(0.001, MAX_DURATION_S),
        metavar="SECONDS",
        help="stop after this long",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--textfile",
        type=Path,
        metavar="DIR",
        help="write DIR/portwatch.prom after each poll (node_exporter's textfile collector)",
    )
    parser.add_argument(
        "--jsonl",
        type=_file_path,
        metavar="FILE",
        help="append each event to FILE as one JSON object per line, rotated by size (a"
        " regular file or a new one: links, devices, FIFOs and portwatch's own files are"
        " refused)",
    )
    parser.add_argument(
        "--jsonl-max-bytes",
        type=_size,
        default=jsonl.DEFAULT_MAX_BYTES,
        metavar="SIZE",
        help="rotate the event file at this size: bytes, or with K, M or G (10M)",
    )
    parser.add_argument(
        "--jsonl-keep",
        type=_count,
        default=jsonl.DEFAULT_KEEP,
        metavar="N",
        help=f"rotated event files to keep ({jsonl.DEFAULT_KEEP})",
    )
    parser.set_defaults(handler=run)


# Larger than any disk a rotated event file could need; a bound, so no value is absurd.
MAX_JSONL_BYTES = 1024**4


def _shown(text: str) -> str:
    """An argument as quoted in a message: a value of thousands of characters is cut."""
    return repr(text) if len(text) <= 30 else f"{text[:30]!r}... ({len(text):,} characters)"


def _whole(text: str) -> int | None:
    """ASCII digits only (not "²", other scripts' digits or "1_000"), and few enough to
    be a real value: Python's int() takes all those, and fails on thousands of digits."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def _size(text: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    body = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = body[-1:] if body[-1:] in ("K", "M", "G") else ""
    number = _whole(body[: len(body) - len(unit)])
    if number is None or not 1024 <= number * units[unit] <= MAX_JSONL_BYTES:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a size from 1024 bytes to 1024G (like 1048576 or 10M)"
        )
    return number * units[unit]


def _count(text: str) -> int:
    number = _whole(text)
    if number is None or not 1 <= number <= 1000:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number of files from 1 to 1000")
    return number


def _file_path(text: str) -> Path:
    if text.endswith(("/", os.sep)):
        # Path() drops the slash: "events/" would become a file named "events".
        raise argparse.ArgumentTypeError(f"{_shown(text)} names a folder, not a file")
    return Path(text).expanduser()


def _sinks(
    args: argparse.Namespace, watchlist: Callable[[], WatchList], paths: Paths
) -> list[TickSink]:
    """The files other tools read, checked before the first poll so mistakes are clear."""
    out: list[TickSink] = []
    if args.textfile is not None:
        if not args.textfile.is_dir():
            raise CommandError(f"the textfile folder {args.textfile} does not exist")
        _check_folder(args.textfile)
        out.append(TextfileSink(args.textfile, watchlist))
    if args.jsonl is not None:
        if not args.jsonl.parent.is_dir():
            raise CommandError(f"the folder of the event file {args.jsonl} does not exist")
        try:
            files.check_target(args.jsonl)  # a link, a device, a FIFO, a folder: refused
        except OSError as exc:
            raise CommandError(f"will not write {args.jsonl}: {exc.strerror or exc}") from exc
        own = files.one_of(args.jsonl, paths.own_files())
        if own is not None:
            raise CommandError(
                f"will not write {args.jsonl}: it is portwatch's own {own.name}; choose"
                " another file"
            )
        _check_folder(args.jsonl.parent)
        out.append(JsonlSink(args.jsonl, args.jsonl_max_bytes, args.jsonl_keep))
    return out


def _check_folder(folder: Path) -> None:
    # Another user who can write there could swap our file for a link meanwhile.
    try:
        files.check_folder(folder)
    except OSError as exc:
        raise CommandError(f"will not write in {folder}: {exc.strerror or exc}") from exc


def _text(event: PortEvent) -> str:
    fields = common.event_fields(event)
    host = f"[{fields['address']}]" if ":" in fields["address"] else fields["address"]
    who = "an uninspectable process"
    if fields["pid"] is not None:
        who = f"{visible(fields['process']) or '?'} (pid {fields['pid']})"
    line = (
        f"{fields['time']}  {fields['event']:<18} {fields['proto']} {host}:{fields['port']}  {who}"
    )
    if (event.kind in ALERTING_KINDS or event.kind is EventKind.PACKAGE_UPGRADED) and event.detail:
        line += f"  - {visible(event.detail)}"
    return line


def _record_upgrades(path: Path, judge: TrustJudge) -> None:
    """Record in the trust file the new version of packages seen upgraded, so the upgrade
    is said once; the reloader then picks the file up like any other edit."""
    upgrades = judge.take_upgrades()
    if not upgrades:
        return
    try:
        trustfile.record_upgrades(path, upgrades)
    except OSError as exc:
        common.warn(
            f"could not record the package upgrade in {path}: {exc.strerror or exc};"
            " the next start says it once more"
        )


def run(args: argparse.Namespace, paths: Paths) -> int:
    watchlist = common.load_watchlist(paths)
    # The sinks follow the monitor's watch list, which follows the watch-list file; they
    # are checked first so a bad --textfile or --jsonl is reported before anything opens.
    running: list[Monitor] = []
    sinks = Sinks(_sinks(args, lambda: running[0].watchlist if running else watchlist, paths))
    store: HistoryStore | None
    try:
        store = HistoryStore.open(paths.history_db)
    except StoreUnavailable as exc:
        # A full disk or no descriptors left: watching is still worth doing.
        common.warn(f"{exc}; monitoring goes on without recording history")
        store = None
    except StoreError as exc:
        raise CommandError(str(exc)) from exc
    for notice in store.notices if store is not None else ():
        common.warn(notice)
    judge = common.load_judge(paths)
    # `portwatch trust add` in another terminal takes effect on the next poll.
    trust_reloader = trustfile.Reloader(paths.trust_file)
    watch_follower = Follower(paths.watchlist_file, watchfile.follow_load)
    services = common.load_services(paths)
    monitor = Monitor(
        common.make_probe(args),
        store,
        watchlist,
        judge=judge,
        services=services,
    )
    running.append(monitor)
    stop = threading.Event()
    schedule = TickSchedule(max(args.interval, MIN_INTERVAL_S))

    # Out of descriptors or memory outside the poll (reading a changed config file,
    # writing a feed): said once, and the next step tries again.
    outage = Outage()

    def step() -> None:
        try:
            guarded_step()
        except (ResourceShortage, MemoryError) as exc:
            news = outage.failed(
                f"{files.shortage(exc)}: this poll was skipped; portwatch keeps trying"
            )
            if news is not None:
                common.warn(news)
        else:
            outage.ended()

    def guarded_step() -> None:
        started = schedule.clock()
        rewatched = watch_follower.poll()
        if rewatched is not None:
            for problem in rewatched.problems:
                common.warn(problem)
            if rewatched.replaces_last_good:  # else keep the last good watch list
                monitor.set_watchlist(rewatched.watchlist)
        reloaded = trust_reloader.poll()
        if reloaded is not None:
            for problem in reloaded.problems:
                common.warn(problem)
            if reloaded.complete:  # else keep judging with the last good list
                judge.set_trust_list(reloaded.trust_list)
        result = monitor.tick()
        for warning in (*result.warnings, *sinks.publish(result)):
            common.warn(warning)
        for event in result.events:
            if args.json:
                endpoint = event.listener.endpoint
                name = services.service_name(endpoint.port, endpoint.proto)
                print(json.dumps(common.event_fields(event, service=name)), flush=True)
            else:
                print(_text(event), flush=True)
        _record_upgrades(paths.trust_file, judge)
        overran = schedule.overran(started)
        if overran is not None:
            common.warn(
                f"a poll took {overran:.2f} s, longer than the"
                f" {schedule.interval_s:g} s interval; the next one waits for it"
            )

    # Ctrl+C, SIGTERM, and on Windows Ctrl+Break and a closing console, all end in the same
    # final flush below; a closing console is held open until it is written.
    with StopRequests(stop):
        try:
            schedule_run(step, schedule, stop.wait, args.duration)
        finally:
            try:
                for warning in sinks.close():
                    common.warn(warning)
            finally:
                monitor.close()
            sys.stdout.flush()
    return 0
