"""Liveness of an open WebSocket: pings, pongs, the keepalive and the frame deadline.

A mixin of :class:`protocol.aio.websocket.WebSocket` (one concept per module): the state it
reads lives in the WebSocket's ``__slots__``. Contracts:

* :meth:`Liveness.ping` sends a ping (RFC 6455 section 5.5.2) and returns the round-trip time
  in seconds once the matching pong (section 5.5.3) arrives.
* The keepalive is not a timer per connection: :class:`protocol.aio.config.Keepalive` sweeps
  its members and calls :meth:`Liveness._keepalive_due` once ``now >= _ka_at`` (loop time,
  seconds). A ping unanswered for ``ping_timeout`` fails the connection with **1011**; a frame
  (or fragmented message) incomplete for ``frame_timeout`` fails it with **1008**.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConnectionClosed, InvalidState

if TYPE_CHECKING:
    from ..connection import Connection
    from .config import Config

__all__ = ["Liveness"]

log = logging.getLogger("protocol.aio")


class Liveness:
    """Ping / pong and keepalive methods of :class:`~protocol.aio.websocket.WebSocket`."""

    # The liveness state (initialised by WebSocket.__init__).
    __slots__ = ("_ka_at", "_ka_payload", "_partial_at", "_ping_at", "_pings")

    # The WebSocket's own slots read here, declared for the type checker.
    _cfg: Config
    _conn: Connection | None
    _loop: asyncio.AbstractEventLoop
    _transport: asyncio.Transport
    _open: bool
    if TYPE_CHECKING:
        _pings: dict[bytes, tuple[asyncio.Future[float], float]] | None
        _ka_payload: bytes | None
        _ka_at: float
        _ping_at: float
        _partial_at: float

    if TYPE_CHECKING:
        @property
        def remote_address(self) -> Any: ...

        def _fail(self, code: int, reason: str) -> None: ...

        def _closed_exc(self) -> ConnectionClosed: ...

    async def ping(self, payload: bytes | None = None) -> float:
        """Send a ping and wait for its pong; return the round-trip time in seconds.

        ``payload`` (at most 125 bytes) defaults to 4 random bytes. Raises
        :class:`ConnectionClosed` if the connection closes before the pong arrives.
        """
        if not self._open:
            raise self._closed_exc()
        conn = self._conn
        assert conn is not None
        if payload is None:
            payload = os.urandom(4)
        pings = self._pings
        if pings is None:
            pings = self._pings = {}
        if payload in pings:
            raise InvalidState("a ping with this payload is already waiting for its pong")
        fut: asyncio.Future[float] = self._loop.create_future()
        pings[payload] = (fut, time.perf_counter())
        conn.send_ping(payload)
        self._transport.write(conn.data_to_send())
        try:
            return await fut
        finally:
            if self._pings is not None:
                self._pings.pop(payload, None)


    def _start_keepalive(self) -> None:
        ka = self._cfg.keepalive
        if ka is not None and self._open:
            ka.add(self)

    def _keepalive_due(self, now: float) -> None:
        """Called by the :class:`Keepalive` sweep once ``now >= self._ka_at``."""
        conn = self._conn
        if not self._open or conn is None:
            return
        cfg = self._cfg
        ft = cfg.frame_timeout
        if self._partial_at and ft is not None and now >= self._partial_at + ft:
            # A peer that stops in the middle of a frame (or of a fragmented message) would
            # otherwise hold its partial message until the keepalive notices.
            log.info("ws frame timeout, closing 1008 peer=%s", self.remote_address)
            self._fail(1008, "frame timeout")
            return
        if now >= self._ping_at:
            if self._ka_payload is not None:  # the pong is overdue
                log.info("ws keepalive timeout, closing 1011 peer=%s", self.remote_address)
                self._fail(1011, "keepalive ping timeout")
                return
            if cfg.ping_interval is None:
                self._ping_at = float("inf")
            else:
                payload = os.urandom(4)
                conn.send_ping(payload)
                self._transport.write(conn.data_to_send())
                if cfg.ping_timeout is None:  # never time out: just ping every interval
                    self._ping_at = now + cfg.ping_interval
                else:
                    self._ka_payload = payload
                    self._ping_at = now + cfg.ping_timeout
        self._rearm_keepalive()

    def _rearm_keepalive(self) -> None:
        """``_ka_at``: the earlier of the ping action and the frame deadline."""
        at = self._ping_at
        ft = self._cfg.frame_timeout
        if self._partial_at and ft is not None and self._partial_at + ft < at:
            at = self._partial_at + ft
        self._ka_at = at

    def _on_pong(self, payload: bytes) -> None:
        if self._ka_payload is not None and payload == self._ka_payload:
            self._ka_payload = None
            self._ping_at = self._loop.time() + (self._cfg.ping_interval or 0.0)
            self._rearm_keepalive()
        pings = self._pings
        if pings:
            entry = pings.pop(payload, None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(time.perf_counter() - entry[1])
