"""Where each OS keeps portwatch's files: config (roams with the user on Windows),
data (the history, machine-local) and logs; ``--data-dir`` re-roots everything."""

from __future__ import annotations

from pathlib import Path

import pytest

from portwatch import paths
from portwatch.paths import Paths, platform_default


def test_windows_keeps_config_in_roaming_and_history_and_logs_in_local_appdata() -> None:
    env = {"HOME": "/home/u", "APPDATA": "/w/Roaming", "LOCALAPPDATA": "/w/Local"}
    found = platform_default("win32", env)
    assert found == Paths(
        config_dir=Path("/w/Roaming/portwatch"),
        data_dir=Path("/w/Local/portwatch"),
        log_dir=Path("/w/Local/portwatch/logs"),
    )
    assert found.trust_file == Path("/w/Roaming/portwatch/trust.json")
    assert found.watchlist_file == Path("/w/Roaming/portwatch/watchlist.txt")
    assert found.history_db == Path("/w/Local/portwatch/history.sqlite3")


def test_windows_without_the_appdata_variables_uses_the_profile_folders() -> None:
    found = platform_default("win32", {"HOME": "/users/u"})
    assert found.config_dir == Path("/users/u/AppData/Roaming/portwatch")
    assert found.data_dir == Path("/users/u/AppData/Local/portwatch")
    assert found.log_dir == Path("/users/u/AppData/Local/portwatch/logs")


def test_windows_keeps_the_users_folders_whatever_a_sudo_variable_says() -> None:
    # Windows has no root home to fall back on: SUDO_UID (Windows 11's sudo, or one left
    # in the environment) changes nothing there.
    env = {"HOME": "/users/u", "APPDATA": "/w/Roaming", "LOCALAPPDATA": "/w/Local"}
    plain = platform_default("win32", env, euid=0)
    assert platform_default("win32", {**env, "SUDO_UID": "1000"}, euid=0) == plain
    assert plain.config_dir == Path("/w/Roaming/portwatch")


def test_macos_uses_application_support_and_library_logs() -> None:
    found = platform_default("darwin", {"HOME": "/Users/u"})
    support = Path("/Users/u/Library/Application Support/portwatch")
    assert found == Paths(support, support, Path("/Users/u/Library/Logs/portwatch"))
    # XDG variables mean nothing on macOS.
    assert platform_default("darwin", {"HOME": "/Users/u", "XDG_CONFIG_HOME": "/x"}) == found


def test_linux_follows_xdg_with_its_defaults() -> None:
    found = platform_default("linux", {"HOME": "/home/u"})
    assert found == Paths(
        config_dir=Path("/home/u/.config/portwatch"),
        data_dir=Path("/home/u/.local/share/portwatch"),
        log_dir=Path("/home/u/.local/state/portwatch/logs"),
    )
    env = {
        "HOME": "/home/u",
        "XDG_CONFIG_HOME": "/c",
        "XDG_DATA_HOME": "/d",
        "XDG_STATE_HOME": "/s",
    }
    assert platform_default("linux", env) == Paths(
        Path("/c/portwatch"), Path("/d/portwatch"), Path("/s/portwatch/logs")
    )


def test_data_dir_option_then_environment_then_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.ENV_DATA_DIR, str(tmp_path / "env"))
    assert paths.resolve(tmp_path / "opt").history_db == tmp_path / "opt" / "history.sqlite3"
    assert paths.resolve().config_dir == tmp_path / "env"
    assert paths.resolve().log_dir == tmp_path / "env" / "logs"
    monkeypatch.delenv(paths.ENV_DATA_DIR)
    assert paths.resolve() == platform_default()
