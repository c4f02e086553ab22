"""TickClock under a controlled (fake) clock: rate, overrun, bounded catch-up, no drift."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameserver.ticker import TickClock, TickStats, is_send_tick


def test_rate_bounds() -> None:
    for bad in (0, -1, 241, 1.5, True):
        with pytest.raises(ValueError):
            TickClock(bad)  # type: ignore[arg-type]
    assert TickClock(1).period == 1.0
    assert TickClock(240).period == pytest.approx(1 / 240)
    with pytest.raises(ValueError):
        TickClock(60, max_catchup=0)
    with pytest.raises(ValueError):
        TickClock(20, send_rate=30)
    with pytest.raises(ValueError):
        TickClock(20, send_rate=0)


def test_due_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        TickClock(20).due(0.0)


def test_steady_rate_one_tick_per_deadline() -> None:
    clock = TickClock(20)
    clock.start(100.0)
    assert clock.due(100.0) == 1  # first tick is due at start
    assert clock.due(100.0) == 0  # already consumed
    assert clock.next_deadline == pytest.approx(100.05)
    assert clock.sleep_time(100.01) == pytest.approx(0.04)
    assert clock.due(100.049) == 0
    assert clock.due(100.05) == 1  # exactly on the deadline counts
    ran = 2
    t = 100.05
    for _ in range(1000):
        t += 0.05
        ran += clock.due(t)
    assert ran == 1002
    assert clock.stats.ticks == 1002
    assert clock.stats.skipped == 0
    assert clock.stats.late_wakeups == 0


def test_bounded_catchup_then_skip() -> None:
    clock = TickClock(10, max_catchup=3)
    clock.start(0.0)
    assert clock.due(0.0) == 1
    # Woke 0.25 s late: deadlines 0.1 and 0.2 passed -> 2 ticks, within the bound.
    assert clock.due(0.25) == 2
    assert clock.stats.skipped == 0
    assert clock.stats.late_wakeups == 1
    # A 2-second stall: deadlines 0.3 .. 2.2 (20 of them) passed; run 3, skip 17.
    assert clock.due(2.25) == 3
    assert clock.stats.skipped == 17
    assert clock.stats.ticks == 6
    # The grid is kept: next deadline is 2.3 and the clock is caught up (no spiral).
    assert clock.next_deadline == pytest.approx(2.3)
    assert clock.due(2.29) == 0
    assert clock.due(2.3) == 1
    assert clock.issued == 24


def test_lateness_recorded() -> None:
    clock = TickClock(10, max_catchup=2)
    clock.start(0.0)
    clock.due(0.0)
    clock.due(0.13)  # tick 1 due at 0.1, started 0.03 late
    assert clock.stats.lateness_max == pytest.approx(0.03)
    clock.due(1.0)  # 9 overdue (0.2 .. 1.0): skip 7, run 2 starting with deadline 0.9
    assert clock.stats.skipped == 7
    assert clock.stats.recent_lateness()[-1] == pytest.approx(0.1)


def test_no_drift_over_ten_hours() -> None:
    rate = 60
    start = 12345.678
    clock = TickClock(rate)
    clock.start(start)
    n = 10 * 3600 * rate
    # Accumulating the period drifts; the clock computes start + n / rate.
    acc = start
    period = 1.0 / rate
    for _ in range(n):
        acc += period
    assert abs(acc - (start + 36000.0)) > 1e-7  # naive accumulation really drifts
    clock._issued = n  # jump the schedule (same arithmetic as n calls to due)
    assert clock.next_deadline == start + n / rate
    assert abs(clock.next_deadline - (start + 36000.0)) < 1e-9
    # Drive ten hours of 10 Hz ticks through due() with a fake clock reading each deadline:
    # every tick runs, none is skipped, and the last deadline is exact.
    slow = TickClock(10)
    slow.start(start)
    ticks = 10 * 3600 * 10
    ran = sum(slow.due(start + i / 10) for i in range(ticks))
    assert ran == ticks
    assert slow.stats.skipped == 0
    assert slow.next_deadline == start + ticks / 10
    assert abs(slow.next_deadline - (start + 36000.0)) < 1e-9


def test_overrun_counted_and_histogram() -> None:
    clock = TickClock(50)  # 20 ms period
    clock.start(0.0)
    clock.due(0.0)
    clock.stats.record_work(0.001)
    clock.stats.record_work(0.030)  # > 20 ms: overrun
    clock.stats.record_work(0.300)  # beyond every bucket: +Inf
    s = clock.stats
    assert s.overruns == 2
    assert s.work_count == 3
    assert s.work_sum == pytest.approx(0.331)
    assert sum(s.bucket_counts) == 3
    assert s.bucket_counts[s.buckets.index(0.001)] == 1
    assert s.bucket_counts[-1] == 1
    summ = s.summary()
    assert summ["work_max"] == pytest.approx(0.3)
    assert summ["overruns"] == 2


def test_stats_ring_is_bounded_and_ordered() -> None:
    stats = TickStats(0.01, ring=4)
    for i in range(10):
        stats.record_work(float(i))
    assert list(stats.recent_work()) == [6.0, 7.0, 8.0, 9.0]
    assert stats.work_count == 10
    with pytest.raises(ValueError):
        TickStats(0.01, buckets=(0.2, 0.1))


@pytest.mark.parametrize(("rate", "send"), [(60, 20), (30, 20), (20, 20), (60, 7), (240, 1)])
def test_send_cadence(rate: int, send: int) -> None:
    sends = [t for t in range(1, rate * 5 + 1) if is_send_tick(t, rate, send)]
    assert len(sends) == send * 5  # exactly send_rate per second of ticks
    gaps = {b - a for a, b in itertools.pairwise(sends)}
    assert max(gaps) - min(gaps) <= 1  # evenly spread
    clock = TickClock(rate, send_rate=send)
    assert [t for t in range(1, rate * 5 + 1) if clock.is_send_tick(t)] == sends


def test_send_every_third_tick() -> None:
    assert [t for t in range(1, 10) if is_send_tick(t, 60, 20)] == [3, 6, 9]


@settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(1, 240),
    catchup=st.integers(1, 8),
    gaps=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=60),
)
def test_clock_invariants_for_any_wakeup_pattern(
    rate: int, catchup: int, gaps: list[float]
) -> None:
    clock = TickClock(rate, max_catchup=catchup)
    start = 1000.0
    clock.start(start)
    now = start
    ran = 0
    for gap in gaps:
        now += gap
        n = clock.due(now)
        assert 0 <= n <= catchup
        ran += n
        # Never runs a tick before its deadline; never leaves more than one period of
        # passed deadlines unconsumed.
        assert clock.deadline(clock.issued - 1) <= now + 1e-9 if clock.issued else True
        assert clock.next_deadline > now - 1e-9
    assert ran == clock.stats.ticks
    assert ran + clock.stats.skipped == clock.issued
    assert clock.issued == math.floor((now - start) * rate + 1e-6) + 1
