"""The open WebSocket: an :class:`asyncio.Protocol` driving the sans-I/O core.

One object per connection is at the same time the transport's protocol and the application's
handle (``recv`` / ``send`` / ``close``). That keeps an idle connection lean: no reader task,
no per-connection buffers until they are needed (``__slots__``, lazily created queue, waiters
and ping table), no timer while open (keepalive is one sweep per server, see
:class:`~protocol.aio.config.Keepalive`); a timer only for the handshake and close deadlines.

Write coalescing: :meth:`WebSocket.send` / :meth:`WebSocket.send_nowait` queue frames in the
core's outbox and hand everything sent in one event-loop iteration to the transport in one
``write`` (a ``call_soon`` callback), or at once past ``CORK_BYTES``. An echo or a burst of
messages thus costs one ``send(2)`` instead of one per message; order with
:meth:`WebSocket.write_prepared` / :func:`broadcast` (which write directly) is preserved.

Flow control, both directions bounded:

* Outgoing: the transport's write buffer has ``write_limit`` as its high-water mark; above it
  the transport calls :meth:`pause_writing` and :meth:`WebSocket.send` waits until
  :meth:`resume_writing` (low-water = ``write_limit // 4``). :meth:`WebSocket.send_nowait`,
  :meth:`WebSocket.write_prepared` and :func:`broadcast` never wait: their callers watch
  :attr:`WebSocket.paused` / :attr:`WebSocket.buffered_bytes` (the game room closes clients
  that cannot keep up with 4009).
* Incoming: complete messages wait in a queue for :meth:`WebSocket.recv`. When it holds
  ``max_queue`` messages or ``read_limit`` bytes, the adapter stops reading the socket
  (``transport.pause_reading()``) and resumes once the application drained it below a quarter
  of both. TCP flow control then pushes back on the peer. Worst case held in memory: the
  high-water marks plus one read chunk plus one partial message (``max_message_size``).

Close (RFC 6455 section 7): :meth:`WebSocket.close` sends a close frame and waits up to
``close_timeout`` seconds for the peer's; then the transport is aborted. The server closes TCP
as soon as the close handshake completes (section 7.1.1); the client waits for the server to
do it (bounded by ``close_timeout`` too).

Callback receive mode (:meth:`WebSocket.set_message_handler`): instead of ``recv()``, a
consumer may have every message handed to a synchronous function straight from
``data_received`` (no future, no task switch per message), and learn of the end of the
stream through an ``on_close`` callback. There is no queue in that mode, so nothing to pause:
the handler's own speed is the backpressure (TCP pushes back while it runs).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from ..connection import State
from ..errors import ConnectionClosed, InvalidState
from ..events import (
    BinaryMessage,
    CloseReceived,
    ConnectionLost,
    Ping,
    Pong,
    ProtocolFailure,
    TextMessage,
)
from ..frames import prepare_message
from .config import Config
from .liveness import Liveness

if TYPE_CHECKING:
    from ..connection import Connection
    from ..handshake import Request

__all__ = ["CORK_BYTES", "Config", "WebSocket", "broadcast"]  # Config: re-exported

log = logging.getLogger("protocol.aio")

#: send_nowait() writes at once when this many bytes are queued (else at the end of the
#: event-loop iteration, coalescing the messages of one iteration into one write).
CORK_BYTES = 16 * 1024

# Sentinel handed to a waiting recv() when the receiving side is finished.
_CLOSED: Any = object()


class WebSocket(Liveness, asyncio.Protocol):
    """One WebSocket connection (server or client side), once the opening handshake is done.

    Application API: :meth:`recv`, ``async for msg in ws``, :meth:`send`, :meth:`send_nowait`,
    :meth:`write_prepared`, :meth:`ping`, :meth:`close`, :meth:`wait_closed`, and the
    attributes :attr:`request`, :attr:`subprotocol`, :attr:`remote_address`,
    :attr:`closed`, :attr:`close_code`, :attr:`close_reason`, :attr:`paused`,
    :attr:`buffered_bytes`. Not thread-safe: use it from its event loop only.
    """

    __slots__ = (
        "_cfg",
        "_close_code",
        "_close_reason",
        "_closed_fut",
        "_conn",
        "_drain_waiters",
        "_flush_scheduled",
        "_handler",
        "_loop",
        "_lost",
        "_on_close",
        "_open",
        "_qbytes",
        "_queue",
        "_rclosed",
        "_read_paused",
        "_timer",
        "_transport",
        "_unflushed",
        "_waiter",
        "_write_paused",
        "request",
        "subprotocol",
    )

    #: True for the client side (masks its frames; waits for the server to close TCP).
    is_client: ClassVar[bool] = False

    def __init__(self, cfg: Config, loop: asyncio.AbstractEventLoop) -> None:
        self._cfg = cfg
        self._loop = loop
        self._transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self._conn: Connection | None = None  # None until the opening handshake completes
        self._open = False  # we may still send data frames
        self._rclosed = False  # the peer's side is finished: recv() raises once drained
        self._lost = False  # connection_lost() ran
        self._queue: deque[str | bytes] | None = None
        self._handler: Callable[[str | bytes], None] | None = None  # callback receive mode
        self._on_close: Callable[[ConnectionClosed], None] | None = None
        self._qbytes = 0
        self._waiter: asyncio.Future[Any] | None = None
        self._read_paused = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self._unflushed = 0  # approx. bytes queued in the core's outbox by send_nowait()
        self._flush_scheduled = False
        self._closed_fut: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ka_payload: bytes | None = None  # keepalive ping waiting for its pong
        self._ka_at = 0.0  # loop time of the next keepalive action (min of the two below)
        self._ping_at = 0.0  # loop time to send the next ping, or the pong deadline
        self._partial_at = 0.0  # loop time an incomplete frame / message began (0: none)
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] | None = None
        self._close_code: int | None = None
        self._close_reason = ""
        #: The opening handshake request (server side; the client's own request is not kept).
        self.request: Request | None = None
        #: The negotiated subprotocol, or None.
        self.subprotocol: str | None = None

    # ------------------------------------------------------------------ public attributes

    @property
    def closed(self) -> bool:
        """True once the TCP connection is gone (close handshake done, failed or aborted)."""
        return self._lost

    @property
    def open(self) -> bool:
        """True while data messages may be sent (no close frame sent or received yet)."""
        return self._open

    @property
    def close_code(self) -> int | None:
        """The close code (peer's, or ours on a failure we detected); 1006 if TCP just died.

        ``None`` while the connection is open.
        """
        return self._close_code

    @property
    def close_reason(self) -> str:
        """The close reason matching :attr:`close_code` (may be empty)."""
        return self._close_reason

    @property
    def remote_address(self) -> Any:
        """The peer's address (``(host, port)`` for TCP), from the transport."""
        t = self._transport
        return t.get_extra_info("peername") if t is not None else None

    @property
    def paused(self) -> bool:
        """True while the transport's write buffer is above ``write_limit`` (backpressure)."""
        return self._write_paused

    @property
    def buffered_bytes(self) -> int:
        """Bytes not yet handed to the kernel: the transport's write buffer plus frames
        queued by :meth:`send_nowait` in this event-loop iteration (approximate)."""
        t = self._transport
        return (t.get_write_buffer_size() if t is not None else 0) + self._unflushed

    # ---------------------------------------------------------------------- receiving

    async def recv(self) -> str | bytes:
        """Return the next message (``str`` for text, ``bytes`` for binary).

        Raises :class:`ConnectionClosed` once the peer's side is finished and every message
        received before it was returned; :class:`InvalidState` if another ``recv()`` is
        already waiting or a message handler is set (our misuse).
        """
        if self._handler is not None:
            raise InvalidState("recv() while a message handler is set on this connection")
        q = self._queue
        if q:
            data = q.popleft()
            self._qbytes -= len(data)
            if self._read_paused:
                self._maybe_resume_reading(q)
            return data
        if self._rclosed:
            raise self._closed_exc()
        if self._waiter is not None:
            raise InvalidState("recv() is already waiting on this connection")
        w = self._waiter = self._loop.create_future()
        try:
            data = await w
        finally:
            if self._waiter is w:
                self._waiter = None
        if data is _CLOSED:
            raise self._closed_exc()
        return data

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Yield messages until the connection closes (any close code ends the iteration)."""
        try:
            while True:
                yield await self.recv()
        except ConnectionClosed:
            return

    def set_message_handler(
        self,
        fn: Callable[[str | bytes], None] | None,
        *,
        on_close: Callable[[ConnectionClosed], None] | None = None,
    ) -> None:
        """Switch to (``fn``) or back from (``None``) the callback receive mode.

        While a handler is set, every message (``str`` text / ``bytes`` binary) is passed to
        ``fn(data)`` synchronously from the transport's ``data_received``, in order; messages
        queued before (not yet returned by :meth:`recv`) are passed first, from inside this
        call. :meth:`recv` then raises :class:`InvalidState`. ``fn`` may call
        ``set_message_handler(None)`` to stop: later messages queue for :meth:`recv` again.

        ``on_close(exc)`` is called once when the peer's side is finished (close frame,
        protocol failure, keepalive timeout, TCP loss), after every message before it was
        passed to ``fn``; ``exc`` is the :class:`ConnectionClosed` that :meth:`recv` would
        raise (its ``code`` / ``reason``). If that already happened it is called soon (next
        event-loop iteration), never from inside this call. Setting ``None`` clears both.

        An exception from ``fn`` (or ``on_close``) is the consumer's bug: it is logged at
        ERROR with its traceback, the connection is closed with 1011 and no further message
        is delivered; ``on_close`` still runs. Raises :class:`InvalidState` if a ``recv()``
        is waiting (our misuse: two consumers).
        """
        if fn is None:
            self._handler = None
            self._on_close = None
            return
        if self._waiter is not None:
            raise InvalidState("set_message_handler() while recv() is waiting")
        already_closed = self._rclosed
        self._handler = fn
        self._on_close = on_close
        if already_closed and on_close is not None:
            self._loop.call_soon(self._notify_close)
        q = self._queue
        while q and self._handler is fn:
            data = q.popleft()
            self._qbytes -= len(data)
            if not self._call_handler(fn, data):
                break
        if self._read_paused and not self._rclosed and self._handler is fn:
            # nothing queues in handler mode: reading may go on
            self._read_paused = False
            if not self._lost:
                self._transport.resume_reading()

    def _call_handler(self, fn: Callable[[str | bytes], None], data: str | bytes) -> bool:
        """Pass one message to the handler; on its exception log it, close 1011, False."""
        try:
            fn(data)
        except Exception:
            log.exception("ws message handler failed, closing 1011 peer=%s",
                          self.remote_address)
            self._fail(1011, "message handler failed")
            return False
        return True

    def _notify_close(self) -> None:
        """Call the handler mode's ``on_close`` once (from the end of receiving)."""
        cb = self._on_close
        if cb is None:
            return
        self._on_close = None
        try:
            cb(self._closed_exc())
        except Exception:
            log.exception("ws on_close callback failed peer=%s", self.remote_address)

    def _maybe_resume_reading(self, q: deque[str | bytes]) -> None:
        cfg = self._cfg
        if len(q) <= cfg.queue_low_count and self._qbytes <= cfg.queue_low_bytes:
            self._read_paused = False
            if not self._lost:
                self._transport.resume_reading()

    def _deliver(self, data: str | bytes) -> None:
        h = self._handler
        if h is not None:
            if not self._rclosed:  # else the handler failed (1011): deliver nothing more
                self._call_handler(h, data)
            return
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(data)
                return
        q = self._queue
        if q is None:
            q = self._queue = deque()
        cfg = self._cfg
        if not self._open and (len(q) >= cfg.max_queue or self._qbytes >= cfg.queue_high_bytes):
            # Closing and the application stopped reading: keep reading to see the peer's
            # close frame, and drop what the application will never read (bounded memory).
            return
        q.append(data)
        self._qbytes += len(data)
        if not self._read_paused and (
            len(q) >= cfg.max_queue or self._qbytes >= cfg.queue_high_bytes
        ) and self._open:
            self._read_paused = True
            self._transport.pause_reading()

    def _finish_receiving(self) -> None:
        """The peer's side ended: wake a waiting recv() with the closed sentinel."""
        if self._rclosed:
            return
        self._rclosed = True
        if self._on_close is not None:
            self._notify_close()
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(_CLOSED)

    def _closed_exc(self) -> ConnectionClosed:
        code = self._close_code
        return ConnectionClosed(1006 if code is None else code, self._close_reason)

    # ------------------------------------------------------------------------ sending

    def send_nowait(self, data: str | bytes | bytearray | memoryview) -> None:
        """Frame ``data`` (text if ``str``, else binary) and queue it for the transport.

        Never waits, even above ``write_limit``: check :attr:`paused` if that matters.
        Raises :class:`ConnectionClosed` once a close frame was sent or received.

        Write coalescing: frames sent in the same event-loop iteration are handed to the
        transport together by a callback scheduled with ``call_soon`` (one ``send(2)``
        instead of one per message), or at once when ``CORK_BYTES`` are pending. Nothing
        is delayed past the current iteration, and order with :meth:`write_prepared`,
        :func:`broadcast`, pongs and the close frame is preserved.
        """
        if not self._open:
            raise self._closed_exc()
        conn = self._conn
        assert conn is not None
        if isinstance(data, str):
            conn.send_text(data)
        elif isinstance(data, bytes | bytearray | memoryview):
            conn.send_binary(data)
        else:
            raise TypeError(f"send() takes str or bytes-like, not {type(data).__name__}")
        pending = self._unflushed + len(data) + 14
        if pending >= CORK_BYTES:
            self._unflushed = 0
            self._transport.write(conn.data_to_send())
            return
        self._unflushed = pending
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Hand the frames queued by :meth:`send_nowait` to the transport."""
        self._flush_scheduled = False
        if self._unflushed:
            self._unflushed = 0
            conn = self._conn
            if conn is not None and not self._lost:
                out = conn.data_to_send()
                if out:
                    self._transport.write(out)

    async def send(self, data: str | bytes | bytearray | memoryview) -> None:
        """Send one message, then wait while the write buffer is above ``write_limit``.

        Raises :class:`ConnectionClosed` if the connection is (or becomes, while waiting)
        closed.
        """
        self.send_nowait(data)
        if self._write_paused:
            await self._drain()

    def write_prepared(self, frame: bytes) -> bool:
        """Write one pre-framed message (from ``frames.prepare_message``); never waits.

        Returns False (and writes nothing) if the connection is no longer open. Server side
        only: client frames must be masked individually (RFC 6455 section 5.3).
        """
        if self._open:
            if self._unflushed:
                self._flush()
            self._transport.write(frame)
            return True
        return False

    async def _drain(self) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        waiters = self._drain_waiters
        if waiters is None:
            waiters = self._drain_waiters = []
        waiters.append(fut)
        try:
            await fut
        finally:
            if fut in waiters:
                waiters.remove(fut)
        if self._lost:
            raise self._closed_exc()

    def _wake_drain_waiters(self) -> None:
        waiters = self._drain_waiters
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
            waiters.clear()

    # ------------------------------------------------------------------------ closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (if nobody did yet) and wait until TCP is closed.

        Waits at most ``close_timeout`` seconds for the peer's close frame, then aborts.
        """
        self._start_close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        if self._lost:
            return
        fut = self._closed_fut
        if fut is None:
            fut = self._closed_fut = self._loop.create_future()
        await asyncio.shield(fut)

    def _start_close(self, code: int, reason: str) -> None:
        """Send our close frame (if still open) and arm the close deadline. Never waits."""
        if self._lost or self._transport is None:
            return
        conn = self._conn
        if conn is None:  # still in the opening handshake: nothing to close politely
            self._transport.abort()
            return
        if self._open:
            self._open = False
            conn.send_close(code, reason)
            out = conn.data_to_send()
            if out:
                self._transport.write(out)
            if self._read_paused:
                # We need to see the peer's close frame; _deliver() drops surplus messages.
                self._read_paused = False
                self._transport.resume_reading()
            self._arm_close_timer()
        if conn.should_close_transport():
            self._close_transport()

    def _arm_close_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self._cfg.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._timer = None
        if self._lost:
            return
        conn = self._conn
        if self.is_client and conn is not None and conn.state is State.CLOSED:
            # Close handshake done but the server did not close TCP: we do (RFC 6455 7.1.1),
            # gracefully so our close echo still goes out; abort if even that stalls.
            self._transport.close()
            self._timer = self._loop.call_later(self._cfg.close_timeout, self._transport.abort)
            return
        log.debug("ws close timeout, aborting peer=%s", self.remote_address)
        self._transport.abort()

    def _fail(self, code: int, reason: str) -> None:
        """We give up on the peer (e.g. keepalive timeout): send close ``code``, close TCP."""
        if self._lost:
            return
        conn = self._conn
        if self._open and conn is not None:
            self._open = False
            conn.send_close(code, reason)
            out = conn.data_to_send()
            if out:
                self._transport.write(out)
        if self._close_code is None:
            self._close_code, self._close_reason = code, reason
        self._finish_receiving()
        self._arm_close_timer()  # close() flushes first; abort if the flush never completes
        self._transport.close()

    def _close_transport(self) -> None:
        """Close TCP now: the core says so (server after the close handshake; either side
        after a protocol failure or EOF). RFC 6455 section 7.1.1."""
        if not self._lost:
            self._transport.close()

    # --------------------------------------------------------- asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        t: asyncio.Transport = transport  # type: ignore[assignment]
        self._transport = t
        limit = self._cfg.write_limit
        t.set_write_buffer_limits(high=limit, low=limit // 4)

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            self._handshake_data(data)
            return
        events = conn.receive_data(data)
        if events:
            self._handle_events(events)
        out = conn.data_to_send()  # pongs, close echo / failure close, and corked sends
        if out:
            self._unflushed = 0
            if not self._lost:
                self._transport.write(out)
        if self._cfg.frame_timeout is not None and self._open:
            # start or stop the frame deadline (inline: this runs per received chunk)
            if conn.receiving_partial:
                if not self._partial_at:
                    self._partial_at = self._loop.time()
                    self._rearm_keepalive()
            elif self._partial_at:
                self._partial_at = 0.0  # _ka_at may now be early: the sweep re-arms it
        if conn.should_close_transport():
            self._close_transport()

    def _handshake_data(self, data: bytes) -> None:  # overridden by server / client
        raise InvalidState("data before the opening handshake was set up")

    def _handle_events(self, events: Iterable[Any]) -> None:
        for ev in events:
            t = type(ev)
            if t is TextMessage or t is BinaryMessage:
                self._deliver(ev.data)
            elif t is Ping:
                continue  # the core already queued the pong
            elif t is Pong:
                self._on_pong(ev.payload)
            elif t is CloseReceived or t is ConnectionLost:
                self._open = False
                if self._close_code is None or t is CloseReceived:
                    self._close_code, self._close_reason = ev.code, ev.reason
                self._finish_receiving()
                if self.is_client and t is CloseReceived:
                    # Wait for the server to close TCP first, at most close_timeout.
                    self._arm_close_timer()
            elif t is ProtocolFailure:
                self._open = False
                if self._close_code is None:
                    self._close_code, self._close_reason = ev.code, ev.reason
                log.info(
                    "ws peer protocol violation, closing code=%d reason=%r peer=%s",
                    ev.code, ev.reason, self.remote_address,
                )
                self._finish_receiving()
                self._arm_close_timer()  # safety net: abort if flushing the close never ends

    def eof_received(self) -> bool | None:
        conn = self._conn
        if conn is not None:
            events = conn.receive_eof()
            if events:
                self._handle_events(events)
        return None  # let the transport close itself

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain_waiters()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._open = False
        ka = self._cfg.keepalive
        if ka is not None:
            ka.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._close_code is None:
            self._close_code = 1006  # RFC 6455 section 7.1.5: no close frame received
        self._finish_receiving()
        self._wake_drain_waiters()
        pings = self._pings
        if pings:
            for pfut, _ in pings.values():
                if not pfut.done():
                    pfut.set_exception(self._closed_exc())
            pings.clear()
        fut = self._closed_fut
        if fut is not None and not fut.done():
            fut.set_result(None)


def broadcast(websockets: Iterable[WebSocket], message: bytes | str) -> int:
    """Frame ``message`` once and write the same bytes to every open WebSocket in the iterable.

    Returns how many connections got it. Never waits and never raises for a closed
    connection (it is skipped). Server-side sockets only (client frames must be masked).
    The caller bounds slow clients by watching :attr:`WebSocket.paused` /
    :attr:`WebSocket.buffered_bytes`.
    """
    frame = prepare_message(message)
    n = 0
    for ws in websockets:
        if ws._open:
            if ws._unflushed:  # keep order with messages queued by send() this iteration
                ws._flush()
            ws._transport.write(frame)
            n += 1
    return n
