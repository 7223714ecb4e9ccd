"""Install, check and uninstall portwatch's Windows setup program silently (Windows Python).

    python scripts/windows-installer-check.py SETUP.exe [--stand-in SCRIPT]

Runs on a real Windows (the cross-platform workflow) and under Wine (the Windows lane), so
both check the same things:

1. ``SETUP /S /DESKTOP /LOGIN`` installs, per user, the program files, the Start-menu
   shortcut carrying portwatch's AppUserModelID, the desktop shortcut, start at login, the
   Settings > Apps entry and the AppUserModelID registration that names portwatch as the
   sender of its notifications, and adds the program folder (``portwatch-cli.exe``) to the
   user's PATH after the entries already there, keeping its REG_EXPAND_SZ type;
2. with portwatch running, a second ``SETUP /S`` and ``uninstall.exe /S`` both refuse
   (non-zero exit) and leave the install whole;
3. reinstalling adds the PATH entry once, never twice; ``/NOPATH`` takes it out again;
4. with portwatch stopped and start at login switched on, ``uninstall.exe /S`` removes the
   program, shortcut, Run value, Apps entry, AppUserModelID and its own PATH entry, and keeps
   the user's data and the user's other PATH entries.

The user's PATH is read with ``reg query`` (what Windows itself stores), set to a known value
with a pre-existing entry for the check, and put back afterwards.

``--stand-in SCRIPT``: the installed portwatch.exe is a Python stand-in (the lane cannot
build the frozen app), started with SCRIPT instead of ``--minimized``.
Prints one line per check, then ``installer: N passed, N failed``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

if sys.platform != "win32":
    sys.exit("windows-installer-check: needs Windows Python")

import winreg

AUMID = "io.github.portwatch.Portwatch"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
APPS_KEY = r"Software\Microsoft\Windows\CurrentVersion\Uninstall\portwatch"
AUMID_KEY = rf"Software\Classes\AppUserModelId\{AUMID}"
INSTALL = Path(os.environ["LOCALAPPDATA"]) / "Programs" / "portwatch"
SHORTCUT = (
    Path(os.environ["APPDATA"]) / "Microsoft" / "Windows" / "Start Menu" / "Programs"
) / "portwatch.lnk"


def _desktop() -> Path:
    # The shell's own answer (the Desktop may be redirected, to OneDrive for example): what
    # NSIS's $DESKTOP is.
    import ctypes

    buffer = ctypes.create_unicode_buffer(260)
    csidl_desktopdirectory = 0x10
    shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined]
    if shell32.SHGetFolderPathW(None, csidl_desktopdirectory, None, 0, buffer) == 0:
        return Path(buffer.value)
    return Path(os.environ["USERPROFILE"]) / "Desktop"


DESKTOP_SHORTCUT = _desktop() / "portwatch.lnk"
USER_DATA = Path(os.environ["APPDATA"]) / "portwatch"
TIMEOUT_S = 180
ENV_KEY = "Environment"
# The user's PATH before the install: one entry to expand (the type must stay REG_EXPAND_SZ
# for it to work) and a plain one; both must come through install and uninstall untouched.
USER_PATH_BEFORE = r"%USERPROFILE%\portwatch-check-bin;C:\portwatch-check-keep"
_REG_LINE = re.compile(r"^\s*Path\s+(REG_[A-Z_]+)(?: {4}(.*))?$", re.IGNORECASE)


# PKEY_AppUserModel_ID: format {9F4C2855-9F79-4B39-A8D0-E1D42DE1D5F3}, property 5, VT_LPWSTR.
_AUMID_FMTID = bytes.fromhex("55284c9f799f394ba8d0e1d42de1d5f3")
_AUMID_PID = 5
_VT_LPWSTR = 0x1F


def shortcut_app_id(path: Path) -> str | None:
    """The AppUserModelID stored in a .lnk file's property store, read from its bytes
    (MS-SHLLINK PropertyStoreDataBlock, MS-PROPSTORE serialized storage), so the same
    check runs on Windows and under Wine without COM."""
    data = path.read_bytes()
    start = 0
    while (at := data.find(b"1SPS" + _AUMID_FMTID, start)) >= 0:
        start = at + 1
        pos = at + 20
        while pos + 13 <= len(data):
            size, pid = struct.unpack_from("<II", data, pos)
            if size == 0 or pos + size > len(data):
                break
            vtype = struct.unpack_from("<H", data, pos + 9)[0]
            if pid == _AUMID_PID and vtype == _VT_LPWSTR:
                chars = struct.unpack_from("<I", data, pos + 13)[0]
                text = data[pos + 17 : pos + 17 + 2 * chars].decode("utf-16-le", "replace")
                return text.rstrip("\0")
            pos += size
    return None


def value(key: str, name: str) -> str | None:
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
            return str(winreg.QueryValueEx(handle, name)[0])
    except OSError:
        return None


def user_path() -> tuple[str, str] | None:
    """(type, value) of HKCU\\Environment Path as ``reg query`` shows it; None without one."""
    done = subprocess.run(
        ["reg", "query", rf"HKCU\{ENV_KEY}", "/v", "Path"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    for line in done.stdout.splitlines():
        found = _REG_LINE.match(line.rstrip("\r\n"))
        if found:
            return found.group(1).upper(), found.group(2) or ""
    return None


def set_user_path(saved: tuple[int, str] | None) -> None:
    """Put the user's PATH to ``(type, value)``, or remove it for None."""
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, ENV_KEY) as handle:
        if saved is None:
            with contextlib.suppress(FileNotFoundError):
                winreg.DeleteValue(handle, "Path")
        else:
            winreg.SetValueEx(handle, "Path", 0, saved[0], saved[1])


