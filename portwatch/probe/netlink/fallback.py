"""Choosing the netlink probe when it works, and the psutil probe when it does not."""

from __future__ import annotations

import logging
from collections.abc import Callable

from portwatch.core.types import Sample
from portwatch.core.watchlist import WatchList
from portwatch.files import ResourceShortage
from portwatch.probe.base import Probe

log = logging.getLogger(__name__)


class FirstPollFallback:
    """Polls with ``preferred``; if its first poll fails, switches to a fallback for good.

    After one good poll, later failures are the preferred probe's to report (as
    ``ProbeError``): a back-end that worked once is not silently swapped mid-run.
    """

    def __init__(self, preferred: Probe, make_fallback: Callable[[], Probe]) -> None:
        self._current = preferred
        self._make_fallback = make_fallback
        self._proven = False
        self.name = preferred.name

    def poll(self, watched: WatchList) -> Sample:
        """One reading from the preferred probe, or from the fallback once it has failed."""
        if self._proven:
            return self._current.poll(watched)
        try:
            sample = self._current.poll(watched)
        except ResourceShortage:
            raise  # this process ran short, not the netlink probe: it stays
        except Exception as exc:
            # Anything at the first poll (a refused request, a reply we cannot parse)
            # means this kernel is not one the netlink probe can read: use psutil.
            log.warning(
                "the %s probe failed at its first poll (%s: %s); using the psutil probe instead",
                self._current.name,
                type(exc).__name__,
                exc,
            )
            self._current.close()
            self._current = self._make_fallback()
            self.name = self._current.name
            self._proven = True
            return self._current.poll(watched)
        self._proven = True
        return sample

    def close(self) -> None:
        """Close whichever probe is in use."""
        self._current.close()


def netlink_or_fallback(
    make_netlink: Callable[[], Probe], make_fallback: Callable[[], Probe]
) -> Probe:
    """The netlink probe guarded by :class:`FirstPollFallback`, or the fallback at once.

    Falls back (with a log line saying why) when the netlink probe cannot even be
    opened: not Linux, netlink sockets blocked by a sandbox, sock_diag not built in.
    """
    try:
        preferred = make_netlink()
    except OSError as exc:
        log.warning(
            "kernel socket diagnostics (netlink) are not available (%s); using the psutil probe",
            exc.strerror or exc,
        )
        return make_fallback()
    return FirstPollFallback(preferred, make_fallback)
