"""What a port is for: the knowledge base (curated + the user's file + OS services)."""

from __future__ import annotations

import logging
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portwatch.core.types import Proto

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PortDescription:
    """A port's description: rich text from the knowledge base, or a plain sentence."""

    html: str | None = None
    plain: str = ""


def os_service_name(port: int, proto: Proto) -> str:
    """The name in the OS services database (``/etc/services``), or ""."""
    try:
        return socket.getservbyport(port, proto.value)
    except (OSError, OverflowError):
        return ""


def check_command(port: int, platform: str = sys.platform) -> str:
    """The command a user can run by hand to see who holds ``port`` (the knowledge base's)."""
    from portwatch.knowledge.checks import quick_command

    return quick_command(port, platform)


class PortNames:
    """Names and descriptions of ports, from knowledge (if present) and the OS."""

    def __init__(self, knowledge: Any = None) -> None:
        self._knowledge = knowledge

    @classmethod
    def load(cls, user_file: Path | None) -> tuple[PortNames, list[str]]:
        """Load the knowledge base (with the user's own file); problems are for a banner."""
        from portwatch.knowledge import KnowledgeBase

        try:
            kb, problems = KnowledgeBase.load(user_file)
        except Exception as exc:  # a broken data file must not stop the app
            log.warning("cannot load port descriptions: %s", exc)
            return cls(None), [f"port descriptions could not be loaded: {exc}"]
        return cls(kb), [str(p) for p in problems]

    def service_name(self, port: int, proto: Proto) -> str:
        """A short name for the port. The knowledge base already falls back to the OS
        services database (with its own cache and lock, since both threads ask);
        without it, the OS database alone."""
        if self._knowledge is not None:
            try:
                return str(self._knowledge.service_name(port, proto) or "")
            except Exception:
                log.exception("knowledge lookup failed for %s/%s", port, proto)
        return os_service_name(port, proto)

    def describe(self, port: int, proto: Proto | None) -> PortDescription:
        """The side panel's description of ``port`` (``proto`` None means either)."""
        protos = (proto,) if proto is not None else (Proto.TCP, Proto.UDP)
        if self._knowledge is not None:
            from portwatch.knowledge import render

            # The knowledge base's own order picks what to show: one description in
            # full, and a line each for what the other protocol adds.
            try:
                full, lesser = self._knowledge.describe(port, protos)
            except Exception:
                log.exception("describing %s failed", port)
            else:
                if full:
                    shown = full[0].iana
                    extra = "".join(render.brief_html(info, shown) for info in lesser)
                    return PortDescription(html=render.to_html(full[0]) + extra)
        names = {p: os_service_name(port, p) for p in protos}
        known = {p: n for p, n in names.items() if n}
        if not known:
            return PortDescription(
                plain=f"Port {port} has no registered name in this computer's services list. "
                "portwatch has no description of it yet."
            )
        listed = ", ".join(f"{name} ({p})" for p, name in known.items())
        return PortDescription(
            plain=f"Registered name in this computer's services list: {listed}. "
            "portwatch has no longer description of it yet."
        )
