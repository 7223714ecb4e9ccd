"""``portwatch connections``: the connections on watched ports (all with --all)."""

from __future__ import annotations

import argparse
import json

from portwatch.cli import CommandError, common
from portwatch.core.text import visible
from portwatch.paths import Paths
from portwatch.probe.connections import Connection, connection_fields, list_connections


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "connections",
        help="list TCP connections and connected UDP sockets on watched ports (all with --all)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON array")
    parser.add_argument("--all", action="store_true", help="include connections on any port")
    # Writes nothing: runs in a scratch folder when the default ones are not usable.
    parser.set_defaults(handler=run, keeps_nothing=True)


def run(args: argparse.Namespace, paths: Paths) -> int:
    watchlist = None if args.all else common.load_watchlist(paths)
    try:
        found = list_connections(watchlist)
    except OSError as exc:
        raise CommandError(f"cannot list connections: {exc}") from exc
    if args.json:
        print(json.dumps(connection_fields(found), indent=2))
        return 0
    if not found:
        where = "any port" if watchlist is None else "the watched ports"
        print(f"No connections on {where}.")
        return 0
    print(
        f"  {'proto':<5} {'local':<28} {'remote':<28} {'state':<12} "
        f"{'bytes in':>10} {'bytes out':>10}  process"
    )
    for item in found:
        print(text_row(item))
    return 0


def text_row(item: Connection) -> str:
    local = _endpoint(item.local_address, item.local_port)
    remote = _endpoint(item.remote_address, item.remote_port)
    who = f"{visible(item.process) or '?'} ({item.pid})" if item.pid else "(unknown process)"
    return (
        f"  {item.proto.value:<5} {local:<28} {remote:<28} {item.state:<12} "
        f"{_amount(item.bytes_in):>10} {_amount(item.bytes_out):>10}  {who}"
    )


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _amount(count: int | None) -> str:
    if count is None:
        return "-"
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{count} B"
