"""The receive path of the Python client: every server message, O(1) bookkeeping each.

:class:`Receiver` (a mixin of :class:`~clients.client.GameClient`) accounts each message
(counters, the stall detector's clock), applies a steady-state DELTA straight from its bytes
(:meth:`clients.world.WorldView.apply_wire`, i.e. :meth:`protocol.replica.Replica.apply`),
decodes and dispatches everything else (INPUT_ACK, PONG, EVENT, ERROR), and after each
applied delta updates the tick-gap counters, runs the ``on_tick`` callbacks and feeds the
bounded ``updates()`` queues (:class:`Subscriber`: drop-oldest, never unbounded memory).
A delta that does not apply means a resync (drop + RESUME for a full snapshot, SPEC.md
section 5); twice in a row, the server is broken.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from protocol import messages as M
from protocol.aio import WebSocket
from protocol.codes import DeltaError, ErrorCode, MessageError
from protocol.delta import Delta

from .backoff import Drop
from .errors import ConnectionLost, ServerProtocolError
from .prediction import AckTracker
from .stats import GameEvent, Meter, TickUpdate
from .world import WorldView

if TYPE_CHECKING:
    from .client import GameClient

__all__ = ["Receiver", "Subscriber"]

log = logging.getLogger("clients.client")


class Subscriber:
    """A bounded queue feeding one async iterator (drop-oldest on overflow)."""

    __slots__ = ("dropped", "items", "waiter")

    def __init__(self, size: int) -> None:
        self.items: deque[Any] = deque(maxlen=size)
        self.waiter: asyncio.Future[None] | None = None
        self.dropped = 0

    def push(self, item: Any) -> None:
        if len(self.items) == self.items.maxlen:
            self.dropped += 1
        self.items.append(item)
        self.wake()

    def wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)


class Receiver(Meter):
    """Mixin: the handling of every received server message (state lives in GameClient)."""

    world: WorldView | None
    tick_rate: float
    send_rate: float
    resume_token: str | None
    max_message_size: int
    clock: Callable[[], float]
    last_received_at: float
    acks: AckTracker
    acked_seq: int
    pending_inputs: deque[tuple[int, dict[str, Any], float]]
    _on_tick: list[Callable[[GameClient, TickUpdate], None]]
    _on_event: list[Callable[[GameClient, GameEvent], None]]
    _subs_updates: list[Subscriber]
    _subs_events: list[Subscriber]
    _resync_streak: int
    _attempts_in_row: int
    _last_error_text: str

    @property
    def tick(self) -> int:
        """The tick of the replicated world (0 before the first snapshot)."""
        return self.world.tick if self.world is not None else 0

    def _account(self, data: str | bytes, now: float) -> bytes:
        st = self.stats
        st.messages_in += 1
        st.bytes_in += len(data)
        self.last_received_at = now
        if type(data) is str:
            raise Drop(ServerProtocolError(
                "server sent a text message (the game protocol is binary only)"), retry=False)
        return data  # type: ignore[return-value]

    def _decode(self, data: bytes) -> Any:
        try:
            return M.decode_server(data, max_size=self.max_message_size)
        except MessageError as exc:
            if exc.code == ErrorCode.UNKNOWN_TYPE:
                # SPEC.md section 1 rule 4: a newer server's message type; ignore it
                self.stats.unknown_messages += 1
                log.debug("ignoring server message: %s", exc)
                return None
            raise Drop(ServerProtocolError(
                f"undecodable game message from the server: {exc}", code=exc.code),
                retry=False) from None

    def _dispatch(self, msg: Any, now: float) -> None:
        if type(msg) is Delta:
            self._apply(msg, now)
        elif type(msg) is M.View:
            self._apply_view(msg, now)
        elif type(msg) is M.InputAck:
            self._ack(int(msg.seq), int(msg.tick))
        elif type(msg) is M.Pong:
            self._pong(msg, now)
        elif type(msg) is M.Event:
            self._event(msg)
        elif type(msg) is M.Error:
            self._server_error(msg)
        elif type(msg) is M.Welcome:
            raise Drop(ServerProtocolError("unexpected second WELCOME"), retry=False)
        elif msg is not None:
            self.stats.unknown_messages += 1
            log.debug("ignoring unexpected server message %r", type(msg).__name__)

    def _receive(self, data: bytes, now: float) -> None:
        """One server message: a steady-state DELTA takes the world's batched fast path
        (decode + apply in one go); everything else is decoded and dispatched."""
        world = self.world
        if len(data) > 2 and data[0] == 0x97 and data[1] == 0x11 and world is not None \
                and world.replica.tick is not None:
            prev = world.replica.tick
            try:
                full = world.apply_wire(data, max_size=self.max_message_size)
            except DeltaError as exc:
                raise self._delta_failed(exc) from None
            except MessageError as exc:
                raise Drop(ServerProtocolError(
                    f"undecodable game message from the server: {exc}", code=exc.code),
                    retry=False) from None
            self._applied(prev, full, now)
        else:
            self._dispatch(self._decode(data), now)

    def _apply(self, delta: Delta, now: float) -> None:
        world = self.world
        assert world is not None
        prev = world.tick if world.ready else None
        try:
            world.apply(delta)
        except DeltaError as exc:
            raise self._delta_failed(exc) from None
        self._applied(prev, delta.base_tick is None, now)

    def _apply_view(self, msg: M.View, now: float) -> None:
        """A VIEW (interest management, SPEC.md section 11): same bookkeeping as a delta."""
        world = self.world
        if world is None or not world.is_view:
            raise Drop(ServerProtocolError("server sent a VIEW it did not negotiate"),
                       retry=False)
        prev = world.tick if world.ready else None
        try:
            full = world.apply_view(msg.raw)
        except DeltaError as exc:
            raise self._delta_failed(exc) from None
        self._applied(prev, full, now)

    def _delta_failed(self, exc: DeltaError) -> Drop:
        self._resync_streak += 1
        self.stats.resyncs += 1
        if self._resync_streak >= 2 or not self.resume_token:
            return Drop(ServerProtocolError(
                f"server delta does not apply to our replica: {exc}"), retry=False)
        # SPEC.md section 5: drop the connection and RESUME for a full snapshot
        return Drop(ConnectionLost(f"delta did not apply ({exc}); resynchronizing"),
                     retry=True)

    def _applied(self, prev: int | None, full: bool, now: float) -> None:
        """Bookkeeping after a delta was applied: stats, gaps, callbacks, iterators."""
        world = self.world
        assert world is not None
        st = self.stats
        st.deltas += 1
        tick = world.tick
        if tick > self.server_tick:
            self.server_tick = tick
        missed = 0
        if full:
            st.full_snapshots += 1
            prev = None
        else:
            # an incremental delta applied: the stream is sane again
            self._resync_streak = 0
            self._attempts_in_row = 0
            # send ticks skipped since prev (O(1); the usual step is exactly one send tick)
            if prev is not None and self.send_rate > 0:
                step = self.tick_rate / self.send_rate
                if tick - prev != step:
                    missed = max(0, round((tick - prev) / step) - 1)
                    st.tick_gaps += missed
        update = TickUpdate(tick, prev, full, missed, now)
        if self._on_tick:
            me = cast("GameClient", self)
            for fn in self._on_tick:
                fn(me, update)
        for sub in self._subs_updates:
            sub.push(update)

    def _ack(self, seq: int, tick: int) -> None:
        self.acks.ack(seq, tick)
        if seq > self.acked_seq:
            self.acked_seq = seq
        pend = self.pending_inputs
        while pend and pend[0][0] <= seq:
            pend.popleft()

    def _event(self, msg: Any) -> None:
        self.stats.events += 1
        ev = GameEvent(str(msg.kind), msg.data, self.tick)
        me = cast("GameClient", self)
        for fn in self._on_event:
            fn(me, ev)
        for sub in self._subs_events:
            sub.push(ev)

    def _server_error(self, msg: Any) -> None:
        code, text = int(msg.code), str(msg.message)
        self.stats.errors += 1
        self.stats.server_errors.append((code, text))
        self._last_error_text = text
        log.debug("server ERROR %d: %s", code, text)

    def _send(self, ws: WebSocket, data: bytes) -> None:
        ws.send_nowait(data)
        self.stats.messages_out += 1
        self.stats.bytes_out += len(data)
