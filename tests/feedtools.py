"""Helpers for the tests of the feeds other tools read: the command, real tools, parsing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_runner import portwatch_cmd

PYTHON = os.path.realpath(sys.executable)
# Deadline for conditions that wait on a running monitor: generous, because the machine
# running the tests may be busy; a passing run returns as soon as the condition holds.
SLOW_S = 40.0

# Debian's packages name node_exporter differently from upstream's tarball.
NODE_EXPORTER_NAMES = ("prometheus-node-exporter", "node_exporter")


def require_tool(*names: str) -> str:
    """The path of the first tool found, or skip the test saying which is missing."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        f"{' / '.join(names)} is not installed (Debian: apt-get install prometheus"
        " prometheus-node-exporter; .ci/run installs them)"
    )


@contextmanager
def monitor(data_dir: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``portwatch monitor`` running in the background; stopped by SIGTERM afterwards."""
    process = subprocess.Popen(
        [*portwatch_cmd(), "--data-dir", str(data_dir), "monitor", "--interval", "0.2", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Series:
    """Samples of the Prometheus text format; any line that is not one is an error."""
    out: Series = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"line {number} is not a sample: {line!r}"
        labels: list[tuple[str, str]] = []
        body = (match.group(2) or "{}")[1:-1]
        consumed = 0
        for label in _LABEL.finditer(body):
            assert label.start() == consumed, f"line {number}: bad labels {body!r}"
            value = re.sub(r"\\.", lambda m: _UNESCAPE[m.group(0)], label.group(2))
            labels.append((label.group(1), value))
            consumed = label.end()
        assert consumed == len(body), f"line {number}: bad labels {body!r}"
        out[(match.group(1), frozenset(labels))] = float(match.group(3))
    return out


def pick(series: Series, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return [
        (dict(key_labels), value)
        for (key_name, key_labels), value in series.items()
        if key_name == name and wanted <= key_labels
    ]


def scrape(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        return str(response.read().decode("utf-8"))
