"""Joining a room: the WebSocket, the HELLO / RESUME handshake, WELCOME and first snapshot.

:class:`Joiner` (a mixin of :class:`~clients.client.GameClient`) makes one bounded attempt
(:meth:`Joiner._open_session`: TCP + TLS + upgrade + HELLO or RESUME + WELCOME + the first
full snapshot, all within ``connect_timeout``) and maps what can go wrong to a
:class:`~clients.backoff.Drop`: transport trouble is retryable, refusals (ERROR + close
4001-4006) and protocol violations are not. It also owns closing a connection in the
background (never blocking the caller) and the close-code mapping of an open session, and
following the cluster's 4013 REDIRECT / 4014 MOVED (:meth:`Joiner._open_following`, bounded
to :data:`~clients.errors.MAX_HOPS` hops without a WELCOME, then
:class:`~clients.errors.RedirectLoop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from typing import Any

from protocol import messages as M
from protocol.aio import WebSocket, connect
from protocol.delta import Delta
from protocol.errors import ConnectionClosed, HandshakeError

from .backoff import Drop, close_drop
from .errors import MAX_HOPS, ConnectionLost, ConnectTimeout, RedirectLoop, ServerProtocolError
from .receive import Receiver
from .world import WorldView

__all__ = ["VIEW_EXT", "Joiner"]

#: The extensions an interest-capable client offers in HELLO (SPEC.md section 11):
#: VIEW messages, and their SAME pieces (``"interest/2"``; a server that does not know it
#: answers ``"interest"`` alone and sends no SAME piece).
VIEW_EXT: tuple[str, ...] = (M.INTEREST_EXT, M.INTEREST2_EXT)


async def open_websocket(
    url: str, *, ssl: ssl_module.SSLContext | None, max_message_size: int, close_timeout: float
) -> WebSocket:
    """:func:`protocol.aio.connect` without the WebSocket keepalive (the game PING/PONG and
    the stall detector cover liveness) and without its own open timeout (the caller bounds
    the whole join). Offers the ``gameserver.v1`` subprotocol (a server that selects
    none is accepted too). Raises HandshakeError, OSError / ConnectionError, ValueError."""
    return await connect(url, ssl=ssl, open_timeout=None, max_message_size=max_message_size,
                         subprotocols=(M.SUBPROTOCOL,),
                         ping_interval=None, ping_timeout=None, close_timeout=close_timeout)


def ssl_context(
    ssl: ssl_module.SSLContext | None, cafile: str | None
) -> ssl_module.SSLContext | None:
    """The TLS context for ``wss://``: the caller's, else one trusting ``cafile``, else None
    (``protocol.aio.connect`` then uses the system's default trust)."""
    if ssl is not None:
        return ssl
    if cafile is not None:
        return ssl_module.create_default_context(cafile=cafile)
    return None


class Joiner(Receiver):
    """Mixin: one join attempt and connection housekeeping (state lives in GameClient)."""

    url: str
    game: str | None
    room_id: str | None
    token: str | None
    name: str | None
    interest: bool
    spectate: bool
    follow: int | None
    reservation: str | None
    connect_timeout: float
    close_timeout: float
    welcome: Any
    player: int | None
    entity: int | None
    room: str | None
    _ssl: ssl_module.SSLContext | None
    _ws: WebSocket | None
    _closers: set[asyncio.Task[None]]
    _hops: list[str]

    async def _open_session(self, *, resume: bool) -> WebSocket:
        """One attempt: WebSocket + HELLO/RESUME + WELCOME + full snapshot, bounded.

        Raises :class:`Drop` (retry=True for transport trouble, False for refusals and
        protocol violations).
        """
        self.stats.connect_attempts += 1
        ws: WebSocket | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                try:
                    ws = await open_websocket(
                        self.url, ssl=self._ssl, max_message_size=self.max_message_size,
                        close_timeout=self.close_timeout)
                except HandshakeError as exc:
                    raise Drop(ConnectionLost(
                        f"WebSocket upgrade refused by the server (HTTP {exc.status}): {exc}",
                        code=exc.status), retry=exc.status >= 500) from None
                except (OSError, ConnectionError) as exc:
                    raise Drop(ConnectionLost(f"cannot connect to {self.url}: {exc}"),
                                retry=True) from None
                if resume:
                    assert self.resume_token is not None
                    hello = M.encode(M.Resume(self.resume_token))
                else:
                    hello = M.encode(M.Hello(game=self.game,
                                             room=self.room_id, token=self.token,
                                             name=self.name,
                                             ext=VIEW_EXT if self.interest else (),
                                             spectate=self.spectate, follow=self.follow,
                                             reservation=self.reservation))
                try:
                    self._send(ws, hello)
                except ConnectionClosed as exc:  # the server closed before our HELLO left
                    raise self._close_drop(exc.code, exc.reason) from None
                early_events: list[Any] = []
                welcome = None
                while True:
                    data = await self._recv_join(ws)
                    msg = self._decode(data)
                    if isinstance(msg, M.Welcome):
                        welcome = msg
                        self._on_welcome(msg)
                    elif isinstance(msg, M.View):
                        if welcome is None or self.world is None or not self.world.is_view:
                            raise Drop(ServerProtocolError(
                                "server sent a VIEW it did not negotiate"), retry=False)
                        if msg.raw[2] is not None:
                            raise Drop(ServerProtocolError(
                                "the first VIEW after WELCOME is not a reset"), retry=False)
                        self._apply_view(msg, self.clock())
                        break
                    elif isinstance(msg, Delta):
                        if welcome is None:
                            raise Drop(ServerProtocolError(
                                "server sent a DELTA before WELCOME"), retry=False)
                        assert self.world is not None
                        self._apply_first(msg)
                        break
                    elif isinstance(msg, M.Error):
                        self._server_error(msg)
                    else:
                        early_events.append(msg)
        except TimeoutError:
            if ws is not None:
                self._close_later(ws, 1001, "join timeout")
            raise Drop(ConnectTimeout(
                f"no WELCOME and snapshot from {self.url} within {self.connect_timeout}s"),
                retry=True) from None
        except Drop:
            if ws is not None:
                self._close_later(ws, 1000, "join failed")
            raise
        except BaseException:
            if ws is not None:
                self._close_later(ws, 1001, "cancelled")
            raise
        self._ws = ws
        now = self.clock()
        self._mark_rates(now)
        for msg in early_events:
            self._dispatch(msg, now)
        return ws

    async def _recv_join(self, ws: WebSocket) -> bytes:
        try:
            data = await ws.recv()
        except ConnectionClosed as exc:
            raise self._close_drop(exc.code, exc.reason) from None
        return self._account(data, self.clock())

    def _on_welcome(self, w: Any) -> None:
        self._hops.clear()  # a WELCOME ends a chain of redirects
        self.welcome = w
        self.player = int(w.player)
        self.entity = int(w.entity) if w.entity else None
        self.room = w.room
        self.game = w.game
        self.reservation = None  # used up by this WELCOME (SPEC.md section 2)
        self.tick_rate = float(w.tick_rate)
        self.send_rate = float(w.send_rate)
        self.resume_token = w.resume
        self.server_tick = int(w.tick)
        view = M.INTEREST_EXT in w.ext
        if self.world is None or self.world.schema != w.schema or self.world.is_view != view:
            self.world = WorldView(w.schema, view=view)

    def _apply_first(self, delta: Delta) -> None:
        if delta.base_tick is not None:
            raise Drop(ServerProtocolError(
                "the first DELTA after WELCOME is not a full snapshot"), retry=False)
        self._apply(delta, self.clock())

    def _close_drop(self, code: int | None, reason: str) -> Drop:
        """Map a WebSocket close (code from the server, or ours for its violation)."""
        return close_drop(code, reason, self._last_error_text, self._last_error_url)

    def _follow(self, drop: Drop) -> None:
        """Take a 4013 / 4014 hop: dial ``drop.redirect`` from now on (the room or token lives
        there). Raises ``Drop(RedirectLoop)`` past :data:`~clients.errors.MAX_HOPS` hops in a
        row without a WELCOME (SPEC.md section 7)."""
        assert drop.redirect is not None
        self._hops.append(drop.redirect)
        self._last_error_url = None
        if len(self._hops) > MAX_HOPS:
            hops = tuple(self._hops)
            raise Drop(RedirectLoop(
                f"redirect loop: sent on {len(hops)} times without a WELCOME "
                f"({' -> '.join(hops)})", code=drop.error.code, urls=hops), retry=False)
        self.stats.redirects += 1
        self.url = drop.redirect

    async def _open_following(self, *, resume: bool) -> WebSocket:
        """:meth:`_open_session`, following 4013 (same HELLO / RESUME at the new URL) and 4014
        (RESUME there), at most MAX_HOPS hops without a WELCOME."""
        while True:
            try:
                return await self._open_session(resume=resume)
            except Drop as drop:
                if drop.redirect is None:
                    raise
                self._follow(drop)
                if drop.moved and self.resume_token is not None:
                    resume = True

    def _close_later(self, ws: WebSocket, code: int, reason: str) -> None:
        """Close ``ws`` in the background (bounded by ``close_timeout``), never blocking us."""
        if ws.closed:
            return
        task = asyncio.get_running_loop().create_task(self._close_quietly(ws, code, reason))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _close_quietly(self, ws: WebSocket, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code, reason), self.close_timeout * 2 + 1)
