"""The ``--workers`` supervisor's public port: accept, read up to the first game message, route.

For every accepted TCP connection a :class:`Pending` reads (non-blocking ``recv`` on the raw
socket, no transport, so the socket can be handed away intact):

1. the HTTP request head (bounded by ``max_request_size`` = 16 KiB and ``handshake_timeout``
   = 10 s, like :func:`protocol.aio.serve`). A request that is not a WebSocket upgrade of the
   game path goes to ``on_http`` (``/healthz``, ``/metrics``, ``/rooms``, static files) and is
   answered here;
2. for an upgrade: validates it exactly like a worker would (:func:`protocol.handshake.accept`
   with the same settings, no subprotocol, no compression), writes the 101 response, then
   parses the following frames with a sans-I/O :class:`protocol.connection.Connection` kept
   only to find the first game message. Every byte read is also kept verbatim;
3. at the first binary message it calls ``on_route(pending, message)`` with the decoded
   HELLO / RESUME (``None`` for anything else: the worker will answer it as a single process
   would). PINGs before HELLO are left for the worker to answer. The router then either
   hands the socket and the verbatim bytes to a worker (:meth:`Pending.detach`) or refuses
   (:meth:`Pending.refuse`: ERROR + close code, as a worker would).

Bounds: at most ``max_pending`` connections in these steps (above it new ones are closed at
once and counted); at most :data:`MAX_INITIAL` bytes read before routing (past it the
connection is routed as is and the worker's limits apply); ``hello_timeout`` after the 101
without a game message: close 4012 as the session would. A peer's close or protocol
violation before HELLO is answered here (close echo / failure close) and the socket closed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from protocol import messages as M
from protocol.codes import CloseCode, MessageError
from protocol.connection import Connection, Side
from protocol.errors import HandshakeError
from protocol.events import BinaryMessage, CloseReceived, Ping, Pong, ProtocolFailure
from protocol.handshake import (
    Request,
    accept,
    error_response,
    http_response,
    is_upgrade,
    parse_request,
)

__all__ = ["MAX_INITIAL", "Acceptor", "Pending", "close_politely"]

log = logging.getLogger(__name__)

#: Most bytes read from a connection before it is routed (head + pre-HELLO frames).
MAX_INITIAL = 64 * 1024
#: Seconds a refused / timed-out connection may take to answer our close frame.
CLOSE_LINGER = 2.0
_READ = 65536

OnHttp = Callable[[Request], Awaitable[bytes]]
OnRoute = Callable[["Pending", Any], None]


class _Reply(asyncio.Protocol):
    """Writes one HTTP response on an adopted socket and closes (flushing first)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: asyncio.Transport = transport  # type: ignore[assignment]
        t.write(self.data)
        t.close()


