"""WebSocket server on :class:`asyncio.Protocol` (uvloop or asyncio), ws:// and wss://.

:func:`serve` listens and returns a :class:`Server`. Each accepted TCP connection gets a
:class:`ServerProtocol` (a :class:`~protocol.aio.websocket.WebSocket`) that:

1. reads the HTTP request head under a deadline (``handshake_timeout``, default 10 s; a peer
   that trickles its head forever is dropped) and a size bound (``parse_request``'s
   ``max_size``: 431 above it);
2. calls ``process_request(request)`` (sync or async) for every request: a returned
   :class:`~protocol.handshake.Response` is sent with ``Connection: close`` and the TCP
   connection closed (health checks, metrics, static files on the same port); ``None``
   continues;
3. answers a non-upgrade request with 404, a bad upgrade with the core's status (400, 403,
   426...), or accepts it (101) and runs ``handler(ws)`` in a task. When the handler returns
   the connection is closed with 1000; if it raises (our bug) the traceback is logged and the
   connection closed with 1011.

TLS: pass an :class:`ssl.SSLContext`; the TLS handshake is bounded by ``handshake_timeout``
too (``ssl_handshake_timeout``).

Adopting an accepted socket (:meth:`Server.adopt`, used by ``gameserver --workers N``): a
connection accepted and partly read by another process can be handed to this server with the
bytes already read from it (the HTTP request head, and any frames behind it). They are fed to
the connection before anything else is read from the socket, so the connection behaves
exactly as if this server had accepted it. With ``upgraded=True`` the 101 response was already
written by the other process: the request is validated and negotiated the same way (the
caller must use the same settings, so the negotiated parameters agree) but the 101 is not
written again. ``serve(..., listen=False)`` builds a server that only adopts.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from ..connection import Connection, Side
from ..errors import ConnectionClosed, HandshakeError
from ..handshake import (
    Request,
    Response,
    accept,
    error_response,
    http_response,
    is_upgrade,
    parse_request,
)
from .config import Config
from .websocket import WebSocket

__all__ = ["ProcessRequest", "Server", "ServerProtocol", "serve"]

log = logging.getLogger("protocol.aio")
_MISMATCH_LOGGED = False  # Server.adopt: one log line per process, not per connection

Handler = Callable[[WebSocket], Awaitable[None]]
# (request) -> ..., or (request, ws) -> ... with serve(pass_connection=True).
ProcessRequest = Callable[..., "Response | Awaitable[Response | None] | None"]

def _response_bytes(resp: Response) -> bytes:
    """Serialize a ``process_request`` answer; we never keep the connection alive."""
    headers = [
        (k, v) for k, v in resp.headers if k.lower() not in ("connection", "content-length")
    ]
    headers.append(("Connection", "close"))
    return http_response(resp.status, resp.body, headers=headers)


class _ServerConfig(Config):
    __slots__ = (
        "deflate",
        "handler",
        "handshake_timeout",
        "max_request_size",
        "origins",
        "pass_connection",
        "process_request",
        "server",
        "subprotocols",
    )

    server: Server
    handler: Handler
    handshake_timeout: float
    max_request_size: int
    origins: Collection[str] | None
    process_request: ProcessRequest | None
    pass_connection: bool
    subprotocols: tuple[str, ...]
    deflate: bool | None


class ServerProtocol(WebSocket):
    """Server side of one connection: the opening handshake, then the :class:`WebSocket`."""

    __slots__ = ("_hs_buf", "_initial", "_on_lost", "_preupgraded", "_task")

    def __init__(self, cfg: _ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(cfg, loop)
        self._hs_buf: bytearray | None = None
        self._task: asyncio.Task[None] | None = None
        # Set by Server.adopt(): bytes already read by another process, whether it wrote
        # the 101 already, and who to tell when the connection is gone.
        self._initial = b""
        self._preupgraded: bool | bytes = False
        self._on_lost: Callable[[], None] | None = None

    # -------------------------------------------------------------- opening handshake

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        cfg: _ServerConfig = self._cfg  # type: ignore[assignment]
        cfg.server._handshaking[self] = None
        self._hs_buf = bytearray()
        self._timer = self._loop.call_later(cfg.handshake_timeout, self._handshake_expired)
        if cfg.server.max_open is not None:
            cfg.server._admit(self)
        initial, self._initial = self._initial, b""
        if initial:  # adopted: replay what the accepting process read, before any new byte
            self.data_received(initial)

    def _handshake_expired(self) -> None:
        self._timer = None
        if self._conn is None and not self._lost:
            log.info("ws handshake timeout, dropping peer=%s", self.remote_address)
            self._transport.abort()

    def _handshake_data(self, data: bytes) -> None:
        buf = self._hs_buf
        if buf is None:  # answered with a plain HTTP response: closing
            return
        buf += data
        if self.request is not None:
            # Head parsed, reading paused while process_request runs; a transport may still
            # hand over bytes it had already read: keep them for after the upgrade.
            return
        cfg: _ServerConfig = self._cfg  # type: ignore[assignment]
        try:
            req = parse_request(buf, max_size=cfg.max_request_size)
        except HandshakeError as exc:
            self._refuse(exc)
            return
        if req is None:
            return
        self.request = req
        self._transport.pause_reading()
        pr = cfg.process_request
        if pr is None:
            self._upgrade(req)
            return
        try:
            # pass_connection: the hook also gets this (not yet upgraded) connection, e.g.
            # for its remote_address.
            result = pr(req, self) if cfg.pass_connection else pr(req)
        except Exception:
            log.exception("process_request raised path=%s", req.path)
            self._reply(http_response(500, b"internal server error\n"))
            return
        if inspect.isawaitable(result):
            self._task = self._loop.create_task(self._process_async(req, result))
        else:
            self._after_process(req, result)

    async def _process_async(self, req: Request, result: Awaitable[Response | None]) -> None:
        try:
            resp = await result
        except Exception:
            log.exception("process_request raised path=%s", req.path)
            self._reply(http_response(500, b"internal server error\n"))
            return
        self._task = None
        self._after_process(req, resp)

    def _after_process(self, req: Request, resp: Response | None) -> None:
        if self._lost:
            return
        if resp is not None:
            self._reply(_response_bytes(resp))
        else:
            self._upgrade(req)

    def _upgrade(self, req: Request) -> None:
        if not is_upgrade(req):
            self._reply(http_response(404, b"not found\n"))
            return
        cfg: _ServerConfig = self._cfg  # type: ignore[assignment]
        try:
            out, negotiated = accept(
                req, subprotocols=cfg.subprotocols, origins=cfg.origins, deflate=cfg.deflate
            )
        except HandshakeError as exc:
            self._refuse(exc)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._conn = Connection(
            Side.SERVER, max_message_size=cfg.max_message_size, deflate=negotiated.deflate
        )
        self.subprotocol = negotiated.subprotocol
        self._open = True
        pre = self._preupgraded
        if not pre:
            self._transport.write(out)
        elif isinstance(pre, bytes) and pre != out:
            # The accepting process negotiated differently (its settings differ from ours:
            # our deployment bug); the peer would be spoken to in terms it never agreed to.
            global _MISMATCH_LOGGED
            if not _MISMATCH_LOGGED:
                _MISMATCH_LOGGED = True
                log.error("adopted connection: the accepting process sent a different 101 "
                          "(handshake settings differ), dropping such connections")
            self._transport.abort()
            return
        server = cfg.server
        server._handshaking.pop(self, None)
        server.connections.add(self)
        server._unidentified[self] = None
        self._start_keepalive()
        task = self._task = self._loop.create_task(self._run_handler(cfg.handler))
        server._tasks.add(task)  # _run_handler removes it when done
        leftover = self._hs_buf
        self._hs_buf = None
        self._transport.resume_reading()
        if leftover:  # frames pipelined right behind the request head
            self.data_received(bytes(leftover))

    def _refuse(self, exc: HandshakeError) -> None:
        log.info(
            "ws handshake refused status=%d reason=%r peer=%s",
            exc.status, exc.message, self.remote_address,
        )
        self._reply(error_response(exc))

    def _reply(self, data: bytes) -> None:
        """Send a plain HTTP response and close the connection (no keep-alive).

        The answer to a ``HEAD`` request never carries a body (RFC 9110 section 9.3.2),
        whatever produced it (``process_request``, a refused upgrade, 404): the head goes
        out unchanged, ``Content-Length`` included (the length a GET would get)."""
        self._hs_buf = None
        req = self.request
        if req is not None and req.method == "HEAD":
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                data = data[: end + 4]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lost:
            self._transport.write(data)
            self._transport.close()

    # --------------------------------------------------------------------- handler

    async def _run_handler(self, handler: Handler) -> None:
        """Run the application's handler; close 1000 when it returns, 1011 if it raises."""
        try:
            await handler(self)
            code, reason = 1000, ""
        except ConnectionClosed:
            code, reason = 1000, ""
        except asyncio.CancelledError:
            self._start_close(1001, "going away")
            self._handler_done()
            raise
        except Exception:
            log.exception(
                "ws handler raised, closing 1011 peer=%s path=%s",
                self.remote_address, self.request.path if self.request else "?",
            )
            code, reason = 1011, "internal error"
        try:
            await self.close(code, reason)
        finally:
            self._handler_done()

    def _handler_done(self) -> None:
        if self._task is not None:
            self._cfg.server._tasks.discard(self._task)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._hs_buf = None
        server = self._cfg.server  # type: ignore[attr-defined]
        server._handshaking.pop(self, None)
        server.connections.discard(self)
        server._unidentified.pop(self, None)
        if self._conn is None and self._task is not None:
            self._task.cancel()  # process_request still running for a gone peer
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost()


