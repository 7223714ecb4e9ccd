"""``portwatch monitor``: poll headless, record history, print events as they happen."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from types import FrameType

from portwatch.cli import CommandError, common
from portwatch.config import trustfile, watchfile
from portwatch.config.follow import Follower
from portwatch.core.alerts import ALERTING_KINDS
from portwatch.core.text import visible
from portwatch.core.types import PortEvent
from portwatch.engine.monitor import Monitor
from portwatch.paths import Paths
from portwatch.store.history import HistoryStore, StoreError

MIN_INTERVAL_S = 0.1


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitor", help="poll without a window, record history and print events"
    )
    parser.add_argument(
        "--interval", type=_positive, default=1.0, metavar="SECONDS", help="poll period (1)"
    )
    parser.add_argument(
        "--duration", type=_positive, metavar="SECONDS", help="stop after this long"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(handler=run)


def _text(event: PortEvent) -> str:
    fields = common.event_fields(event)
    host = f"[{fields['address']}]" if ":" in fields["address"] else fields["address"]
    who = "an uninspectable process"
    if fields["pid"] is not None:
        who = f"{visible(fields['process']) or '?'} (pid {fields['pid']})"
    line = (
        f"{fields['time']}  {fields['event']:<18} {fields['proto']} {host}:{fields['port']}  {who}"
    )
    if event.kind in ALERTING_KINDS and event.detail:
        line += f"  - {visible(event.detail)}"
    return line


def run(args: argparse.Namespace, paths: Paths) -> int:
    watchlist = common.load_watchlist(paths)
    try:
        store = HistoryStore.open(paths.history_db)
    except StoreError as exc:
        raise CommandError(str(exc)) from exc
    for notice in store.notices:
        common.warn(notice)
    judge = common.load_judge(paths)
    # `portwatch trust add` in another terminal takes effect on the next poll.
    trust_reloader = trustfile.Reloader(paths.trust_file)
    watch_follower = Follower(paths.watchlist_file, watchfile.load)
    services = common.load_services(paths)
    monitor = Monitor(
        common.make_probe(args),
        store,
        watchlist,
        judge=judge,
        services=services,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    deadline = started + args.duration if args.duration else None
    interval = max(args.interval, MIN_INTERVAL_S)
    next_tick = started
    try:
        while not stop.is_set():
            rewatched = watch_follower.poll()
            if rewatched is not None:
                for problem in rewatched.problems:
                    common.warn(problem)
                if rewatched.readable:  # else keep the last good watch list
                    monitor.set_watchlist(rewatched.watchlist)
            reloaded = trust_reloader.poll()
            if reloaded is not None:
                for problem in reloaded.problems:
                    common.warn(problem)
                if reloaded.complete:  # else keep judging with the last good list
                    judge.set_trust_list(reloaded.trust_list)
            result = monitor.tick()
            for warning in result.warnings:
                common.warn(warning)
            for event in result.events:
                if args.json:
                    endpoint = event.listener.endpoint
                    name = services.service_name(endpoint.port, endpoint.proto)
                    print(json.dumps(common.event_fields(event, service=name)), flush=True)
                else:
                    print(_text(event), flush=True)
            if result.duration_s > interval:
                common.warn(
                    f"a poll took {result.duration_s:.2f} s, longer than the"
                    f" {interval:g} s interval; the next one waits for it"
                )
            now = time.monotonic()
            # Schedule on the monotonic clock; after a long stall (sleep), do not catch up
            # with a burst of polls: one poll now, then back to the interval.
            next_tick = max(next_tick + interval, now)
            if deadline is not None and next_tick >= deadline:
                break
            stop.wait(next_tick - now)
    finally:
        monitor.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stdout.flush()
    return 0
