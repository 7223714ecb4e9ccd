"""JSON from a file the user (or anyone) may have written: parsed without crashing.

Python's parser raises ``ValueError`` for an integer of more than 4,300 digits and
``RecursionError`` for deep nesting; neither is a JSON syntax error, so callers that
catch only ``JSONDecodeError`` crash. Here every way the text can be unusable is one
:class:`JsonProblem` whose message names the reason, and an absurdly long number stays
a value the validators refuse by name instead of a crash.
"""

from __future__ import annotations

import json

from portwatch import files

# Longer than any port, time or count portwatch stores (a float has 17 significant digits).
MAX_NUMBER_DIGITS = 40


class JsonProblem(ValueError):
    """The text is not usable JSON; ``str()`` is the reason, for one line to the user."""


class LongNumber(float):
    """A number with more digits than any real value has: infinite, so every range
    check refuses it, and shown by its length rather than by its thousands of digits."""

    digits: int

    def __new__(cls, text: str) -> LongNumber:
        value = super().__new__(cls, float("-inf") if text.startswith("-") else float("inf"))
        value.digits = sum(ch.isdigit() for ch in text)
        return value

    def __repr__(self) -> str:
        return f"<a number of {self.digits} digits>"

    __str__ = __repr__


def _number(text: str) -> int | float:
    if len(text) > MAX_NUMBER_DIGITS:
        return LongNumber(text)
    return int(text) if text.lstrip("-").isdigit() else float(text)


def loads(raw: bytes | str) -> object:
    """Parse JSON text (a UTF-8 byte-order mark is fine); raise :class:`JsonProblem`."""
    text = files.decode_text(raw) if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
    try:
        return json.loads(text, parse_int=_number, parse_float=_number)
    except json.JSONDecodeError as exc:
        raise JsonProblem(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        # The C parser stops cleanly at the interpreter's recursion limit.
        raise JsonProblem("nested too deeply") from None
    except (ValueError, MemoryError) as exc:
        raise JsonProblem(str(exc) or type(exc).__name__) from None
