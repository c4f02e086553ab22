"""Fixed-tick clock: drift-free deadlines, bounded catch-up, send cadence, tick statistics.

:class:`TickClock` is pure arithmetic over times the caller supplies (seconds from any
monotonic clock, e.g. ``loop.time()``); it never reads a clock or sleeps itself, so it is
tested with a fake clock and driven by the server's asyncio loop like this::

    clock = TickClock(60, send_rate=20)
    clock.start(loop.time())
    while running:
        for _ in range(clock.due(loop.time())):
            t0 = time.perf_counter()
            result = sim.step()
            clock.stats.record_work(time.perf_counter() - t0)
            if clock.is_send_tick(result.tick):
                broadcast_delta()
        await asyncio.sleep(clock.sleep_time(loop.time()))

Deadlines. The i-th tick (i = 0, 1, 2, ... counting every tick the clock has issued *or skipped*)
is due at ``start + i / rate_hz``, computed from the start time each time, never by adding
periods, so rounding errors do not accumulate: after ten hours at 240 Hz the deadline is still
exact to within a microsecond.

Catch-up. When the loop wakes late (a slow tick, a GC pause, a busy machine) several deadlines
may have passed: :meth:`TickClock.due` returns how many ticks to run now, at most
``max_catchup``. If more than that are overdue, the extra ones are *skipped* (counted in
``stats.skipped``) and the schedule jumps ahead: game time briefly runs slower than wall time
instead of the server spiralling ever further behind ("spiral of death").

Send rate. Deltas go out at ``send_rate`` Hz, 1 <= send_rate <= rate_hz, on the ticks chosen by
an integer accumulator: tick ``n`` (1-based simulation tick number) is a send tick when
``floor(n * send_rate / rate_hz)`` increases at ``n``. Any send rate works (it need not divide
the tick rate); sends are spread as evenly as whole ticks allow, exactly ``send_rate`` per
``rate_hz`` ticks (e.g. 60/20: every 3rd tick; 30/20: ticks 2, 3, 5, 6, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_TICK_RATE", "TickClock", "TickStats", "is_send_tick"]

MAX_TICK_RATE: Final[int] = 240
# Tolerance (in ticks) when deciding whether a deadline has passed: a fake or real clock that
# reads exactly ``start + i / rate`` must count tick i as due despite float rounding.
_EPS_TICKS: Final[float] = 1e-6
# Default work-time histogram bucket upper bounds, seconds (Prometheus-style, +Inf implied).
DEFAULT_BUCKETS: Final[tuple[float, ...]] = (
    0.0005, 0.001, 0.002, 0.005, 0.010, 0.0167, 0.025, 0.050, 0.100, 0.250,
)


def is_send_tick(tick: int, rate_hz: int, send_rate: int) -> bool:
    """True if simulation tick ``tick`` (1-based) should send a delta at ``send_rate`` Hz."""
    return (tick * send_rate) // rate_hz != ((tick - 1) * send_rate) // rate_hz


class TickStats:
    """Per-clock counters plus bounded rings of recent work times and lateness.

    * ``ticks``: ticks run (issued by :meth:`TickClock.due`); ``skipped``: ticks dropped by
      bounded catch-up; ``overruns``: ticks whose work took longer than one period;
      ``late_wakeups``: calls to ``due`` that found more than one tick overdue.
    * ``work_count``/``work_sum``/``bucket_counts`` (non-cumulative, one per bucket in
      ``buckets`` plus a final +Inf bucket) feed a Prometheus histogram directly.
    * ``recent_work()`` / ``recent_lateness()`` give the last ``ring`` samples (seconds) for
      percentiles; :meth:`summary` gives a small dict for logs and /metrics.
    """

    def __init__(
        self, period: float, *, ring: int = 512, buckets: Sequence[float] = DEFAULT_BUCKETS
    ) -> None:
        if ring < 1:
            raise ValueError("ring must be >= 1")
        if list(buckets) != sorted(buckets) or len(set(buckets)) != len(buckets):
            raise ValueError("histogram buckets must be strictly increasing")
        self.period = period
        self.buckets: tuple[float, ...] = tuple(float(b) for b in buckets)
        self.bucket_counts: list[int] = [0] * (len(self.buckets) + 1)
        self.ticks = 0
        self.skipped = 0
        self.overruns = 0
        self.late_wakeups = 0
        self.work_count = 0
        self.work_sum = 0.0
        self.work_max = 0.0
        self.lateness_max = 0.0
        self._ring = ring
        self._work = np.zeros(ring, np.float64)
        self._late = np.zeros(ring, np.float64)
        self._wn = 0
        self._ln = 0

    def record_work(self, seconds: float) -> None:
        """Record how long one tick's work took (seconds); counts an overrun past one period."""
        self._work[self._wn % self._ring] = seconds
        self._wn += 1
        self.work_count += 1
        self.work_sum += seconds
        if seconds > self.work_max:
            self.work_max = seconds
        if seconds > self.period:
            self.overruns += 1
        i = 0
        nb = len(self.buckets)
        while i < nb and seconds > self.buckets[i]:
            i += 1
        self.bucket_counts[i] += 1

    def record_lateness(self, seconds: float) -> None:
        """Record how late (seconds past its deadline) a tick started."""
        self._late[self._ln % self._ring] = seconds
        self._ln += 1
        if seconds > self.lateness_max:
            self.lateness_max = seconds

    @staticmethod
    def _recent(buf: npt.NDArray[np.float64], n: int, ring: int) -> npt.NDArray[np.float64]:
        if n <= ring:
            return buf[:n].copy()
        k = n % ring  # oldest sample sits at the write position
        return np.concatenate((buf[k:], buf[:k]))

    def recent_work(self) -> npt.NDArray[np.float64]:
        """The last (up to ``ring``) work times, oldest first, seconds."""
        return self._recent(self._work, self._wn, self._ring)

    def recent_lateness(self) -> npt.NDArray[np.float64]:
        """The last (up to ``ring``) tick start latenesses, oldest first, seconds."""
        return self._recent(self._late, self._ln, self._ring)

    def summary(self) -> dict[str, float | int]:
        """Counters and recent percentiles (work/lateness p50/p99 in seconds) as a flat dict."""
        work = self.recent_work()
        late = self.recent_lateness()
        return {
            "ticks": self.ticks,
            "skipped": self.skipped,
            "overruns": self.overruns,
            "late_wakeups": self.late_wakeups,
            "work_count": self.work_count,
            "work_sum": self.work_sum,
            "work_max": self.work_max,
            "work_p50": float(np.percentile(work, 50)) if len(work) else 0.0,
            "work_p99": float(np.percentile(work, 99)) if len(work) else 0.0,
            "lateness_max": self.lateness_max,
            "lateness_p50": float(np.percentile(late, 50)) if len(late) else 0.0,
            "lateness_p99": float(np.percentile(late, 99)) if len(late) else 0.0,
        }


