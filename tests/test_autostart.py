"""Start at login: real files for XDG and LaunchAgents, a fake registry for Windows."""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from platforms import needs_windows

from portwatch import APP_ID
from portwatch.config import autostart
from portwatch.config.autostart import (
    LaunchAgentAutostart,
    RegistryAutostart,
    XdgAutostart,
    exec_quote,
    for_platform,
)

REPO = Path(__file__).resolve().parents[1]
COMMAND = ["/opt/port watch/portwatch", "--minimized"]


class FakeRunKey:
    """The registry seam: a dict of value names to strings."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


class FakeApproval:
    """Task Manager's switch: binary values, an odd first byte meaning disabled."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.values.get(name)

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def test_windows_start_at_login_switched_off_in_task_manager_reads_as_off() -> None:
    # The Run value alone said "on" although Windows would not start portwatch.
    run_key, approval = FakeRunKey(), FakeApproval()
    autostart = for_platform("win32", registry=run_key, approval=approval)
    autostart.enable(["C:\\Programs\\portwatch\\portwatch.exe", "--minimized"])
    assert autostart.is_enabled()
    approval.values["portwatch"] = bytes([3]) + bytes(11)  # what Task Manager writes
    assert not autostart.is_enabled()
    approval.values["portwatch"] = bytes([2]) + bytes(11)  # switched on there again
    assert autostart.is_enabled()
    approval.values["portwatch"] = bytes([3]) + bytes(11)
    # Switching it on in portwatch clears Windows' "disabled" too, so it really starts.
    autostart.enable(["C:\\Programs\\portwatch\\portwatch.exe", "--minimized"])
    assert autostart.is_enabled() and "portwatch" not in approval.values


def _exec_split(value: str) -> list[str]:
    """Read an Exec value back the way the Desktop Entry spec describes."""
    unescaped = value.replace("\\\\", "\\")  # the string-value escape comes off first
    words: list[str] = []
    word: str | None = None
    quoted = False
    chars = iter(unescaped)
    for char in chars:
        if quoted:
            if char == "\\":
                word = (word or "") + next(chars)
            elif char == '"':
                quoted = False
            else:
                word = (word or "") + char
        elif char == '"':
            quoted = True
            word = word or ""
        elif char == " ":
            if word is not None:
                words.append(word)
            word = None
        else:
            word = (word or "") + char
    assert not quoted, f"unbalanced quotes in {value!r}"
    if word is not None:
        words.append(word)
    return [w.replace("%%", "%") for w in words]


