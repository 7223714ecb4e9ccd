"""The import layering of architecture.md, enforced mechanically by import-linter."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from platforms import wine_limit

import portwatch

REPO = Path(__file__).resolve().parents[1]


@wine_limit("import-linter's compiled extension (grimp) does not load")
def test_import_contracts_hold() -> None:
    config = REPO / ".importlinter"
    # Beside the interpreter in a venv; in Scripts\ on Windows.
    here = Path(sys.executable).parent
    lint_imports = shutil.which("lint-imports") or next(
        (
            str(p)
            for p in (here / "lint-imports", here / "Scripts" / "lint-imports.exe")
            if p.exists()
        ),
        str(here / "lint-imports"),
    )
    # Analyse the package that is actually imported (the installed one in CI).
    package_parent = Path(portwatch.__file__).resolve().parents[1]
    result = subprocess.run(
        [lint_imports, "--config", str(config), "--no-cache"],
        cwd=package_parent if (package_parent / "portwatch").is_dir() else REPO,
        capture_output=True,
        text=True,
        # (Windows programs need SYSTEMROOT to start at all.)
        env={
            "PYTHONPATH": str(package_parent),
            "PATH": "",
            **({"SYSTEMROOT": os.environ["SYSTEMROOT"]} if "SYSTEMROOT" in os.environ else {}),
        },
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    assert "KEPT" in result.stdout


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_services_use_qt_without_widgets() -> None:
    # import-linter cannot forbid a subpackage of an external package, so this one is by AST.
    services = Path(portwatch.__file__).parent / "services"
    offenders = {
        f"{path.name}: {name}"
        for path in services.rglob("*.py")
        for name in _imported_modules(path)
        if name.startswith(("PySide6.QtWidgets", "pyqtgraph"))
    }
    assert not offenders


def test_entry_point_does_not_import_qt_for_commands() -> None:
    # `portwatch scan` must start fast and work without a display: Qt only for the window.
    code = (
        "import sys, portwatch.__main__ as m\n"
        "m.build_parser()\n"
        "print(sorted(n for n in sys.modules if n.startswith(('PySide6', 'pyqtgraph'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
