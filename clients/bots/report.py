"""Bot statistics: per-bot counters, mergeable latency histograms, progress line, report.

Everything here is cheap on the hot path (one delta per bot per send tick): counters are plain
ints in ``__slots__`` objects and latencies go into a fixed log-bucket :class:`Histogram`
(a Python list of ints; one ``log10`` and one increment per sample). Snapshots are plain dicts
of ints/lists so they cross a multiprocessing pipe and merge by addition.

Definitions (the JSON report uses these names):

* **tick age** (seconds): how late a delta arrives compared with the fastest delivery seen on
  the same connection: ``(arrival - tick / tick_rate) - min(arrival - tick / tick_rate)``.
  The server and the bot do not share a clock; the minimum is the best estimate of the pure
  transport offset, so the age is the extra delay from server lag, queueing and a bot process
  that cannot keep up. Resolution: 20 buckets per decade (~12%).
* **tick gaps**: send ticks the bot never received: for consecutive deltas at ticks ``a < b``,
  ``(b - a) / (tick_rate / send_rate) - 1``. ``tick_share = deltas / (deltas + gaps)``.
* **received share**: ``deltas / sum(connected seconds x send_rate)``: the share of the
  deltas the server was supposed to stream that the bots actually received and applied
  (a bot that stalls entirely lowers it even without gaps).
* **rtt**: PING -> PONG round trip (seconds).
* **steady**: CPU and deltas over the second half of the run (after the connect ramp):
  ``cpu_us_per_delta`` is the bot process's whole cost (WebSocket, decode, apply, stats) per
  delta received; it does not depend on how busy the machine is, unlike wall-clock figures.
  With a ``duration``, ``steady.tick_age_ms`` is the tick age of the deltas received in the
  second half only (the connect ramp's backlog left out; the window's ``max`` is the run's).
  ``steady.max_process_cpu_pct`` is the busiest bot process's share of a core; from
  ``SATURATED_PCT`` (90) on, the summary warns that the bots may be the bottleneck.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BotStats",
    "Histogram",
    "ProcessStats",
    "Progress",
    "build_report",
    "format_summary",
    "merge_snapshots",
    "steady_state",
]

#: Steady-state CPU share of one core (percent) from which a bot process counts as saturated.
SATURATED_PCT = 90.0

_DECADES_LOW = -5  # 10 us
_DECADES_HIGH = 3  # 1000 s
_PER_DECADE = 20
_NBUCKETS = (_DECADES_HIGH - _DECADES_LOW) * _PER_DECADE + 2  # + underflow, overflow


class Histogram:
    """Log-bucketed histogram of positive durations (seconds), mergeable by addition."""

    __slots__ = ("count", "counts", "max", "total")

    def __init__(self) -> None:
        self.counts: list[int] = [0] * _NBUCKETS
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        """Add one sample (values <= 10 us land in the first bucket)."""
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
        if seconds <= 1e-5:
            self.counts[0] += 1
            return
        i = int((math.log10(seconds) - _DECADES_LOW) * _PER_DECADE) + 1
        self.counts[i if i < _NBUCKETS else _NBUCKETS - 1] += 1

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s samples to this histogram."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0..100) in seconds (bucket upper edge, capped at max)."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(self.count * q / 100.0))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                if i == _NBUCKETS - 1:
                    return self.max
                upper = 10.0 ** (_DECADES_LOW + i / _PER_DECADE)
                return min(upper, self.max)
        return self.max

    def summary_ms(self) -> dict[str, float | int | None]:
        """``{"count", "mean", "p50", "p90", "p99", "max"}`` in milliseconds."""

        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000.0, 3)

        return {
            "count": self.count,
            "mean": ms(self.total / self.count) if self.count else None,
            "p50": ms(self.percentile(50)),
            "p90": ms(self.percentile(90)),
            "p99": ms(self.percentile(99)),
            "max": ms(self.max) if self.count else None,
        }

    def to_state(self) -> dict[str, Any]:
        """A picklable / JSON-able copy."""
        return {"counts": list(self.counts), "count": self.count, "total": self.total,
                "max": self.max}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Histogram:
        """Inverse of :meth:`to_state`."""
        h = cls()
        h.counts = list(state["counts"])
        h.count = int(state["count"])
        h.total = float(state["total"])
        h.max = float(state["max"])
        return h

    def minus(self, older: Histogram) -> Histogram:
        """The samples added since ``older`` (a previous copy of this histogram)."""
        h = Histogram()
        h.counts = [a - b for a, b in zip(self.counts, older.counts)]
        h.count = self.count - older.count
        h.total = self.total - older.total
        h.max = self.max  # a bound, not exact for the window
        return h


_COUNTERS = (
    "connect_attempts",
    "connects",
    "reconnects",
    "rejoins",
    "messages_in",
    "bytes_in",
    "messages_out",
    "bytes_out",
    "deltas",
    "tick_gaps",
    "inputs",
    "events",
    "errors",
)


class BotStats:
    """Counters of one bot. Mutated in place by the bot's connection (no allocation)."""

    __slots__ = (*_COUNTERS, "connected", "connected_s", "failure", "index", "last_error",
                 "player", "send_rate")

    def __init__(self, index: int) -> None:
        self.index = index
        self.connect_attempts = 0
        self.connects = 0
        self.reconnects = 0
        self.rejoins = 0  # joined again by HELLO after a 4015 worker restart
        self.messages_in = 0
        self.bytes_in = 0
        self.messages_out = 0
        self.bytes_out = 0
        self.deltas = 0
        self.tick_gaps = 0
        self.inputs = 0
        self.events = 0
        self.errors = 0
        self.connected = False
        self.failure: str | None = None
        self.last_error: str | None = None
        self.player: int | None = None
        self.connected_s = 0.0  # seconds from the join to now / the end of the session
        self.send_rate = 0.0  # the server's send rate (Hz) from WELCOME

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (for the pipe and the JSON report)."""
        d: dict[str, Any] = {k: getattr(self, k) for k in _COUNTERS}
        d.update(bot=self.index, connected=self.connected, failure=self.failure,
                 last_error=self.last_error, player=self.player,
                 connected_s=round(self.connected_s, 3), send_rate=self.send_rate)
        return d


class ProcessStats:
    """All bots of one process plus the process-wide latency histograms."""

    def __init__(self, first_index: int, count: int) -> None:
        self.bots = [BotStats(first_index + i) for i in range(count)]
        self.tick_age = Histogram()
        self.rtt = Histogram()
        self.connect_time = Histogram()
        self.cpu_seconds = 0.0
        self.samples: list[tuple[float, float, int]] = []
        """(seconds since start, process CPU seconds, deltas so far), once per report."""
        self.steady_mark: dict[str, Any] | None = None
        """``tick_age`` as it was when the steady window began (half the run's duration)."""

    def snapshot(self) -> dict[str, Any]:
        """A cumulative, picklable snapshot (merge several with :func:`merge_snapshots`)."""
        return {
            "bots": [b.to_dict() for b in self.bots],
            "tick_age": self.tick_age.to_state(),
            "rtt": self.rtt.to_state(),
            "connect_time": self.connect_time.to_state(),
            "cpu_seconds": self.cpu_seconds,
            "samples": list(self.samples[-600:]),
            "steady_mark": self.steady_mark,
        }


def merge_snapshots(snaps: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge process snapshots: bot lists concatenated (sorted by index), histograms added,
    CPU seconds summed (and kept per process in ``cpu_per_process``)."""
    bots: list[dict[str, Any]] = []
    hists = {"tick_age": Histogram(), "rtt": Histogram(), "connect_time": Histogram()}
    cpu: list[float] = []
    samples: list[list[Any]] = []
    mark: Histogram | None = Histogram()
    for s in snaps:
        samples.append(list(s.get("samples", [])))
        m = s.get("steady_mark")
        if m is None:
            mark = None  # a process without its mark: no steady window age
        elif mark is not None:
            mark.merge(Histogram.from_state(m))
        bots.extend(s["bots"])
        for k, h in hists.items():
            h.merge(Histogram.from_state(s[k]))
        cpu.append(float(s.get("cpu_seconds", 0.0)))
    bots.sort(key=lambda b: int(b["bot"]))
    out: dict[str, Any] = {"bots": bots, "cpu_seconds": sum(cpu), "cpu_per_process": cpu,
                           "samples_per_process": samples,
                           "steady_mark": mark.to_state() if mark is not None else None}
    out.update({k: h.to_state() for k, h in hists.items()})
    return out


def _total(bots: list[dict[str, Any]], key: str) -> int:
    return sum(int(b[key]) for b in bots)


class Progress:
    """Turns successive merged snapshots into one status line (rates over the last interval)."""

    def __init__(self, total_bots: int) -> None:
        self.total_bots = total_bots
        self._prev: dict[str, Any] | None = None
        self._prev_t = 0.0

    def line(self, merged: Mapping[str, Any], now: float, elapsed: float) -> str:
        """``elapsed`` seconds since the start; ``now`` any monotonic clock (seconds)."""
        bots = merged["bots"]
        connected = sum(1 for b in bots if b["connected"])
        deltas = _total(bots, "deltas")
        bytes_in = _total(bots, "bytes_in")
        errors = _total(bots, "errors") + sum(1 for b in bots if b["failure"])
        age = Histogram.from_state(merged["tick_age"])
        if self._prev is not None and now > self._prev_t:
            dt = now - self._prev_t
            pbots = self._prev["bots"]
            tps = (deltas - _total(pbots, "deltas")) / dt
            bps = (bytes_in - _total(pbots, "bytes_in")) / dt
            window = age.minus(Histogram.from_state(self._prev["tick_age"]))
        else:
            tps = bps = 0.0
            window = age
        self._prev = dict(merged)
        self._prev_t = now
        p50 = window.percentile(50)
        p99 = window.percentile(99)

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1000:.1f}ms"

        # the busiest bot process over its last sample interval (a saturated load generator
        # makes every other figure here about the bots, not the server)
        busiest = None
        for pts in merged.get("samples_per_process", []):
            if len(pts) >= 2 and float(pts[-1][0]) > float(pts[-2][0]):
                pct = 100.0 * (float(pts[-1][1]) - float(pts[-2][1])) / (
                    float(pts[-1][0]) - float(pts[-2][0]))
                busiest = pct if busiest is None else max(busiest, pct)
        cpu = "" if busiest is None else f" | bot cpu {busiest:.0f}%"
        return (
            f"[{elapsed:6.1f}s] bots {connected}/{self.total_bots} connected | "
            f"{tps:,.0f} ticks/s | {_human_bytes(bps)}/s in | "
            f"tick age p50 {ms(p50)} p99 {ms(p99)} | errors {errors}{cpu}"
        )


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}GB"  # pragma: no cover


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": min(values), "mean": round(sum(values) / len(values), 2), "max": max(values)}


def steady_state(samples_per_process: Iterable[Iterable[Any]]) -> dict[str, Any] | None:
    """CPU cost in the second half of the run (after the connect ramp), from the per-second
    samples: ``cpu_pct`` (sum over processes), ``deltas_per_s``, ``cpu_us_per_delta``, and
    ``max_process_cpu_pct``, the busiest bot process (near 100%: the bots, not the server,
    were the bottleneck)."""
    dcpu = dt_sum = 0.0
    ddel = 0
    busiest = 0.0
    for samples in samples_per_process:
        pts = list(samples)
        if len(pts) < 2:
            continue
        t_end = float(pts[-1][0])
        window = [p for p in pts if float(p[0]) >= t_end / 2] or pts[-2:]
        if len(window) < 2:
            window = pts[-2:]
        a, b = window[0], window[-1]
        dt = float(b[0]) - float(a[0])
        if dt <= 0:
            continue
        dcpu += float(b[1]) - float(a[1])
        ddel += int(b[2]) - int(a[2])
        dt_sum = max(dt_sum, dt)
        busiest = max(busiest, (float(b[1]) - float(a[1])) / dt)
    if dt_sum <= 0:
        return None
    return {
        "window_s": round(dt_sum, 3),
        "cpu_pct": round(100.0 * dcpu / dt_sum, 2),
        "deltas_per_s": round(ddel / dt_sum, 1),
        "cpu_us_per_delta": round(1e6 * dcpu / ddel, 2) if ddel else None,
        "max_process_cpu_pct": round(100.0 * busiest, 2),
    }


def build_report(
    merged: Mapping[str, Any], *, duration: float, config: Mapping[str, Any]
) -> dict[str, Any]:
    """The final JSON report from a merged snapshot (see the module docstring for terms)."""
    bots: list[dict[str, Any]] = list(merged["bots"])
    deltas = _total(bots, "deltas")
    gaps = _total(bots, "tick_gaps")
    failures = [{"bot": b["bot"], "reason": b["failure"]} for b in bots if b["failure"]]
    expected = sum(float(b.get("connected_s", 0.0)) * float(b.get("send_rate", 0.0))
                   for b in bots)
    reasons: dict[str, int] = {}
    for f in failures:
        key = str(f["reason"]).split(":", 1)[0]
        reasons[key] = reasons.get(key, 0) + 1
    report: dict[str, Any] = {
        "config": dict(config),
        "duration_s": round(duration, 3),
        "bots": len(bots),
        "connected_at_end": sum(1 for b in bots if b["connected"]),
        "connects": sum(1 for b in bots if b["connects"] > 0),
        "connect_attempts": _total(bots, "connect_attempts"),
        "failures": len(failures),
        "failure_reasons": reasons,
        "failed_bots": failures,
        "reconnects": _total(bots, "reconnects"),
        "rejoins": _total(bots, "rejoins"),
        "errors": _total(bots, "errors"),
        "messages_in": _total(bots, "messages_in"),
        "bytes_in": _total(bots, "bytes_in"),
        "messages_out": _total(bots, "messages_out"),
        "bytes_out": _total(bots, "bytes_out"),
        "inputs": _total(bots, "inputs"),
        "events": _total(bots, "events"),
        "per_bot": {
            k: _spread([int(b[k]) for b in bots])
            for k in ("messages_in", "bytes_in", "messages_out", "bytes_out", "deltas")
        },
        "ticks_received": deltas,
        "tick_gaps": gaps,
        "tick_share": round(deltas / (deltas + gaps), 5) if deltas + gaps else None,
        "expected_ticks": round(expected, 1),
        "received_share": round(deltas / expected, 5) if expected > 0 else None,
        "tick_age_ms": Histogram.from_state(merged["tick_age"]).summary_ms(),
        "rtt_ms": Histogram.from_state(merged["rtt"]).summary_ms(),
        "connect_ms": Histogram.from_state(merged["connect_time"]).summary_ms(),
        "cpu_seconds": round(float(merged.get("cpu_seconds", 0.0)), 3),
        "cpu_per_process": [round(c, 3) for c in merged.get("cpu_per_process", [])],
        "steady": steady_state(merged.get("samples_per_process", [])),
        "per_bot_detail": bots,
    }
    mark = merged.get("steady_mark")
    if report["steady"] is not None and mark is not None:
        window = Histogram.from_state(merged["tick_age"]).minus(Histogram.from_state(mark))
        report["steady"]["tick_age_ms"] = window.summary_ms()
    return report


def _pct(v: Any) -> str:
    return "-" if v is None else f"{float(v) * 100:.2f}%"


def format_summary(report: Mapping[str, Any]) -> str:
    """A human-readable multi-line summary of :func:`build_report`'s output."""

    def ms(d: Mapping[str, Any]) -> str:
        return " ".join(f"{k} {d[k]}" for k in ("p50", "p90", "p99", "max") if d.get(k) is not None)

    share = report["tick_share"]
    lines = [
        f"bots: {report['bots']}  connected: {report['connects']}  "
        f"still connected at end: {report['connected_at_end']}  failed: {report['failures']}  "
        f"reconnects: {report['reconnects']}  rejoins: {report.get('rejoins', 0)}  "
        f"duration: {report['duration_s']}s",
        f"in: {report['messages_in']} msgs, {_human_bytes(report['bytes_in'])}   "
        f"out: {report['messages_out']} msgs, {_human_bytes(report['bytes_out'])}   "
        f"inputs: {report['inputs']}",
        f"ticks received: {report['ticks_received']}  gaps: {report['tick_gaps']}  "
        f"share: {'-' if share is None else f'{share * 100:.2f}%'}  "
        f"received vs expected: {_pct(report.get('received_share'))}",
        f"tick age ms: {ms(report['tick_age_ms']) or '-'}",
        f"rtt ms: {ms(report['rtt_ms']) or '-'}",
        f"connect ms: {ms(report['connect_ms']) or '-'}",
        f"cpu seconds: {report['cpu_seconds']} ({report['cpu_per_process']})",
    ]
    st = report.get("steady")
    if st:
        lines.append(
            f"steady state (last {st['window_s']}s): {st['deltas_per_s']} deltas/s, "
            f"bot CPU {st['cpu_pct']}%, {st['cpu_us_per_delta']} CPU us per delta"
            + (f", tick age ms {ms(st['tick_age_ms'])}" if st.get("tick_age_ms") else ""))
        if st.get("max_process_cpu_pct", 0.0) >= SATURATED_PCT:
            lines.append(
                f"warning: a bot process used {st['max_process_cpu_pct']:.0f}% of a core in the "
                "steady state: the bots may be the bottleneck (late or missed ticks then say "
                "little about the server); spread them with --procs or over more machines")
    if report["failure_reasons"]:
        lines.append("failures: " + ", ".join(
            f"{k} x{v}" for k, v in sorted(report["failure_reasons"].items())))
    return "\n".join(lines)
