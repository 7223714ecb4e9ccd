"""Loaded by the Windows lane's Python under Wine only; never shipped, never on a real Windows.

Wine 8 does not implement NtQuerySystemInformation(SystemProcessIdInformation), which
psutil's Windows ``exe()`` calls, so every ``exe()`` raises WinError 87. This falls back to
QueryFullProcessImageNameW, the call Windows itself offers for the same answer, so the
identity code's Windows branch can run. Any other error is passed through unchanged.
"""

from __future__ import annotations

import ctypes
import ctypes.wintypes
import os


def _patch() -> None:
    try:
        import psutil._pswindows as pswindows
    except ImportError:
        return
    original = pswindows.cext.proc_exe

    def proc_exe(pid: int) -> str:
        try:
            return str(original(pid))
        except OSError as exc:
            if getattr(exc, "winerror", None) != 87:
                raise
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            raise PermissionError(13, "OpenProcess failed")
        try:
            buffer = ctypes.create_unicode_buffer(32768)
            size = ctypes.wintypes.DWORD(32768)
            if not kernel32.QueryFullProcessImageNameW(handle, 0, buffer, ctypes.byref(size)):
                raise OSError(ctypes.get_last_error(), "QueryFullProcessImageNameW failed")
            return buffer.value
        finally:
            kernel32.CloseHandle(handle)

    pswindows.cext.proc_exe = proc_exe


if os.environ.get("PORTWATCH_WINE_LANE") == "1":
    _patch()
