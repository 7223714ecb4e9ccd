"""The import layering of architecture.md, enforced mechanically by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import portwatch

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    config = REPO / ".importlinter"
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    # Analyse the package that is actually imported (the installed one in CI).
    package_parent = Path(portwatch.__file__).resolve().parents[1]
    result = subprocess.run(
        [lint_imports, "--config", str(config), "--no-cache"],
        cwd=package_parent if (package_parent / "portwatch").is_dir() else REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(package_parent), "PATH": ""},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    assert "KEPT" in result.stdout
