"""The headless command line: one module per command, no Qt imported."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

# Each module has ``add_parser(subparsers)`` which registers a sub-command whose
# ``handler`` is ``run(args, paths) -> int``.
COMMAND_MODULES = ("scan", "monitor", "export", "watch", "describe", "trust", "connections")


class CommandError(Exception):
    """A runtime failure the user can act on: printed as one line, exit status 1."""


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"portwatch.cli.{name}")
        module.add_parser(subparsers)
