"""By-hand checks: the commands a user can run to see who holds a port.

Generated rather than written into every entry so that they are uniform, always name
the exact port (a range member gets its own number), and cover the protocols the
description is about.
"""

from __future__ import annotations

from portwatch.core.types import Proto
from portwatch.knowledge.model import Check

LINUX = "Linux"
MACOS = "macOS"
WINDOWS = "Windows"
REMOTE = "From another machine"

PLATFORMS = (LINUX, MACOS, WINDOWS, REMOTE)


def windows_netstat(port: int) -> str:
    """netstat filtered to the exact local or remote port: a bare ``findstr :PORT`` would
    also match longer ports (:36530 for 3653) and process IDs."""
    return f'netstat -ano | findstr /C:":{port} "'


def quick_command(port: int, platform: str) -> str:
    """The one command a user can run by hand, without admin rights, to see who holds
    ``port`` on ``platform`` (a ``sys.platform`` value): what the side panel copies."""
    if platform.startswith("win"):
        return windows_netstat(port)
    if platform == "darwin":
        return f"lsof -nP -i :{port}"
    return f"ss -ltnup 'sport = :{port}'"


def checks_for(port: int, protocols: tuple[Proto, ...]) -> tuple[Check, ...]:
    """The by-hand checks for ``port`` on ``protocols``, one :class:`Check` per platform."""
    tcp = Proto.TCP in protocols
    udp = Proto.UDP in protocols
    # ss filters on the exact port; `grep 3321` would also match 33210 or a pid.
    ss_flags = "-" + ("t" if tcp else "") + ("u" if udp else "") + "lnp"
    linux = [f"sudo ss {ss_flags} 'sport = :{port}'"]
    mac: list[str] = []
    windows = [windows_netstat(port)]
    remote: list[str] = []
    if tcp:
        linux.append(f"sudo lsof -nP -iTCP:{port} -sTCP:LISTEN")
        mac.append(f"sudo lsof -nP -iTCP:{port} -sTCP:LISTEN")
        mac.append(f"netstat -an -p tcp | grep '[.]{port} '")
        windows.append(f"Get-NetTCPConnection -LocalPort {port} -State Listen")
        remote.append(f"nmap -sT -p {port} HOST")
    if udp:
        linux.append(f"sudo lsof -nP -iUDP:{port}")
        mac.append(f"sudo lsof -nP -iUDP:{port}")
        mac.append(f"netstat -an -p udp | grep '[.]{port} '")
        windows.append(f"Get-NetUDPEndpoint -LocalPort {port}")
        remote.append(f"sudo nmap -sU -p {port} HOST")
    remote_note = "Replace HOST with the machine's address. A socket bound to 127.0.0.1 or ::1 "
    remote_note += "cannot be seen from outside; a firewall can hide the rest."
    if udp:
        remote_note += " UDP scans often answer 'open|filtered': no reply proves nothing."
    return (
        Check(
            LINUX,
            tuple(linux),
            "Without sudo, ss and lsof only name the processes you own.",
        ),
        Check(MACOS, tuple(mac), "Without sudo, lsof only lists your own processes."),
        Check(
            WINDOWS,
            tuple(windows),
            "The netstat line ends with the process ID (PID), and OwningProcess in the "
            'PowerShell (Get-Net*) lines is the same number; `tasklist /FI "PID eq 1234"` '
            "with that number in place of 1234 names the program. Run as administrator "
            "to see every process.",
        ),
        Check(REMOTE, tuple(remote), remote_note),
    )
