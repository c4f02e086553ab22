"""Process metrics and their Prometheus text exposition (format 0.0.4).

A tiny, dependency-free registry: :class:`Counter`, :class:`Gauge`, :class:`Histogram` and
:class:`Summary` (quantiles over a bounded window of recent samples). Each metric may carry
fixed label names; a labelled metric holds one child per label-value tuple. The hot path only
does ``metric.inc(n)`` / ``metric.observe(x)`` on plain Python floats (no locks: everything runs
on the one event loop thread).

:func:`server_metrics` builds the registry the game server exposes at ``GET /metrics``; the
metric names are part of the operator contract (dashboards and the benchmark read them):

========================================  =========  ==============================================
name                                      type       meaning (units)
========================================  =========  ==============================================
gameserver_tick_work_seconds              histogram  wall time of one room tick's work (s)
gameserver_tick_work_recent_seconds       summary    same, p50/p90/p99/max over the last 512 ticks
gameserver_tick_cpu_recent_seconds        summary    thread CPU time of a room tick (s), last 512
gameserver_send_work_seconds              histogram  wall time of one room send tick (s)
gameserver_tick_overruns_total            counter    ticks whose work overran the tick period,
                                                     or late ticks the clock had to catch up
gameserver_ticks_total                    counter    simulation ticks run
gameserver_send_ticks_total               counter    send ticks (snapshots streamed)
gameserver_delta_encodes_total            counter    delta encodes (one per distinct baseline)
gameserver_rooms                          gauge      live rooms
gameserver_players                        gauge      players in rooms (incl. those in grace)
gameserver_connections                    gauge      open game WebSocket connections
gameserver_bytes_in_total                 counter    game message payload bytes received
gameserver_bytes_out_total                counter    frame bytes written to clients
gameserver_messages_in_total              counter    game messages received
gameserver_messages_out_total             counter    messages written to clients
gameserver_inputs_dropped_total           counter    inputs refused (rate limit, queue full,
                                                     invalid, stale sequence number)
gameserver_slow_client_skips_total        counter    per-client send ticks skipped (backpressure)
gameserver_slow_client_evictions_total    counter    clients closed with 4009 (too slow)
gameserver_event_backlog_overflows_total  counter    players removed: events held for them
                                                     outgrew the backlog bound
gameserver_room_crashes_total             counter    rooms closed because game code raised
gameserver_protocol_violations_total      counter    bad messages / floods, by ``kind`` label
gameserver_ip_limit_refusals_total        counter    per-IP refusals by ``kind``: connections
                                                     (HTTP 429), joins (4020), table_full
gameserver_render_tick_clamped_total      counter    INPUT ``rt`` render ticks outside the room's
                                                     history window (future or too old), clamped
========================================  =========  ==============================================
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

__all__ = [
    "DEFAULT_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "Metric",
    "Registry",
    "ServerMetrics",
    "Summary",
    "parse_text",
    "server_metrics",
]

#: Histogram bucket upper bounds for tick times (s): 50 us .. 1 s.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02,
    0.025, 0.033, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
)


def _fmt(value: float) -> str:
    """Format a sample value the way Prometheus expects (``+Inf``, ``NaN``, shortest repr)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Metric:
    """Base class: a named metric with a help text and optional label names."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)

    def samples(self) -> Iterable[str]:  # pragma: no cover - overridden
        """Yield the exposition lines (without HELP/TYPE) of this metric."""
        return ()

    def render(self) -> str:
        """HELP + TYPE + sample lines, newline-terminated."""
        head = f"# HELP {self.name} {_escape(self.help)}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Counter(Metric):
    """A monotonically increasing value. ``inc(n)`` with n >= 0; ``labels(...)`` for children."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self.value = 0.0
        self._children: dict[tuple[str, ...], Counter] = {}

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (must be >= 0: a counter never goes down)."""
        if amount < 0:
            raise ValueError("a counter cannot decrease")
        self.value += amount

    def labels(self, *values: str) -> Counter:
        """The child for these label values (created on first use)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}")
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = Counter(self.name, self.help)
        return child

    def samples(self) -> Iterable[str]:
        if not self.labelnames:
            yield f"{self.name} {_fmt(self.value)}"
        for values, child in sorted(self._children.items()):
            yield f"{self.name}{_labels(self.labelnames, values)} {_fmt(child.value)}"


