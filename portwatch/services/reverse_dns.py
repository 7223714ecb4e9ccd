"""Host names of remote addresses by reverse DNS: asked on a small thread pool, cached.

Off unless the user turns it on (a lookup tells the DNS server which addresses this
computer talks to). Names are asked for when the table draws an address, never while
polling: :meth:`ReverseDns.name_of` answers from the cache at once and queues a lookup
for an address it does not know; :attr:`ReverseDns.resolved` says when a name came in.
The cache keeps answers (no name too) for a while and holds a bounded number of them.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot

from portwatch.core.text import clean

log = logging.getLogger(__name__)

# The seam: an address in, its name (or None) out. Runs on a pool thread.
Resolver = Callable[[str], "str | None"]

# Names change rarely; ten minutes keeps a busy table from asking again and again.
NAME_TTL_S = 600.0
# "No name" is kept for less: a DNS server that was down may answer later.
NO_NAME_TTL_S = 120.0
MAX_NAMES = 2048
# A slow DNS server must not pile up threads: a few lookups at once, the rest wait.
LOOKUP_THREADS = 4
MAX_PENDING = 256


def system_resolver(address: str) -> str | None:
    """The OS's reverse lookup (``/etc/hosts``, then DNS); None when there is no name."""
    try:
        name = socket.gethostbyaddr(address)[0]
    except (OSError, UnicodeError):
        return None
    # A PTR record is text from the network: shown with invisible characters escaped.
    return clean(name) or None


class NameCache:
    """Answers by address with an expiry time, at most ``max_names`` of them (the least
    recently used go first)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = NAME_TTL_S,
        no_name_ttl_s: float = NO_NAME_TTL_S,
        max_names: int = MAX_NAMES,
    ) -> None:
        self._clock = clock
        self.ttl_s = ttl_s
        self.no_name_ttl_s = no_name_ttl_s
        self.max_names = max_names
        self._answers: OrderedDict[str, tuple[str | None, float]] = OrderedDict()

    def lookup(self, address: str) -> tuple[bool, str | None]:
        """(known, name): known is False when never asked or the answer expired."""
        found = self._answers.get(address)
        if found is None:
            return False, None
        name, expires = found
        if self._clock() >= expires:
            del self._answers[address]
            return False, None
        self._answers.move_to_end(address)
        return True, name

    def store(self, address: str, name: str | None) -> None:
        ttl = self.ttl_s if name else self.no_name_ttl_s
        self._answers[address] = (name, self._clock() + ttl)
        self._answers.move_to_end(address)
        while len(self._answers) > self.max_names:
            self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)


class ReverseDns(QObject):
    """Host names for the window, looked up in the background while switched on.

    Lives on the GUI thread; lookups run on a few daemon threads of its own (a lookup
    stuck on a dead DNS server must not hold up quitting), and their answers come back
    to the GUI thread by a queued signal.
    """

    resolved = Signal(str)
    """An address whose name (or lack of one) is now known."""
    _answer = Signal(str, object)

    def __init__(
        self,
        enabled: bool,
        resolver: Resolver = system_resolver,
        *,
        cache: NameCache | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._enabled = enabled
        self._resolver = resolver
        self.cache = cache or NameCache()
        self._pending: set[str] = set()
        self._queue: queue.Queue[str] = queue.Queue()
        self._threads: list[threading.Thread] = []
        # Emitted from a lookup thread, delivered on the thread this object lives in.
        self._answer.connect(self._answered)

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled

    def name_of(self, address: str) -> str | None:
        """The cached name of ``address`` now; unknown ones are looked up in the background
        (never waited for). None while off, unknown or nameless."""
        if not self._enabled or not address:
            return None
        known, name = self.cache.lookup(address)
        if not known and address not in self._pending and len(self._pending) < MAX_PENDING:
            self._pending.add(address)
            self._queue.put(address)
            if len(self._threads) < min(LOOKUP_THREADS, len(self._pending)):
                thread = threading.Thread(
                    target=self._look_up, name="portwatch-reverse-dns", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return name

    def _look_up(self) -> None:
        while True:
            address = self._queue.get()
            try:
                name = self._resolver(address)
            except Exception:  # a resolver bug must not end the thread
                log.exception("reverse lookup of %s failed", address)
                name = None
            try:
                self._answer.emit(address, name)
            except RuntimeError:
                return  # the app is quitting: nobody is left to tell

    @Slot(str, object)
    def _answered(self, address: str, name: object) -> None:
        self._pending.discard(address)
        self.cache.store(address, name if isinstance(name, str) and name else None)
        self.resolved.emit(address)
