"""The only code that touches psutil and other OS sources of socket tables."""

from __future__ import annotations

import logging

from portwatch.probe.base import Probe, ProbeError

log = logging.getLogger(__name__)

PROBE_KINDS = ("auto", "psutil", "netlink")


def create(kind: str = "auto") -> Probe:
    """The probe for this OS: ``auto`` picks the fastest one that works here."""
    if kind not in PROBE_KINDS:
        raise ValueError(f"unknown probe {kind!r}; choose one of {', '.join(PROBE_KINDS)}")
    if kind == "netlink":
        raise ProbeError("the netlink probe is not available in this build")
    from portwatch.probe.psutil_probe import PsutilProbe

    return PsutilProbe()


__all__ = ["PROBE_KINDS", "Probe", "ProbeError", "create"]
