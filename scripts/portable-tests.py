"""The portable part of the test suite: what runs on every OS, with one definition.

    python scripts/portable-tests.py [--junitxml FILE] [PYTEST ARGS...]

The one place that says which tests are "portable", used by the Windows lane
(scripts/windows-lane.sh, under Windows Python in Wine) and by the cross-platform
workflow's Windows and macOS jobs:

- every test under tests/, except those marked ``slow`` (thousands of sockets, long runs)
  or ``tray`` (a real X display with a system tray);
- a test that needs another OS (Linux's /proc and netlink, POSIX signals, uids, paths)
  skips itself with the reason (tests/platforms.py), so nothing is listed here by OS;
- the widget tests run in a pytest process of their own, so a crash inside Qt cannot take
  the other results with it.

Extra arguments go to both pytest runs (``-k trust``, ``-x``); arguments naming test files
or folders choose what runs instead of the whole tree (for targeted runs while developing).
The last line is ``portable-tests: N passed, N failed, N skipped``; the exit status is 0
only when nothing failed and at least one test passed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The portable selection: the markers pyproject.toml declares for what needs more than a
# plain machine.
MARKERS = "not slow and not tray"
GUI = "tests/gui"
# One run may not hang CI; a widget test under Wine takes seconds, the whole part minutes.
RUN_TIMEOUT_S = 1200
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)")


def runs(extra: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The pytest runs: (name, arguments), the widget tests in their own process."""
    paths = [a for a in extra if not a.startswith("-") and (ROOT / a.split("::")[0]).exists()]
    options = [a for a in extra if a not in paths]
    if paths:
        gui = [p for p in paths if Path(p).as_posix().startswith(GUI)]
        other = [p for p in paths if p not in gui]
        chosen = [("tests", other), ("tests-gui", gui)]
    else:
        chosen = [("tests", ["tests", f"--ignore={GUI}"]), ("tests-gui", [GUI])]
    return [(name, [*args, *options]) for name, args in chosen if args]


def counts(output: str) -> dict[str, int]:
    """The numbers in pytest's final summary line."""
    lines = [ln for ln in output.splitlines() if _COUNT.search(ln) and " in " in ln]
    found: dict[str, int] = {}
    for number, word in _COUNT.findall(lines[-1] if lines else ""):
        key = "error" if word.startswith("error") else word
        found[key] = found.get(key, 0) + int(number)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--junitxml", help="write JUnit XML reports (FILE, FILE-gui)")
    args, extra = parser.parse_known_args(argv)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    total = {"passed": 0, "failed": 0, "skipped": 0}
    problems: list[str] = []
    for name, pytest_args in runs(extra):
        # -P: the checkout is not put on sys.path, so the installed package is what is tested
        # (as with the README's `pytest` command).
        safe_path = ["-P"] if sys.version_info >= (3, 11) else []
        command = [sys.executable, *safe_path, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-rfE"]
        # A module that cannot be collected is one error, not the end of the whole run.
        command += ["--tb=short", "-m", MARKERS, "--continue-on-collection-errors"]
        if args.junitxml:
            suffix = "" if name == "tests" else "-gui"
            stem, dot, ext = args.junitxml.rpartition(".")
            command.append(
                f"--junitxml={stem}{suffix}{dot}{ext}" if dot else args.junitxml + suffix
            )
        started = time.monotonic()
        # Output through a file, not a pipe: a process the tests start may keep a pipe open
        # past pytest's exit (under Wine, the desktop process Wine starts on first use
        # inherits it), and reading to its end would then never finish.
        with tempfile.TemporaryFile() as sink:
            try:
                code = subprocess.run(
                    [*command, *pytest_args],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    timeout=RUN_TIMEOUT_S,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                code = -1
                problems.append(f"{name}: did not finish within {RUN_TIMEOUT_S} s")
            sink.seek(0)
            output = sink.read().decode("utf-8", errors="replace").replace("\r\n", "\n")
        sys.stdout.write(output)
        found = counts(output)
        failed = found.get("failed", 0) + found.get("error", 0)
        total["passed"] += found.get("passed", 0)
        total["failed"] += failed
        total["skipped"] += found.get("skipped", 0)
        # pytest exit 5 is "no tests collected": fine for one half of a targeted run.
        if code not in (0, 5) and not failed:
            problems.append(f"{name}: pytest exited with {code} and no summary")
            total["failed"] += 1
        took = time.monotonic() - started
        print(
            f"portable-tests: {name}: {found.get('passed', 0)} passed, {failed} failed,"
            f" {found.get('skipped', 0)} skipped in {took:.0f} s",
            flush=True,
        )
    for problem in problems:
        print(f"portable-tests: {problem}", flush=True)
    if total["passed"] == 0:
        print("portable-tests: no test ran", flush=True)
    print(
        f"portable-tests: {total['passed']} passed, {total['failed']} failed,"
        f" {total['skipped']} skipped",
        flush=True,
    )
    return 0 if total["failed"] == 0 and total["passed"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
