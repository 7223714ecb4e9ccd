"""Start at login: the OS's own entry (Run key, LaunchAgent, XDG autostart) for portwatch.

The entry lives in the OS, not in the settings file, so what is shown is always read back
from the OS: a removal made elsewhere shows too.
"""

from __future__ import annotations

from collections.abc import Sequence

from portwatch.config.autostart import Autostart


class LoginStart:
    """Reads and writes the start-at-login entry for one command line."""

    def __init__(self, autostart: Autostart | None, command: Sequence[str]) -> None:
        self._autostart = autostart
        self._command = list(command)

    @property
    def supported(self) -> bool:
        return self._autostart is not None

    @property
    def location(self) -> str:
        return self._autostart.location if self._autostart is not None else ""

    def is_enabled(self) -> bool:
        """Whether the OS will start portwatch at login; raises OSError when unreadable."""
        return self._autostart is not None and self._autostart.is_enabled()

    def set_enabled(self, enable: bool) -> str | None:
        """Write or remove the entry; the reason it failed, or None."""
        if self._autostart is None:
            return "starting at login is not available here"
        try:
            if enable:
                self._autostart.enable(self._command)
            else:
                self._autostart.disable()
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return f"Could not update {self._autostart.location}:\n{reason}"
        return None