class TickClock:
    """Fixed-rate tick schedule over caller-supplied times (see the module docstring).

    ``rate_hz``: ticks per second, an integer 1..240 (``ValueError`` otherwise).
    ``max_catchup``: most ticks :meth:`due` returns at once (>= 1).
    ``send_rate``: deltas per second, 1..rate_hz (default: ``rate_hz``).
    """

    def __init__(
        self, rate_hz: int, *, max_catchup: int = 4, send_rate: int | None = None,
        stats_ring: int = 512,
    ) -> None:
        if isinstance(rate_hz, bool) or not isinstance(rate_hz, int):
            raise ValueError(f"tick rate must be an integer number of Hz, got {rate_hz!r}")
        if not 1 <= rate_hz <= MAX_TICK_RATE:
            raise ValueError(f"tick rate {rate_hz} Hz outside 1..{MAX_TICK_RATE}")
        if isinstance(max_catchup, bool) or not isinstance(max_catchup, int) or max_catchup < 1:
            raise ValueError(f"max_catchup must be an int >= 1, got {max_catchup!r}")
        send = rate_hz if send_rate is None else send_rate
        if isinstance(send, bool) or not isinstance(send, int) or not 1 <= send <= rate_hz:
            raise ValueError(f"send rate {send!r} must be an integer in 1..{rate_hz} (tick rate)")
        self.rate_hz = rate_hz
        self.send_rate = send
        self.max_catchup = max_catchup
        self.period = 1.0 / rate_hz
        self.stats = TickStats(self.period, ring=stats_ring)
        self._start: float | None = None
        self._issued = 0  # deadlines consumed so far: ticks run + ticks skipped

    @property
    def started(self) -> bool:
        return self._start is not None

    @property
    def start_time(self) -> float:
        if self._start is None:
            raise RuntimeError("TickClock.start(now) has not been called")
        return self._start

    def start(self, now: float) -> None:
        """Begin the schedule: the first tick is due at ``now``."""
        self._start = float(now)
        self._issued = 0

    def deadline(self, i: int) -> float:
        """When the i-th tick (0-based, counting skipped ticks) is due: ``start + i / rate``."""
        return self.start_time + i / self.rate_hz

    @property
    def next_deadline(self) -> float:
        """When the next tick is due."""
        return self.deadline(self._issued)

    @property
    def issued(self) -> int:
        """Deadlines consumed so far (ticks run plus ticks skipped)."""
        return self._issued

    def due(self, now: float) -> int:
        """How many ticks to run at time ``now`` (0..max_catchup); consumes them.

        If more than ``max_catchup`` deadlines have passed, the oldest extra ones are skipped
        and counted in ``stats.skipped``; the schedule stays on its original grid.
        """
        elapsed_ticks = (now - self.start_time) * self.rate_hz
        if elapsed_ticks < -_EPS_TICKS:
            return 0
        passed = math.floor(elapsed_ticks + _EPS_TICKS) + 1  # deadlines <= now
        behind = passed - self._issued
        if behind <= 0:
            return 0
        stats = self.stats
        if behind > 1:
            stats.late_wakeups += 1
        run = min(behind, self.max_catchup)
        skip = behind - run
        if skip:
            stats.skipped += skip
            self._issued += skip
        stats.record_lateness(max(0.0, now - self.deadline(self._issued)))
        self._issued += run
        stats.ticks += run
        return run

    def sleep_time(self, now: float) -> float:
        """Seconds from ``now`` until the next deadline (0 if it has passed)."""
        return max(0.0, self.next_deadline - now)

    def is_send_tick(self, tick: int) -> bool:
        """True if simulation tick ``tick`` (1-based) should broadcast a delta."""
        return is_send_tick(tick, self.rate_hz, self.send_rate)