class Server:
    """A listening WebSocket server (returned by :func:`serve`; ``async with`` closes it)."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._port = 0
        #: Connections past the opening handshake (open or closing).
        self.connections: set[WebSocket] = set()
        # insertion-ordered (oldest first): the shedding order
        self._handshaking: dict[ServerProtocol, None] = {}
        self._unidentified: dict[ServerProtocol, None] = {}  # upgraded, not identified()
        self._tasks: set[asyncio.Task[None]] = set()  # running handlers
        self._cfg: _ServerConfig | None = None
        self._closing = False
        #: Most sockets held at once (handshaking + upgraded); None: no bound. See _admit.
        self.max_open: int | None = None
        #: Connections shed to stay within ``max_open`` (total).
        self.shed_total = 0
        #: Called with the number of connections each shedding closed (e.g. a metric).
        self.on_shed: Callable[[int], None] | None = None
        self.shed_log_interval = 10.0
        self._shed_logged_at = -float("inf")
        self._shed_since_log = 0

    def identified(self, ws: WebSocket) -> None:
        """The application knows who ``ws`` is (e.g. a player joined): never shed it."""
        self._unidentified.pop(ws, None)  # type: ignore[call-overload]

    def _admit(self, new: ServerProtocol) -> None:
        """A connection arrived: keep at most ``max_open`` sockets by shedding the oldest
        ones nobody identified yet: first those still in the opening handshake (or a plain
        HTTP request), then upgraded ones the application did not call :meth:`identified`
        for; if every other socket is identified, the newcomer itself is dropped. Shed
        sockets are aborted (their descriptor is freed at once). One WARNING line per
        ``shed_log_interval`` seconds, never one per connection."""
        assert self.max_open is not None
        excess = len(self._handshaking) + len(self.connections) - self.max_open
        shed = 0
        while excess > 0:
            victim: ServerProtocol | None = None
            for p in self._handshaking:
                if p is not new:
                    victim = p
                    break
            if victim is None:
                victim = next(iter(self._unidentified), None)
            if victim is None:
                victim = new
            self._handshaking.pop(victim, None)
            self._unidentified.pop(victim, None)
            self.connections.discard(victim)
            if not victim._lost:
                victim._transport.abort()
            shed += 1
            excess -= 1
            if victim is new:
                break
        if shed:
            self.shed_total += shed
            if self.on_shed is not None:
                self.on_shed(shed)
            self._shed_since_log += shed
            now = time.monotonic()
            if now - self._shed_logged_at >= self.shed_log_interval:
                log.warning(
                    "connection limit reached (max_open=%d, file descriptors): shed %d "
                    "connections without a player in the last %.0f s (total %d)",
                    self.max_open, self._shed_since_log, self.shed_log_interval,
                    self.shed_total)
                self._shed_logged_at = now
                self._shed_since_log = 0

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets."""
        return tuple(self._server.sockets) if self._server is not None else ()

    @property
    def port(self) -> int:
        """The TCP port of the first listening socket (useful with ``port=0``)."""
        return self._port

    def close(self) -> None:
        """Stop accepting new connections (existing ones continue; adopt() refuses)."""
        self._closing = True
        if self._server is not None:
            self._server.close()

    async def adopt(self, sock: socket.socket, initial: bytes = b"", *,
                    upgraded: bool | bytes = False,
                    on_lost: Callable[[], None] | None = None) -> ServerProtocol | None:
        """Serve an already accepted TCP socket as if this server had accepted it.

        ``initial``: the bytes already read from it (request head first); ``upgraded``: the
        101 response was already written (True, or the exact bytes written: then they must
        equal what this server would answer, else the connection is dropped and an error
        logged once: the two processes' settings differ); ``on_lost()`` runs once when it is
        gone. Returns the connection, or None (the socket closed) when the server is closing.
        Plain TCP only.
        """
        cfg = self._cfg
        if cfg is None or self._closing:
            sock.close()
            return None
        loop = asyncio.get_running_loop()

        def factory() -> ServerProtocol:
            proto = ServerProtocol(cfg, loop)
            proto._initial = initial
            proto._preupgraded = upgraded
            proto._on_lost = on_lost
            return proto

        sock.setblocking(False)
        try:
            _, proto = await loop.connect_accepted_socket(factory, sock)
        except OSError as exc:  # the peer is already gone
            log.info("ws adopt failed: %s", exc)
            sock.close()
            if on_lost is not None:
                on_lost()
            return None
        return proto

    async def shutdown(self, code: int = 1001, reason: str = "", timeout: float = 5.0) -> None:
        """Stop accepting, close every connection with ``code`` and wait (at most ``timeout``
        seconds) for the close handshakes and handlers; abort and cancel what is left."""
        self.close()
        for p in list(self._handshaking):
            p._transport.abort()
        conns = list(self.connections)
        for ws in conns:
            ws._start_close(code, reason)
        waits = [asyncio.ensure_future(ws.wait_closed()) for ws in conns if not ws.closed]
        tasks = list(self._tasks)
        pending: set[asyncio.Future[Any]] = set()
        if waits or tasks:
            _, pending = await asyncio.wait([*waits, *tasks], timeout=timeout)
        for ws in conns:
            if not ws.closed:
                ws._transport.abort()
        for fut in pending:
            fut.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the listener is closed and every connection and handler finished."""
        if self._server is not None:
            await self._server.wait_closed()
        while self.connections or self._handshaking or self._tasks:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
                continue
            ws = next(iter(self.connections or self._handshaking))
            await ws.wait_closed()
            self.connections.discard(ws)
            self._handshaking.pop(ws, None)  # type: ignore[call-overload]

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()


async def serve(
    handler: Handler,
    host: str | None,
    port: int,
    *,
    ssl: ssl_module.SSLContext | None = None,
    subprotocols: Sequence[str] = (),
    origins: Collection[str] | None = None,
    deflate: bool = False,
    max_message_size: int = 16 * 2**20,
    handshake_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    write_limit: int = 64 * 1024,
    process_request: ProcessRequest | None = None,
    max_queue: int = 64,
    read_limit: int = 2**20,
    close_timeout: float = 5.0,
    max_request_size: int = 16384,
    backlog: int = 1024,
    listen: bool = True,
    pass_connection: bool = False,
    frame_timeout: float | None = None,
    max_open: int | None = None,
) -> Server:
    """Listen on ``host:port`` and run ``handler(ws)`` for every accepted WebSocket.

    See the module docstring and ``docs/ARCHITECTURE.md``. Sizes in bytes, times in seconds;
    ``ping_interval=None`` disables keepalive pings. ``max_queue`` / ``read_limit`` bound the
    received-but-unread messages (count / bytes) before reading pauses. ``listen=False``:
    no listening socket (``host`` / ``port`` unused); connections come from :meth:`Server.adopt`.
    received-but-unread messages (count / bytes) before reading pauses.
    ``pass_connection=True`` calls ``process_request(request, ws)`` with the connection (not
    yet upgraded: its ``remote_address``, ``open`` and ``closed`` are usable).
    ``frame_timeout``: seconds a frame, or a fragmented message, may stay incomplete before
    the connection is failed with 1008 (None: no deadline; then only the keepalive bounds a
    peer stalled mid-frame).
    ``max_open``: most sockets held at once (see :meth:`Server._admit`: the oldest
    connections not :meth:`Server.identified` are shed first); None: no bound.
    """
    loop = asyncio.get_running_loop()
    cfg = _ServerConfig(
        max_message_size=max_message_size,
        max_queue=max_queue,
        read_limit=read_limit,
        write_limit=write_limit,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        frame_timeout=frame_timeout,
    )
    cfg.start(loop)
    server = Server()
    server.max_open = max_open
    cfg.server = server
    cfg.handler = handler
    cfg.handshake_timeout = handshake_timeout
    cfg.max_request_size = max_request_size
    cfg.origins = origins
    cfg.process_request = process_request
    cfg.pass_connection = pass_connection
    cfg.subprotocols = tuple(subprotocols)
    cfg.deflate = True if deflate else None
    server._cfg = cfg
    if not listen:
        return server
    server._server = await loop.create_server(
        lambda: ServerProtocol(cfg, loop),
        host,
        port,
        ssl=ssl,
        ssl_handshake_timeout=handshake_timeout if ssl is not None else None,
        backlog=backlog,
    )
    server._port = int(server._server.sockets[0].getsockname()[1])
    return server
