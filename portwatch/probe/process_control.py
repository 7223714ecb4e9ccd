"""Ending a process the user chose: ask it to stop, then force it after a grace period.

The process is named by its pid *and* start time, so a pid the OS has since handed to
another program is never signalled. The outcome is one of a few plain answers the window
can show as they are (access denied says what to do about it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import psutil

# Time the program gets to close its files and sockets before it is forced to stop.
DEFAULT_GRACE_S = 3.0
# Start times read at different moments may differ by rounding; a reused pid differs by far more.
_START_TIME_SLACK_S = 0.5


class EndOutcome(str, enum.Enum):
    TERMINATED = "terminated"
    KILLED = "killed"
    GONE = "gone"
    REPLACED = "replaced"
    DENIED = "denied"
    STILL_RUNNING = "still running"
    FAILED = "failed"


@dataclass(frozen=True)
class EndResult:
    outcome: EndOutcome
    message: str

    @property
    def ended(self) -> bool:
        return self.outcome in (EndOutcome.TERMINATED, EndOutcome.KILLED, EndOutcome.GONE)


def _denied(pid: int) -> EndResult:
    return EndResult(
        EndOutcome.DENIED,
        f"Access denied: process {pid} belongs to another user. Only that user or an "
        "administrator (for example portwatch run with sudo) can end it.",
    )


def end_process(
    pid: int, create_time: float | None = None, grace_s: float = DEFAULT_GRACE_S
) -> EndResult:
    """Send the polite stop signal (SIGTERM; TerminateProcess on Windows), wait up to
    ``grace_s`` seconds, then force it (SIGKILL). Never raises for the usual cases."""
    try:
        process = psutil.Process(pid)
        if create_time is not None and abs(process.create_time() - create_time) > (
            _START_TIME_SLACK_S
        ):
            return EndResult(
                EndOutcome.REPLACED,
                f"Process {pid} has already ended; its number now belongs to another program, "
                "which was left alone.",
            )
        process.terminate()
        try:
            process.wait(timeout=grace_s)
            return EndResult(EndOutcome.TERMINATED, f"Process {pid} stopped when asked.")
        except psutil.TimeoutExpired:
            pass
        process.kill()
        try:
            process.wait(timeout=grace_s)
        except psutil.TimeoutExpired:
            return EndResult(
                EndOutcome.STILL_RUNNING,
                f"Process {pid} was forced to stop but is still running after "
                f"{grace_s:g} s (it may be stuck in the kernel).",
            )
        return EndResult(
            EndOutcome.KILLED,
            f"Process {pid} did not stop within {grace_s:g} s and was forced to stop.",
        )
    except psutil.NoSuchProcess:
        return EndResult(EndOutcome.GONE, f"Process {pid} had already ended.")
    except psutil.AccessDenied:
        return _denied(pid)
    except PermissionError:
        return _denied(pid)
    except OSError as exc:
        return EndResult(EndOutcome.FAILED, f"Could not end process {pid}: {exc.strerror or exc}")
