"""What the activity chart draws, worked out from live polls and history buckets.

No widgets here: numpy arrays in, numpy arrays out, so every rule about gaps, steps and
traffic is tested on its own.

Two kinds of input:

- **live points**, one per poll: (wall, listeners, established, bytes in, bytes out). A
  failed poll is a row of NaN; bytes are NaN where the poll could not count them (UDP,
  a probe without per-socket counters, a poll that re-used the last connection count).
- **history buckets** from the store: the same columns, one row per 10 s / 1 min / 15 min
  bucket that had a poll, its bucket start as ``wall``; counts are the most seen in the
  bucket, bytes the sum. A bucket with no poll is absent: that is a gap.

Two kinds of output:

- **count steps** ``(end, listeners, established)``: a count holds over the time before
  ``end`` back to the previous point (a poll, or a bucket's width).
- **traffic spans** ``(start, end, bytes in, bytes out)``: bytes counted at ``end`` that
  moved since ``start``, the previous count. A poll or bucket without a count is covered
  by the next one that has it; nothing is drawn across a gap, and where nothing was ever
  counted nothing is drawn at all ("not measured"), never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Columns of a live point / history bucket.
WALL, LISTENERS, ESTABLISHED, BYTES_IN, BYTES_OUT = range(5)
POINT_COLUMNS = 5
# A gap longer than this many poll intervals is drawn as a gap.
GAP_FACTOR = 3.0


def is_gap(delta_s: float, step_s: float) -> bool:
    """Whether two points ``delta_s`` apart, expected ``step_s`` apart, have a gap between
    them (the machine slept, or portwatch was not running). A clock set backwards
    (negative delta) is a gap too, so no line is drawn back in time."""
    return delta_s < 0 or delta_s > max(GAP_FACTOR * step_s, step_s + 5.0)


def empty_points() -> np.ndarray:
    return np.empty((0, POINT_COLUMNS))


class SeriesBuffer:
    """A fixed-size ring of live points (see the module docstring for the columns)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data = np.full((capacity, POINT_COLUMNS), np.nan)
        self._head = 0  # next write position
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def last_time(self) -> float | None:
        if self._size == 0:
            return None
        return float(self._data[(self._head - 1) % self.capacity, WALL])

    def first_time(self) -> float | None:
        if self._size == 0:
            return None
        return float(self.ordered()[0, WALL])

    def append(
        self,
        wall: float,
        listeners: float,
        established: float,
        bytes_in: float = math.nan,
        bytes_out: float = math.nan,
    ) -> None:
        self._data[self._head] = (wall, listeners, established, bytes_in, bytes_out)
        self._head = (self._head + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def append_sample(
        self,
        wall: float,
        listeners: float,
        established: float,
        interval_s: float,
        bytes_in: float = math.nan,
        bytes_out: float = math.nan,
    ) -> None:
        """Append a poll, first inserting a NaN break if the gap since the last is long."""
        last = self.last_time()
        if last is not None and is_gap(wall - last, interval_s):
            self.append(last + interval_s, math.nan, math.nan)
        self.append(wall, listeners, established, bytes_in, bytes_out)

    def since(self, wall: float) -> np.ndarray:
        """The points from ``wall`` on, and the one before (a step needs its start),
        without copying the whole ring when the window is a small part of it."""
        if self._size < self.capacity:
            runs = [self._data[: self._size]]
        else:
            # Wrapped: the older run is at the back of the array, the newer at the front.
            runs = [self._data[self._head :], self._data[: self._head]]
        for index, run in enumerate(runs):
            if not len(run) or run[-1, WALL] < wall:
                continue
            first = int(np.searchsorted(run[:, WALL], wall, side="left"))
            if first > 0 or index == 0:
                tail = run[max(0, first - 1) :]
            else:  # the point before is the last of the older run
                tail = np.concatenate((runs[0][-1:], run))
            return np.concatenate((tail, *runs[index + 1 :])) if index + 1 < len(runs) else tail
        return self._data[:0] if self._size == 0 else self.ordered()[-1:]

    def ordered(self) -> np.ndarray:
        """All points, oldest first, as an (n, 5) array."""
        if self._size < self.capacity:
            return self._data[: self._size]
        return np.concatenate((self._data[self._head :], self._data[: self._head]))


def sum_port_rows(
    rows_per_port: Iterable[Sequence[tuple[float, int, int, int | None, int | None]]],
) -> np.ndarray:
    """History rows of the ports of one watched spec, summed per bucket, as (n, 5).

    Bytes are summed over the ports that counted them; NaN where none did."""
    totals: dict[float, list[float]] = {}
    for rows in rows_per_port:
        for wall, listeners, established, got_in, got_out in rows:
            slot = totals.setdefault(round(float(wall), 1), [0.0, 0.0, math.nan, math.nan])
            slot[0] += listeners
            slot[1] += established
            if got_in is not None:
                slot[2] = (0.0 if math.isnan(slot[2]) else slot[2]) + got_in
            if got_out is not None:
                slot[3] = (0.0 if math.isnan(slot[3]) else slot[3]) + got_out
    out = [(wall, *totals[wall]) for wall in sorted(totals)]
    return np.array(out, dtype=float).reshape(-1, POINT_COLUMNS)


def _nansum_or_nan(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group (rows from each index in ``starts``): the sum of the finite values, or
    NaN where the group has none."""
    finite = np.isfinite(values)
    sums = np.add.reduceat(np.where(finite, values, 0.0), starts)
    counted = np.add.reduceat(finite.astype(int), starts)
    return np.where(counted > 0, sums, np.nan)


def bucketize(points: np.ndarray, step_s: float) -> np.ndarray:
    """Live points folded into buckets of ``step_s`` the way the store folds them: the
    most listeners and connections seen, the bytes summed (NaN where no poll in the
    bucket counted them). Buckets where every poll failed are left out (gaps), as the
    store leaves them out."""
    good = points[np.isfinite(points[:, LISTENERS])]
    if not len(good):
        return empty_points()
    buckets = np.floor(good[:, WALL] / step_s) * step_s
    # Points are in time order, so each bucket's rows are contiguous.
    firsts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    out = np.empty((len(firsts), POINT_COLUMNS))
    out[:, WALL] = buckets[firsts]
    out[:, LISTENERS] = np.maximum.reduceat(good[:, LISTENERS], firsts)
    out[:, ESTABLISHED] = np.maximum.reduceat(good[:, ESTABLISHED], firsts)
    out[:, BYTES_IN] = _nansum_or_nan(good[:, BYTES_IN], firsts)
    out[:, BYTES_OUT] = _nansum_or_nan(good[:, BYTES_OUT], firsts)
    return out


@dataclass(frozen=True)
class Drawn:
    """What one watched spec shows over a window.

    ``counts`` rows are (start, end, listeners, established): the counts held over that
    time, NaN rows where there is no data. ``traffic`` rows are (start, end, bytes in,
    bytes out): bytes moved over that time."""

    counts: np.ndarray
    traffic: np.ndarray

    @property
    def measured(self) -> bool:
        """Whether any bytes were counted in the window."""
        return bool(len(self.traffic))

    def count_points(self) -> np.ndarray:
        """(end, listeners, established) rows, the way the read-out and tests see them."""
        return self.counts[:, 1:]

    def rates(self) -> np.ndarray:
        """(start, end, bytes/s in, bytes/s out) rows."""
        out: np.ndarray = self.traffic.copy()
        width = out[:, 1] - out[:, 0]
        out[:, 2] /= width
        out[:, 3] /= width
        return out


def live_counts(points: np.ndarray, interval_s: float) -> np.ndarray:
    """(start, end, listeners, established) of live polls: each poll's counts hold back
    to the previous poll, or one interval where that one failed or is long ago."""
    ends = points[:, WALL]
    starts = ends - interval_s
    if len(ends) > 1:
        previous = ends[:-1]
        delta = ends[1:] - previous
        ok = (
            np.isfinite(points[:-1, LISTENERS])
            & (delta >= 0)
            & (delta <= max(GAP_FACTOR * interval_s, interval_s + 5.0))
        )
        starts[1:][ok] = previous[ok]
    return np.column_stack((starts, ends, points[:, LISTENERS], points[:, ESTABLISHED]))


def live_traffic(points: np.ndarray, interval_s: float) -> np.ndarray:
    """(start, end, bytes in, bytes out) spans of live polls.

    A poll's bytes moved since the previous poll that counted them. After a failed poll,
    a long gap or at the first poll, the span is unknown: that count only starts the next."""
    out: list[tuple[float, float, float, float]] = []
    since: float | None = None  # when bytes were last counted, on an unbroken run of polls
    started = False  # whether the run has a poll to count from
    last: float | None = None
    for wall, listeners, _established, got_in, got_out in points:
        broken = math.isnan(listeners) or (last is not None and is_gap(wall - last, interval_s))
        last = wall
        if broken:
            since, started = None, False
            if math.isnan(listeners):
                continue
        counted = not math.isnan(got_in) and not math.isnan(got_out)
        if counted and since is not None:
            out.append((since, wall, got_in, got_out))
            since = wall
        elif counted or not started:
            # The first poll of a run: later counts are measured from here.
            since, started = wall, True
    return np.array(out, dtype=float).reshape(-1, 4)


def bucket_counts(buckets: np.ndarray, step_s: float) -> np.ndarray:
    """(start, end, listeners, established) of buckets: each covers its own width."""
    starts = buckets[:, WALL]
    return np.column_stack(
        (starts, starts + step_s, buckets[:, LISTENERS], buckets[:, ESTABLISHED])
    )


def bucket_traffic(buckets: np.ndarray, step_s: float) -> np.ndarray:
    """(start, end, bytes in, bytes out) spans of buckets: a bucket with bytes covers its
    own width and those of uncounted buckets just before it (polls that re-used the last
    connection count); a missing bucket breaks the run."""
    if not len(buckets):
        return np.empty((0, 4))
    starts = buckets[:, WALL]
    ends = starts + step_s
    # Where a run of consecutive buckets begins, and the start of each bucket's run.
    breaks = np.r_[True, np.diff(starts) > step_s * 1.5]
    run_start = np.maximum.accumulate(np.where(breaks, starts, -np.inf))
    counted = np.isfinite(buckets[:, BYTES_IN]) & np.isfinite(buckets[:, BYTES_OUT])
    # The end of the last counted bucket before each one (in an earlier run it is
    # older than this run's start, so the run's start wins).
    counted_ends = np.maximum.accumulate(np.where(counted, ends, -np.inf))
    previous = np.r_[-np.inf, counted_ends[:-1]]
    since = np.maximum(previous, run_start)
    spans: np.ndarray = np.column_stack((since, ends, buckets[:, BYTES_IN], buckets[:, BYTES_OUT]))
    kept: np.ndarray = spans[counted]
    return kept


def compose(
    live: np.ndarray,
    history: np.ndarray | None,
    history_step_s: float,
    interval_s: float,
    since: float,
    bucket_s: float | None,
) -> Drawn:
    """What to draw from ``since`` on, from live points and history buckets.

    ``bucket_s`` None (the short window): every live poll as it came, with history only
    before the first live point (after a restart). Otherwise (the long windows) the live
    points are folded into buckets of ``bucket_s`` like the history, and each bucket is
    taken from the history when it holds it, so both meet without a seam. The live
    points are never replaced by history: going back to the short window finds them."""
    # One point before the window gives the first step its start.
    first = int(np.searchsorted(live[:, WALL], since, side="left"))
    shown = live[max(0, first - 1) :]
    counts: list[np.ndarray] = []
    traffic: list[np.ndarray] = []
    older = history if history is not None else empty_points()
    older = older[older[:, WALL] + history_step_s > since]
    if bucket_s is None:
        if len(live):
            older = older[older[:, WALL] + history_step_s <= live[0, WALL]]
        counts.append(bucket_counts(older, history_step_s))
        traffic.append(bucket_traffic(older, history_step_s))
        if len(shown):
            counts.append(live_counts(shown, interval_s))
            traffic.append(live_traffic(shown, interval_s))
    else:
        buckets = bucketize(shown, bucket_s)
        buckets = buckets[buckets[:, WALL] + bucket_s > since]
        if len(live) and len(older):
            # History holds every bucket up to when it was read, this run's polls too;
            # the live points add the buckets after that.
            whole_from = math.ceil(live[0, WALL] / bucket_s) * bucket_s
            newest = float(older[-1, WALL])
            older = older[(older[:, WALL] < whole_from) | (older[:, WALL] < newest)]
            buckets = buckets[~np.isin(buckets[:, WALL], older[:, WALL])]
        merged = np.concatenate((older, buckets))
        merged = merged[np.argsort(merged[:, WALL], kind="stable")]
        counts.append(bucket_counts(merged, bucket_s))
        traffic.append(bucket_traffic(merged, bucket_s))
    return Drawn(
        np.concatenate(counts).reshape(-1, 4) if counts else np.empty((0, 4)),
        np.concatenate(traffic).reshape(-1, 4) if traffic else np.empty((0, 4)),
    )


def step_xy(
    starts: np.ndarray, ends: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """x and y of a stepped line: each value flat from its start to its end; risers join
    spans that touch; NaN breaks the line where one does not begin where the previous
    ended, and NaN values draw nothing (a gap, never a zero)."""
    keep = np.isfinite(values)
    starts, ends, values = starts[keep], ends[keep], values[keep]
    n = len(values)
    if not n:
        return np.empty(0), np.empty(0)
    xs = np.empty(n * 3)
    ys = np.empty(n * 3)
    xs[0::3], xs[1::3], xs[2::3] = starts, ends, ends
    ys[0::3], ys[1::3], ys[2::3] = values, values, np.nan
    touching = np.ones(n, dtype=bool)  # the last needs no break after it
    touching[:-1] = np.abs(starts[1:] - ends[:-1]) < 1e-6
    mask = np.ones(n * 3, dtype=bool)
    mask[2::3] = ~touching
    return xs[mask], ys[mask]
