"""The one owner of portwatch's config, data and log locations.

``--data-dir`` (or ``PORTWATCH_DATA_DIR``) re-roots all of them under one folder, which is
what tests and portable installs use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_DATA_DIR = "PORTWATCH_DATA_DIR"


@dataclass(frozen=True)
class Paths:
    """Where portwatch keeps each kind of file."""

    config_dir: Path
    data_dir: Path
    log_dir: Path

    @property
    def watchlist_file(self) -> Path:
        return self.config_dir / "watchlist.txt"

    @property
    def trust_file(self) -> Path:
        return self.config_dir / "trust.json"

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def knowledge_file(self) -> Path:
        """The user's own port descriptions, which add to or override the embedded ones."""
        return self.config_dir / "ports.toml"

    @property
    def history_db(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "portwatch.log"

    def own_files(self) -> tuple[Path, ...]:
        """Every file portwatch keeps, for refusing to write anything else over one (an
        export named ``history.sqlite3`` would replace the history)."""
        history = self.history_db
        return (
            self.watchlist_file,
            self.trust_file,
            self.settings_file,
            self.knowledge_file,
            history,
            *(history.with_name(history.name + s) for s in ("-wal", "-shm", "-journal", ".lock")),
            self.log_file,
            *(self.log_file.with_name(f"{self.log_file.name}.{n}") for n in (1, 2, 3)),
        )

    @property
    def runtime_dir(self) -> Path:
        """Lock file and local socket for the single-instance guard."""
        return self.data_dir

    def ensure(self) -> None:
        """Create the folders; raises OSError with the OS's reason if that is impossible."""
        for folder in (self.config_dir, self.data_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)


def rooted(root: Path) -> Paths:
    """Every location under one folder."""
    root = root.expanduser().absolute()
    return Paths(config_dir=root, data_dir=root, log_dir=root / "logs")


def sudo_user_home_kept(env: dict[str, str], euid: int | None = None) -> bool:
    """True when root runs portwatch through sudo with the calling user's HOME.

    macOS's sudo keeps HOME (and ``sudo -E`` does everywhere): root would then create
    root-owned, mode-0600 files in the user's folder, which the user's own portwatch can no
    longer read (nothing trusted, history not written).
    """
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else -1
    return euid == 0 and env.get("SUDO_UID", "0") not in ("", "0")


def root_home() -> Path:
    """root's own home folder, as ``sudo -H`` would set it."""
    import pwd

    return Path(pwd.getpwuid(0).pw_dir)


def xdg_dir(env: Mapping[str, str], variable: str, fallback: Path) -> Path:
    """An XDG base folder: ``variable`` when it holds an absolute path, else ``fallback``.

    The XDG spec has a relative value ignored: it would put the files wherever portwatch
    happened to be started from. The one rule for every XDG folder portwatch uses.
    """
    value = env.get(variable, "")
    return Path(value) if os.path.isabs(value) else fallback


def platform_default(
    platform: str = sys.platform, env: dict[str, str] | None = None, euid: int | None = None
) -> Paths:
    """The per-user locations each OS expects.

    Under sudo these are root's own, never the calling user's (see
    :func:`sudo_user_home_kept`): ``--data-dir`` chooses a folder explicitly.
    """
    env = dict(os.environ) if env is None else env
    if not platform.startswith("win") and sudo_user_home_kept(env, euid):
        env = {"HOME": str(root_home())}  # the user's XDG_* folders are theirs too
    home = Path(env.get("HOME") or Path.home())
    if platform.startswith("win"):
        appdata = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        local = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return Paths(appdata / "portwatch", local / "portwatch", local / "portwatch" / "logs")
    if platform == "darwin":
        support = home / "Library" / "Application Support" / "portwatch"
        return Paths(support, support, home / "Library" / "Logs" / "portwatch")
    config = xdg_dir(env, "XDG_CONFIG_HOME", home / ".config") / "portwatch"
    state = xdg_dir(env, "XDG_STATE_HOME", home / ".local" / "state") / "portwatch"
    data = xdg_dir(env, "XDG_DATA_HOME", home / ".local" / "share") / "portwatch"
    return Paths(config, data, state / "logs")


def resolve(data_dir: str | os.PathLike[str] | None = None) -> Paths:
    """``--data-dir`` first, then ``PORTWATCH_DATA_DIR``, then the OS default."""
    if data_dir:
        return rooted(Path(data_dir))
    env_dir = os.environ.get(ENV_DATA_DIR)
    if env_dir:
        return rooted(Path(env_dir))
    return platform_default()
