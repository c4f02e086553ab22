"""Metrics registry and Prometheus text exposition."""

from __future__ import annotations

import math

import pytest

from gameserver.metrics import Counter, Histogram, Registry, Summary, parse_text, server_metrics


def test_counter_histogram_render_and_parse() -> None:
    reg = Registry()
    c = Counter("x_total", "things", ("kind",))
    h = Histogram("t_seconds", "time", buckets=(0.01, 0.1))
    reg.register(c)
    reg.register(h)
    c.labels("a").inc(2)
    c.labels("b").inc()
    for v in (0.005, 0.05, 0.5):
        h.observe(v)
    text = reg.render()
    assert "# TYPE x_total counter" in text and "# TYPE t_seconds histogram" in text
    vals = parse_text(text)
    assert vals['x_total{kind="a"}'] == 2 and vals['x_total{kind="b"}'] == 1
    assert vals['t_seconds_bucket{le="0.01"}'] == 1
    assert vals['t_seconds_bucket{le="0.1"}'] == 2
    assert vals['t_seconds_bucket{le="+Inf"}'] == 3
    assert vals["t_seconds_count"] == 3
    assert math.isclose(vals["t_seconds_sum"], 0.555)


def test_counter_cannot_decrease_and_duplicates_refused() -> None:
    c = Counter("c_total", "c")
    with pytest.raises(ValueError):
        c.inc(-1)
    reg = Registry()
    reg.register(c)
    with pytest.raises(ValueError):
        reg.register(Counter("c_total", "again"))


def test_summary_quantiles_over_bounded_window() -> None:
    s = Summary("s", "s", window=100)
    for i in range(1000):
        s.observe(float(i))
    assert len(s.recent) == 100  # bounded
    assert s.quantile(0.5) == 949.0
    assert s.quantile(1.0) == 999.0
    vals = parse_text(s.render())
    assert vals['s{quantile="0.99"}'] == 998.0
    assert vals["s_count"] == 1000


def test_server_metrics_names() -> None:
    m = server_metrics()
    m.bytes_out.inc(10)
    m.violations.labels("flood").inc()
    vals = parse_text(m.render())
    for name in ("gameserver_tick_work_seconds_count", "gameserver_tick_overruns_total",
                 "gameserver_rooms", "gameserver_players", "gameserver_bytes_in_total",
                 "gameserver_messages_out_total", "gameserver_inputs_dropped_total",
                 "gameserver_slow_client_skips_total",
                 "gameserver_slow_client_evictions_total"):
        assert name in vals, name
    assert vals["gameserver_bytes_out_total"] == 10
    assert vals['gameserver_protocol_violations_total{kind="flood"}'] == 1
