"""Settings shared by the connections of one server (or one client connection), and the
keepalive sweep: one periodic timer per server instead of one timer per connection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .liveness import Liveness

__all__ = ["Config", "Keepalive"]


class Config:
    """Per-server (or per-client-connection) settings shared by its connections.

    Units: bytes for sizes, seconds for times; ``None`` disables a timer.
    """

    __slots__ = (
        "close_timeout",
        "frame_timeout",
        "keepalive",
        "max_message_size",
        "max_queue",
        "ping_interval",
        "ping_timeout",
        "queue_high_bytes",
        "queue_low_bytes",
        "queue_low_count",
        "write_limit",
    )

    def __init__(
        self,
        *,
        max_message_size: int = 16 * 2**20,
        max_queue: int = 64,
        read_limit: int = 2**20,
        write_limit: int = 64 * 1024,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 5.0,
        frame_timeout: float | None = None,
    ) -> None:
        if max_queue < 1 or read_limit < 1 or write_limit < 1:
            raise ValueError("max_queue, read_limit and write_limit must be >= 1")
        self.max_message_size = max_message_size
        self.max_queue = max_queue
        self.queue_low_count = max_queue // 4
        self.queue_high_bytes = read_limit
        self.queue_low_bytes = read_limit // 4
        self.write_limit = write_limit
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        #: Seconds a frame (or a fragmented message) may stay incomplete; None: no deadline.
        self.frame_timeout = frame_timeout
        #: Shared keepalive sweep for the connections using this config (None: no pings).
        self.keepalive: Keepalive | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to ``loop`` (creates the keepalive sweep if pings or the frame deadline are
        enabled)."""
        if self.ping_interval is not None or self.frame_timeout is not None:
            self.keepalive = Keepalive(loop, self.ping_interval, self.ping_timeout,
                                       self.frame_timeout)


class Keepalive:
    """One periodic timer watching every connection of a server (instead of one timer each).

    Each member has ``_ka_at``, the loop time of its next keepalive action: send a ping (every
    ``interval`` seconds after the previous pong) or, when a ping is unanswered, fail the
    connection with 1011 once ``timeout`` seconds passed; or, when a frame (or a fragmented
    message) has stayed incomplete for ``frame_timeout`` seconds, fail it with 1008. The sweep
    runs every ``tick = clamp(min(interval, timeout, frame_timeout) / 8, 20 ms, 1 s)`` seconds
    while there are members, so deadlines are honoured within one tick. Worst cases: a peer
    that never answers pings is cut ``interval + timeout + tick`` seconds after its last pong
    (or its upgrade); one stalled mid-frame ``frame_timeout + tick`` seconds after the frame's
    first byte. Cost: one comparison per connection per tick.
    """

    __slots__ = ("_handle", "_loop", "frame_timeout", "interval", "members", "tick", "timeout")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, interval: float | None, timeout: float | None,
        frame_timeout: float | None = None,
    ) -> None:
        self._loop = loop
        self.interval = interval
        self.timeout = timeout
        self.frame_timeout = frame_timeout
        periods = [t for t in (interval, timeout, frame_timeout) if t is not None and t > 0]
        self.tick = min(1.0, max(0.02, min(periods, default=1.0) / 8))
        self.members: set[Liveness] = set()
        self._handle: asyncio.TimerHandle | None = None

    def add(self, ws: Liveness) -> None:
        now = self._loop.time()
        ws._ping_at = now + self.interval if self.interval is not None else float("inf")
        ws._ka_at = ws._ping_at
        self.members.add(ws)
        if self._handle is None:
            self._handle = self._loop.call_later(self.tick, self._sweep)

    def discard(self, ws: Liveness) -> None:
        self.members.discard(ws)

    def _sweep(self) -> None:
        self._handle = None
        members = self.members
        if not members:
            return
        now = self._loop.time()
        due = [ws for ws in members if ws._ka_at <= now]
        for ws in due:
            ws._keepalive_due(now)
        self._handle = self._loop.call_later(self.tick, self._sweep)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
