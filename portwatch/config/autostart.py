"""Start portwatch when the user logs in: one small API over each system's own mechanism.

- Windows: a value named ``portwatch`` under
  ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`` (per user, no admin rights).
  The registry is reached through :class:`RunKey`, a seam: the real one
  (:class:`WinregRunKey`) imports ``winreg`` only when used, tests pass their own.
- macOS: a LaunchAgent ``~/Library/LaunchAgents/<APP_ID>.plist`` with ``RunAtLoad``. launchd reads
  it at the next login; enabling does not start a second copy now.
- Linux and other XDG desktops: ``$XDG_CONFIG_HOME/autostart/<APP_ID>.desktop`` (default
  ``~/.config``). Desktops that switch an entry off by editing it (``Hidden=true``,
  ``X-GNOME-Autostart-enabled=false``) are read as "not enabled".

Use from the Settings dialog::

    autostart = for_platform()
    checkbox.setChecked(autostart.is_enabled())
    ...
    autostart.enable(default_command()) if checked else autostart.disable()

``enable`` and ``disable`` raise ``OSError`` (with the system's reason) when the file or registry
value cannot be written; show that to the user. Files are written atomically.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol
from xml.parsers.expat import ExpatError

from portwatch import APP_ID, APP_NAME
from portwatch.config import atomic
from portwatch.paths import xdg_dir

RUN_KEY_PATH = r"Software\Microsoft\Windows\CurrentVersion\Run"
# Where Task Manager's Startup apps (and Settings > Apps > Startup) keep their own switch for
# each Run value: binary, an odd first byte meaning "disabled"; no value means enabled.
STARTUP_APPROVED_PATH = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"


def default_command(
    *,
    frozen: bool | None = None,
    executable: str | None = None,
    platform: str = sys.platform,
) -> list[str]:
    """The command that starts this copy of portwatch hidden in the tray.

    A frozen build (PyInstaller) runs its own executable; a Python install runs
    ``python -m portwatch`` with the interpreter in use (``pythonw.exe`` on Windows, so no
    console window opens at login).
    """
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    executable = executable or sys.executable
    if frozen:
        # The Windows build has a console twin, portwatch-cli.exe; login must start the
        # windowed portwatch.exe beside it, or a console window would open at every login.
        program = Path(executable)
        if program.name.lower() == "portwatch-cli.exe":
            executable = str(program.with_name("portwatch.exe"))
        return [executable, "--minimized"]
    if platform == "win32":
        windowless = Path(executable).with_name("pythonw.exe")
        if windowless.is_file():
            executable = str(windowless)
    return [executable, "-m", "portwatch", "--minimized"]


class Autostart(ABC):
    """Whether portwatch starts at login, and switching it on or off for the current user."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the setting lives, in words a user can look up (a path or a registry value)."""

    @abstractmethod
    def is_enabled(self) -> bool:
        """True if portwatch is set to start at the next login."""

    @abstractmethod
    def enable(self, command: Sequence[str]) -> None:
        """Start ``command`` (program and arguments) at login; replaces an earlier command."""

    @abstractmethod
    def disable(self) -> None:
        """Stop starting at login. Doing it twice is not an error."""


def _check_command(command: Sequence[str]) -> list[str]:
    args = [str(arg) for arg in command]
    if not args or not args[0]:
        raise ValueError("the start-at-login command needs a program")
    for arg in args:
        # Every format below is line based; a line break would smuggle in new keys.
        if "\n" in arg or "\r" in arg or "\0" in arg:
            raise ValueError(f"a start-at-login argument contains a line break: {arg!r}")
    return args


# --- Windows ---------------------------------------------------------------------------------


class RunKey(Protocol):
    """String values under the current user's ``...\\CurrentVersion\\Run`` registry key."""

    def get(self, name: str) -> str | None:
        """The value ``name``, or None if it does not exist."""
        ...

    def set(self, name: str, value: str) -> None:
        """Create or replace the value ``name`` (REG_SZ)."""
        ...

    def delete(self, name: str) -> None:
        """Remove the value ``name``; no error if it does not exist."""
        ...


_NOT_WINDOWS = "the Windows registry is only available on Windows"