class Pending:
    """One connection between accept and routing (see the module docstring)."""

    def __init__(self, acceptor: Acceptor, sock: socket.socket, peer: Any) -> None:
        self.acceptor = acceptor
        self.sock = sock
        self.peer = peer
        self.raw = bytearray()           # every byte read, verbatim (handed to the worker)
        self._head: bytearray | None = bytearray()  # parse buffer until the head is complete
        self.request: Request | None = None
        self.conn: Connection | None = None  # after the 101: finds the first message
        self.response = b""                  # the 101 we wrote (the worker checks it)
        self._closing = False
        self._done = False
        loop = acceptor.loop
        self._timer: asyncio.TimerHandle | None = loop.call_later(
            acceptor.handshake_timeout, self._expired)
        loop.add_reader(sock.fileno(), self._readable)

    # ------------------------------------------------------------------------- reading

    def _readable(self) -> None:
        # Never more than MAX_INITIAL + 1 bytes in all: the handoff message stays bounded.
        want = _READ if self._closing else max(1, min(_READ, MAX_INITIAL + 1 - len(self.raw)))
        try:
            data = self.sock.recv(want)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._finish()
            return
        if not data:
            self._eof()
            return
        if self._closing:
            self._closing_data(data)
            return
        self.raw += data
        if self.conn is None:
            self._head_data(data)
        else:
            self._frames(data)

    def _head_data(self, data: bytes) -> None:
        buf = self._head
        assert buf is not None
        buf += data
        try:
            req = parse_request(buf, max_size=self.acceptor.max_request_size)
        except HandshakeError as exc:
            self._http(error_response(exc))
            return
        if req is None:
            return
        self.request = req
        self._head = None
        acc = self.acceptor
        path = req.path
        if not (path == acc.ws_path and req.method == "GET" and is_upgrade(req)):
            self._stop_reading()
            task = acc.loop.create_task(self._answer_http(req))
            acc.tasks.add(task)
            task.add_done_callback(acc.tasks.discard)
            return
        if not acc.accepting():
            self._http(http_response(503, b"draining: try another server\n",
                                     headers=[("Retry-After", "5")]))
            return
        try:
            # The same settings as the workers' GameServer.start() (change them together):
            # the worker re-runs accept() on these bytes and must negotiate the same.
            out, negotiated = accept(req, subprotocols=acc.subprotocols, origins=acc.origins)
        except HandshakeError as exc:
            log.info("ws handshake refused status=%d reason=%r peer=%s",
                     exc.status, exc.message, self.peer)
            self._http(error_response(exc))
            return
        try:
            sent = self.sock.send(out)
        except OSError:
            sent = -1
        if sent != len(out):  # a fresh socket takes ~200 bytes at once; else it is broken
            self._finish()
            return
        self.response = out
        self.conn = Connection(Side.SERVER, max_message_size=acc.max_message_size,
                               deflate=negotiated.deflate)
        self._rearm(acc.hello_timeout)
        rest = bytes(buf)
        if rest:
            self._frames(rest)

    def _frames(self, data: bytes) -> None:
        conn = self.conn
        assert conn is not None
        for ev in conn.receive_data(data):
            t = type(ev)
            if t is Ping or t is Pong:
                continue  # the worker replays the bytes and answers the ping
            if isinstance(ev, BinaryMessage):
                try:
                    msg = M.decode_client(ev.data)
                except MessageError:
                    msg = None
                if isinstance(msg, M.Ping):
                    continue
                self._route(msg if isinstance(msg, M.Hello | M.Resume) else None)
                return
            if isinstance(ev, CloseReceived | ProtocolFailure):
                # The peer closed or broke RFC 6455 before HELLO: the core queued the close
                # echo / failure close; send it and end here (no worker needed).
                self._send_out()
                self._linger()
                return
            self._route(None)  # a text message: the worker answers ERROR 1
            return
        conn.data_to_send()  # pongs are the worker's job: drop the core's copies
        if len(self.raw) > MAX_INITIAL:
            self._route(None)

    def _route(self, msg: Any) -> None:
        self._stop_reading()
        self.acceptor.on_route(self, msg)

    # ------------------------------------------------------------------------- outcomes

    @property
    def settled(self) -> bool:
        """Handed away, refused, timed out or aborted: nothing more to decide about it."""
        return self._done or self._closing

    def detach(self) -> tuple[socket.socket, bytes]:
        """Give the socket and the bytes read from it to the caller (the handoff)."""
        self._done = True
        self._stop_reading()
        self._cancel_timer()
        self.acceptor.pending.discard(self)
        return self.sock, bytes(self.raw)

    def refuse(self, code: int, message: str) -> None:
        """ERROR ``code`` + close ``code`` (as a worker would), then close the socket."""
        conn = self.conn
        if conn is None or self._done:
            self._finish()
            return
        conn.data_to_send()
        if code >= 4000:
            conn.send_binary(M.encode(M.Error(int(code), message[:200])))
        conn.send_close(int(code), message[:100])
        self._send_out()
        self._linger()

    def _expired(self) -> None:
        self._timer = None
        if self._closing or self.conn is None:
            self._finish()  # head too slow, or our close was never answered
            return
        log.debug("no HELLO in time peer=%s", self.peer)
        self.refuse(CloseCode.HELLO_TIMEOUT, "no HELLO in time")

    def _eof(self) -> None:
        conn = self.conn
        if conn is not None and not self._closing:
            conn.receive_eof()
        self._finish()

    def _closing_data(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            return
        conn.receive_data(data)
        conn.data_to_send()
        if conn.should_close_transport():
            self._finish()

    def _send_out(self) -> None:
        conn = self.conn
        if conn is None:
            return
        out = conn.data_to_send()
        if out:
            try:
                self.sock.send(out)
            except OSError:
                pass

    def _linger(self) -> None:
        """Wait (bounded) for the peer's close frame / EOF, reading and dropping its bytes."""
        if self._done:
            return
        self._closing = True
        if self.conn is not None and self.conn.should_close_transport():
            self._finish()
            return
        self._rearm(CLOSE_LINGER)
        try:
            self.acceptor.loop.add_reader(self.sock.fileno(), self._readable)
        except (OSError, ValueError):
            self._finish()

    def _http(self, data: bytes) -> None:
        """Send a (small) HTTP error response and close."""
        try:
            self.sock.send(data)
        except OSError:
            pass
        self._finish()

    async def _answer_http(self, req: Request) -> None:
        acc = self.acceptor
        try:
            data = await acc.on_http(req)
        except Exception:  # our bug: a 500, never a hang
            log.exception("http route raised path=%s", req.path)
            data = http_response(500, b"internal server error\n")
        if self._done:
            return
        self._done = True
        self._cancel_timer()
        acc.pending.discard(self)
        try:
            await acc.loop.connect_accepted_socket(lambda: _Reply(data), self.sock)
        except OSError:
            self.sock.close()

    # ------------------------------------------------------------------------- helpers

    def _stop_reading(self) -> None:
        try:
            self.acceptor.loop.remove_reader(self.sock.fileno())
        except (OSError, ValueError):
            pass

    def _rearm(self, delay: float) -> None:
        self._cancel_timer()
        self._timer = self.acceptor.loop.call_later(delay, self._expired)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._stop_reading()
        self._cancel_timer()
        self.acceptor.pending.discard(self)
        self.sock.close()

    def abort(self) -> None:
        """Close at once (the supervisor is stopping)."""
        if self.conn is not None and not self._closing:
            self.conn.send_close(CloseCode.GOING_AWAY, "server shutting down")
            self._send_out()
        self._finish()


class Acceptor:
    """The listening socket and the connections not yet routed (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, *,
                 on_http: OnHttp, on_route: OnRoute, ws_path: str = "/ws",
                 origins: Any = None, subprotocols: tuple[str, ...] = (),
                 max_message_size: int = 4 * 4096,
                 hello_timeout: float = 10.0, handshake_timeout: float = 10.0,
                 max_request_size: int = 16384, max_pending: int = 4096,
                 accepting: Callable[[], bool] = lambda: True) -> None:
        self.loop = loop
        self.sock = sock
        self.on_http = on_http
        self.on_route = on_route
        self.ws_path = ws_path
        self.origins = origins
        self.subprotocols = subprotocols
        self.max_message_size = max_message_size
        self.hello_timeout = hello_timeout
        self.handshake_timeout = handshake_timeout
        self.max_request_size = max_request_size
        self.max_pending = max_pending
        self.accepting = accepting  # False (draining): game upgrades get 503 + Retry-After
        self.pending: set[Pending] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.accepted = 0
        self.refused = 0   # closed at once: too many connections in the handshake
        self._accept_errors = 0
        self._listening = False

    def start(self) -> None:
        self.sock.setblocking(False)
        self.loop.add_reader(self.sock.fileno(), self._accept)
        self._listening = True

    def _accept(self) -> None:
        for _ in range(64):  # bounded per wakeup: other callbacks get their turn
            try:
                conn, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE / ENFILE: one line per burst
                self._accept_errors += 1
                if self._accept_errors & (self._accept_errors - 1) == 0:  # 1, 2, 4, 8...
                    log.warning("accept failed errors=%d: %s", self._accept_errors, exc)
                return
            if len(self.pending) >= self.max_pending:
                self.refused += 1
                conn.close()
                continue
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.accepted += 1
            self.pending.add(Pending(self, conn, peer))

    def close(self) -> None:
        """Stop accepting and drop the connections not yet routed (1001 if upgraded)."""
        if self._listening:
            self._listening = False
            try:
                self.loop.remove_reader(self.sock.fileno())
            except (OSError, ValueError):
                pass
        self.sock.close()
        for p in list(self.pending):
            p.abort()
        for t in list(self.tasks):
            t.cancel()


def close_politely(loop: asyncio.AbstractEventLoop, s: socket.socket, frame: bytes,
                   lingering: set[socket.socket]) -> None:
    """Write ``frame`` (a close frame, or nothing) to ``s``, send FIN, then close it once the
    peer answers (EOF) or after 2 s, so unread bytes do not turn our FIN into a RST. ``s``
    sits in ``lingering`` meanwhile (the owner closes what is left when it stops)."""
    try:
        if frame:
            s.send(frame)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        s.close()
        return
    lingering.add(s)

    def done() -> None:
        if s in lingering:
            lingering.discard(s)
            try:
                loop.remove_reader(s.fileno())
            except (ValueError, OSError):
                pass
            s.close()

    def readable() -> None:
        try:
            for _ in range(16):  # bounded per wakeup; the 2 s timer bounds the rest
                if not s.recv(65536):
                    break
            else:
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        done()  # EOF or error: the peer has closed

    try:
        s.setblocking(False)
        loop.add_reader(s.fileno(), readable)
    except (OSError, ValueError):
        done()
        return
    loop.call_later(2.0, done)
