"""What the commands share: loading the watch list, the probe, and listener output."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from portwatch.cli import CommandError
from portwatch.config import trustfile, watchfile
from portwatch.core.csvrows import iso_time
from portwatch.core.text import visible
from portwatch.core.trust import TrustJudge
from portwatch.core.types import ListenerView, PortEvent
from portwatch.core.verdict import NoTrustJudge
from portwatch.core.watchlist import WatchList
from portwatch.knowledge import KnowledgeBase
from portwatch.paths import Paths
from portwatch.probe import Probe, ProbeError, create
from portwatch.probe.signature import reader_for, signer_lookup


def warn(message: str) -> None:
    print(f"portwatch: warning: {message}", file=sys.stderr)


def load_watchlist(paths: Paths) -> WatchList:
    """The watch list from its file, each problem reported on stderr; a file that
    cannot be used at all (a link, a FIFO, too large) stops the command."""
    loaded = watchfile.load(paths.watchlist_file)
    if not loaded.readable:
        raise CommandError("; ".join(loaded.problems))
    for problem in loaded.problems:
        warn(problem)
    return loaded.watchlist


def load_judge(paths: Paths) -> TrustJudge:
    """How owners are judged: by the trust file (problems in it reported on stderr)."""
    loaded = trustfile.load(paths.trust_file)
    for problem in loaded.problems:
        warn(problem)
    if not loaded.trust_list.first_run_review_done:
        warn(
            "the first-run review is pending: `portwatch trust review` lists what already "
            "listens on the watched ports so you can decide what to trust"
        )
    return TrustJudge(loaded.trust_list, signer_lookup(reader_for()))


def load_services(paths: Paths) -> KnowledgeBase:
    """Port names and descriptions: ours, plus the user's ``ports.toml``."""
    knowledge, problems = KnowledgeBase.load(paths.knowledge_file)
    for problem in problems:
        warn(problem)
    return knowledge


def make_probe(args: argparse.Namespace) -> Probe:
    try:
        return create(getattr(args, "probe", "auto"))
    except (ProbeError, ValueError) as exc:
        raise CommandError(str(exc)) from exc


def listener_fields(view: ListenerView) -> dict[str, Any]:
    """The JSON fields of one listener (a contract other tools rely on)."""
    endpoint = view.listener.endpoint
    owner = view.listener.owner
    return {
        "proto": endpoint.proto.value,
        "family": endpoint.family.value,
        "address": endpoint.address,
        "port": endpoint.port,
        "reach": endpoint.reach,
        "service": view.service,
        "pid": owner.pid if owner else None,
        "process": owner.name if owner else None,
        "exe": owner.exe if owner else None,
        "sha256": owner.sha256 if owner else None,
        "user": owner.user if owner else None,
        "watched": view.watched,
        "status": view.status.value,
        # Other processes that can accept on the same socket (fork, fd passing,
        # SO_REUSEPORT); each is judged too.
        "shared_with": [
            {"pid": other.pid, "process": other.name, "exe": other.exe}
            for other in view.listener.shared_with
        ],
    }


def event_fields(
    event: PortEvent, view: ListenerView | None = None, service: str = ""
) -> dict[str, Any]:
    """The JSON object for one event: ``event``, ``time`` and the listener fields
    (``service`` is the port's name when no ``view`` carries it)."""
    base = {"event": event.kind.value, "time": iso_time(event.wall)}
    fields = listener_fields(
        view
        or ListenerView(
            event.listener,
            event.watched,
            event.status or NoTrustJudge().judge(event.listener).status,
            service,
        )
    )
    fields["watched"] = event.watched
    if event.status is not None:
        fields["status"] = event.status.value
    base.update(fields)
    if event.detail:
        base["detail"] = event.detail
    if event.previous is not None:
        base["previous_exe"] = event.previous.exe
        base["previous_pid"] = event.previous.pid
    return base


def text_row(view: ListenerView) -> str:
    """One listener as a line of text; process-supplied text shown with escapes."""
    endpoint = view.listener.endpoint
    owner = view.listener.owner
    host = f"[{endpoint.address}]" if ":" in endpoint.address else endpoint.address
    who = "-"
    if owner is not None:
        who = f"{visible(owner.name) or '?'} (pid {owner.pid}"
        who += f", {visible(owner.user)})" if owner.user else ")"
    mark = "*" if view.watched else " "
    service = f" {view.service}" if view.service else ""
    exe = f"  {visible(owner.exe)}" if owner and owner.exe else ""
    if view.listener.shared_with:
        exe += "  shared with " + ", ".join(
            f"{visible(other.name) or '?'} (pid {other.pid})" for other in view.listener.shared_with
        )
    return (
        f"{mark} {endpoint.proto.value:<3} {host + ':' + str(endpoint.port):<28}"
        f" {view.status.value:<12} {who}{service and '  [' + service.strip() + ']'}{exe}"
    )