class Gauge(Metric):
    """A value that goes up and down (``set``, ``inc``, ``dec``)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def samples(self) -> Iterable[str]:
        yield f"{self.name} {_fmt(self.value)}"


class Histogram(Metric):
    """Cumulative-bucket histogram (``_bucket{le=...}``, ``_sum``, ``_count``)."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str,
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text)
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds != sorted(set(bounds)):
            raise ValueError("histogram buckets must be distinct and non-empty")
        self.bounds: tuple[float, ...] = tuple(bounds)
        self.counts = [0] * (len(bounds) + 1)  # last slot: above every bound (+Inf only)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Record one sample (O(log buckets))."""
        lo, hi = 0, len(self.bounds)
        while lo < hi:  # first bound >= value
            mid = (lo + hi) // 2
            if self.bounds[mid] < value:
                lo = mid + 1
            else:
                hi = mid
        self.counts[lo] += 1
        self.sum += value
        self.count += 1

    def samples(self) -> Iterable[str]:
        acc = 0
        for bound, n in zip(self.bounds, self.counts):
            acc += n
            yield f'{self.name}_bucket{{le="{_fmt(bound)}"}} {acc}'
        yield f'{self.name}_bucket{{le="+Inf"}} {self.count}'
        yield f"{self.name}_sum {_fmt(self.sum)}"
        yield f"{self.name}_count {self.count}"


class Summary(Metric):
    """Quantiles over the last ``window`` samples (bounded memory), plus ``_sum``/``_count``.

    The quantiles are exact over the window (sorted on render, which is rare: scrape time),
    and ``quantile="1"`` is the window's maximum.
    """

    kind = "summary"

    def __init__(self, name: str, help_text: str, *, window: int = 4096,
                 quantiles: Sequence[float] = (0.5, 0.9, 0.99, 1.0)) -> None:
        super().__init__(name, help_text)
        self.recent: deque[float] = deque(maxlen=window)
        self.quantiles = tuple(quantiles)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.recent.append(value)
        self.sum += value
        self.count += 1

    def quantile(self, q: float) -> float:
        """The q-quantile (0..1, nearest rank) of the recent window; NaN when empty."""
        if not self.recent:
            return math.nan
        ordered = sorted(self.recent)
        idx = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
        return ordered[idx]

    def samples(self) -> Iterable[str]:
        ordered = sorted(self.recent)
        for q in self.quantiles:
            if ordered:
                idx = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
                val = ordered[idx]
            else:
                val = math.nan
            yield f'{self.name}{{quantile="{_fmt(q)}"}} {_fmt(val)}'
        yield f"{self.name}_sum {_fmt(self.sum)}"
        yield f"{self.name}_count {self.count}"


