"""The honest fallbacks: a port only the OS services database names, or nobody does."""

from __future__ import annotations

from portwatch.core.types import Proto
from portwatch.knowledge.model import Check, PortInfo
from portwatch.knowledge.registry import Registration

_JUDGE_THE_PROGRAM = (
    "A port number says nothing reliable about the program behind it: any program can "
    "open any free port, and a port above 1023 needs no special rights. Judge the "
    "listener by its program: its path, who installed it, and whether you expected it."
)
_REACH = (
    "A listener on 127.0.0.1 or ::1 is reachable only from this computer; one on 0.0.0.0, "
    ":: or a network address may be reachable from the network unless a firewall stops it."
)


def _band(port: int) -> str:
    if port == 0:
        return "Port 0 is reserved and is not used for real traffic."
    if port < 1024:
        return (
            "It is in the well-known range (0-1023), where opening a port usually needs "
            "administrator rights."
        )
    if port < 49152:
        return "It is in IANA's registered range (1024-49151)."
    return (
        "It is in IANA's dynamic range (49152-65535), which is never registered to "
        "anyone: operating systems hand these ports out as temporary (ephemeral) ports."
    )


def registry_info(
    port: int,
    proto: Proto,
    protocols: tuple[Proto, ...],
    services: tuple[Registration, ...],
    checks: tuple[Check, ...],
    os_name: str | None,
) -> PortInfo:
    """A description from IANA's registration alone: the registry's own words, and
    what a registration does and does not tell."""
    first = services[0]
    covered = "+".join(p.value for p in protocols)
    names = ", ".join(f'"{s.name}"' for s in services)
    several = f" under {len(services)} names ({names})" if len(services) > 1 else ""
    return PortInfo(
        port=port,
        proto=proto,
        lo=port,
        hi=port,
        protocols=protocols,
        name=first.name,
        title=first.description or first.name,
        summary=(
            f"IANA registers {port}/{covered} for {first.description or first.name}"
            f"{several}. The registration reserves the number for that service; whether "
            "anything on this machine speaks it is for the program that owns the socket "
            "to show (the commands below)."
        ),
        registration="",
        usage="",
        security=(),
        checks=checks,
        related=(),
        programs=(),
        source="registry",
        os_service=os_name,
        iana=services,
    )


def os_services_info(
    port: int,
    proto: Proto,
    protocols: tuple[Proto, ...],
    os_name: str,
    checks: tuple[Check, ...],
    *,
    hint: str = "",
) -> PortInfo:
    """A description built from nothing but the OS services database's name."""
    covered = "+".join(p.value for p in protocols)
    return PortInfo(
        port=port,
        proto=proto,
        lo=port,
        hi=port,
        protocols=protocols,
        name=os_name,
        title=f"{os_name} (from this computer's services list)",
        summary=(
            f"This computer's services database names {port}/{covered} '{os_name}'. "
            "portwatch has no description of its own for this port."
        ),
        registration=(
            "The services database (/etc/services on Linux and macOS, "
            "%SystemRoot%\\System32\\drivers\\etc\\services on Windows) also holds local "
            "names IANA does not register. A name there says what the number is meant "
            "for, not what is using it on this machine. " + _band(port)
        ),
        usage=(
            "Unknown to portwatch. The program that owns the socket is the real answer: "
            "the commands below show it. " + _band(port) + (" " + hint if hint else "")
        ),
        security=(_JUDGE_THE_PROGRAM, _REACH),
        checks=checks,
        related=(),
        programs=(),
        source="os-services",
        os_service=os_name,
    )


def unknown_info(
    port: int,
    proto: Proto,
    checks: tuple[Check, ...],
    *,
    hint: str = "",
    protocols: tuple[Proto, ...] = (),
) -> PortInfo:
    """The honest answer when neither portwatch nor the OS has a name for the port
    (on ``protocols``, by default just ``proto``)."""
    protocols = protocols or (proto,)
    covered = "+".join(p.value for p in protocols)
    return PortInfo(
        port=port,
        proto=proto,
        lo=port,
        hi=port,
        protocols=protocols,
        name="",
        title="No registered service known",
        summary=(
            f"Neither portwatch's descriptions nor this computer's services database name "
            f"{port}/{covered}. That is common: most port numbers belong to no service "
            "in particular."
        ),
        registration=_band(port),
        usage=(
            "What to do: find the program that owns the socket with the commands below, "
            "then look at that program rather than the number. Its documentation or "
            "settings usually say why it listens. You can add your own description of "
            "this port to ports.toml in portwatch's configuration folder."
            + (" " + hint if hint else "")
        ),
        security=(_JUDGE_THE_PROGRAM, _REACH),
        checks=checks,
        related=(),
        programs=(),
        source="none",
        os_service=None,
    )
