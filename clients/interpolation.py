"""Snapshot interpolation: render remote entities slightly in the past, smoothly.

A game client receives authoritative snapshots ``send_rate`` times per second, with network
jitter. Drawing the newest snapshot as it arrives makes entities stutter. Instead the client
renders at *server time minus a delay* (default 100 ms, i.e. a few send intervals), where it
almost always holds a snapshot older and one newer than the render time, and interpolates
between the two.

Contracts:

* :func:`interpolate` is the pure, vectorized core: given two snapshots as (sorted uint32 ids,
  columns) it matches entities by id (``np.intersect1d`` / ``np.searchsorted``; no per-entity
  Python loop) and returns the union of both id sets. Entities present in both snapshots have
  their floating-point fields interpolated linearly (``a + alpha * (b - a)``; fields named in
  ``angles`` take the shortest way around the circle); integer fields (kind, hp, flags...)
  take the **older** value, since a halfway "kind" is meaningless and a counter should not
  change before its time. Entities present in only one of the two snapshots are shown
  with that snapshot's values, without interpolation.
* :class:`InterpolationBuffer` keeps a bounded ring of snapshots stamped with their server time
  (seconds), estimates the offset between the local clock and the server's clock from the
  arrival times, and :meth:`InterpolationBuffer.sample` returns the :class:`Frame` for
  ``server_now - delay``. The clock is a parameter so tests control time.

Server time of a snapshot is ``tick / tick_rate`` (seconds); :meth:`push_tick` does that.
The clock offset is the minimum of ``arrival - server_time`` over the buffered snapshots: the
fastest delivery observed recently is the best estimate of the true offset (jitter only ever
adds delay). The render time never moves backwards, even when that estimate changes.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Frame", "InterpolationBuffer", "interpolate"]

_TWO_PI = 2.0 * math.pi


def _is_float(arr: np.ndarray) -> bool:
    return arr.dtype.kind == "f"


def interpolate(
    ids_a: np.ndarray,
    cols_a: Mapping[str, np.ndarray],
    ids_b: np.ndarray,
    cols_b: Mapping[str, np.ndarray],
    alpha: float,
    *,
    fields: Collection[str] | None = None,
    angles: Collection[str] = (),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Blend snapshot ``a`` (older) towards ``b`` (newer) by ``alpha`` in [0, 1].

    ``ids_a`` / ``ids_b`` are sorted unique entity ids; each column is aligned with its ids.
    ``fields`` restricts which columns are interpolated (default: every floating-point
    column); the other columns take the older value where the entity exists in ``a``.
    Returns ``(ids, columns)`` over the sorted union of both id sets (new arrays).
    """
    alpha = min(max(float(alpha), 0.0), 1.0)
    ids = np.union1d(ids_a, ids_b)
    pos_a = np.searchsorted(ids, ids_a)
    pos_b = np.searchsorted(ids, ids_b)
    _, ia, ib = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    common = pos_a[ia]
    out: dict[str, np.ndarray] = {}
    names = list(cols_a.keys()) + [n for n in cols_b if n not in cols_a]
    for name in names:
        a = cols_a.get(name)
        b = cols_b.get(name)
        if a is None or b is None:
            # a field missing from one side (schema change across a reconnect): newest wins
            src, pos = (b, pos_b) if b is not None else (a, pos_a)
            assert src is not None
            col = np.zeros(len(ids), dtype=src.dtype)
            col[pos] = src
            out[name] = col
            continue
        dtype = np.result_type(a.dtype, b.dtype)
        col = np.empty(len(ids), dtype=dtype)
        col[pos_b] = b
        col[pos_a] = a  # the older value wins for entities in both (the int-field rule)
        lerp = (name in fields) if fields is not None else _is_float(col)
        if lerp and len(common) and col.dtype.kind == "f":
            va = a[ia].astype(dtype, copy=False)
            diff = b[ib].astype(dtype, copy=False) - va
            if name in angles:
                # shortest signed arc in (-pi, pi]
                diff = np.remainder(diff + math.pi, _TWO_PI) - math.pi
            col[common] = va + diff * alpha
        out[name] = col
    return ids, out


@dataclass(frozen=True, slots=True)
class Frame:
    """What to draw now: entities at ``render_time`` (server seconds).

    ``older_time`` / ``newer_time`` are the server times of the two snapshots blended with
    weight ``alpha`` (``newer_time is None`` when only one snapshot could be used: before the
    buffer filled, or when the render time ran past the newest snapshot, which means the
    delay is too small for the current network; ``starved`` is then True).
    """

    render_time: float
    ids: np.ndarray
    columns: dict[str, np.ndarray]
    alpha: float
    older_time: float
    newer_time: float | None
    starved: bool


@dataclass(slots=True)
class _Entry:
    server_time: float
    offset: float  # arrival (local clock) - server_time
    ids: np.ndarray
    columns: dict[str, np.ndarray]


