"""What started a process, read from its control group (Linux ``/proc/<pid>/cgroup``).

systemd puts every service, scope and user session in a control group named after
it, and container engines put each container in one named after the container; the
path names who started the process. Only the text is read here (no files): the
probe passes the contents in.
"""

from __future__ import annotations

import re

_HEX_ID = re.compile(r"[0-9a-f]{12,64}")
_POD = re.compile(r"pod([0-9a-fA-F_-]{8,})")
_SCOPE_ID = re.compile(
    r"^(docker|libpod|cri-containerd|crio|containerd|nerdctl)-([0-9a-f]{12,64})\.scope$"
)
# A unit started per connection by a socket with Accept=yes: "sshd@3-10.0.0.1:22-….service".
_PER_CONNECTION = re.compile(r"^(?P<name>[^@]+)@\d+-[^-]+-.+\.service$")
_SESSION = re.compile(r"^session-(?P<id>[^.]+)\.scope$")
_USER_SLICE = re.compile(r"^user-(?P<uid>\d+)\.slice$")
_USER_MANAGER = re.compile(r"^user@(?P<uid>\d+)\.service$")
_CRON_UNITS = frozenset({"cron.service", "crond.service", "cronie.service"})
_ENGINES = {
    "docker": "docker",
    "libpod": "podman",
    "cri-containerd": "containerd",
    "containerd": "containerd",
    "nerdctl": "containerd",
    "crio": "CRI-O",
}


def cgroup_path(text: str) -> str | None:
    """The process's control group: the unified (v2) line, else systemd's v1 hierarchy
    (a hybrid host keeps the unified one empty, at "/")."""
    unified = named = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            unified = path.strip()
        elif controllers == "name=systemd":
            named = path.strip()
    if unified and unified != "/":
        return unified
    return named or unified


def started_by(text: str) -> str | None:
    """``systemd unit nginx.service``, ``docker container 3f4e…``, ``user session 2 (uid
    1000)``… from ``/proc/<pid>/cgroup`` contents; None when the path names nobody."""
    path = cgroup_path(text)
    if not path or path == "/":
        return None
    parts = [p for p in path.split("/") if p]
    container = _container(parts)
    if container is not None:
        return container
    uid = None
    for index, part in enumerate(parts):
        slice_match = _USER_SLICE.match(part)
        if slice_match:
            uid = slice_match.group("uid")
        session = _SESSION.match(part)
        if session:
            return f"user session {session.group('id')}" + (f" (uid {uid})" if uid else "")
        manager = _USER_MANAGER.match(part)
        if manager:
            units = [p for p in parts[index + 1 :] if p.endswith((".service", ".scope"))]
            if units:
                return f"user unit {units[-1]} (uid {manager.group('uid')})"
            return f"systemd user manager (uid {manager.group('uid')})"
    if parts == ["init.scope"]:
        return "systemd (init)"
    units = [p for p in parts if p.endswith((".service", ".scope", ".socket", ".mount"))]
    if units:
        unit = units[0] if units[0].endswith(".service") else units[-1]
        per_connection = _PER_CONNECTION.match(unit)
        if per_connection:
            return f"systemd socket {per_connection.group('name')}.socket (unit {unit})"
        if unit in _CRON_UNITS:
            return f"cron (systemd unit {unit})"
        return f"systemd unit {unit}"
    return None


def _container(parts: list[str]) -> str | None:
    """A container (and its Kubernetes pod) named by the control group path."""
    pod = None
    for part in parts:
        match = _POD.search(part)
        if match and part.startswith(("kubepods", "pod")):
            pod = match.group(1).replace("_", "-")
    engine = ident = None
    for index, part in enumerate(parts):
        scope = _SCOPE_ID.match(part)
        if scope:
            engine, ident = _ENGINES[scope.group(1)], scope.group(2)
        elif part in ("docker", "lxc") and index + 1 < len(parts):
            following = parts[index + 1]
            if _HEX_ID.fullmatch(following):
                engine, ident = part, following
        elif pod is not None and _HEX_ID.fullmatch(part):
            ident = part  # cgroupfs driver: /kubepods/burstable/pod<uid>/<container id>
    if pod is not None:
        text = f"Kubernetes pod {pod}"
        if ident:
            text += f" (container {ident[:12]})"
        return text
    if engine is not None and ident is not None:
        return f"{engine} container {ident[:12]}"
    return None


def socket_activated(found: str | None, fdnames: str) -> str | None:
    """``found`` (the cgroup's answer) for a service its ``.socket`` unit started with
    Accept=no: systemd passes the sockets with ``LISTEN_FDNAMES``, each the socket
    unit's name unless the unit chose another (``FileDescriptorName=``).

    ``systemd unit cups.service`` + ``cups.socket`` → ``systemd socket cups.socket
    (unit cups.service)``.
    """
    names = [n for n in fdnames.split(":") if n]
    if not names:
        return found
    sockets = sorted({n for n in names if n.endswith(".socket")})
    prefix = "systemd unit "
    if not sockets:
        return f"{found}, socket-activated" if found else "socket-activated by systemd"
    units = ", ".join(sockets)
    label = "systemd socket" if len(sockets) == 1 else "systemd sockets"
    if found and found.startswith(prefix):
        return f"{label} {units} (unit {found[len(prefix) :]})"
    return f"{label} {units} ({found})" if found else f"{label} {units}"
