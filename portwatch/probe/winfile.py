"""Windows file times that ``os.stat`` does not give: NTFS's change time.

On Windows, Python's ``st_ctime`` is the file's *creation* time, which anyone who can write
the file can set (``SetFileTime``), and which writing to the file does not move. NTFS keeps
a real change time too (``ChangeTime``, moved by every write and metadata change, and not
settable through the Win32 API); only ``GetFileInformationByHandleEx`` reads it.
"""

from __future__ import annotations

import ctypes
import sys

_FILE_BASIC_INFO_CLASS = 0
# Windows FILETIME ticks (100 ns since 1601) to Unix nanoseconds.
_EPOCH_DIFFERENCE_TICKS = 116_444_736_000_000_000


class _FileBasicInfo(ctypes.Structure):
    _fields_ = [
        ("CreationTime", ctypes.c_int64),
        ("LastAccessTime", ctypes.c_int64),
        ("LastWriteTime", ctypes.c_int64),
        ("ChangeTime", ctypes.c_int64),
        ("FileAttributes", ctypes.c_uint32),
    ]


def _unix_ns(ticks: int) -> int:
    return (ticks - _EPOCH_DIFFERENCE_TICKS) * 100


def file_times_ns(fd: int) -> tuple[int, int] | None:
    """(creation, change) times of an open file in Unix ns; None off Windows or on error."""
    if sys.platform != "win32":
        return None
    import msvcrt

    try:
        handle = msvcrt.get_osfhandle(fd)
    except OSError:
        return None
    info = _FileBasicInfo()
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    function = kernel32.GetFileInformationByHandleEx
    function.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
    function.restype = ctypes.c_int
    if not function(handle, _FILE_BASIC_INFO_CLASS, ctypes.byref(info), ctypes.sizeof(info)):
        return None
    return _unix_ns(info.CreationTime), _unix_ns(info.ChangeTime)
