"""What the commands share: loading the watch list, the probe, and listener output."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from portwatch.cli import CommandError
from portwatch.config import trustfile, watchfile
from portwatch.core.csvrows import iso_time
from portwatch.core.exposure import Exposure
from portwatch.core.text import visible
from portwatch.core.trust import TrustJudge, TrustList, review_legacy_signers
from portwatch.core.types import ListenerView, PackageInfo, PortEvent, SignerInfo
from portwatch.core.verdict import NoTrustJudge
from portwatch.core.watchlist import WatchList
from portwatch.knowledge import KnowledgeBase
from portwatch.paths import Paths
from portwatch.probe import Probe, ProbeError, create
from portwatch.probe.signature import default_verifier as signature_verifier
from portwatch.probe.signature import signer_lookup


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
    trust_list = review_signers(paths, loaded.trust_list)
    return TrustJudge(trust_list, signer_lookup(signature_verifier()))


def review_signers(paths: Paths, trust_list: TrustList) -> TrustList:
    """Re-verify signer entries that hold only a name: upgrade (and save) those that
    verify, report the others for review on stderr."""
    verifier = signature_verifier()
    updated, messages = review_legacy_signers(
        trust_list, verifier.signer if verifier.supported else None
    )
    for message in messages:
        warn(visible(message))
    if updated is not trust_list:
        try:
            trustfile.save(paths.trust_file, updated)
        except OSError as exc:
            warn(f"cannot save {paths.trust_file}: {exc.strerror or exc}")
    return updated


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
        # The device the socket is bound to (SO_BINDTODEVICE), null when none.
        "device": endpoint.device or None,
        "exposure": exposure_fields(view.listener.exposure),
        "service": view.service,
        "pid": owner.pid if owner else None,
        "process": owner.name if owner else None,
        "exe": owner.exe if owner else None,
        "sha256": owner.sha256 if owner else None,
        "user": owner.user if owner else None,
        "watched": view.watched,
        "status": view.status.value,
        "package": package_fields(owner.package if owner else None),
        "signer": signer_fields(owner.signer if owner else None),
        # Why the program running is not the file at "exe" any more (deleted or
        # replaced on disk since it started), or null.
        "replaced": owner.replaced if owner else None,
        "started_by": owner.started_by if owner else None,
        "parents": [{"process": name, "pid": pid} for name, pid in owner.parents] if owner else [],
        # Other processes that can accept on the same socket (fork, fd passing,
        # SO_REUSEPORT); each is judged too.
        "shared_with": [
            {"pid": other.pid, "process": other.name, "exe": other.exe}
            for other in view.listener.shared_with
        ],
    }


def exposure_fields(exposure: Exposure | None) -> dict[str, Any] | None:
    """Who can reach the socket: ``scope`` (local, network, public), the machine's
    addresses that reach it, and the same in words."""
    if exposure is None:
        return None
    return {
        "scope": exposure.scope,
        "summary": exposure.summary(),
        "addresses": list(exposure.addresses),
        "device": exposure.device,
        "dual_stack": exposure.dual_stack,
        "all_interfaces": exposure.everywhere,
        # What the host firewall does with the port ("firewall not checked" when its
        # rules could not be read), and whether Docker's NAT routes around it.
        "firewall": exposure.firewall_words(),
        "bypasses_firewall": exposure.bypasses_firewall,
    }


def package_fields(package: PackageInfo | None) -> dict[str, str] | None:
    """``{"name", "version"}`` of the package the executable verifiably came from."""
    if package is None:
        return None
    return {"name": package.name, "version": package.version}


def signer_fields(signer: SignerInfo | None) -> dict[str, Any] | None:
    """The verified code signer: its name for people plus what identifies it."""
    if signer is None:
        return None
    fields: dict[str, Any] = {"name": signer.label(), "platform": signer.platform}
    for key, value in (
        ("subject", signer.subject),
        ("issuer", signer.issuer),
        ("thumbprint", signer.thumbprint),
        ("team_id", signer.team_id),
    ):
        if value is not None:
            fields[key] = value
    return fields


def event_fields(
    event: PortEvent, view: ListenerView | None = None, service: str = ""
) -> dict[str, Any]:
    """The JSON object for one event: ``event``, ``time`` and the listener fields
    (``service`` is the port's name when no ``view`` carries it)."""
    base: dict[str, Any] = {"event": event.kind.value, "time": iso_time(event.wall)}
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
    if endpoint.device and "%" not in endpoint.address:
        host += f"%{visible(endpoint.device)}"  # bound to a device, spelt as ss does
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
    if owner is not None and owner.started_by:
        exe += f"  started by {visible(owner.started_by)}"
    if owner is not None and owner.replaced:
        exe += f"  REPLACED: {visible(owner.replaced)}"
    exposure = view.listener.exposure
    reach = ""
    if exposure is not None:
        reach = f"  reachable from: {visible(exposure.summary())}"
        if exposure.scope != "local":
            reach += f" ({visible(exposure.firewall_words())})"
    return (
        f"{mark} {endpoint.proto.value:<3} {host + ':' + str(endpoint.port):<28}"
        f" {view.status.value:<12} {who}{service and '  [' + service.strip() + ']'}{exe}{reach}"
    )
