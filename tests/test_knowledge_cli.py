"""``portwatch describe`` run the way a user runs it, and the rendered text and HTML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from portwatch.core.types import Proto
from portwatch.knowledge import KnowledgeBase
from portwatch.knowledge.render import to_html, to_text


def describe(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portwatch", "--data-dir", str(data_dir), "describe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_describe_3321(tmp_path: Path) -> None:
    result = describe(tmp_path, "3321")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "vnsstr" in out and "Framehawk" in out and "3224-3324" in out
    assert "sudo ss -tulnp 'sport = :3321'" in out
    assert "nmap -sT -p 3321" in out
    # TCP and UDP share one description: shown once.
    assert out.count("What it is") == 1


def test_describe_3353(tmp_path: Path) -> None:
    result = describe(tmp_path, "3353")
    assert result.returncode == 0, result.stderr
    assert "fatpipe" in result.stdout and "FatPipe" in result.stdout
    assert "proprietary" in result.stdout


def test_describe_3653(tmp_path: Path) -> None:
    result = describe(tmp_path, "3653/udp")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())  # undo the wrapping
    assert "Tunnel Setup Protocol" in out
    assert "RFC 5572" in out and "RFC 7123" in out
    assert "IP protocol 41" in out and "443/tcp" in out
    assert "sudo nmap -sU -p 3653" in out and "sudo lsof -nP -iUDP:3653" in out


def test_describe_shows_both_protocols_when_they_differ(tmp_path: Path) -> None:
    # mDNS is described for UDP; on TCP IANA registers the same name, said in a line.
    result = describe(tmp_path, "5353")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("What it is") == 1
    assert "5353/udp" in result.stdout and '5353/tcp: IANA registers "mdns"' in result.stdout


def test_describe_json_parses(tmp_path: Path) -> None:
    result = describe(tmp_path, "3653", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["port"] == 3653
    (info,) = data["descriptions"]
    assert info["name"] == "tsp" and info["source"] == "curated"
    assert info["covers"] == {"low": 3653, "high": 3653, "protocols": ["tcp", "udp"]}
    assert any("3653" in cmd for check in info["checks"] for cmd in check["commands"])


@pytest.mark.parametrize("arg", ["0", "65536", "abc", "80.5", "3000-3010", "22/sctp"])
def test_describe_refuses_a_bad_port_with_one_line(tmp_path: Path, arg: str) -> None:
    result = describe(tmp_path, arg)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and arg in result.stderr


def test_describe_warns_about_a_broken_user_file_and_carries_on(tmp_path: Path) -> None:
    (tmp_path / "ports.toml").write_text("[[entry]\n", encoding="utf-8")
    result = describe(tmp_path, "3321/udp")
    assert result.returncode == 0
    assert "warning" in result.stderr and "ports.toml" in result.stderr
    assert "Framehawk" in result.stdout


def test_describe_uses_the_user_file(tmp_path: Path) -> None:
    (tmp_path / "ports.toml").write_text(
        '[[entry]]\nport = 40123\nprotocols = ["tcp"]\nname = "build-cache"\n'
        'summary = "Our build cache."\n',
        encoding="utf-8",
    )
    result = describe(tmp_path, "40123/tcp")
    assert result.returncode == 0, result.stderr
    assert "build-cache" in result.stdout and "your own ports.toml" in result.stdout


def test_html_escapes_every_string(tmp_path: Path) -> None:
    path = tmp_path / "ports.toml"
    path.write_text(
        '[[entry]]\nport = 40124\nprotocols = ["tcp"]\n'
        'name = "<b>x</b>"\ntitle = "<img src=x onerror=alert(1)>"\n'
        "summary = \"A & B <script>alert('s')</script>\"\n"
        'programs = ["<i style=\\"color:red\\">p</i>"]\n'
        'related = [{ what = "<u>", note = "\\"quoted\\"" }]\n',
        encoding="utf-8",
    )
    base, problems = KnowledgeBase.load(path)
    assert problems == ()
    page = to_html(base.lookup(40124, Proto.TCP))
    for raw in ("<b>x", "<img", "<script>", "<i style", "<u>", "& B"):
        assert raw not in page
    assert "&lt;script&gt;" in page and "&amp; B" in page and "&quot;quoted&quot;" in page
    assert "<pre><code>" in page and "<h3>Check by hand</h3>" in page


def test_text_and_html_have_the_same_sections() -> None:
    base, _ = KnowledgeBase.load(None)
    info = base.lookup(3300, Proto.UDP)
    text, page = to_text(info), to_html(info)
    for heading in ("What it is", "Registration", "In practice", "Check by hand"):
        assert heading in text and f"<h3>{heading}</h3>" in page
    assert "3300 is one port of the range" in text and "3300 is one port of the range" in page


def test_expected_programs_always_come_with_the_never_trust_caveat() -> None:
    base, _ = KnowledgeBase.load(None)
    info = base.lookup(3653, Proto.TCP)
    assert info.programs
    text, page = to_text(info), to_html(info)
    assert "Hints only" in text and "never trust" in text
    assert "<li>Hints only" not in page and "<small>Hints only" in page


@pytest.mark.parametrize("port", ["22", "80", "443", "3389", "5432", "8080", "1720", "53", "4"])
def test_describe_prints_nothing_twice_and_no_boilerplate(tmp_path: Path, port: str) -> None:
    result = describe(tmp_path, port)
    assert result.returncode == 0, result.stderr
    # Prose lines (commands excepted: both protocols have their own) appear once.
    prose = [
        line.strip()
        for line in result.stdout.splitlines()
        if len(line.strip()) > 30 and not line.startswith("    ") and set(line) != {"="}
    ]
    repeated = sorted({line for line in prose if prose.count(line) > 1})
    assert repeated == []
    if port != "4":
        # A port with a real answer gets no "nothing known" filler.
        assert "Nothing known about this port" not in result.stdout
        assert "No registered service known" not in result.stdout
        assert len(result.stdout.splitlines()) < 120
