"""The smoke check of an installed or frozen portwatch, the way a user runs it.

    python scripts/smoke.py [--gui-command CMD] [--shot PNG] [--expect-owner] -- CMD...

CMD is how to start the command line: ``portwatch``, ``python -m portwatch``, or a frozen
``portwatch-cli.exe``; ``--gui-command`` the windowed program for ``--smoke`` (default: CMD).
Runs, in a fresh data folder: ``watch add``, ``scan --json`` (a real listener started by this
Python must be in it), ``monitor --duration``, ``export`` to a file (UTF-8 with a BOM, CR LF)
and to stdout (CR LF, never CR CR LF, no BOM), ``describe`` through a pipe with a description
the ANSI code pages cannot encode, the window offscreen (``--smoke PNG``), and with
``--second-launch`` a second launch that hands over to the running window instead of opening
another.

Stdlib only, so the same file runs in CI on Linux, in the Windows lane under Wine, and in the
cross-platform workflow on real Windows and macOS. Prints one line per check, then
``smoke: N passed, N failed``; exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

TIMEOUT_S = 180
DESCRIPTION = (
    '[[entry]]\nport = 8123\nprotocols = ["tcp"]\nname = "home-assistant"\n'
    'title = "Home Assistant \u2192 \u5bb6"\nsummary = "A user description \u2014 arrow."\n'
)


class Smoke:
    def __init__(self, cli: Sequence[str], gui: Sequence[str], data: Path) -> None:
        self.cli, self.gui, self.data = list(cli), list(gui), data
        self.passed = self.failed = 0

    def run(self, *args: str, gui: bool = False) -> subprocess.CompletedProcess[bytes]:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        env.pop("PORTWATCH_DATA_DIR", None)
        argv = [*(self.gui if gui else self.cli), "--data-dir", str(self.data), *args]
        # Output into files, not pipes: waiting for a pipe's end under Wine can hang after
        # the program has exited.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                timeout=TIMEOUT_S,
                env=env,
                # Never a checkout's folder: `python -m portwatch` would import the source
                # there instead of the installed package under test.
                cwd=self.data.parent,
                check=False,
            ).returncode
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(argv, code, out.read(), err.read())

    def check(self, name: str, body: Callable[[], str]) -> None:
        try:
            detail = body()
        except (AssertionError, OSError, ValueError, subprocess.SubprocessError) as exc:
            self.failed += 1
            print(f"smoke: FAIL  {name:<24} {exc}", flush=True)
        else:
            self.passed += 1
            print(f"smoke: PASS  {name:<24} {detail}", flush=True)


def _ok(result: subprocess.CompletedProcess[bytes]) -> bytes:
    tail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
    assert result.returncode == 0, f"exit {result.returncode}: {' | '.join(tail)}"
    assert b"Traceback" not in result.stderr, " | ".join(tail)
    return result.stdout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gui-command", help="the windowed program for --smoke")
    parser.add_argument("--shot", help="keep the window's screenshot here")
    parser.add_argument(
        "--expect-owner",
        action="store_true",
        help="the listener must be attributed to its pid (not under Wine, where every pid is 0)",
    )
    parser.add_argument(
        "--second-launch",
        action="store_true",
        help="also check that a second launch hands over to the running window",
    )
    parser.add_argument("command", nargs="+", help="how to start the command line")
    args = parser.parse_args(argv)
    gui = args.gui_command.split() if args.gui_command else args.command
    workdir = Path(tempfile.mkdtemp(prefix="portwatch-smoke-"))
    smoke = Smoke(args.command, gui, workdir / "data")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:

        def watch() -> str:
            _ok(smoke.run("watch", "add", str(port)))
            return f"port {port}"

        smoke.check("watch-add", watch)

        def scan() -> str:
            rows = json.loads(_ok(smoke.run("scan", "--json")))
            mine = [row for row in rows if row["port"] == port]
            assert mine, f"the listener on 127.0.0.1:{port} is missing"
            if args.expect_owner:
                assert mine[0]["pid"] == os.getpid(), f"owner {mine[0]['pid']}, not {os.getpid()}"
            return f"{len(rows)} listeners; port {port} is {mine[0]['status']}"

        smoke.check("scan-json", scan)

        def monitor() -> str:
            out = _ok(smoke.run("monitor", "--interval", "0.5", "--duration", "2", "--json"))
            assert f'"port": {port}'.encode() in out, "the listener is not in the events"
            return "ran 2 s and reported the listener"

        smoke.check("monitor-duration", monitor)

        def export_file() -> str:
            target = workdir / "listeners.csv"
            _ok(smoke.run("export", "-o", str(target)))
            data = target.read_bytes()
            assert data.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM: Excel would misread it"
            assert data.count(b"\r\n") == data.count(b"\n"), "line ends are not CR LF"
            assert f",{port},".encode() in data, "the listener is missing"
            rows = data.count(b"\n")
            return f"{rows} rows, BOM, CR LF"

        smoke.check("export-file", export_file)

        def export_stdout() -> str:
            data = _ok(smoke.run("export", "-o", "-"))
            assert b"\r\r\n" not in data, "rows end in CR CR LF"
            assert data.count(b"\r\n") == data.count(b"\n"), "line ends are not CR LF"
            assert not data.startswith(b"\xef\xbb\xbf"), "a BOM on stdout"
            rows = data.count(b"\n")
            return f"{rows} rows, CR LF, no BOM"

        smoke.check("export-stdout", export_stdout)

        def describe() -> str:
            (smoke.data / "ports.toml").write_text(DESCRIPTION, encoding="utf-8")
            out = _ok(smoke.run("describe", "8123"))
            assert b"Home Assistant" in out, "the user's description is missing"
            return "printed through a pipe"

        smoke.check("describe-piped", describe)

        def window() -> str:
            png = workdir / "smoke.png"
            _ok(smoke.run("--smoke", str(png), gui=True))
            assert png.stat().st_size > 1000, "the screenshot is empty"
            if args.shot:
                Path(args.shot).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(png, args.shot)
            return f"window opened and painted ({png.stat().st_size} bytes)"

        smoke.check("window-offscreen", window)

        def second_launch() -> str:
            # The first window holds the single-instance lock; a second launch must hand
            # over to it (asking it to come to the front) and exit, not open another.
            env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
            env.pop("PORTWATCH_DATA_DIR", None)
            folder = workdir / "second"
            first = subprocess.Popen(
                [*smoke.gui, "--data-dir", str(folder)],
                env=env,
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + TIMEOUT_S / 2
                while not (folder / "portwatch.lock").exists():
                    assert first.poll() is None, f"the first launch exited ({first.returncode})"
                    assert time.monotonic() < deadline, "the first launch never took the lock"
                    time.sleep(0.2)
                second = subprocess.run(
                    [*smoke.gui, "--data-dir", str(folder)],
                    env=env,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=TIMEOUT_S,
                    check=False,
                )
                assert second.returncode == 0, f"the second launch exited {second.returncode}"
                assert first.poll() is None, "the first launch went away"
                log = (folder / "logs" / "portwatch.log").read_text("utf-8", "replace")
                assert "asked it to show its window (True)" in log, "the first was not asked"
            finally:
                first.kill()
                first.wait(timeout=60)
            return "handed over to the running window and exited"

        if args.second_launch:
            smoke.check("second-launch", second_launch)
    finally:
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"smoke: {smoke.passed} passed, {smoke.failed} failed", flush=True)
    return 1 if smoke.failed else 0


if __name__ == "__main__":
    sys.exit(main())
