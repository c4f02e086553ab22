"""Bot statistics: histogram percentiles, snapshot merging, progress line and report."""

from __future__ import annotations

import json

import pytest

from clients.bots.report import (
    Histogram,
    ProcessStats,
    Progress,
    build_report,
    format_summary,
    merge_snapshots,
    steady_state,
)


def test_histogram_percentiles_within_bucket_resolution() -> None:
    h = Histogram()
    for i in range(1, 1001):
        h.record(i / 1000.0)  # 1 ms .. 1 s uniform
    p50 = h.percentile(50)
    p99 = h.percentile(99)
    assert p50 is not None and p99 is not None
    assert 0.5 <= p50 <= 0.5 * 1.13
    assert 0.99 <= p99 <= 1.0
    assert h.percentile(100) == pytest.approx(1.0)
    assert Histogram().percentile(50) is None
    tiny = Histogram()
    tiny.record(0.0)
    tiny.record(5000.0)  # overflow bucket
    assert tiny.percentile(50) == 1e-5 and tiny.percentile(100) == 5000.0


def test_histogram_merge_and_window() -> None:
    a, b = Histogram(), Histogram()
    for _ in range(10):
        a.record(0.001)
    before = Histogram.from_state(a.to_state())
    for _ in range(30):
        a.record(0.1)
    b.record(0.5)
    w = a.minus(before)
    assert w.count == 30 and w.percentile(50) == pytest.approx(0.1, rel=0.13)
    a.merge(b)
    assert a.count == 41 and a.max == 0.5


def _proc(first: int, n: int, deltas: int, age: float) -> ProcessStats:
    p = ProcessStats(first, n)
    for b in p.bots:
        b.connects = 1
        b.connected = True
        b.deltas = deltas
        b.tick_gaps = 1
        b.messages_in = deltas + 2
        b.bytes_in = 100 * deltas
        for _ in range(deltas):
            p.tick_age.record(age)
    return p


def test_merge_progress_and_report() -> None:
    p1 = _proc(0, 2, 10, 0.001)
    p2 = _proc(2, 3, 20, 0.010)
    p2.bots[0].failure = "RoomFull: join rejected"
    p2.bots[0].connected = False
    p2.cpu_seconds = 1.5
    p1.bots[1].rejoins = 2  # this bot's worker restarted twice (close 4015)
    p2.bots[2].rejoins = 1
    merged = merge_snapshots([p2.snapshot(), p1.snapshot()])
    assert [b["bot"] for b in merged["bots"]] == [0, 1, 2, 3, 4]
    prog = Progress(5)
    line = prog.line(merged, now=1.0, elapsed=1.0)
    assert "4/5 connected" in line and "errors 1" in line
    # one second later 5 more ticks per bot arrived
    for b in p1.bots + p2.bots:
        b.deltas += 5
    for _ in range(25):
        p1.tick_age.record(0.2)
    line = prog.line(merge_snapshots([p1.snapshot(), p2.snapshot()]), now=2.0, elapsed=2.0)
    assert "25 ticks/s" in line and "p99 200.0ms" in line
    report = build_report(merged, duration=3.0, config={"url": "ws://x"})
    assert report["bots"] == 5 and report["connects"] == 5 and report["failures"] == 1
    assert report["failure_reasons"] == {"RoomFull": 1}
    assert report["ticks_received"] == 80 and report["tick_gaps"] == 5
    assert report["tick_share"] == pytest.approx(80 / 85, abs=1e-5)
    assert report["per_bot"]["deltas"] == {"min": 10, "mean": 16.0, "max": 20}
    assert report["tick_age_ms"]["p50"] == pytest.approx(10.0, rel=0.13)
    assert report["cpu_seconds"] == 1.5
    json.dumps(report)  # JSON-serializable
    text = format_summary(report)
    assert "failed: 1" in text and "RoomFull x1" in text
    assert report["rejoins"] == 3 and "rejoins: 3" in text


def test_steady_state_uses_second_half_of_each_process() -> None:
    # process 1: ramp (expensive), then 1000 deltas/s at 0.05 CPU s per s (50 us each)
    p1 = [(0.0, 0.0, 0), (1.0, 0.9, 100), (2.0, 0.95, 1100), (3.0, 1.0, 2100), (4.0, 1.05, 3100)]
    p2 = [(0.0, 0.0, 0), (2.0, 0.1, 2000), (4.0, 0.2, 4000)]
    st = steady_state([p1, p2])
    assert st is not None
    assert st["window_s"] == 2.0
    assert st["deltas_per_s"] == pytest.approx((2000 + 2000) / 2.0)
    assert st["cpu_us_per_delta"] == pytest.approx(1e6 * (0.1 + 0.1) / 4000)
    assert st["cpu_pct"] == pytest.approx(10.0)
    assert st["max_process_cpu_pct"] == pytest.approx(5.0)
    assert steady_state([[(0.0, 0.0, 0)]]) is None


def test_summary_warns_when_a_bot_process_is_saturated() -> None:
    """A load test whose bot process ran its core flat out measured the bots, not the server:
    the summary says so (and names the remedy); a relaxed process gets no warning."""
    for cpu_per_s, warned in ((0.95, True), (0.5, False)):
        p = _proc(0, 2, 10, 0.001)
        p.samples = [(float(t), cpu_per_s * t, 1000 * t) for t in range(11)]
        report = build_report(merge_snapshots([p.snapshot()]), duration=10.0, config={})
        assert report["steady"]["max_process_cpu_pct"] == pytest.approx(cpu_per_s * 100)
        assert ("warning: a bot process used" in format_summary(report)) is warned
        assert ("--procs" in format_summary(report)) is warned
        line = Progress(2).line(merge_snapshots([p.snapshot()]), now=1.0, elapsed=10.0)
        assert line.endswith(f"| bot cpu {cpu_per_s * 100:.0f}%")


def test_steady_tick_age_leaves_out_the_ramp_backlog() -> None:
    """The steady window's tick age counts only deltas after the marks (set at half the run):
    a ramp of 1 s ages must not show in it, while the whole run's p99 does."""
    procs = []
    for first in (0, 2):
        p = _proc(first, 2, 10, 0.5)  # the connect ramp: 20 deltas 500 ms late
        p.samples = [(0.0, 0.0, 0), (5.0, 1.0, 1000), (10.0, 1.5, 2000)]
        p.steady_mark = p.tick_age.to_state()
        for _ in range(200):
            p.tick_age.record(0.004)  # the steady state: 4 ms
        procs.append(p.snapshot())
    report = build_report(merge_snapshots(procs), duration=10.0, config={})
    st = report["steady"]
    assert st["tick_age_ms"]["count"] == 400
    assert st["tick_age_ms"]["p99"] == pytest.approx(4.0, rel=0.13)
    assert report["tick_age_ms"]["p99"] == pytest.approx(500.0, rel=0.13)
    assert "tick age ms p50" in format_summary(report)
    # one process without its mark (a run without a duration): no steady age at all
    procs[1]["steady_mark"] = None
    assert "tick_age_ms" not in build_report(merge_snapshots(procs), duration=10.0,
                                             config={})["steady"]