class WinregRunKey:
    """The real :class:`RunKey`, through ``winreg`` (Windows only)."""

    def __init__(self, key_path: str = RUN_KEY_PATH) -> None:
        self._key_path = key_path

    def get(self, name: str) -> str | None:
        if sys.platform != "win32":
            raise OSError(_NOT_WINDOWS)
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, self._key_path) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, name: str, value: str) -> None:
        if sys.platform != "win32":
            raise OSError(_NOT_WINDOWS)
        import winreg

        with winreg.CreateKeyEx(
            winreg.HKEY_CURRENT_USER, self._key_path, 0, winreg.KEY_SET_VALUE
        ) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

    def delete(self, name: str) -> None:
        if sys.platform != "win32":
            raise OSError(_NOT_WINDOWS)
        import winreg

        try:
            with winreg.OpenKey(
                winreg.HKEY_CURRENT_USER, self._key_path, 0, winreg.KEY_SET_VALUE
            ) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            pass


class ApprovalKey(Protocol):
    """Binary values under ``...\\Explorer\\StartupApproved\\Run`` (Windows' own switch)."""

    def get(self, name: str) -> bytes | None:
        """The value ``name``, or None if it does not exist."""
        ...

    def delete(self, name: str) -> None:
        """Remove the value ``name``; no error if it does not exist."""
        ...


class WinregStartupApproved:
    """The real :class:`ApprovalKey`, through ``winreg`` (Windows only)."""

    def get(self, name: str) -> bytes | None:
        if sys.platform != "win32":
            raise OSError(_NOT_WINDOWS)
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, STARTUP_APPROVED_PATH) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return bytes(value) if isinstance(value, (bytes, bytearray)) else None

    def delete(self, name: str) -> None:
        if sys.platform != "win32":
            raise OSError(_NOT_WINDOWS)
        import winreg

        try:
            with winreg.OpenKey(
                winreg.HKEY_CURRENT_USER, STARTUP_APPROVED_PATH, 0, winreg.KEY_SET_VALUE
            ) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            pass


def _switched_off(approved: bytes | None) -> bool:
    return approved is not None and len(approved) > 0 and bool(approved[0] & 1)


class RegistryAutostart(Autostart):
    """Windows: a value in ``HKCU\\...\\CurrentVersion\\Run`` holding the command line.

    Windows starts it only while Task Manager's switch for it (``approval``) is not off: the
    app's switch shows "off" then, and turning it on clears Windows' "disabled" too.
    """

    def __init__(
        self, run_key: RunKey, value_name: str = APP_NAME, approval: ApprovalKey | None = None
    ) -> None:
        self._run_key = run_key
        self._name = value_name
        self._approval = approval

    @property
    def location(self) -> str:
        return f"HKEY_CURRENT_USER\\{RUN_KEY_PATH}\\{self._name}"

    def is_enabled(self) -> bool:
        if not self._run_key.get(self._name):
            return False
        return self._approval is None or not _switched_off(self._approval.get(self._name))

    def enable(self, command: Sequence[str]) -> None:
        # list2cmdline quotes the way the Windows C runtime parses arguments back.
        self._run_key.set(self._name, subprocess.list2cmdline(_check_command(command)))
        if self._approval is not None and _switched_off(self._approval.get(self._name)):
            self._approval.delete(self._name)

    def disable(self) -> None:
        self._run_key.delete(self._name)

    def command_line(self) -> str | None:
        """The registered command line, as Windows will run it (None if not enabled)."""
        return self._run_key.get(self._name)


# --- macOS -----------------------------------------------------------------------------------


