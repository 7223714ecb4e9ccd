"""Problems found in a file, reported readably however many there are.

A file with a million bad lines must not print a million warnings: the first few are
shown in full, the rest are counted in one line.
"""

from __future__ import annotations

from collections import Counter

# Enough to see the pattern and fix the first lines; the rest are counted.
SHOWN = 20


class ProblemList:
    """Collects problem lines: the first :data:`SHOWN` kept, later ones counted by kind."""

    def __init__(self, shown: int = SHOWN) -> None:
        self._shown = shown
        self.lines: list[str] = []
        self._more: Counter[str] = Counter()

    def add(self, line: str, kind: str = "other") -> None:
        if len(self.lines) < self._shown:
            self.lines.append(line)
        else:
            self._more[kind] += 1

    def __len__(self) -> int:
        return len(self.lines) + sum(self._more.values())

    def __bool__(self) -> bool:
        return bool(self.lines)

    def summary(self) -> tuple[str, ...]:
        """The kept lines, plus one line counting the rest."""
        if not self._more:
            return tuple(self.lines)
        total = sum(self._more.values())
        kinds = ", ".join(f"{count:,} {kind}" for kind, count in self._more.most_common())
        return (*self.lines, f"... and {total:,} more problems like these ({kinds})")


def summarise(lines: list[str], shown: int = SHOWN) -> list[str]:
    """The first ``shown`` lines and one line counting the rest."""
    if len(lines) <= shown:
        return list(lines)
    return [*lines[:shown], f"... and {len(lines) - shown:,} more problems like these"]


class Outage:
    """A failure that repeats every poll (no file descriptors, a full disk) told once:
    one line when it starts or changes, none while it goes on, and the count of failed
    attempts when it is over."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.failures = 0

    def failed(self, line: str) -> str | None:
        """``line`` when it is news, None while the same failure goes on."""
        self.failures += 1
        if line == self.current:
            return None
        self.current = line
        return line

    def ended(self) -> int:
        """How many attempts failed in the outage that just ended (0: there was none)."""
        failures, self.failures, self.current = self.failures, 0, None
        return failures