def _exec_value(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            return line.removeprefix("Exec=")
    raise AssertionError(f"no Exec line in {path}")


# --- choosing the mechanism -----------------------------------------------------------------


def test_for_platform_picks_each_systems_mechanism(tmp_path: Path) -> None:
    registry = FakeRunKey()
    assert isinstance(for_platform("win32", registry=registry), RegistryAutostart)
    mac = for_platform("darwin", home=tmp_path)
    assert isinstance(mac, LaunchAgentAutostart)
    assert mac.location == str(tmp_path / "Library" / "LaunchAgents" / f"{APP_ID}.plist")
    linux = for_platform("linux", home=tmp_path, environ={})
    assert isinstance(linux, XdgAutostart)
    assert linux.location == str(tmp_path / ".config" / "autostart" / f"{APP_ID}.desktop")


def test_xdg_config_home_is_honoured_when_absolute(tmp_path: Path) -> None:
    chosen = for_platform("linux", home=tmp_path, environ={"XDG_CONFIG_HOME": str(tmp_path / "c")})
    assert chosen.location == str(tmp_path / "c" / "autostart" / f"{APP_ID}.desktop")
    relative = for_platform("linux", home=tmp_path, environ={"XDG_CONFIG_HOME": "rel"})
    assert relative.location.startswith(str(tmp_path / ".config"))


def test_windows_choice_does_not_need_winreg_until_used() -> None:
    # On Linux there is no winreg: choosing the Windows back-end must still work.
    chosen = for_platform("win32")
    assert "CurrentVersion\\Run" in chosen.location


# --- Linux, real files ----------------------------------------------------------------------


def test_xdg_enable_writes_a_valid_desktop_entry_and_disable_removes_it(tmp_path: Path) -> None:
    entry = for_platform("linux", home=tmp_path, environ={})
    assert not entry.is_enabled()
    entry.enable(COMMAND)
    path = tmp_path / ".config" / "autostart" / f"{APP_ID}.desktop"
    assert path.is_file()
    assert entry.is_enabled()
    assert _exec_split(_exec_value(path)) == COMMAND
    # Written through a temp file in the same folder: nothing else is left there.
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    validator = shutil.which("desktop-file-validate")
    if validator:
        result = subprocess.run([validator, str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    entry.disable()
    assert not path.exists()
    assert not entry.is_enabled()
    entry.disable()  # twice is fine


def test_xdg_enable_replaces_an_earlier_command(tmp_path: Path) -> None:
    entry = for_platform("linux", home=tmp_path, environ={})
    entry.enable(["/old/portwatch"])
    entry.enable(["/new/portwatch", "--minimized"])
    path = Path(entry.location)
    assert _exec_split(_exec_value(path)) == ["/new/portwatch", "--minimized"]


@pytest.mark.parametrize(
    "args",
    [
        ["/usr/bin/portwatch"],
        ["/home/a b/portwatch", "--data-dir", "/tmp/x y"],
        ["/p/portwatch", "100%", "$HOME", 'say "hi"', "back\\slash", "`tick`", ""],
    ],
)
def test_exec_quoting_round_trips(args: list[str]) -> None:
    assert _exec_split(exec_quote(args)) == args


def test_line_breaks_in_the_command_are_refused(tmp_path: Path) -> None:
    entry = for_platform("linux", home=tmp_path, environ={})
    with pytest.raises(ValueError, match="line break"):
        entry.enable(["/usr/bin/portwatch", "x\nHidden=true"])
    with pytest.raises(ValueError, match="needs a program"):
        entry.enable([])
    assert not Path(entry.location).exists()


@pytest.mark.parametrize(
    "switched_off", ["Hidden=true", "X-GNOME-Autostart-enabled=false", "Hidden=True"]
)
def test_an_entry_switched_off_by_the_desktop_reads_as_disabled(
    tmp_path: Path, switched_off: str
) -> None:
    entry = for_platform("linux", home=tmp_path, environ={})
    entry.enable(COMMAND)
    path = Path(entry.location)
    path.write_text(path.read_text(encoding="utf-8") + switched_off + "\n", encoding="utf-8")
    assert not entry.is_enabled()
    entry.enable(COMMAND)  # enabling again rewrites the entry switched on
    assert entry.is_enabled()


def test_unwritable_autostart_folder_raises_oserror(tmp_path: Path) -> None:
    (tmp_path / ".config").write_text("a file where a folder should be", encoding="utf-8")
    entry = for_platform("linux", home=tmp_path, environ={})
    with pytest.raises(OSError):
        entry.enable(COMMAND)
    assert not entry.is_enabled()


# --- macOS, real plist files in a temporary home -------------------------------------------


def test_launch_agent_plist_round_trip(tmp_path: Path) -> None:
    agent = for_platform("darwin", home=tmp_path)
    assert not agent.is_enabled()
    agent.enable(COMMAND)
    path = Path(agent.location)
    with path.open("rb") as handle:
        data = plistlib.load(handle)
    assert data["Label"] == APP_ID
    assert data["ProgramArguments"] == COMMAND
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] is False
    assert agent.is_enabled()
    agent.disable()
    assert not path.exists()
    assert not agent.is_enabled()


def test_launch_agent_that_is_corrupt_or_disabled_reads_as_disabled(tmp_path: Path) -> None:
    agent = for_platform("darwin", home=tmp_path)
    path = Path(agent.location)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<plist>not really")
    assert not agent.is_enabled()
    path.write_bytes(plistlib.dumps({"Label": APP_ID, "RunAtLoad": True, "Disabled": True}))
    assert not agent.is_enabled()
    agent.enable(COMMAND)
    assert agent.is_enabled()


# --- Windows, through the registry seam ----------------------------------------------------


def test_registry_run_value_round_trip() -> None:
    registry = FakeRunKey()
    run = for_platform("win32", registry=registry)
    assert not run.is_enabled()
    run.enable([r"C:\Users\A B\AppData\Local\Programs\portwatch\portwatch.exe", "--minimized"])
    assert registry.values == {
        "portwatch": r'"C:\Users\A B\AppData\Local\Programs\portwatch\portwatch.exe" --minimized'
    }
    assert run.is_enabled()
    run.disable()
    assert registry.values == {}
    assert not run.is_enabled()
    run.disable()


# --- the command to register ----------------------------------------------------------------


def test_default_command_for_frozen_and_python_installs(tmp_path: Path) -> None:
    assert autostart.default_command(frozen=True, executable="/opt/pw/portwatch") == [
        "/opt/pw/portwatch",
        "--minimized",
    ]
    assert autostart.default_command(
        frozen=False, executable="/usr/bin/python3", platform="linux"
    ) == ["/usr/bin/python3", "-m", "portwatch", "--minimized"]
    assert autostart.default_command(frozen=True, executable="/w/portwatch-cli.exe") == [
        str(Path("/w/portwatch.exe")),
        "--minimized",
    ]
    python = tmp_path / "python.exe"
    (tmp_path / "pythonw.exe").write_bytes(b"")
    assert autostart.default_command(frozen=False, executable=str(python), platform="win32")[
        0
    ] == str(tmp_path / "pythonw.exe")


def test_windows_installer_writes_the_same_run_value_the_app_reads() -> None:
    # The setup program's "start at login" box and the Settings switch must be one setting.
    script = (REPO / "installer" / "windows" / "portwatch.nsi").read_text(encoding="utf-8")
    defines = dict(re.findall(r'^!define (\w+) "([^"]*)"', script, re.MULTILINE))
    assert defines["RUN_KEY"] == autostart.RUN_KEY_PATH
    assert defines["APP_NAME"] == RegistryAutostart(FakeRunKey()).location.rsplit("\\", 1)[1]
    assert 'WriteRegStr HKCU "${RUN_KEY}" "${APP_NAME}"' in script
    assert 'DeleteRegValue HKCU "${RUN_KEY}" "${APP_NAME}"' in script


@needs_windows
def test_task_managers_switch_is_read_from_the_real_registry() -> None:
    import winreg

    from portwatch.config.autostart import (
        STARTUP_APPROVED_PATH,
        WinregRunKey,
        WinregStartupApproved,
    )

    name = f"portwatch-test-{os.getpid()}"
    autostart = RegistryAutostart(WinregRunKey(), name, approval=WinregStartupApproved())
    try:
        autostart.enable(["C:\\Programs\\portwatch\\portwatch.exe", "--minimized"])
        assert autostart.is_enabled()
        with winreg.CreateKeyEx(
            winreg.HKEY_CURRENT_USER, STARTUP_APPROVED_PATH, 0, winreg.KEY_SET_VALUE
        ) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_BINARY, bytes([3]) + bytes(11))
        assert not autostart.is_enabled()
        autostart.enable(["C:\\Programs\\portwatch\\portwatch.exe", "--minimized"])
        assert autostart.is_enabled()
        assert WinregStartupApproved().get(name) is None
    finally:
        autostart.disable()
        WinregStartupApproved().delete(name)
