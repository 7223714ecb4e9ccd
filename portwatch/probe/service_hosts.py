"""Windows host processes: svchost, rundll32 and dllhost run other code, so they are no identity.

Trusting ``C:\\Windows\\System32\\svchost.exe`` on a port would trust every service DLL any
svchost hosts (installing a service DLL into svchost is a known way to persist); rundll32
runs whatever DLL its command line names and dllhost whatever COM class. Like an
interpreter's script, what they host is part of the identity:

- svchost: the service(s) it hosts, ``service NAME`` (from ``-s NAME``, or the services the
  Service Control Manager lists for the pid), with the service's DLL hashed where the
  registry names it;
- rundll32: the DLL path (hashed), ``rundll32 -`` when there is none;
- dllhost: ``clsid {GUID}`` from ``/Processid:{GUID}``.

When what a host runs cannot be read, the owner gets the hidden-script marker and is never
identified, so never trusted as the bare host.
"""

from __future__ import annotations

import ntpath
import sys
from collections.abc import Callable, Sequence
from typing import Any

from portwatch.core.identity import HIDDEN_SCRIPT

HOSTS = frozenset({"svchost", "rundll32", "dllhost"})
ServiceDll = Callable[[str], str | None]


def host_kind(exe: str) -> str | None:
    """``svchost``, ``rundll32`` or ``dllhost`` for those Windows executables; else None."""
    base = ntpath.basename(exe.replace("/", "\\")).lower()
    base = base.removesuffix(".exe")
    return base if base in HOSTS else None


def _option(argv: Sequence[str], names: tuple[str, ...]) -> str | None:
    lowered = [a.lower() for a in argv]
    for index, arg in enumerate(lowered):
        if arg in names and index + 1 < len(argv):
            return argv[index + 1]
    return None


def service_dll(service: str) -> str | None:
    """The DLL a shared-process service runs, from the registry; None elsewhere or unknown."""
    if sys.platform != "win32":
        return None
    import winreg

    key = rf"SYSTEM\CurrentControlSet\Services\{service}\Parameters"
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
            value, kind = winreg.QueryValueEx(handle, "ServiceDll")
    except OSError:
        return None
    if not isinstance(value, str):
        return None
    if kind == winreg.REG_EXPAND_SZ:
        import os

        value = os.path.expandvars(value)
    return value


def hosted(
    kind: str,
    argv: Sequence[str],
    pid: int,
    ps: Any,
    dll_of: ServiceDll = service_dll,
) -> tuple[str, str | None]:
    """What the host runs: (script-like label, file to hash or None)."""
    args = list(argv[1:])
    if kind == "svchost":
        name = _option(args, ("-s", "/s"))
        names = [name] if name else _services_of(pid, ps)
        if not names:
            return HIDDEN_SCRIPT, None
        names = sorted(set(names), key=str.lower)
        # One service: its DLL is what runs. Several share the process: each is named, and
        # none alone vouches for the others.
        dll = dll_of(names[0]) if len(names) == 1 else None
        return "service " + ", ".join(names), dll
    if kind == "rundll32":
        target = next((a for a in args if not a.startswith("-")), None)
        if not target:
            return HIDDEN_SCRIPT, None
        path = target.split(",", 1)[0].strip().strip('"')
        return path, path
    guid = next(
        (a.split(":", 1)[1] for a in args if a.lower().startswith("/processid:")),
        None,
    )
    return (f"clsid {guid}", None) if guid else (HIDDEN_SCRIPT, None)


def _services_of(pid: int, ps: Any) -> list[str]:
    services = getattr(ps, "win_service_iter", None)
    if services is None:
        return []
    names: list[str] = []
    try:
        for service in services():
            try:
                if service.pid() == pid:
                    names.append(str(service.name()))
            except (ps.Error, OSError):
                continue
    except (ps.Error, OSError):
        return []
    return names
