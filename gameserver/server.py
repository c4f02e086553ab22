"""The game server: HTTP routes and the ``/ws`` game endpoint on one port, rooms on one loop.

:class:`GameServer` wires :func:`protocol.aio.serve` (with its ``process_request`` hook for
plain HTTP: see :mod:`gameserver.http`), the :class:`gameserver.manager.RoomManager` and one
:class:`gameserver.session.Session` per accepted WebSocket. Usage::

    server = GameServer(ServerConfig(games={"arena": Arena}, port=0))
    await server.start()            # listening; server.port, server.url
    ...
    await server.stop()             # clients get 1001, on_leave runs, sockets closed

:func:`run_server` is the blocking entry point used by the CLI: it prints the URL line,
serves until SIGINT / SIGTERM, then stops gracefully (bounded by ``SHUTDOWN_TIMEOUT``
seconds) and returns the process exit status (0 on a clean stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from gameserver.config import ServerConfig
from gameserver.fdlimit import (
    AcceptErrorLog,
    connection_budget,
    nofile_limits,
    raise_nofile_limit,
)
from gameserver.http import HttpReply, Router, default_static_root
from gameserver.iplimits import IpLimiter
from gameserver.manager import RoomManager
from gameserver.metrics import ServerMetrics
from gameserver.proxy import IPAddress, TrustedProxies
from gameserver.session import Session
from protocol.aio import WebSocket, serve
from protocol.handshake import Headers, Request, Response, is_upgrade
from protocol.messages import SUBPROTOCOL

__all__ = ["SHUTDOWN_TIMEOUT", "GameServer", "run_server"]

log = logging.getLogger(__name__)

#: Seconds a graceful stop waits for clients' close handshakes before aborting them.
SHUTDOWN_TIMEOUT = 3.0
#: Reason phrases for the statuses our routes use.
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 426: "Upgrade Required", 503: "Service Unavailable",
            308: "Permanent Redirect", 429: "Too Many Requests"}
#: Seconds a client refused by a per-IP limit or while draining is told to wait (Retry-After).
RETRY_AFTER = 5


def _to_response(reply: HttpReply) -> Response:
    headers = Headers([("Content-Type", reply.content_type), *reply.headers])
    return Response(reply.status, _REASONS.get(reply.status, ""), headers, reply.body)


def tls_context(cert: Any, key: Any) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2+) from PEM files."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class GameServer:
    """One process's game server (see the module docstring).

    ``ssl_context`` overrides ``config.tls_cert``/``tls_key`` (tests pass a trustme context).
    ``listen=False`` (a ``--workers`` worker): no listening socket; connections arrive
    through :meth:`adopt`.
    """

    def __init__(self, config: ServerConfig, *, ssl_context: ssl.SSLContext | None = None,
                 metrics: ServerMetrics | None = None, listen: bool = True) -> None:
        self.config = config.check()
        self._listen = listen
        self.metrics = metrics or ServerMetrics()
        if ssl_context is None and config.tls_cert is not None and config.tls_key is not None:
            ssl_context = tls_context(config.tls_cert, config.tls_key)
        self.ssl = ssl_context
        self.rooms: RoomManager | None = None
        self.cluster: Any = None  # gameserver.cluster.service.Cluster with --redis
        self.accepting = False
        self.sessions: set[Session] = set()
        self._server: Any = None
        self._stopped = False
        self._accept_log: AcceptErrorLog | None = None
        #: with --redis: the handover receiver (and sender with --handover), see
        #: gameserver.handover.transfer
        self.handover: Any = None
        static = config.static_root if config.static_root is not None else default_static_root()
        #: Set by :meth:`drain` (or an orchestration hook): /readyz answers 503, new game
        #: connections get 503, players already in keep playing.
        self.draining = False
        self.proxies = TrustedProxies(config.trusted_proxies)
        self.ip_limits = IpLimiter(
            max_connections=config.max_connections_per_ip,
            join_rate=config.join_rate_per_ip, join_burst=config.join_burst_per_ip,
            exempt=config.ip_limit_exempt, max_tracked=config.max_tracked_ips,
            log_interval=config.ip_limit_log_interval,
            on_refuse=lambda kind: self.metrics.ip_limit_refusals.labels(kind).inc())
        #: Client address of each game connection holding an ip_limits slot.
        self._client_ips: dict[WebSocket, IPAddress | None] = {}
        self.router = Router(static_root=static, metrics=self.metrics.render,
                             rooms=self._list_rooms, healthy=lambda: not self._stopped,
                             ws_path=config.ws_path, ready=lambda: self.ready,
                             prefix=config.path_prefix)

    # ----------------------------------------------------------------------- properties

    @property
    def port(self) -> int:
        return int(self._server.port)

    @property
    def url(self) -> str:
        """``http(s)://host:port/`` of the browser page."""
        return (f"{self.config.scheme}://{self._host_for_url()}:{self.port}"
                f"{self.config.path_prefix}/")

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.ssl is not None else "ws"
        return (f"{scheme}://{self._host_for_url()}:{self.port}"
                f"{self.config.path_prefix}{self.config.ws_path}")

    def _host_for_url(self) -> str:
        host = self.config.host
        return f"[{host}]" if ":" in host else host

    @property
    def ready(self) -> bool:
        """Accepting players: started, not draining or stopping, below max_connections."""
        return (self.accepting and not self.draining
                and len(self.sessions) < self.config.max_connections)

    def drain(self) -> None:
        """Stop taking new players (readiness 503); players already in keep playing."""
        if not self.draining:
            self.draining = True
            log.info("draining: new game connections refused players=%d", len(self.sessions))

    def _list_rooms(self) -> list[dict[str, object]]:
        return self.rooms.list_rooms() if self.rooms is not None else []

    # ------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind and start accepting (OSError if the port cannot be bound)."""
        cfg = self.config
        self.rooms = RoomManager(cfg, self.metrics)
        self._server = await serve(
            self._handle, cfg.host, cfg.port, ssl=self.ssl, origins=cfg.origins,
            # selected when offered; a client offering none (or only others) is accepted
            # without one (RFC 6455 section 4.2.2)
            subprotocols=(SUBPROTOCOL,),
            # Above 4x the game limit the WebSocket layer closes 1009; between the two the
            # session answers ERROR 5 (SPEC.md section 1).
            max_message_size=4 * cfg.max_message_size,
            ping_interval=cfg.ping_interval, ping_timeout=cfg.ping_timeout,
            frame_timeout=cfg.frame_timeout,
            write_limit=cfg.high_water, max_queue=32, read_limit=16 * cfg.max_message_size,
            close_timeout=cfg.close_timeout, process_request=self._process_request,
            pass_connection=True, listen=self._listen,
        )
        # File descriptors: hold at most (soft limit - open now - reserve) sockets, shedding
        # the oldest without a player first (gameserver.fdlimit, SPEC.md section 7).
        budget = connection_budget(cfg.fd_reserve)
        self._server.max_open = budget
        self._server.on_shed = self.metrics.connections_shed.inc
        if self._accept_log is None:
            self._accept_log = AcceptErrorLog()
            self._accept_log.install(asyncio.get_running_loop())
        self._start_cluster()
        self.accepting = True
        if cfg.redis_url is not None:
            from gameserver.handover.transfer import HandoverAgent
            self.handover = HandoverAgent.for_server(self)
            self.handover.start()
        if not self._listen:
            return
        log.info("listening url=%s ws=%s games=%s", self.url, self.ws_url,
                 ",".join(cfg.games))
        lim = nofile_limits()
        if lim is not None:
            log.info("file descriptors soft_limit=%d socket_budget=%s reserve=%d",
                     lim[0], budget, cfg.fd_reserve)

    async def adopt(self, sock: socket.socket, initial: bytes, *,
                    upgraded: bool | bytes = True,
                    on_lost: Callable[[], None] | None = None) -> WebSocket | None:
        """Serve a connection accepted (and read up to its first game message) elsewhere:
        see :meth:`protocol.aio.Server.adopt`. None if the server is stopping."""
        if self._server is None or not self.accepting:
            sock.close()
            if on_lost is not None:
                on_lost()
            return None
        ws: WebSocket | None = await self._server.adopt(sock, initial, upgraded=upgraded,
                                                        on_lost=on_lost)
        return ws

    def _start_cluster(self) -> None:
        """Cluster mode (``--redis``): join the directory; else the local seat book only."""
        from gameserver.cluster.matchmake import matchmake_reply, rooms_reply

        assert self.rooms is not None
        cfg = self.config
        if cfg.redis_url is not None:
            from gameserver.cluster.service import Cluster

            self.cluster = Cluster(cfg, self.metrics, self.rooms, url=self.ws_url,
                                   worker=int(cfg.worker_id or 0), node_id=cfg.cluster_node)
            self.cluster.start()
            cluster = self.cluster
            self.router.cluster_rooms = lambda: rooms_reply(cluster.cluster_rooms)
        else:
            from gameserver.cluster.seats import LocalSeats

            self.rooms.seats = LocalSeats(self.rooms, cfg.public_url or self.ws_url)
        seats = self.rooms.seats
        assert seats is not None
        self.router.matchmake = lambda target: matchmake_reply(seats, target)

    def _process_request(self, req: Request, ws: WebSocket,
                         ) -> Response | Awaitable[Response | None] | None:
        pending = self.router.route_async(req.method, req.target)
        if pending is not None:
            return self._later(pending)
        reply = self.router.route(req.method, req.target, upgrade=is_upgrade(req))
        if reply is not None:
            return _to_response(reply)
        # A game upgrade: per-IP connection limit and draining answer before any WebSocket.
        if self.draining:
            return _to_response(HttpReply(503, b"server draining: try another node\n",
                                          headers=(("Retry-After", str(RETRY_AFTER)),)))
        peer = ws.remote_address
        ip = self.proxies.client_ip(peer[0] if isinstance(peer, tuple) else None, req.headers)
        refused = self.ip_limits.acquire(ip)
        if refused is not None:
            return _to_response(HttpReply(
                429, b"too many connections from your address\n",
                headers=(("Retry-After", str(RETRY_AFTER)),)))
        self._client_ips[ws] = ip
        # The upgrade runs right after this hook returns; if it is refused (bad key, Origin)
        # no handler will release the slot, so check once the handshake step is over.
        asyncio.get_running_loop().call_soon(self._release_if_not_upgraded, ws)
        return None

    def _release_if_not_upgraded(self, ws: WebSocket) -> None:
        if not ws.open:
            self._release_ip(ws)

    def _release_ip(self, ws: WebSocket) -> None:
        if ws in self._client_ips:
            self.ip_limits.release(self._client_ips.pop(ws))

    async def _later(self, pending: Awaitable[HttpReply]) -> Response:
        return _to_response(await pending)

    async def _handle(self, ws: WebSocket) -> None:
        assert self.rooms is not None
        if not self.accepting:
            self._release_ip(ws)
            await ws.close(1001, "server shutting down")
            return
        if len(self.sessions) >= self.config.max_connections:
            self._release_ip(ws)
            await ws.close(1013, "server full")  # RFC 6455 7.4.1 "try again later"
            return
        if self.config.send_buffer is not None:
            sock = ws._transport.get_extra_info("socket")
            if sock is not None:
                # Bounds the kernel's share of a slow client's backlog, so our high-water
                # mark (userspace) is what limits it and slow clients are detected sooner.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer)
        ip = self._client_ips.get(ws)
        server = self._server
        session = Session(ws, self.rooms, peer=str(ip) if ip is not None else None,
                          join_gate=lambda: self.ip_limits.allow_join(ip),
                          on_identified=lambda: server.identified(ws))
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            self.sessions.discard(session)
            self._release_ip(ws)

    async def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stop accepting, close every client with 1001, run on_leave hooks, close sockets."""
        if self._stopped or self._server is None:
            return  # idempotent; a server that never started has nothing to stop
        self._stopped = True
        self.accepting = False
        for s in self.sessions:
            s.accepting = False
        server = self._server
        if server is not None:
            server.close()
        leaving: list[Awaitable[None]] = []
        if self.handover is not None:
            if self.config.handover:
                await self.handover.stop_receiver()  # never claim our own rooms
                await self.handover.hand_over_all()  # 4014 to the players of moved rooms
            else:
                leaving.append(self.handover.stop_receiver())
        if self.cluster is not None:
            leaving.append(self.cluster.close())  # leave the directory: no one is sent here
        if leaving:  # each bounded by its own Redis timeouts; together, not one after another
            await asyncio.gather(*leaving)
        if self.rooms is not None:
            self.rooms.shutdown()  # on_leave for every player; their sockets get 1001
        if server is not None:
            await server.shutdown(1001, "server shutting down", timeout=timeout)
        if self.rooms is not None and self.rooms.tasks:
            await asyncio.gather(*self.rooms.tasks, return_exceptions=True)
        if self.handover is not None:
            await self.handover.close()
        log.info("stopped")

    async def serve_forever(self, stop: asyncio.Event) -> None:
        """Start, print nothing, wait for ``stop`` to be set, stop gracefully."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


def run_server(config: ServerConfig) -> int:
    """Blocking CLI entry: serve until SIGINT/SIGTERM; returns the exit status."""
    from protocol.aio.loop import run

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-POSIX
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        raised = raise_nofile_limit()
        if raised is not None and raised[1] > raised[0]:
            log.info("raised the file descriptor limit soft=%d->%d", raised[0], raised[1])
        server = GameServer(config)
        try:
            await server.start()
        except OSError as exc:
            print(f"gameserver: error: cannot listen on {config.host}:{config.port}: {exc}",
                  file=sys.stderr)
            return 1
        games = ", ".join(config.games)
        print(f"gameserver: serving {games} at {server.url} (ws at {server.ws_url})",
              flush=True)
        await stop.wait()
        if config.drain_seconds > 0:  # readiness 503 first, so balancers move new players
            server.drain()
            stop.clear()
            with contextlib.suppress(TimeoutError):  # a second signal ends the drain early
                await asyncio.wait_for(stop.wait(), config.drain_seconds)
        log.info("signal received, shutting down")
        await server.stop()
        return 0

    return run(main())