def saved_user_path() -> tuple[int, str] | None:
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, ENV_KEY) as handle:
            text, kind = winreg.QueryValueEx(handle, "Path")
    except OSError:
        return None
    return int(kind), str(text)


def path_problems(expect_entry: bool) -> list[str]:
    """What is wrong with the user's PATH: the entries from before must all be there, in
    their order, as REG_EXPAND_SZ; the program folder once when expected, else not at all."""
    found = user_path()
    if found is None:
        return ["no user PATH"]
    kind, text = found
    problems = [] if kind == "REG_EXPAND_SZ" else [f"PATH became {kind}"]
    entries = text.split(";")
    ours = [e for e in entries if e.rstrip("\\").lower() == str(INSTALL).lower()]
    others = [e for e in entries if e not in ours]
    if others != USER_PATH_BEFORE.split(";"):
        problems.append(f"the other entries are now {';'.join(others)!r}")
    if expect_entry and len(ours) != 1:
        problems.append(f"{INSTALL} is on PATH {len(ours)} times: {text!r}")
    if not expect_entry and ours:
        problems.append(f"{INSTALL} is still on PATH: {text!r}")
    return problems


# Wine's CreateProcess now and then fails a start with ERROR_INTERNAL_ERROR (1359)
# that a second try does not see; a real Windows does not give it for a setup program.
_WINE_SPAWN_FLAKE = 1359


def run(argv: Sequence[str]) -> int:
    try:
        return subprocess.run(list(argv), timeout=TIMEOUT_S, check=False).returncode
    except OSError as exc:
        if getattr(exc, "winerror", None) != _WINE_SPAWN_FLAKE:
            raise
        print(f"installer: note  starting {argv[0]} failed once ({exc}); trying again", flush=True)
        time.sleep(1)
        return subprocess.run(list(argv), timeout=TIMEOUT_S, check=False).returncode


def uninstall() -> int:
    # _?= runs the uninstaller in place, so this waits for it (it then stays behind itself).
    return run([str(INSTALL / "uninstall.exe"), "/S", f"_?={INSTALL}"])


