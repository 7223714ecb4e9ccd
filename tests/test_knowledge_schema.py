"""The embedded port descriptions obey their schema, and the schema refuses bad input."""

from __future__ import annotations

import re

import pytest

from portwatch.core.types import Proto
from portwatch.knowledge import KnowledgeBase
from portwatch.knowledge.base import embedded_files, parse_embedded
from portwatch.knowledge.checks import PLATFORMS
from portwatch.knowledge.model import Entry
from portwatch.knowledge.schema import USER_TEMPLATE, duplicates, parse_text

WATCHED = (3321, 3353, 3653)


@pytest.fixture(scope="module")
def curated() -> list[Entry]:
    entries: list[Entry] = []
    for parsed in parse_embedded():
        entries.extend(parsed.entries)
    return entries


def test_embedded_files_are_found_through_importlib_resources() -> None:
    names = [name for name, _ in embedded_files()]
    assert names, "no embedded description files were found"
    assert all(name.endswith(".toml") for name in names)


def test_embedded_files_have_no_problems() -> None:
    problems = [p for parsed in parse_embedded() for p in parsed.problems]
    assert problems == []


def test_no_port_or_range_is_described_twice(curated: list[Entry]) -> None:
    assert duplicates(curated) == ()


def test_every_curated_entry_is_complete_and_valid(curated: list[Entry]) -> None:
    for entry in curated:
        assert 1 <= entry.lo <= entry.hi <= 65535, entry
        assert entry.protocols and set(entry.protocols) <= {Proto.TCP, Proto.UDP}, entry
        assert len(set(entry.protocols)) == len(entry.protocols), entry
        assert entry.source == "curated"
        for text in (entry.name, entry.title, entry.summary, entry.registration, entry.usage):
            assert text.strip(), entry
        for text in (*entry.security, *entry.programs):
            assert text.strip(), entry
        for related in entry.related:
            assert related.what.strip() and related.note.strip(), entry
        assert entry.name == entry.name.strip() and "\n" not in entry.name


def test_enough_ports_are_curated(curated: list[Entry]) -> None:
    others = [e for e in curated if not (e.lo == e.hi and e.lo in WATCHED)]
    assert len(others) >= 150
    for port in WATCHED:
        entry = next(e for e in curated if e.lo == e.hi == port)
        assert entry.protocols == (Proto.TCP, Proto.UDP)
        assert entry.security and entry.related and entry.programs


@pytest.mark.parametrize(
    ("lo", "hi", "protos"),
    [
        (3224, 3324, (Proto.UDP,)),
        (32768, 60999, (Proto.TCP, Proto.UDP)),
        (49152, 65535, (Proto.TCP, Proto.UDP)),
    ],
)
def test_required_ranges_are_described(
    curated: list[Entry], lo: int, hi: int, protos: tuple[Proto, ...]
) -> None:
    assert any(e.lo == lo and e.hi == hi and e.protocols == protos for e in curated)