class InterpolationBuffer:
    """A bounded buffer of snapshots sampled at ``server time - delay``.

    Parameters: ``delay`` seconds behind the estimated server time (default 0.1 s);
    ``clock`` a monotonic clock in seconds (default :func:`time.monotonic`); ``capacity``
    snapshots kept (the oldest is dropped); ``tick_rate`` Hz for :meth:`push_tick`;
    ``fields`` / ``angles`` as in :func:`interpolate`.
    """

    def __init__(
        self,
        *,
        delay: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = 32,
        tick_rate: float | None = None,
        fields: Collection[str] | None = None,
        angles: Collection[str] = (),
    ) -> None:
        if delay < 0:
            raise ValueError("delay must be >= 0 seconds")
        if capacity < 2:
            raise ValueError("capacity must be >= 2 snapshots")
        self.delay = float(delay)
        self.clock = clock
        self.tick_rate = tick_rate
        self.fields = frozenset(fields) if fields is not None else None
        self.angles = frozenset(angles)
        self._entries: deque[_Entry] = deque(maxlen=capacity)
        self._last_render: float | None = None
        self.starved_frames = 0
        """How many :meth:`sample` calls ran past the newest snapshot (delay too small)."""

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every snapshot (after a reconnect to another room, say)."""
        self._entries.clear()
        self._last_render = None

    def push(
        self,
        server_time: float,
        ids: np.ndarray,
        columns: Mapping[str, np.ndarray],
        *,
        now: float | None = None,
    ) -> None:
        """Store a snapshot taken at ``server_time`` (seconds). The arrays are copied.

        Snapshots must arrive in server-time order; an older or equal one is ignored (a
        duplicate after a resume). A jump back by more than the buffer's span means the
        server restarted its clock: the buffer is reset.
        """
        arrival = self.clock() if now is None else now
        if self._entries:
            last = self._entries[-1].server_time
            if server_time <= last:
                if last - server_time <= 1.0:
                    return
                self.clear()
        entry = _Entry(
            float(server_time),
            arrival - float(server_time),
            np.array(ids, dtype=np.uint32, copy=True),
            {k: np.array(v, copy=True) for k, v in columns.items()},
        )
        self._entries.append(entry)

    def push_tick(
        self,
        tick: int,
        ids: np.ndarray,
        columns: Mapping[str, np.ndarray],
        *,
        now: float | None = None,
    ) -> None:
        """:meth:`push` with ``server_time = tick / tick_rate`` (``tick_rate`` must be set)."""
        if not self.tick_rate:
            raise ValueError("InterpolationBuffer.push_tick needs tick_rate")
        self.push(tick / self.tick_rate, ids, columns, now=now)

    @property
    def clock_offset(self) -> float | None:
        """Estimated ``local clock - server clock`` (seconds), None while empty."""
        if not self._entries:
            return None
        return min(e.offset for e in self._entries)

    def server_time(self, now: float | None = None) -> float | None:
        """Estimated current server time (seconds), None while empty."""
        off = self.clock_offset
        if off is None:
            return None
        return (self.clock() if now is None else now) - off

    @property
    def last_render_time(self) -> float | None:
        """The render time (server seconds) of the last :meth:`sample`: what is on screen."""
        return self._last_render

    def render_time(self, now: float | None = None) -> float | None:
        """``server_time(now) - delay``, never decreasing between calls; None while empty."""
        st = self.server_time(now)
        if st is None:
            return None
        rt = st - self.delay
        if self._last_render is not None and rt < self._last_render:
            rt = self._last_render
        return rt

    def sample(self, now: float | None = None) -> Frame | None:
        """The :class:`Frame` to draw at local time ``now`` (default: the clock); None if empty."""
        rt = self.render_time(now)
        if rt is None:
            return None
        self._last_render = rt
        entries = self._entries
        first = entries[0]
        if rt <= first.server_time:
            return Frame(rt, first.ids, first.columns, 0.0, first.server_time, None, False)
        last = entries[-1]
        if rt >= last.server_time:
            starved = rt > last.server_time
            if starved:
                self.starved_frames += 1
            return Frame(rt, last.ids, last.columns, 1.0, last.server_time, None, starved)
        # the newest snapshot at or before rt: a short scan from the end (the render time sits
        # a few snapshots behind the newest one)
        i = len(entries) - 2
        while entries[i].server_time > rt:
            i -= 1
        a, b = entries[i], entries[i + 1]
        alpha = (rt - a.server_time) / (b.server_time - a.server_time)
        ids, cols = interpolate(
            a.ids, a.columns, b.ids, b.columns, alpha, fields=self.fields, angles=self.angles
        )
        return Frame(rt, ids, cols, alpha, a.server_time, b.server_time, False)
