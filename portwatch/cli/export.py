"""``portwatch export``: observed listeners from history as CSV."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from portwatch.cli import CommandError, common
from portwatch.engine.export import ExportError, check_target, export_csv
from portwatch.paths import Paths
from portwatch.store.history import HistoryStore, StoreError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("export", help="write observed listeners as CSV")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="the CSV file to write, or - for standard output. A regular file is replaced"
        " atomically; a symbolic link is refused (never followed or replaced), and so are"
        " devices, FIFOs, folders, read-only files and portwatch's own files",
    )
    parser.add_argument(
        "--watched-only", action="store_true", help="only listeners on watched ports"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, paths: Paths) -> int:
    target = None if args.output == "-" else Path(args.output).expanduser()
    if target is not None and args.output.endswith(("/", os.sep)):
        # Path() drops the slash: "out/" would become a file named "out".
        raise CommandError(f"cannot write {args.output}: it names a folder, not a file")
    keep = paths.own_files()
    if target is not None:
        try:
            check_target(target, keep)  # before any work: a refused target changes nothing
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
    if not paths.history_db.exists():
        raise CommandError(
            f"no history yet at {paths.history_db}: run `portwatch monitor` or the app first"
        )
    try:
        reader = HistoryStore.open_readonly(paths.history_db)
    except StoreError as exc:
        raise CommandError(str(exc)) from exc
    services = common.load_services(paths)
    try:
        if target is None:
            export_csv(reader, sys.stdout, args.watched_only, services)
            return 0
        count = export_csv(reader, target, args.watched_only, services, keep)
    except (ExportError, StoreError) as exc:
        raise CommandError(str(exc)) from exc
    finally:
        reader.close()
    rows = "1 listener" if count == 1 else f"{count} listeners"
    print(f"wrote {rows} to {target}", file=sys.stderr)
    return 0