def _read_only_volume(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return True  # not there (or not knowable): it will not be there at login either


def _refuse_vanishing_path(program: str) -> None:
    """macOS: refuse a program path that will not exist at the next login.

    Run from the mounted disk image it is under ``/Volumes/`` on a read-only volume (an
    external drive, which stays, is writable); run from a quarantined download, Gatekeeper's
    App Translocation runs a read-only copy at a random path. Both are gone after a restart,
    and launchd would silently start nothing.
    """
    on_image = program.startswith("/Volumes/") and _read_only_volume(program)
    if on_image or "/AppTranslocation/" in program:
        raise ValueError(
            "portwatch is running from the disk image or from a temporary copy macOS made "
            f"({program}); move portwatch.app to the Applications folder, start it from "
            "there, and switch start at login on again"
        )


class LaunchAgentAutostart(Autostart):
    """macOS: ``~/Library/LaunchAgents/<APP_ID>.plist`` run by launchd at login."""

    def __init__(self, home: Path, label: str = APP_ID) -> None:
        self._label = label
        self.path = Path(home) / "Library" / "LaunchAgents" / f"{label}.plist"

    @property
    def location(self) -> str:
        return str(self.path)

    def is_enabled(self) -> bool:
        try:
            with self.path.open("rb") as handle:
                agent = plistlib.load(handle)
        except (OSError, ValueError, ExpatError):
            # Unreadable or corrupt (plistlib raises either): launchd would not run it either.
            return False
        return (
            isinstance(agent, dict)
            and agent.get("RunAtLoad") is True
            and not agent.get("Disabled", False)
        )

    def enable(self, command: Sequence[str]) -> None:
        args = _check_command(command)
        _refuse_vanishing_path(args[0])
        agent = {
            "Label": self._label,
            "ProgramArguments": args,
            "RunAtLoad": True,
            # Start once per login, in the user's graphical session; never restart on quit.
            "KeepAlive": False,
            "LimitLoadToSessionType": "Aqua",
            "ProcessType": "Interactive",
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(self.path, plistlib.dumps(agent, fmt=plistlib.FMT_XML))

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)


# --- Linux and other XDG desktops -----------------------------------------------------------

# Characters that force an Exec argument into double quotes (Desktop Entry spec, "The Exec key").
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def exec_quote(args: Sequence[str]) -> str:
    """``args`` as a desktop-entry ``Exec`` value (quoted per the spec, ``%`` doubled)."""
    words = []
    for arg in _check_command(args):
        word = arg.replace("%", "%%")
        if not word or any(char in _EXEC_RESERVED for char in word):
            for char in ("\\", '"', "`", "$"):
                word = word.replace(char, "\\" + char)
            word = f'"{word}"'
        # The Exec value is itself a string value, whose own escape for a backslash is "\\".
        words.append(word.replace("\\", "\\\\"))
    return " ".join(words)


class XdgAutostart(Autostart):
    """XDG desktops: ``$XDG_CONFIG_HOME/autostart/<APP_ID>.desktop``."""

    def __init__(self, config_home: Path, app_id: str = APP_ID) -> None:
        self.path = Path(config_home) / "autostart" / f"{app_id}.desktop"

    @property
    def location(self) -> str:
        return str(self.path)

    def is_enabled(self) -> bool:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        entry = _desktop_entry_keys(text)
        if entry.get("Hidden", "false").strip().lower() == "true":
            return False
        return entry.get("X-GNOME-Autostart-enabled", "true").strip().lower() != "false"

    def enable(self, command: Sequence[str]) -> None:
        text = "\n".join(
            [
                "[Desktop Entry]",
                "Type=Application",
                f"Name={APP_NAME}",
                "Comment=Watch network ports and alert when an untrusted program takes one",
                f"Exec={exec_quote(command)}",
                f"Icon={APP_ID}",
                "Terminal=false",
                "X-GNOME-Autostart-enabled=true",
                "",
            ]
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.path, text)

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)


def _desktop_entry_keys(text: str) -> dict[str, str]:
    """Keys of the ``[Desktop Entry]`` group (later groups and comments ignored)."""
    keys: dict[str, str] = {}
    in_entry = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            in_entry = line == "[Desktop Entry]"
        elif in_entry and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys[key.strip()] = value
    return keys


# --- choosing ---------------------------------------------------------------------------------


def for_platform(
    platform: str = sys.platform,
    home: Path | None = None,
    registry: RunKey | None = None,
    environ: Mapping[str, str] | None = None,
    approval: ApprovalKey | None = None,
) -> Autostart:
    """The start-at-login mechanism for ``platform`` (default: this system).

    ``home`` defaults to the user's home folder, ``registry`` and ``approval`` to the real
    Windows registry (a test's own ``registry`` comes without ``approval`` unless it passes
    one) and ``environ`` (for ``XDG_CONFIG_HOME``) to ``os.environ``; tests pass their own.
    """
    if platform == "win32":
        if registry is None:
            registry = WinregRunKey()
            approval = approval if approval is not None else WinregStartupApproved()
        return RegistryAutostart(registry, approval=approval)
    home = Path(home) if home is not None else Path.home()
    if platform == "darwin":
        return LaunchAgentAutostart(home)
    environ = os.environ if environ is None else environ
    return XdgAutostart(xdg_dir(environ, "XDG_CONFIG_HOME", home / ".config"))
