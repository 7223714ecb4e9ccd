"""The only code that touches psutil and other OS sources of socket tables."""

from __future__ import annotations

import logging
import sys

from portwatch.probe.base import Probe, ProbeError

log = logging.getLogger(__name__)

PROBE_KINDS = ("auto", "psutil", "netlink")


def create(kind: str = "auto") -> Probe:
    """The probe for this OS: ``auto`` picks the fastest one that works here.

    On Linux ``auto`` is the netlink (sock_diag) probe, falling back to psutil, with a
    log line saying why, when netlink cannot be opened or fails at its first poll.
    ``netlink`` forces it and raises :class:`ProbeError` when it cannot be opened.
    """
    if kind not in PROBE_KINDS:
        raise ValueError(f"unknown probe {kind!r}; choose one of {', '.join(PROBE_KINDS)}")
    from portwatch.probe.psutil_probe import PsutilProbe

    if kind == "psutil":
        return PsutilProbe()
    if kind == "auto" and not sys.platform.startswith("linux"):
        return PsutilProbe()
    from portwatch.probe.netlink import NetlinkProbe
    from portwatch.probe.netlink.fallback import netlink_or_fallback

    if kind == "netlink":
        try:
            return NetlinkProbe()
        except OSError as exc:
            raise ProbeError(
                f"the netlink probe cannot be opened here: {exc.strerror or exc}"
            ) from exc
    return netlink_or_fallback(NetlinkProbe, PsutilProbe)


__all__ = ["PROBE_KINDS", "Probe", "ProbeError", "create"]
