"""Reverse DNS of remote addresses: off by default, asked in the background (never by the
poll), cached with an expiry and a size bound; one real lookup of 127.0.0.1."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

from connpeers import Peers
from guikit import FAST_POLL_S, wait_ticks

from portwatch.core.watchlist import WatchList
from portwatch.probe.connections import Connection
from portwatch.services.reverse_dns import NameCache, ReverseDns, system_resolver
from portwatch.services.settings import Settings
from portwatch.ui.connection_model import ConnColumn


class FakeResolver:
    """Names every address ``host-<address>``; records the threads that asked."""

    def __init__(self) -> None:
        self.threads: list[int] = []
        self.addresses: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, address: str) -> str | None:
        with self.lock:
            self.threads.append(threading.get_ident())
            self.addresses.append(address)
        return f"host-{address}"


def test_the_setting_is_off_by_default() -> None:
    assert Settings().reverse_dns is False


def test_the_cache_expires_answers_and_keeps_a_bounded_number() -> None:
    now = [0.0]
    cache = NameCache(clock=lambda: now[0], ttl_s=10, no_name_ttl_s=2, max_names=3)
    cache.store("10.0.0.1", "a.example")
    cache.store("10.0.0.2", None)
    assert cache.lookup("10.0.0.1") == (True, "a.example")
    assert cache.lookup("10.0.0.2") == (True, None)
    now[0] = 3.0
    assert cache.lookup("10.0.0.2") == (False, None)  # "no name" is kept for less
    assert cache.lookup("10.0.0.1") == (True, "a.example")
    now[0] = 11.0
    assert cache.lookup("10.0.0.1") == (False, None)
    for n in range(5):
        cache.store(f"10.0.1.{n}", f"n{n}")
    assert len(cache) == 3
    assert cache.lookup("10.0.1.0") == (False, None)  # the oldest went first
    assert cache.lookup("10.0.1.4") == (True, "n4")


def test_names_are_looked_up_once_in_the_background(qtbot: Any) -> None:
    fake = FakeResolver()
    dns = ReverseDns(True, fake)
    assert dns.name_of("192.0.2.7") is None  # not waited for
    assert dns.name_of("192.0.2.7") is None  # asked once, not twice
    with qtbot.waitSignal(dns.resolved, timeout=5_000):
        pass
    assert dns.name_of("192.0.2.7") == "host-192.0.2.7"
    assert fake.addresses == ["192.0.2.7"]
    assert threading.get_ident() not in fake.threads
    dns.set_enabled(False)
    assert dns.name_of("192.0.2.7") is None


def test_a_real_lookup_names_127_0_0_1_localhost(qtbot: Any) -> None:
    assert system_resolver("127.0.0.1") == "localhost"
    dns = ReverseDns(True)
    dns.name_of("127.0.0.1")
    qtbot.waitUntil(lambda: dns.name_of("127.0.0.1") == "localhost", timeout=10_000)


def _host_cells(tab: Any, port: int) -> list[str]:
    model = tab.model
    cells = []
    for row in range(model.rowCount()):
        view = model.views()[row]
        if port in (view.connection.local_port, view.connection.remote_port):
            cells.append(model.data(model.index(row, ConnColumn.REMOTE_HOST)))
    return cells


def test_the_poll_never_calls_the_resolver_and_names_appear_when_on(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    peers = Peers.start()
    try:
        fake = FakeResolver()
        # The real app with the fake resolver at its seam, the setting on.
        desktop = make_desktop(
            [str(peers.server_port)],
            settings=Settings(poll_interval_s=FAST_POLL_S, reverse_dns=True),
            resolver=fake,
        )
        tracker = desktop.sampler.sampler._connections
        listed = tracker._lister
        poll_threads: list[int] = []
        calls_during_polls: list[int] = []

        def recording(watched: WatchList | None) -> list[Connection]:
            poll_threads.append(threading.get_ident())
            before = len(fake.addresses)
            found = listed(watched)
            calls_during_polls.append(len(fake.addresses) - before)
            return found

        tracker._lister = recording
        window = desktop.window
        window.show_connections_tab()
        qtbot.waitUntil(
            lambda: "host-127.0.0.1" in _host_cells(window.connections_tab, peers.server_port),
            timeout=15_000,
        )
        wait_ticks(qtbot, desktop, 2)
        assert poll_threads, "the connections were listed"
        # Lookups ran on their own threads: never the poll's (sampler) thread, never the GUI's.
        assert not set(fake.threads) & (set(poll_threads) | {threading.get_ident()})
        assert fake.addresses.count("127.0.0.1") == 1  # cached
        # Off again: the names go and nothing more is asked.
        settings = desktop.settings_service
        settings.apply(dataclasses.replace(settings.current, reverse_dns=False))
        asked = len(fake.addresses)
        wait_ticks(qtbot, desktop, 2)
        assert set(_host_cells(window.connections_tab, peers.server_port)) == {""}
        assert len(fake.addresses) == asked
    finally:
        peers.stop()


def test_with_the_setting_off_nothing_is_looked_up(
    qtbot: Any, make_desktop: Any, data_dir: Path
) -> None:
    peers = Peers.start()
    try:
        fake = FakeResolver()
        desktop = make_desktop([str(peers.server_port)], resolver=fake)
        window = desktop.window
        window.show_connections_tab()
        qtbot.waitUntil(
            lambda: bool(_host_cells(window.connections_tab, peers.server_port)), timeout=15_000
        )
        wait_ticks(qtbot, desktop, 2)
        assert set(_host_cells(window.connections_tab, peers.server_port)) == {""}
        assert fake.addresses == []
    finally:
        peers.stop()