def test_every_check_command_names_its_port(curated: list[Entry]) -> None:
    base = KnowledgeBase(curated)
    for entry in curated:
        for port in {entry.lo, (entry.lo + entry.hi) // 2, entry.hi}:
            for proto in entry.protocols:
                info = base.lookup(port, proto)
                assert [c.platform for c in info.checks] == list(PLATFORMS)
                number = re.compile(rf"(?<!\d){port}(?!\d)")
                for check in info.checks:
                    assert check.commands, (port, check)
                    for command in check.commands:
                        assert number.search(command), (port, command)


GOOD = """
[[entry]]
port = 8123
protocols = ["tcp"]
name = "example"
summary = "An example."
"""


def _problems(text: str, source: str = "user") -> tuple[str, ...]:
    return parse_text(text, "test.toml", source).problems  # type: ignore[arg-type]


def test_a_minimal_user_entry_is_accepted() -> None:
    parsed = parse_text(GOOD, "test.toml", "user")
    assert parsed.problems == ()
    (entry,) = parsed.entries
    assert (entry.lo, entry.hi, entry.protocols, entry.title) == (
        8123,
        8123,
        (Proto.TCP,),
        "example",
    )


def test_curated_entries_need_every_text_field() -> None:
    problems = _problems(GOOD, "curated")
    assert any("'title' is missing" in p for p in problems)
    assert any("'registration' is missing" in p for p in problems)


@pytest.mark.parametrize(
    ("replace", "by", "reason"),
    [
        ("port = 8123", "port = true", "not a whole number"),
        ("port = 8123", "port = 0", "not a whole number"),
        ("port = 8123", "port = 65536", "not a whole number"),
        ("port = 8123", 'port = "8123"', "not a whole number"),
        ("port = 8123", "port = 80.5", "not a whole number"),
        ("port = 8123", "range = [9000, 8000]", "lower to a higher"),
        ("port = 8123", "range = [9000]", "[LOW, HIGH]"),
        ("port = 8123", "", "exactly one of 'port' or 'range'"),
        ("port = 8123", "port = 1\nrange = [1, 2]", "exactly one of 'port' or 'range'"),
        ('protocols = ["tcp"]', 'protocols = ["sctp"]', 'use "tcp" or "udp"'),
        ('protocols = ["tcp"]', "protocols = []", "must be a list"),
        ('protocols = ["tcp"]', 'protocols = ["tcp", "TCP"]', "twice"),
        ('summary = "An example."', 'summary = "   "', "'summary' is empty"),
        ('summary = "An example."', "summary = 5", "must be text"),
        ('summary = "An example."', 'summary = "bad \\u001b[31m"', "control character"),
        ('summary = "An example."', 'summary = "bad \\u202e"', "control character"),
        ('name = "example"', 'name = "two\\nlines"', "control character"),
        ('name = "example"', f'name = "{"x" * 41}"', "at most 40"),
        ('summary = "An example."', "", "'summary' is missing"),
        ('name = "example"', 'name = "example"\nsecurity = "one"', "list of text"),
        ('name = "example"', 'name = "example"\nrelated = [{ what = "x" }]', "'what' and 'note'"),
        ('name = "example"', 'name = "example"\nsystems = ["bsd"]', "'systems' has 'bsd'"),
        ('name = "example"', 'name = "example"\nsystems = "linux"', "'systems' must be a list"),
    ],
)
def test_bad_entries_are_refused_with_a_reason(replace: str, by: str, reason: str) -> None:
    text = GOOD.replace(replace, by)
    parsed = parse_text(text, "test.toml", "user")
    assert parsed.entries == ()
    assert any(reason in p for p in parsed.problems), parsed.problems
    assert all("test.toml: entry 1" in p for p in parsed.problems)


def test_an_entry_may_name_the_systems_it_is_true_on() -> None:
    parsed = parse_text(GOOD + 'systems = ["windows", "macos"]\n', "test.toml", "user")
    assert parsed.problems == ()
    (entry,) = parsed.entries
    assert entry.systems == ("windows", "macos")
    assert entry.applies_on("macos") and not entry.applies_on("linux")
    (everywhere,) = parse_text(GOOD, "test.toml", "user").entries
    assert all(everywhere.applies_on(s) for s in ("linux", "windows", "macos", "other"))


def test_unknown_fields_are_reported_but_the_entry_is_kept() -> None:
    parsed = parse_text(GOOD + 'sumary = "typo"\n', "test.toml", "user")
    assert len(parsed.entries) == 1
    assert any("unknown field(s) sumary" in p for p in parsed.problems)


def test_a_repeated_port_is_reported_once_and_the_first_kept() -> None:
    parsed = parse_text(GOOD + GOOD.replace("An example.", "Again."), "test.toml", "user")
    assert [e.summary for e in parsed.entries] == ["An example."]
    assert len(parsed.problems) == 1 and "already described" in parsed.problems[0]


def test_a_file_that_is_not_toml_is_one_problem() -> None:
    parsed = parse_text("[[entry]\nport = ", "test.toml", "user")
    assert parsed.entries == ()
    assert len(parsed.problems) == 1 and "not valid TOML" in parsed.problems[0]


def test_entry_must_be_a_list_of_tables() -> None:
    assert "list of [[entry]] tables" in _problems('entry = "x"')[0]
    assert "expected a table" in _problems("entry = [1]")[0]


def test_the_user_template_changes_nothing_and_its_example_is_valid() -> None:
    assert parse_text(USER_TEMPLATE, "ports.toml", "user") == parse_text("", "x", "user")
    lines = USER_TEMPLATE.splitlines()
    start = lines.index("# [[entry]]")
    example = "\n".join(line.removeprefix("# ") for line in lines[start:])
    parsed = parse_text(example, "ports.toml", "user")
    assert parsed.problems == ()
    (entry,) = parsed.entries
    assert entry.name == "home-assistant" and entry.related[0].what == "1883/tcp"
