"""The host firewall's rules, read rarely and off the poll path (Linux nftables).

``nft -j list ruleset`` needs root (CAP_NET_ADMIN): without it, or without ``nft``, the
answer is "firewall not checked" and nothing is guessed. The ruleset is read once when
first asked (so a single ``scan`` has it), then refreshed in a background thread at most
every :data:`REFRESH_S` seconds; a poll only ever takes the last reading.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from portwatch.core import firewall
from portwatch.core.exposure import NOT_CHECKED

log = logging.getLogger(__name__)

REFRESH_S = 300.0
_TIMEOUT_S = 5.0
_MAX_OUTPUT = 16 * 1024 * 1024

# Runs ``nft -j list ruleset``: (return code, output) or None when it cannot run.
RunNft = Callable[[], "tuple[int, bytes] | None"]


@dataclass(frozen=True)
class FirewallState:
    """One reading of the firewall: the rules, or why they were not read."""

    ruleset: firewall.Ruleset | None
    why_not: str = ""
    # (proto, port, families) → words: a poll asks again for every listener, and a long
    # ruleset is walked once per port, not once per poll.
    _answers: dict[tuple[str, int, frozenset[int]], str] = field(
        default_factory=dict, compare=False, repr=False
    )

    def verdict(self, proto: str, port: int, families: set[int]) -> str:
        """What the firewall does with a new connection to ``port``, in words."""
        if self.ruleset is None:
            return f"{NOT_CHECKED} ({self.why_not})" if self.why_not else NOT_CHECKED
        key = (proto, port, frozenset(families))
        found = self._answers.get(key)
        if found is None:
            if len(self._answers) > 65536:
                self._answers.clear()
            found = self._answers[key] = self.ruleset.verdict(proto, port, families)
        return found


NOT_READ = FirewallState(None)


def run_nft() -> tuple[int, bytes] | None:
    """``nft -j list ruleset`` as root; None where it cannot run."""
    nft = shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if nft is None:
        return None
    try:
        done = subprocess.run(
            [nft, "-j", "list", "ruleset"],
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("nft could not run: %s", exc)
        return None
    return done.returncode, done.stdout[:_MAX_OUTPUT]


def legacy_tables(proc: str = "/proc") -> bool:
    """True when iptables-legacy (x_tables) tables are loaded: nft does not show their
    rules, so the nftables reading alone would not be the whole firewall."""
    for name in ("ip_tables_names", "ip6_tables_names"):
        try:
            with open(f"{proc}/net/{name}", encoding="ascii", errors="replace") as handle:
                if handle.read(4096).strip():
                    return True
        except OSError:
            continue
    return False


def ufw_enabled(path: str = "/etc/ufw/ufw.conf") -> bool | None:
    """Whether ufw is set to run (its own readable setting; None: no ufw here)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(64 * 1024)
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "ENABLED":
            return value.strip().strip("'\"").lower() == "yes"
    return None


def _with_ufw(why: str, ufw: Callable[[], bool | None]) -> str:
    """The reason the rules were not read, with what ufw's own setting says."""
    enabled = ufw()
    if enabled is None:
        return why
    return f"{why}; ufw is {'enabled' if enabled else 'disabled'} in its settings"


def read_state(
    run: RunNft = run_nft,
    platform: str = sys.platform,
    legacy: Callable[[], bool] = legacy_tables,
    ufw: Callable[[], bool | None] = ufw_enabled,
) -> FirewallState:
    """One reading of the firewall, now (blocking)."""
    if not platform.startswith("linux"):
        return FirewallState(None, "only nftables on Linux is read")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return FirewallState(None, _with_ufw("reading the rules needs root", ufw))
    result = run()
    if result is None:
        return FirewallState(None, _with_ufw("nft is not installed", ufw))
    code, output = result
    if code != 0:
        return FirewallState(None, "nft could not list the rules")
    if legacy():
        # Rules nft cannot list may be loaded: say so rather than read half a firewall.
        return FirewallState(
            firewall.Ruleset(tables=1, chains=(), unreadable="iptables-legacy tables are loaded")
        )
    try:
        return FirewallState(firewall.parse(json.loads(output)))
    except (ValueError, TypeError, KeyError) as exc:
        log.debug("nft output not understood: %s", exc)
        return FirewallState(None, "the rules could not be read")


class FirewallWatch:
    """The last firewall reading, refreshed in the background now and then."""

    def __init__(
        self,
        read: Callable[[], FirewallState] = read_state,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._refresh_s = refresh_s
        self._clock = clock
        self._state: FirewallState | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def state(self) -> FirewallState:
        """The last reading (the first call reads; later ones never wait)."""
        with self._lock:
            state = self._state
            due = not self._refreshing and self._clock() - self._read_at >= self._refresh_s
            if state is not None and due:
                self._refreshing = True
        if state is None:
            state = self._read()
            with self._lock:
                self._state, self._read_at = state, self._clock()
            return state
        if due:
            threading.Thread(target=self._refresh, name="portwatch-firewall", daemon=True).start()
        return state

    def _refresh(self) -> None:
        try:
            state = self._read()
        except Exception:  # a reading that fails keeps the last one
            log.debug("firewall refresh failed", exc_info=True)
            state = None
        with self._lock:
            if state is not None:
                self._state = state
            self._read_at = self._clock()
            self._refreshing = False
