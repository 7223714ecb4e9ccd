"""macOS key uses checked through their seams: start at login from a path that lasts, sudo."""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest
from childsockets import ChildSockets, wait_for
from platforms import needs_posix, wine_gives_pid_0
from test_probe import FlakyPsutil

from portwatch.config.autostart import LaunchAgentAutostart
from portwatch.core.types import Family, Proto
from portwatch.core.watchlist import WatchList, parse_spec
from portwatch.paths import platform_default, root_home
from portwatch.probe.netstat_table import parse_netstat
from portwatch.probe.psutil_probe import PsutilProbe

APP = "portwatch.app/Contents/MacOS/portwatch"


@pytest.mark.parametrize(
    "program",
    [
        f"/Volumes/portwatch 0.1.0/{APP}",  # run from the mounted disk image
        f"/private/var/folders/x7/T/AppTranslocation/0F3E-41A2/d/{APP}",  # Gatekeeper's copy
    ],
)
def test_start_at_login_refuses_a_path_gone_after_restart(tmp_path: Path, program: str) -> None:
    agent = LaunchAgentAutostart(tmp_path)
    with pytest.raises(ValueError, match="Applications folder"):
        agent.enable([program, "--minimized"])
    assert not agent.path.exists()
    assert not agent.is_enabled()


def test_start_at_login_accepts_the_applications_folder(
    tmp_path: Path,
) -> None:
    agent = LaunchAgentAutostart(tmp_path)
    agent.enable([f"/Applications/{APP}", "--minimized"])
    assert agent.is_enabled()
    with agent.path.open("rb") as handle:
        assert plistlib.load(handle)["ProgramArguments"][0] == f"/Applications/{APP}"


def _owned_by_someone_else(tmp_path: Path) -> dict[str, str]:
    user_home = tmp_path / "Users" / "jo"
    return {
        "HOME": str(user_home),
        "XDG_CONFIG_HOME": str(user_home / ".config"),
        "SUDO_UID": "501",
        "SUDO_USER": "jo",
    }


@pytest.mark.parametrize("platform", ["darwin", "linux"])
@needs_posix  # sudo and root's home (pwd)
def test_sudo_never_puts_roots_files_in_the_users_folder(tmp_path: Path, platform: str) -> None:
    env = _owned_by_someone_else(tmp_path)
    where = platform_default(platform, env, euid=0)
    user_home = Path(env["HOME"])
    for folder in (where.config_dir, where.data_dir, where.log_dir):
        assert user_home not in folder.parents, folder
        assert root_home() in folder.parents


@pytest.mark.parametrize("platform", ["darwin", "linux"])
def test_the_user_and_plain_root_keep_their_folders(tmp_path: Path, platform: str) -> None:
    env = _owned_by_someone_else(tmp_path)
    assert Path(env["HOME"]) in platform_default(platform, env, euid=501).config_dir.parents
    root_login = {"HOME": "/var/root"}  # root's own session: no SUDO_UID
    assert Path("/var/root") in platform_default(platform, root_login, euid=0).config_dir.parents


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_sudo_portwatch_leaves_no_root_owned_file_in_the_users_home(tmp_path: Path) -> None:
    user_home = tmp_path / "home-of-nobody"
    user_home.mkdir()
    os.chown(user_home, 65534, 65534)
    fake_root = tmp_path / "root-home"
    env = dict(
        os.environ,
        HOME=str(user_home),
        SUDO_UID="65534",
        SUDO_USER="nobody",
    )
    env.pop("PORTWATCH_DATA_DIR", None)
    code = (
        "import sys, portwatch.paths as p\n"
        "from pathlib import Path\n"
        "p.root_home = lambda: Path(sys.argv[1])\n"
        "from portwatch.__main__ import main\n"
        "sys.exit(main(['watch', 'add', '8123']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(fake_root)], env=env, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert [p for p in user_home.rglob("*") if p.stat().st_uid == 0] == []
    assert list(fake_root.rglob("watchlist.txt"))


NETSTAT = """Active Internet connections (including servers)
Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)
tcp4       0      0  127.0.0.1.{port}        *.*                    LISTEN
tcp4       0      0  192.168.1.20.50012     17.57.146.20.5223      ESTABLISHED
tcp6       0      0  *.5000                 *.*                    LISTEN
tcp46      0      0  *.7000                 *.*                    LISTEN
tcp4       0      0  *.22                   *.*                    LISTEN
Active Internet connections (including servers)
Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)
udp4       0      0  *.137                  *.*
udp6       0      0  fe80::1%lo0.123        *.*
udp4       0      0  192.168.1.20.5353      224.0.0.251.5353
garbage line
tcp4       0      0  *.99999                *.*                    LISTEN
"""


def test_netstat_table_lists_every_listening_socket_without_owners() -> None:
    found = {
        (t.proto, t.family, t.address, t.port) for t in parse_netstat(NETSTAT.format(port=8123))
    }
    assert found == {
        (Proto.TCP, Family.IPV4, "127.0.0.1", 8123),
        (Proto.TCP, Family.IPV6, "::", 5000),
        (Proto.TCP, Family.IPV6, "::", 7000),
        (Proto.TCP, Family.IPV4, "0.0.0.0", 22),
        (Proto.UDP, Family.IPV4, "0.0.0.0", 137),
        (Proto.UDP, Family.IPV6, "fe80::1%lo0", 123),
    }


@wine_gives_pid_0
def test_macos_without_root_shows_other_users_listeners_as_unattributed(
    child_sockets: list,
) -> None:
    # The whole table is refused and the hidden child's process too (another user's daemon);
    # netstat's table, readable without rights, still has its socket.
    visible = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    hidden = ChildSockets.start([("tcp", "127.0.0.1", 0, "listen")], registry=child_sockets)
    port = hidden.ports[0]
    probe = PsutilProbe(
        ps=FlakyPsutil(deny={hidden.pid}, deny_table=True),
        platform="darwin",
        socket_table=lambda: NETSTAT.format(port=port),
    )
    spec = WatchList((parse_spec(str(port)),))
    sample = wait_for(lambda: (s := probe.poll(spec)) and any(i.owner for i in s.listeners) and s)
    rows = [item for item in sample.listeners if item.port == port]
    assert len(rows) == 1
    assert rows[0].owner is None
    assert not rows[0].attributed
    assert sample.partial
    assert "unattributed" in (sample.partial_reason or "")
    # What the walk attributed is not repeated as unattributed.
    assert len([i for i in sample.listeners if i.port == visible.ports[0]]) == 1
    assert next(a for a in sample.activity if a.port == port).listeners == 1


def test_without_a_table_the_sample_still_says_listeners_may_be_missing(
    child_sockets: list,
) -> None:
    probe = PsutilProbe(ps=FlakyPsutil(deny_table=True), platform="darwin", socket_table=lambda: "")
    sample = probe.poll(WatchList(()))
    assert sample.partial
    assert "missing" in (sample.partial_reason or "")
