"""A tick where one listener opened among many costs that one listener's work.

Real sockets held by a child, the real netlink probe and the real engine: after the
new listener appears, only it is built as a listener, judged and viewed anew; every
other listener keeps last tick's object, view and verdict.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from test_netlink_children import SocketChild, start_child

from portwatch.core.trust import TrustJudge, TrustList
from portwatch.core.types import Listener
from portwatch.core.verdict import Verdict
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.engine.monitor import Monitor
from portwatch.probe.netlink import NetlinkProbe

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_NETLINK"), reason="Linux only")

HELD = 200


class CountingJudge(TrustJudge):
    """The real trust judge, counting its judgements."""

    calls = 0

    def judge(self, listener: Listener) -> Verdict:
        self.calls += 1
        return super().judge(listener)


def _held_by(listener: Listener, pid: int) -> bool:
    return listener.owner is not None and listener.owner.pid == pid


@pytest.fixture
def child() -> Iterator[SocketChild]:
    proc = start_child([{"kind": "tcp-listen", "host": "127.0.0.1"}] * HELD)
    yield proc
    proc.stop()


def test_one_new_listener_among_many_is_the_only_one_built_judged_and_viewed(
    child: SocketChild, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge = CountingJudge(TrustList())
    # Every port is watched, so every listener is judged by the trust judge.
    every_port = WatchList(
        tuple(parse_spec(f"{low}-{min(low + 4095, 65535)}") for low in range(1, 65536, 4096))
    )
    monitor = Monitor(NetlinkProbe(cpu=lambda: 0.0), None, every_port, judge=judge)
    built = 0
    init = Listener.__init__

    def counting_init(self: Listener, *args: object, **kwargs: object) -> None:
        nonlocal built
        built += 1
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Listener, "__init__", counting_init)
    try:
        for _ in range(3):
            before = monitor.tick()
        mine = [view for view in before.views if _held_by(view.listener, child.pid)]
        assert len(mine) == HELD
        judged, views = judge.calls, {id(view) for view in before.views}
        built = 0

        port = child.listen("127.0.0.1")
        after = monitor.tick()

        new = [view for view in after.views if view.listener.port == port]
        assert len(new) == 1 and _held_by(new[0].listener, child.pid)
        fresh_views = [view for view in after.views if id(view) not in views]
        # Other programs on this machine may open a socket meanwhile: a little slack.
        assert 1 <= len(fresh_views) <= 3, len(fresh_views)
        assert 1 <= judge.calls - judged <= 3, judge.calls - judged
        assert 1 <= built <= 3, built
    finally:
        monitor.close()
