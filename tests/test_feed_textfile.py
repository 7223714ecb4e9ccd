"""The Prometheus textfile: exposition rules, promtool, and a real node_exporter scrape."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from childsockets import ChildSockets, free_port, wait_for
from cli_runner import run
from feedtools import (
    NODE_EXPORTER_NAMES,
    PYTHON,
    SLOW_S,
    monitor,
    parse_exposition,
    pick,
    require_tool,
    scrape,
)
from platforms import TERMINATED_EXIT_CODE, needs_posix

from portwatch.core.metrics import MAX_PORT_SERIES, MetricsBook, label_value
from portwatch.core.text import clean, visible
from portwatch.core.types import (
    Endpoint,
    Family,
    Listener,
    ListenerView,
    Owner,
    PortActivity,
    Proto,
    Sample,
    Status,
)
from portwatch.core.watchlist import WatchList, parse_spec

RULES = Path(__file__).resolve().parents[1] / "resources" / "prometheus"
HOSTILE = 'ev"il\\x{a="b"} 1\nportwatch_up{} 0\u202e\udcff'


def _view(port: int, status: Status, owner: Owner | None, watched: bool = True) -> ListenerView:
    endpoint = Endpoint(Proto.TCP, Family.IPV4, "127.0.0.1", port)
    return ListenerView(Listener(endpoint, owner), watched, status)


def _sample(wall: float, *activity: PortActivity) -> Sample:
    return Sample(wall=wall, mono=wall, listeners=(), activity=activity)


def test_label_values_from_processes_cannot_break_the_format() -> None:
    value = label_value(HOSTILE)
    assert "\n" not in value
    assert '"' not in value.replace('\\"', "")
    # What a scraper reads back is the visible form of the name, nothing more.
    line = f'm{{process="{value}"}} 1'
    ((_, labels),) = parse_exposition(line).items()
    assert labels == 1.0
    (((_, label),),) = [tuple(k[1]) for k in parse_exposition(line)]
    assert label == visible(clean(HOSTILE))
    assert len(label_value("x" * 10_000)) <= 200


def test_book_renders_gauges_counters_and_escaped_owners() -> None:
    watch = WatchList((parse_spec("3653/tcp"), parse_spec("22/tcp")))
    book = MetricsBook(watch)
    owner = Owner(pid=7, name=HOSTILE, exe="/tmp/" + HOSTILE, user="u\nx")
    views = [
        _view(3653, Status.UNKNOWN, owner),
        _view(3653, Status.UNATTRIBUTED, None),
        _view(22, Status.KNOWN, Owner(pid=1, name="sshd", exe="/usr/sbin/sshd")),
        _view(9999, Status.UNKNOWN, owner, watched=False),
    ]
    activity = PortActivity(3653, Proto.TCP, 2, 3, 30, bytes_in_delta=10, bytes_out_delta=20)
    book.observe(_sample(1000.5, activity), views, 0.25, ok=True)
    book.observe(_sample(1001.5, activity), views, 0.5, ok=True)
    series = parse_exposition(book.render())

    def one(name: str, **labels: str) -> float:
        ((_, value),) = pick(series, name, **labels)
        return value

    assert one("portwatch_up") == 1
    assert one("portwatch_last_poll_timestamp_seconds") == 1001.5
    assert one("portwatch_poll_duration_seconds") == 0.5
    assert one("portwatch_polls_total") == 2
    tcp3653 = {"port": "3653", "proto": "tcp"}
    assert one("portwatch_port_listeners", **tcp3653) == 2
    assert one("portwatch_port_untrusted_listeners", **tcp3653) == 2
    assert one("portwatch_port_unattributed_listeners", **tcp3653) == 1
    assert one("portwatch_port_connections", **tcp3653) == 3
    assert one("portwatch_port_received_bytes_total", **tcp3653) == 20
    assert one("portwatch_port_sent_bytes_total", **tcp3653) == 40
    assert one("portwatch_port_listeners", port="22", proto="tcp") == 1
    assert one("portwatch_port_untrusted_listeners", port="22", proto="tcp") == 0
    # An unwatched port has no series: only watched ports are reported.
    assert not pick(series, "portwatch_port_listeners", port="9999")
    infos = pick(series, "portwatch_listener_info", port="3653", status="unknown")
    assert [labels["exe"] for labels, _ in infos] == [visible(clean("/tmp/" + HOSTILE))]
    assert infos[0][0]["user"] == "u\\x0ax"


def test_failed_poll_keeps_the_last_gauges_and_reports_down_and_stop_reports_down() -> None:
    book = MetricsBook(WatchList((parse_spec("3653/tcp"),)))
    book.observe(_sample(10.0), [_view(3653, Status.UNKNOWN, None)], 0.1, ok=True)
    book.observe(_sample(11.0), [], 0.1, ok=False)
    series = parse_exposition(book.render())
    assert pick(series, "portwatch_up") == [({}, 0.0)]
    assert pick(series, "portwatch_poll_failures_total") == [({}, 1.0)]
    assert pick(series, "portwatch_port_untrusted_listeners", port="3653")[0][1] == 1
    book.observe(_sample(12.0), [], 0.1, ok=True)
    assert pick(parse_exposition(book.render()), "portwatch_up") == [({}, 1.0)]
    book.mark_stopped()
    assert pick(parse_exposition(book.render()), "portwatch_up") == [({}, 0.0)]


def test_a_watched_range_cannot_grow_the_file_without_bound() -> None:
    book = MetricsBook(WatchList((parse_spec("1000-4000/tcp"), parse_spec("10000-13000/tcp"))))
    ports = [*range(1000, 4001), *range(10000, 13001)]
    views = [_view(port, Status.UNKNOWN, None) for port in ports]
    book.observe(_sample(1.0), views, 0.1, ok=True)
    series = parse_exposition(book.render())
    assert len(pick(series, "portwatch_port_listeners")) == MAX_PORT_SERIES


def test_promtool_accepts_the_rendered_metrics() -> None:
    promtool = require_tool("promtool")
    book = MetricsBook(WatchList((parse_spec("3653"),)))
    owner = Owner(pid=7, name=HOSTILE, exe="/tmp/" + HOSTILE, user="root")
    activity = PortActivity(3653, Proto.TCP, 1, 0, 0, bytes_in_delta=0, bytes_out_delta=0)
    book.observe(_sample(5.0, activity), [_view(3653, Status.UNKNOWN, owner)], 0.01, ok=True)
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=book.render(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_promtool_passes_the_alert_rule_scenarios() -> None:
    promtool = require_tool("promtool")
    if not RULES.is_dir():
        pytest.skip("the example rules are in the source tree, not the installed package")
    result = subprocess.run(
        [promtool, "test", "rules", "portwatch.rules.test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_textfile_arguments_are_checked_before_the_first_poll(data_dir: Path) -> None:
    result = run(data_dir, "monitor", "--duration", "1", "--textfile", str(data_dir / "none"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def node_exporter(tmp_path: Path) -> object:
    """A real node_exporter on a free loopback port, reading only the textfile folder."""
    binary = require_tool(*NODE_EXPORTER_NAMES)
    folder = tmp_path / "textfile"
    folder.mkdir()
    started: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[Path, str]:
        for _ in range(5):
            port = free_port()
            process = subprocess.Popen(
                [
                    binary,
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--collector.disable-defaults",
                    "--collector.textfile",
                    f"--collector.textfile.directory={folder}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            started.append(process)
            url = f"http://127.0.0.1:{port}/metrics"
            deadline = time.monotonic() + 20
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    scrape(url, timeout=1)
                    return folder, url
                except OSError:
                    time.sleep(0.05)
        raise AssertionError("node_exporter did not start on a free loopback port")

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()


def test_node_exporter_serves_the_untrusted_listener_a_child_holds(
    data_dir: Path, tmp_path: Path, child_sockets: list, node_exporter: object
) -> None:
    folder, url = node_exporter()  # type: ignore[operator]
    port = free_port()
    assert run(data_dir, "watch", "add", str(port)).returncode == 0
    # A program whose file name tries to end the label and forge a series.
    hostile = tmp_path / 'ev"il\\{a="b"} 1\nportwatch_up 0'
    shutil.copy(PYTHON, hostile)
    prom = folder / "portwatch.prom"
    with monitor(data_dir, "--textfile", str(folder)) as process:
        child = ChildSockets.start(
            [("tcp", "127.0.0.1", port, "listen")], executable=str(hostile), registry=child_sockets
        )
        wanted = f'portwatch_port_untrusted_listeners{{port="{port}",proto="tcp"}} 1'

        def written() -> bool:
            # Every read sees a whole file: it is replaced, never rewritten in place.
            text = prom.read_text(encoding="utf-8") if prom.exists() else ""
            assert not text or (text.endswith("\n") and text.startswith("# HELP portwatch_up"))
            return wanted in text.splitlines()

        wait_for(written, timeout=SLOW_S)
        assert prom.stat().st_mode & 0o777 == 0o644
        # node_exporter reads *.prom: a write in progress never matches that.
        assert [p.name for p in folder.glob("*.prom")] == ["portwatch.prom"]
        others = [p.name for p in folder.iterdir() if p.name != "portwatch.prom"]
        assert all(re.fullmatch(r"\.portwatch\.prom\..+\.tmp", n) for n in others), others

        promtool = shutil.which("promtool")
        if promtool:
            check = subprocess.run(
                [promtool, "check", "metrics"],
                input=prom.read_text(encoding="utf-8"),
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 0, check.stdout + check.stderr

        series = parse_exposition(scrape(url))
        assert pick(series, "node_textfile_scrape_error") == [({}, 0.0)]
        assert pick(series, "portwatch_up") == [({}, 1.0)]
        mine = {"port": str(port), "proto": "tcp"}
        assert pick(series, "portwatch_port_listeners", **mine)[0][1] == 1
        assert pick(series, "portwatch_port_untrusted_listeners", **mine)[0][1] == 1
        assert pick(series, "portwatch_port_unattributed_listeners", **mine)[0][1] == 0
        assert pick(series, "portwatch_port_connections", **mine)[0][1] == 0
        (info,) = pick(series, "portwatch_listener_info", **mine)
        assert info[0]["exe"] == visible(str(hostile))
        assert info[0]["status"] == "unknown"
        last = pick(series, "portwatch_last_poll_timestamp_seconds")[0][1]
        assert abs(last - time.time()) < 30
        # Only portwatch's own series plus node_exporter's: nothing forged by the name.
        assert pick(series, "portwatch_up") == [({}, 1.0)]

        child.stop()
        gone = f'portwatch_port_listeners{{port="{port}",proto="tcp"}} 0'
        wait_for(lambda: gone in prom.read_text(encoding="utf-8").splitlines(), timeout=SLOW_S)
        process.terminate()
        assert process.wait(timeout=30) == TERMINATED_EXIT_CODE
    series = parse_exposition(scrape(url))
    assert pick(series, "portwatch_up") == [({}, 0.0)]


@needs_posix  # permission bits: on Windows the folder's ACL decides
def test_a_folder_every_user_can_write_in_is_refused(data_dir: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    for option, target in (("--textfile", shared), ("--jsonl", shared / "events.jsonl")):
        result = run(data_dir, "monitor", "--duration", "1", option, str(target))
        assert result.returncode == 1, result.stderr
        assert "will not write in" in result.stderr and "every user" in result.stderr
        assert not list(shared.iterdir())


@pytest.mark.skipif(not hasattr(socket, "AF_NETLINK"), reason="byte counters need Linux netlink")
def test_bytes_in_and_out_on_a_watched_port_are_counted(
    data_dir: Path, child_sockets: list
) -> None:
    port = free_port()
    assert run(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
    folder = data_dir / "textfile"
    folder.mkdir()
    prom = folder / "portwatch.prom"
    ChildSockets.start([("tcp", "127.0.0.1", port, "listen")], registry=child_sockets)
    with monitor(data_dir, "--textfile", str(folder)):  # auto picks netlink on Linux
        labels = f'{{port="{port}",proto="tcp"}}'

        def value(name: str) -> float | None:
            text = prom.read_text(encoding="utf-8") if prom.exists() else ""
            for line in text.splitlines():
                if line.startswith(name + labels + " "):
                    return float(line.split()[-1])
            return None

        # Counters exist from the first measured poll on, at zero.
        wait_for(lambda: value("portwatch_port_sent_bytes_total") is not None, timeout=SLOW_S)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"x" * 50_000)  # the kernel takes it; the child never reads
            wait_for(
                lambda: (value("portwatch_port_received_bytes_total") or 0) >= 50_000,
                timeout=SLOW_S,
            )
            # Both ends are this host's sockets, yet it is one connection and its bytes
            # count once, from the watched port's side: received there, none sent from it.
            wait_for(lambda: value("portwatch_port_connections") == 1, timeout=SLOW_S)
            assert (value("portwatch_port_received_bytes_total") or 0) < 2 * 50_000
            assert (value("portwatch_port_sent_bytes_total") or 0) < 50_000


def test_series_follow_an_edited_watch_list(data_dir: Path) -> None:
    book = MetricsBook(WatchList((parse_spec("3653/tcp"), parse_spec("22/tcp"))))
    book.observe(_sample(1.0), [_view(3653, Status.UNKNOWN, None)], 0.1, ok=True)
    book.set_watchlist(WatchList((parse_spec("22/tcp"), parse_spec("8080/tcp"))))
    series = parse_exposition(book.render())
    assert {labels["port"] for labels, _ in pick(series, "portwatch_port_listeners")} == {
        "22",
        "8080",
    }
    assert not pick(series, "portwatch_listener_info")

    # The running monitor follows `portwatch watch add` made in another terminal.
    folder = data_dir / "textfile"
    folder.mkdir()
    prom = folder / "portwatch.prom"
    port = free_port()
    with monitor(data_dir, "--textfile", str(folder)):
        wait_for(prom.exists, timeout=SLOW_S)
        assert f'port="{port}"' not in prom.read_text(encoding="utf-8")
        assert run(data_dir, "watch", "add", f"{port}/tcp").returncode == 0
        wanted = f'portwatch_port_listeners{{port="{port}",proto="tcp"}} 0'
        wait_for(lambda: wanted in prom.read_text(encoding="utf-8").splitlines(), timeout=SLOW_S)
