#!/usr/bin/env bash
# The project's static checks, as CI runs them: lint, format, types over the whole
# package, and the import layering. Run from anywhere; needs the package's dependencies
# in the active Python (mypy reads PySide6's and psutil's own type information).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python -m pip install -q "ruff==0.17.6" "mypy==2.4.1" "import-linter>=2.0"
status=0
ruff check . || status=1
ruff format --check . || status=1
mypy || status=1          # files and strictness come from pyproject.toml
lint-imports || status=1
if [ "$status" -ne 0 ]; then
  echo "lint: failed"
  exit 1
fi
echo "lint: ruff, ruff format, mypy --strict and the import contracts are clean"