class Checks:
    def __init__(self) -> None:
        self.passed = self.failed = 0

    def report(self, name: str, problems: list[str], detail: str) -> None:
        if problems:
            self.failed += 1
            print(f"installer: FAIL  {name:<32} {'; '.join(problems)}", flush=True)
        else:
            self.passed += 1
            print(f"installer: PASS  {name:<32} {detail}", flush=True)

    def limit(self, name: str, detail: str) -> None:
        print(f"installer: LIMIT {name:<32} {detail}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("setup", help="the setup program")
    parser.add_argument("--stand-in", help="a script the stand-in portwatch.exe runs")
    parser.add_argument(
        "--wine-shortcut-limit",
        action="store_true",
        help="a shortcut without a property store is Wine's limit, not a failure",
    )
    args = parser.parse_args(argv)
    original_path = saved_user_path()
    set_user_path((winreg.REG_EXPAND_SZ, USER_PATH_BEFORE))
    try:
        return check(args)
    finally:
        set_user_path(original_path)


def check(args: argparse.Namespace) -> int:
    checks = Checks()

    code = run([args.setup, "/S", "/DESKTOP", "/LOGIN"])
    problems = [] if code == 0 else [f"exit {code}"]
    for name in ("portwatch.exe", "portwatch-cli.exe", "uninstall.exe"):
        if not (INSTALL / name).is_file():
            problems.append(f"no {name}")
    if not SHORTCUT.is_file():
        problems.append("no Start-menu shortcut")
    if not value(APPS_KEY, "QuietUninstallString"):
        problems.append("no Apps entry")
    shortcut_id = shortcut_app_id(SHORTCUT) if SHORTCUT.is_file() else None
    if value(AUMID_KEY, "DisplayName") != "portwatch":
        problems.append("no AppUserModelID registration")
    checks.report("silent-install", problems, f"into {INSTALL}, shortcut, Apps entry, AUMID")
    problems = []
    if not DESKTOP_SHORTCUT.is_file():
        problems.append(f"no desktop shortcut at {DESKTOP_SHORTCUT}")
    expected_run = f'"{INSTALL / "portwatch.exe"}" --minimized'
    if value(RUN_KEY, "portwatch") != expected_run:
        problems.append(f"Run value is {value(RUN_KEY, 'portwatch')!r}")
    checks.report("silent-install-options", problems, "/DESKTOP and /LOGIN chosen without a page")
    checks.report(
        "user-path-added",
        path_problems(expect_entry=True),
        f"{INSTALL} after the user's entries, REG_EXPAND_SZ kept",
    )
    # Toasts are filed under the starting shortcut's AppUserModelID: it must be the app's.
    if shortcut_id == AUMID:
        checks.report("shortcut-app-user-model-id", [], AUMID)
    elif shortcut_id is None and args.wine_shortcut_limit:
        checks.limit("shortcut-app-user-model-id", "Wine's shell links keep no property store")
    else:
        checks.report("shortcut-app-user-model-id", [f"the shortcut carries {shortcut_id!r}"], "")

    # Start at login switched on, as the app's Settings would.
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as handle:
        command = f'"{INSTALL / "portwatch.exe"}" --minimized'
        winreg.SetValueEx(handle, "portwatch", 0, winreg.REG_SZ, command)

    scratch = Path(tempfile.mkdtemp(prefix="portwatch-installer-"))
    ready = scratch / "running"
    if args.stand_in:
        argv_running = [str(INSTALL / "portwatch.exe"), args.stand_in, str(ready)]
    else:
        argv_running = [str(INSTALL / "portwatch.exe"), "--data-dir", str(scratch), "--minimized"]
    env = dict(os.environ, PATH=f"{INSTALL / '_internal'};{os.environ.get('PATH', '')}")
    running = subprocess.Popen(argv_running, env=env)
    try:
        deadline = time.monotonic() + 60
        # The frozen app writes its lock file; the stand-in writes the file it is given.
        while time.monotonic() < deadline and not (
            ready.exists() or (scratch / "portwatch.lock").exists()
        ):
            time.sleep(0.2)
        if running.poll() is not None:
            checks.report("portwatch-running", [f"exited with {running.returncode}"], "")
        code = run([args.setup, "/S"])
        checks.report(
            "reinstall-refused-while-running",
            [] if code != 0 else ["setup exit 0 while portwatch runs"],
            f"setup exit {code}",
        )
        code = uninstall()
        problems = [] if code != 0 else ["uninstall exit 0 while portwatch runs"]
        if not (INSTALL / "portwatch.exe").is_file():
            problems.append("the program was removed")
        if not SHORTCUT.is_file():
            problems.append("the shortcut was removed")
        if not value(APPS_KEY, "QuietUninstallString"):
            problems.append("the Apps entry was removed")
        checks.report(
            "uninstall-refused-while-running", problems, f"exit {code}, install left whole"
        )
    finally:
        running.kill()
        running.wait(timeout=60)
    time.sleep(1)  # Windows releases a killed program's image a moment after it exits

    # Reinstalls: the PATH entry once however often; /NOPATH takes it out, the next install
    # puts it back.
    problems = []
    for options, expected in (([], True), (["/NOPATH"], False), ([], True), ([], True)):
        code = run([args.setup, "/S", *options])
        if code != 0:
            problems.append(f"setup /S {' '.join(options)} exit {code}")
        problems += [f"after /S {' '.join(options)}: {p}" for p in path_problems(expected)]
    checks.report("user-path-reinstall", problems, "never twice; /NOPATH removes it")
    # A PATH longer than NSIS's strings would come back cut short: it must be left alone.
    long_path = ";".join(rf"C:\portwatch-check-long\{n:04}" for n in range(80))
    kept = saved_user_path()
    set_user_path((winreg.REG_EXPAND_SZ, long_path))
    code = run([args.setup, "/S"])
    problems = [] if code == 0 else [f"setup /S exit {code}"]
    if user_path() != ("REG_EXPAND_SZ", long_path):
        problems.append("a PATH too long for the setup to hold was changed")
    set_user_path(kept)
    checks.report("user-path-too-long-untouched", problems, f"{len(long_path)} characters kept")

    USER_DATA.mkdir(parents=True, exist_ok=True)
    keep = USER_DATA / "installer-check-keep.txt"
    keep.write_text("the user's data")
    code = uninstall()
    problems = [] if code == 0 else [f"exit {code}"]
    for name in ("portwatch.exe", "portwatch-cli.exe", "_internal"):
        if (INSTALL / name).exists():
            problems.append(f"{name} left")
    if SHORTCUT.exists():
        problems.append("shortcut left")
    if DESKTOP_SHORTCUT.exists():
        problems.append("desktop shortcut left")
    if value(RUN_KEY, "portwatch") is not None:
        problems.append("Run value left (portwatch would start at login)")
    if value(APPS_KEY, "DisplayName") is not None:
        problems.append("Apps entry left")
    if value(AUMID_KEY, "DisplayName") is not None:
        problems.append("AppUserModelID left")
    if not keep.exists():
        problems.append("the user's data was removed")
    checks.report(
        "silent-uninstall",
        problems,
        "program, shortcut, Run value, Apps entry, AUMID removed; user data kept",
    )
    found = user_path()
    problems = path_problems(expect_entry=False)
    if found is not None and found[1] != USER_PATH_BEFORE:
        problems.append(f"PATH is {found[1]!r}, not {USER_PATH_BEFORE!r} as before")
    checks.report("user-path-removed", problems, "only its own entry removed; the user's kept")
    keep.unlink(missing_ok=True)
    print(f"installer: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
