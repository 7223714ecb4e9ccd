"""``portwatch watch list | add SPEC | remove SPEC``: edit the watch-list file."""

from __future__ import annotations

import argparse
import sys

from portwatch.cli import CommandError, common
from portwatch.config import watchfile
from portwatch.core.watchlist import SpecError, WatchSpec, parse_spec
from portwatch.paths import Paths


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("watch", help="show or edit the watched ports")
    actions = parser.add_subparsers(dest="watch_action", metavar="ACTION", required=True)
    actions.add_parser("list", help="print the watched ports")
    add = actions.add_parser("add", help="watch a port or range, e.g. 3653/tcp or 3224-3324/udp")
    add.add_argument("spec")
    remove = actions.add_parser("remove", help="stop watching a port or range")
    remove.add_argument("spec")
    parser.set_defaults(handler=run)


def _parse_or_exit(text: str) -> WatchSpec:
    try:
        return parse_spec(text)
    except SpecError as exc:
        # A bad spec is a bad argument: exit status 2, like argparse.
        print(f"portwatch: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run(args: argparse.Namespace, paths: Paths) -> int:
    watchlist = common.load_watchlist(paths)
    if args.watch_action == "list":
        for spec in watchlist:
            print(spec)
        return 0
    spec = _parse_or_exit(args.spec)
    if args.watch_action == "add":
        if spec in watchlist.specs:
            print(f"{spec} is already watched")
            return 0
        updated = watchlist.with_added(spec)
        verb = "now watching"
    else:
        if spec not in watchlist.specs:
            raise CommandError(f"{spec} is not in the watch list (see `portwatch watch list`)")
        updated = watchlist.without(spec)
        verb = "stopped watching"
    try:
        kept = watchfile.save(paths.watchlist_file, updated)
    except OSError as exc:
        raise CommandError(f"cannot write {paths.watchlist_file}: {exc.strerror or exc}") from exc
    if kept is not None:
        common.warn(f"the lines portwatch could not use are kept in {kept}")
    print(f"{verb} {spec}")
    return 0