class Registry:
    """An ordered set of metrics rendered together."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def register(self, metric: Metric) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"duplicate metric {metric.name}")
        self._metrics[metric.name] = metric

    def get(self, name: str) -> Metric:
        return self._metrics[name]

    def render(self) -> str:
        """The whole registry in Prometheus text format 0.0.4."""
        return "".join(m.render() for m in self._metrics.values())


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerMetrics:
    """The game server's metrics, as attributes (see the module table for names and units)."""

    def __init__(self) -> None:
        self.registry = Registry()
        r = self.registry.register
        self.tick_work = Histogram("gameserver_tick_work_seconds",
                                   "Wall time of one room simulation tick (seconds).")
        self.tick_recent = Summary("gameserver_tick_work_recent_seconds",
                                   "Room tick work time over the last 512 ticks (seconds).",
                                   window=512)
        self.tick_cpu_recent = Summary(
            "gameserver_tick_cpu_recent_seconds",
            "CPU time of the loop thread during a room tick, last 512 ticks (seconds): the "
            "tick's cost without time lost to preemption by other processes.", window=512)
        self.send_work = Histogram("gameserver_send_work_seconds",
                                   "Wall time of one room send tick: snapshot, encode, write (s).")
        self.send_recent = Summary("gameserver_send_work_recent_seconds",
                                   "Room send tick work over the last 512 send ticks (seconds).",
                                   window=512)
        self.overruns = Counter("gameserver_tick_overruns_total",
                                "Ticks that overran their period or had to be caught up.")
        self.ticks = Counter("gameserver_ticks_total", "Simulation ticks run.")
        self.send_ticks = Counter("gameserver_send_ticks_total", "Send ticks streamed.")
        self.encodes = Counter("gameserver_delta_encodes_total",
                               "Delta encodes (one per distinct client baseline per send tick).")
        self.rooms = Gauge("gameserver_rooms", "Live rooms.")
        self.players = Gauge("gameserver_players", "Players in rooms, including those in grace.")
        self.connections = Gauge("gameserver_connections", "Open game WebSocket connections.")
        self.bytes_in = Counter("gameserver_bytes_in_total", "Game message bytes received.")
        self.bytes_out = Counter("gameserver_bytes_out_total", "Frame bytes written to clients.")
        self.messages_in = Counter("gameserver_messages_in_total", "Game messages received.")
        self.messages_out = Counter("gameserver_messages_out_total",
                                    "Messages written to clients.")
        self.inputs_dropped = Counter("gameserver_inputs_dropped_total",
                                      "Inputs refused: rate limit, full queue, invalid, stale.")
        self.slow_skips = Counter("gameserver_slow_client_skips_total",
                                  "Per-client send ticks skipped because the socket was backed up.")
        self.slow_evictions = Counter("gameserver_slow_client_evictions_total",
                                      "Clients closed with 4009 because they could not keep up.")
        self.event_backlog_overflows = Counter(
            "gameserver_event_backlog_overflows_total",
            "Players removed because the events held for them (socket backed up or dropped) "
            "outgrew the backlog bound.")
        self.room_crashes = Counter("gameserver_room_crashes_total",
                                    "Rooms closed because their game code raised.")
        self.violations = Counter("gameserver_protocol_violations_total",
                                  "Client protocol violations by kind.", ("kind",))
        self.ip_limit_refusals = Counter(
            "gameserver_ip_limit_refusals_total",
            "Connections (HTTP 429) and joins (close 4020) refused by the per-IP limits.",
            ("kind",))
        self.render_tick_clamped = Counter(
            "gameserver_render_tick_clamped_total",
            "INPUT render ticks (rt) from the future or older than the room's world history, "
            "clamped into the history window (lag compensation).")
        for m in (self.tick_work, self.tick_recent, self.tick_cpu_recent, self.send_work,
                  self.send_recent,
                  self.overruns, self.ticks, self.send_ticks, self.encodes, self.rooms,
                  self.players, self.connections, self.bytes_in, self.bytes_out,
                  self.messages_in, self.messages_out, self.inputs_dropped, self.slow_skips,
                  self.slow_evictions, self.event_backlog_overflows, self.room_crashes,
                  self.violations, self.ip_limit_refusals, self.render_tick_clamped):
            r(m)
        self.connections_shed = Counter(
            "gameserver_connections_shed_total",
            "Connections without a player closed to stay within the file descriptor budget.")
        r(self.connections_shed)

    def render(self) -> str:
        return self.registry.render()


def server_metrics() -> ServerMetrics:
    """A fresh :class:`ServerMetrics` (one per server: tests run several in one process)."""
    return ServerMetrics()


def parse_text(text: str) -> dict[str, float]:
    """Parse Prometheus text into ``{"name{labels}": value}`` (labels as written).

    A minimal reader for tests and the benchmark (not a full validator): comment lines are
    skipped, every other non-empty line must be ``<name>[{labels}] <value>``.
    """
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if not key:
            raise ValueError(f"bad metrics line: {line!r}")
        out[key] = float(value)
    return out
