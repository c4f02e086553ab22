"""What the Python client measures and reports: counters, RTT, bandwidth, tick updates.

* :class:`ClientStats`: cumulative counters (game message payload bytes, not framing);
* :class:`TickUpdate` (one applied delta) and :class:`GameEvent` (one game EVENT), the items
  of ``GameClient.updates()`` / ``events()`` and the callbacks' arguments;
* :class:`Meter`: the client's RTT (PING/PONG round trips, smoothed like TCP's SRTT with
  gain 1/8, RFC 6298 section 2) and bandwidth rates (refreshed about once per
  ``ping_interval``). Every update is O(1) per message.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientStats", "GameEvent", "Meter", "TickUpdate"]


@dataclass(frozen=True, slots=True)
class TickUpdate:
    """One applied delta: the replica is now at ``tick``.

    ``prev_tick`` is the tick before (None after a full snapshot, ``full`` True), ``missed``
    the send ticks skipped between the two (0 normally), ``received_at`` the client clock
    (seconds) when the message arrived.
    """

    tick: int
    prev_tick: int | None
    full: bool
    missed: int
    received_at: float


@dataclass(frozen=True, slots=True)
class GameEvent:
    """A game EVENT: ``kind``, ``data`` (any msgpack value), at ``tick`` (client's view)."""

    kind: str
    data: Any
    tick: int


@dataclass(slots=True)
class ClientStats:
    """Cumulative counters (payload bytes of game messages, not WebSocket framing)."""

    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    deltas: int = 0
    full_snapshots: int = 0
    tick_gaps: int = 0
    inputs: int = 0
    inputs_dropped: int = 0
    events: int = 0
    errors: int = 0
    pongs: int = 0
    reconnects: int = 0
    connect_attempts: int = 0
    resyncs: int = 0
    unknown_messages: int = 0
    redirects: int = 0  # 4013 / 4014 followed
    inputs_resent: int = 0  # unacknowledged inputs re-sent after a 4014 move
    server_errors: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=16))


class Meter:
    """Mixin of :class:`~clients.client.GameClient`: RTT and bandwidth measurements.

    ``rtt`` last PING/PONG round trip (s), ``srtt`` smoothed, ``min_rtt``; ``bytes_in_per_s``
    / ``bytes_out_per_s`` game payload rates over the last refresh interval.
    """

    stats: ClientStats
    server_tick: int
    rtt: float | None
    srtt: float | None
    min_rtt: float | None
    bytes_in_per_s: float
    bytes_out_per_s: float
    _rate_mark: tuple[float, int, int]

    def _init_meter(self) -> None:
        self.stats = ClientStats()
        self.rtt = None
        self.srtt = None
        self.min_rtt = None
        self.bytes_in_per_s = 0.0
        self.bytes_out_per_s = 0.0
        self._rate_mark = (0.0, 0, 0)

    def _mark_rates(self, now: float) -> None:
        """Start a new rate interval at ``now`` (a new connection)."""
        self._rate_mark = (now, self.stats.bytes_in, self.stats.bytes_out)

    def _refresh_rates(self, now: float) -> None:
        """Bytes per second since the last refresh (called about once per ping interval)."""
        t0, bin_, bout = self._rate_mark
        if now > t0:
            st = self.stats
            self.bytes_in_per_s = (st.bytes_in - bin_) / (now - t0)
            self.bytes_out_per_s = (st.bytes_out - bout) / (now - t0)
            self._rate_mark = (now, st.bytes_in, st.bytes_out)

    def _pong(self, msg: Any, now: float) -> None:
        st = int(msg.st)
        if st > self.server_tick:
            self.server_tick = st
        t = msg.t
        if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
            rtt = now - float(t)
            if 0.0 <= rtt < 3600.0:
                self.stats.pongs += 1
                self.rtt = rtt
                self.srtt = rtt if self.srtt is None else self.srtt + (rtt - self.srtt) / 8
                if self.min_rtt is None or rtt < self.min_rtt:
                    self.min_rtt = rtt
