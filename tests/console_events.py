"""Windows console control events sent to one child process, the way Windows delivers them.

Windows delivers Ctrl+C, Ctrl+Break, a closed console, logoff and shutdown by starting a
thread in the process at ``kernelbase!CtrlRoutine`` with the event as its argument; that
routine calls the handlers the program registered with ``SetConsoleCtrlHandler``. This starts
the same thread from outside (``CreateRemoteThread``), so a test reaches the child's real,
registered handler chain without a console window to close, and without
``GenerateConsoleCtrlEvent``, which Wine 8 cannot do (it fails with ERROR_INVALID_ACCESS).
System DLLs sit at the same address in every process of a boot, so the address is this one's.
"""

from __future__ import annotations

import ctypes
import sys

# wincon.h
CTRL_C_EVENT = 0
CTRL_BREAK_EVENT = 1
CTRL_CLOSE_EVENT = 2
CTRL_SHUTDOWN_EVENT = 6

_PROCESS_CREATE_THREAD = 0x0002
_PROCESS_VM_OPERATION = 0x0008
_PROCESS_VM_WRITE = 0x0020
_PROCESS_VM_READ = 0x0010
_PROCESS_QUERY_INFORMATION = 0x0400


def deliver(pid: int, event: int) -> None:
    """Start ``CtrlRoutine(event)`` in process ``pid``; raise OSError when Windows refuses."""
    if sys.platform != "win32":
        raise OSError("console control events are Windows'")
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernelbase = ctypes.WinDLL("kernelbase", use_last_error=True)
    routine = ctypes.cast(kernelbase.CtrlRoutine, ctypes.c_void_p).value
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    kernel32.CreateRemoteThread.restype = wintypes.HANDLE
    kernel32.CreateRemoteThread.argtypes = [
        wintypes.HANDLE,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_void_p,
        ctypes.c_void_p,
        wintypes.DWORD,
        ctypes.c_void_p,
    ]
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    access = (
        _PROCESS_CREATE_THREAD
        | _PROCESS_VM_OPERATION
        | _PROCESS_VM_WRITE
        | _PROCESS_VM_READ
        | _PROCESS_QUERY_INFORMATION
    )
    process = kernel32.OpenProcess(access, False, pid)
    if not process:
        raise ctypes.WinError(ctypes.get_last_error())
    try:
        # The handler may wait for the child's final flush: not waited for here.
        thread = kernel32.CreateRemoteThread(process, None, 0, routine, event, 0, None)
        if not thread:
            raise ctypes.WinError(ctypes.get_last_error())
        kernel32.CloseHandle(thread)
    finally:
        kernel32.CloseHandle(process)
