"""``portwatch scan``: one poll, printed as text or JSON."""

from __future__ import annotations

import argparse
import json

from portwatch.cli import common
from portwatch.engine.monitor import Monitor
from portwatch.paths import Paths


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "scan", help="poll once and print listeners on watched ports (all with --all)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON array")
    parser.add_argument("--all", action="store_true", help="include listeners on any port")
    # Writes nothing: runs in a scratch folder when the default ones are not usable.
    parser.set_defaults(handler=run, keeps_nothing=True)


def run(args: argparse.Namespace, paths: Paths) -> int:
    watchlist = common.load_watchlist(paths)
    monitor = Monitor(
        common.make_probe(args),
        None,
        watchlist,
        judge=common.load_judge(paths),
        services=common.load_services(paths),
    )
    try:
        result = monitor.tick()
    finally:
        monitor.close()
    for warning in result.warnings:
        common.warn(warning)
    views = [v for v in result.views if args.all or v.watched]
    if args.json:
        print(json.dumps([common.listener_fields(v) for v in views], indent=2))
        return 0
    if not views:
        ports = ", ".join(str(spec) for spec in watchlist) or "none"
        print(f"Nothing is listening on the watched ports ({ports}).")
        return 0
    print(f"  {'proto':<3} {'address:port':<28} {'status':<12} owner")
    for view in views:
        print(common.text_row(view))
    if args.all:
        print("\n* watched port")
    return 0
