"""WebSocket client: :func:`connect` to a ``ws://`` or ``wss://`` URL.

Same :class:`~protocol.aio.websocket.WebSocket` as the server side; the core masks the
client's frames (RFC 6455 section 5.3). After the close handshake the client waits for the
server to close TCP (section 7.1.1), at most ``close_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..connection import Connection, Side
from ..errors import HandshakeError
from ..handshake import check_response, client_request, new_key, parse_response
from .config import Config
from .websocket import WebSocket

__all__ = ["ClientProtocol", "connect"]

log = logging.getLogger("protocol.aio")

# Bound on the server's response head (status line + headers), bytes.
MAX_RESPONSE_HEAD = 16384


class ClientProtocol(WebSocket):
    """Client side of one connection: sends the upgrade request, checks the 101 answer."""

    __slots__ = ("_hs", "_hs_buf", "_hs_done")

    is_client = True

    def __init__(
        self,
        cfg: Config,
        loop: asyncio.AbstractEventLoop,
        request: bytes,
        key: str,
        subprotocols: Sequence[str],
        deflate: Any,
    ) -> None:
        super().__init__(cfg, loop)
        self._hs_buf: bytearray | None = bytearray()
        #: Resolved when the opening handshake succeeded (exception if it failed).
        self._hs_done: asyncio.Future[None] = loop.create_future()
        # (request bytes, key, offered subprotocols, deflate offer, _hs_done), dropped once
        # open (the layout is relied upon by clients/client.py's connect work-around)
        self._hs: tuple[bytes, str, Sequence[str], Any, asyncio.Future[None]] | None = (
            request, key, subprotocols, deflate, self._hs_done
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self._hs is not None
        self._transport.write(self._hs[0])

    def _handshake_data(self, data: bytes) -> None:
        buf, hs = self._hs_buf, self._hs
        if buf is None or hs is None:
            return
        buf += data
        _, key, subprotocols, deflate, fut = hs
        try:
            resp = parse_response(buf)
            if resp is None:
                if len(buf) > MAX_RESPONSE_HEAD:
                    raise HandshakeError(0, "response head too large")
                return
            negotiated = check_response(resp, key, subprotocols=subprotocols, deflate=deflate)
        except HandshakeError as exc:
            self._hs_buf = self._hs = None
            if not fut.done():
                fut.set_exception(exc)
            self._transport.abort()
            return
        self._hs_buf = self._hs = None
        self._conn = Connection(
            Side.CLIENT, max_message_size=self._cfg.max_message_size, deflate=negotiated.deflate
        )
        self.subprotocol = negotiated.subprotocol
        self._open = True
        self._start_keepalive()
        if not fut.done():
            fut.set_result(None)
        if buf:
            self.data_received(bytes(buf))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._hs is not None:
            self._hs = self._hs_buf = None
            if not self._hs_done.done():
                self._hs_done.set_exception(
                    ConnectionError(f"connection closed during the opening handshake: {exc}")
                )


async def connect(
    url: str,
    *,
    ssl: ssl_module.SSLContext | None = None,
    subprotocols: Sequence[str] = (),
    origin: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
    deflate: bool = False,
    max_message_size: int = 16 * 2**20,
    open_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    write_limit: int = 64 * 1024,
    max_queue: int = 64,
    read_limit: int = 2**20,
    close_timeout: float = 5.0,
) -> WebSocket:
    """Open a WebSocket to ``url`` (``ws://`` or ``wss://``) and return it once open.

    ``wss://`` uses ``ssl`` or, when None, :func:`ssl.create_default_context` (system CAs).
    Raises :class:`~protocol.errors.HandshakeError` if the server refused or answered
    badly (its ``status``), :class:`TimeoutError` after ``open_timeout`` seconds (TCP + TLS +
    HTTP), :class:`OSError` if the connection failed, :class:`ValueError` for a bad URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL (ws:// or wss://): {url!r}")
    secure = parts.scheme == "wss"
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in URL {url!r}")
    port = parts.port or (443 if secure else 80)
    if secure and ssl is None:
        ssl = ssl_module.create_default_context()
    elif not secure and ssl is not None:
        raise ValueError("an ssl context was given for a ws:// URL; use wss://")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = f"[{host}]" if ":" in host else host
    if parts.port is not None and parts.port != (443 if secure else 80):
        host_header = f"{host_header}:{port}"
    deflate_offer = True if deflate else None
    key = new_key()
    request = client_request(
        host_header, target, key, subprotocols=tuple(subprotocols), origin=origin,
        deflate=deflate_offer, extra_headers=tuple(extra_headers),
    )
    cfg = Config(
        max_message_size=max_message_size, max_queue=max_queue, read_limit=read_limit,
        write_limit=write_limit, ping_interval=ping_interval, ping_timeout=ping_timeout,
        close_timeout=close_timeout,
    )
    loop = asyncio.get_running_loop()
    cfg.start(loop)
    protos: list[ClientProtocol] = []

    def factory() -> ClientProtocol:
        proto = ClientProtocol(cfg, loop, request, key, tuple(subprotocols), deflate_offer)
        protos.append(proto)
        return proto

    async with asyncio.timeout(open_timeout):
        transport, _ = await loop.create_connection(
            factory, host, port, ssl=ssl, server_hostname=host if secure else None
        )
        # The whole opening handshake may already be done here (a fast local server's 101
        # can arrive before create_connection returns): wait on the protocol's future, which
        # outlives the handshake state.
        proto = protos[0]
        try:
            await proto._hs_done
        except BaseException:
            transport.abort()
            raise
    return proto
