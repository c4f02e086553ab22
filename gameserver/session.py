"""One game connection: HELLO / RESUME, then inputs, pings and LEAVE until it closes.

State machine of a connection (``Session.run``)::

    CONNECTED --HELLO ok--> JOINED --LEAVE / close--> done
        |  \\--RESUME ok--> JOINED (same player, new socket; the old one gets 4011)
        |--HELLO/RESUME refused--> ERROR <code> + close <code> (4001-4006, 4017, 4018)
        |--room / token / reservation of another node--> ERROR 4013 {url} + close 4013
        `--no HELLO within hello_timeout--> close 4012

After WELCOME the room streams a full snapshot then deltas (see :mod:`gameserver.room`).

Limits (documented thresholds, per connection):

* Message size: the WebSocket layer closes with 1009 above ``4 x max_message_size`` bytes;
  a message over ``max_message_size`` (4096, SPEC.md section 1) but under that gets ERROR 5
  and counts as a bad message.
* Rate: every client message spends a token from a bucket of depth
  ``input_burst_factor x tick_rate`` refilled at ``input_rate_factor x tick_rate`` tokens/s.
  A message with no token left is dropped with ERROR 4 (rate limited) and one *flood
  strike*. Strikes live in a bucket of ``flood_strikes`` (default 30) refilled at 1/s: when it
  is empty the connection is closed with 4008. So a client may overrun briefly; a client that
  sends at ~2x the tick rate for ~30 s, or much faster, is cut off.
* Bad messages (not msgpack, wrong shape, unknown type, invalid input, too large, wrong
  state): ERROR with the code (1, 2, 3, 5, 6) and one *bad strike*; strikes live in a bucket
  of ``bad_message_strikes`` (default 5) refilled at one per 2 s; empty -> close 4000.
* ERROR replies themselves are rate-bounded by those buckets, and small frames are dropped
  when the socket is backed up (bounded memory).

A connection closed for abuse (4000, 4008) removes its player at once (``on_leave`` reason
``"kicked"``, no resume). A dropped connection (no LEAVE) keeps the player seated for
``resume_grace`` seconds; ``on_leave`` runs only when that grace ends (or on LEAVE).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from gameserver.cluster.errors import ClusterUnavailable, Redirect, SeatError
from gameserver.config import ServerConfig
from gameserver.inputs import InputError
from gameserver.iplimits import TokenBucket
from gameserver.manager import RoomManager
from gameserver.metrics import ServerMetrics
from gameserver.room import JoinError, Player, Room, send_small
from gameserver.simulation import GameError
from protocol import messages as M
from protocol.aio import WebSocket
from protocol.codes import CloseCode, ErrorCode, MessageError
from protocol.errors import ConnectionClosed
from protocol.messages import INTEREST2_EXT, INTEREST_EXT

__all__ = ["PROTOCOL_VERSION", "Session"]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1


class _Close(Exception):
    """Internal: end the session, closing the socket with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Session:
    """Drives one accepted game WebSocket (see the module docstring)."""

    def __init__(self, ws: WebSocket, manager: RoomManager, *, accepting: bool = True,
                 peer: str | None = None, join_gate: Callable[[], bool] | None = None,
                 on_identified: Callable[[], None] | None = None) -> None:
        self.ws = ws
        #: called once the connection holds a player (HELLO or RESUME accepted): from then
        #: on it is never shed for file descriptors (gameserver.fdlimit)
        self._on_identified = on_identified
        self.manager = manager
        self.config: ServerConfig = manager.config
        self.metrics: ServerMetrics = manager.metrics
        self.player: Player | None = None
        self.left = False
        loop = asyncio.get_running_loop()
        self._loop = loop
        now = loop.time()
        self._rate: TokenBucket | None = None  # set on join (depends on the room's tick rate)
        self._flood = TokenBucket(self.config.flood_strikes, 1.0, now)
        self._bad = TokenBucket(self.config.bad_message_strikes, 0.5, now)
        self._pre_join = TokenBucket(20, 10, now)  # before HELLO: no tick rate known yet
        self.accepting = accepting
        #: The client's address for logs (behind a trusted proxy: the forwarded one).
        self.peer: Any = peer if peer is not None else ws.remote_address
        #: Per-IP join-rate check (gameserver.iplimits): False -> ERROR + close 4020.
        self.join_gate = join_gate

    # ------------------------------------------------------------------------- running

    async def run(self) -> None:
        """Serve the connection until it closes; never raises for a peer's behaviour."""
        ws = self.ws
        self.metrics.connections.inc()
        try:
            await self._serve()
        except _Close as c:
            log.log(logging.DEBUG if c.code in (CloseCode.NORMAL, CloseCode.REDIRECT)
                    else logging.INFO,
                    "closing client code=%d reason=%r peer=%s player=%s",
                    c.code, c.reason, self.peer,
                    self.player.player_id if self.player else None)
            if c.code in (CloseCode.PROTOCOL_MISUSE, CloseCode.INPUT_FLOOD) and self.player:
                self.left = True  # kicked: no resume, on_leave runs now
                self.player.room.remove(self.player, "kicked")
            await ws.close(c.code, c.reason)
        except ConnectionClosed:
            pass
        finally:
            self.metrics.connections.dec()
            p = self.player
            if p is not None and not self.left:
                p.room.detach(p, ws)

    async def _serve(self) -> None:
        ws = self.ws
        deadline = self._loop.time() + self.config.hello_timeout
        while self.player is None:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise _Close(CloseCode.HELLO_TIMEOUT, "no HELLO in time")
            try:
                data = await asyncio.wait_for(ws.recv(), remaining)
            except TimeoutError:
                raise _Close(CloseCode.HELLO_TIMEOUT, "no HELLO in time") from None
            msg = self._decode(data)
            if msg is None:
                continue
            if not self._pre_join.take(self._loop.time()):
                self._strike_flood("too many messages before HELLO")
                continue
            if isinstance(msg, M.Hello):
                await self._hello(msg)
            elif isinstance(msg, M.Resume):
                await self._resume(msg)
            elif isinstance(msg, M.Ping):
                self._pong(msg)
            else:
                self._bad_message(ErrorCode.BAD_STATE, "send HELLO or RESUME first")
        while True:
            data = await ws.recv()
            msg = self._decode(data)
            if msg is None:
                continue
            assert self._rate is not None
            if not self._rate.take(self._loop.time()):
                self.metrics.inputs_dropped.inc()
                self._error(ErrorCode.RATE_LIMITED, "rate limited: message dropped")
                self._strike_flood("input flood")
                continue
            if isinstance(msg, M.Input):
                self._input(msg)
            elif isinstance(msg, M.Camera):
                self._camera(msg)
            elif isinstance(msg, M.Ping):
                self._pong(msg)
            elif isinstance(msg, M.Leave):
                self._leave()
                raise _Close(CloseCode.NORMAL, "left")
            elif isinstance(msg, M.Hello | M.Resume):
                self._bad_message(ErrorCode.BAD_STATE, "already joined")
            else:
                self._bad_message(ErrorCode.UNKNOWN_TYPE, "not a client-to-server message")

    # ------------------------------------------------------------------------ decoding

    def _decode(self, data: str | bytes) -> Any:
        m = self.metrics
        m.messages_in.inc()
        m.bytes_in.inc(len(data))
        if isinstance(data, str):
            self._bad_message(ErrorCode.MALFORMED, "text messages are not used: send binary")
            return None
        if len(data) > self.config.max_message_size:
            self._bad_message(ErrorCode.TOO_LARGE,
                              f"message of {len(data)} bytes over {self.config.max_message_size}")
            return None
        try:
            return M.decode_client(data)
        except MessageError as exc:
            self._bad_message(exc.code, exc.message)
            return None

    # ----------------------------------------------------------------- replies / limits

    def _error(self, code: int, message: str) -> None:
        send_small(self.ws, M.encode(M.Error(int(code), message[:200])), self.metrics,
                   self.config.high_water)

    def _bad_message(self, code: int, message: str) -> None:
        self.metrics.violations.labels("bad_message").inc()
        log.debug("bad message code=%d msg=%r peer=%s", code, message, self.peer)
        self._error(code, message)
        if not self._bad.take(self._loop.time()):
            self.metrics.violations.labels("protocol_misuse_close").inc()
            raise _Close(CloseCode.PROTOCOL_MISUSE, "too many bad messages")

    def _strike_flood(self, reason: str) -> None:
        self.metrics.violations.labels("rate_limited").inc()
        if not self._flood.take(self._loop.time()):
            self.metrics.violations.labels("flood_close").inc()
            raise _Close(CloseCode.INPUT_FLOOD, reason)

    def _refuse(self, err: JoinError) -> _Close:
        self._error(err.code, err.message)
        return _Close(err.code, err.message[:100])

    def _pong(self, msg: Any) -> None:
        p = self.player
        tick = p.room.tick if p is not None else 0
        send_small(self.ws, M.encode(M.Pong(msg.t, tick)), self.metrics,
                   self.config.high_water)

    # ----------------------------------------------------------------------- join flow

    async def _hello(self, msg: Any) -> None:
        if not self.accepting:
            raise _Close(CloseCode.GOING_AWAY, "server shutting down")
        if self.join_gate is not None and not self.join_gate():
            raise self._refuse(JoinError(ErrorCode.JOIN_RATE_LIMITED,
                                         "too many joins from your address: retry later"))
        if msg.v != PROTOCOL_VERSION:
            raise self._refuse(JoinError(ErrorCode.VERSION_MISMATCH,
                                         f"server speaks protocol v{PROTOCOL_VERSION}"))
        auth = self.config.auth
        if auth is not None:
            try:
                ok = auth(msg.token)
                if inspect.isawaitable(ok):
                    ok = await ok
            except Exception as exc:
                log.info("auth hook refused token: %s", exc)
                ok = False
            if not ok:
                raise self._refuse(JoinError(ErrorCode.UNAUTHORIZED, "unauthorized"))
        try:
            if msg.reservation is not None:
                room = await self._reserved_room(msg)
            else:
                room = await self._find_room(msg)
            same = INTEREST2_EXT in msg.ext
            interest = same or INTEREST_EXT in msg.ext
            if msg.spectate:
                p = room.join_spectator(self.ws, msg.name or "", interest=interest,
                                        follow=msg.follow or None)
            else:
                hello_body = {k: getattr(msg, k) for k in ("v", "game", "room", "token",
                                                            "name")}
                if msg.ext:
                    hello_body["ext"] = list(msg.ext)
                p = room.join(self.ws, hello_body, msg.name or "", interest=interest)
        except JoinError as err:
            raise self._refuse(err) from None
        except Redirect as r:
            raise self._redirect(r.url, "the room is on another node") from None
        p.vsame = same
        self._joined(p)

    # Cluster routing (gameserver/cluster): a room or resume token that is not local may be
    # on another live node (ERROR 4013 + close 4013 with its url, SPEC.md section 7); these
    # are the only awaits on Redis in a session, bounded by the link's timeout.

    async def _find_room(self, msg: Any) -> Room:
        try:
            return self.manager.find_room(msg.room, msg.game, spectate=msg.spectate)
        except JoinError as err:
            cluster = self.manager.cluster
            if cluster is None or err.code != ErrorCode.UNKNOWN_ROOM or msg.room is None:
                raise
            url = await self._ask(cluster.locate_room(msg.room))
            if url is not None:
                raise Redirect(url) from None
            # it may have arrived meanwhile
            return self.manager.find_room(msg.room, msg.game, spectate=msg.spectate)

    async def _reserved_room(self, msg: Any) -> Room:
        """The room a seat reservation (HELLO ``reservation``) holds a seat in; consumes it."""
        seats = self.manager.seats
        if seats is None:
            raise JoinError(ErrorCode.RESERVATION_INVALID, "this server takes no reservations")
        try:
            seat = await self._ask(seats.take(msg.reservation))
        except SeatError as exc:
            raise JoinError(exc.code, exc.message) from None
        if (msg.room is not None and msg.room != seat.room) or (
                msg.game is not None and msg.game != seat.game):
            raise JoinError(ErrorCode.RESERVATION_INVALID,
                            f"the reservation is for room {seat.room!r} ({seat.game})")
        room = self.manager.rooms.get(seat.room)
        if room is None:  # allocated by the matchmaker: its first player creates it
            room = self.manager.create_room(seat.game, seat.room)
            room.held = seats.held(seat.room)
        else:
            room.held = max(0, room.held - 1)
        return room

    async def _ask(self, call: Any) -> Any:
        """Await one cluster lookup; Redis trouble refuses the join with 4018."""
        try:
            return await call
        except ClusterUnavailable:
            raise JoinError(ErrorCode.CLUSTER_UNAVAILABLE,
                            "cluster directory unavailable: try again shortly") from None

    async def _resume_elsewhere(self, token: str, err: JoinError) -> Player:
        """A token not held here: redirect to its live node, else refuse with ``err``."""
        cluster = self.manager.cluster
        if cluster is None:
            raise self._refuse(err)
        try:
            url = await self._ask(cluster.locate_token(token))
        except JoinError as unavailable:
            raise self._refuse(unavailable) from None
        if url is not None:
            raise self._redirect(url, "the resume token belongs to another node")
        try:
            return self.manager.resume(token)  # re-seated here meanwhile (a handover)
        except JoinError:
            raise self._refuse(err) from None

    def _redirect(self, url: str, why: str) -> _Close:
        send_small(self.ws, M.encode(M.Error(int(ErrorCode.REDIRECT), why, url=url)),
                   self.metrics, self.config.high_water)
        # SPEC.md section 7: the close reason is the url when it fits in 123 bytes
        return _Close(CloseCode.REDIRECT, url if len(url.encode()) <= 123 else "redirect")

    async def _resume(self, msg: Any) -> None:
        if msg.v != PROTOCOL_VERSION:
            raise self._refuse(JoinError(ErrorCode.VERSION_MISMATCH,
                                         f"server speaks protocol v{PROTOCOL_VERSION}"))
        try:
            p = self.manager.resume(msg.token)
        except JoinError as err:
            p = await self._resume_elsewhere(msg.token, err)
        old = p.room.attach(p, self.ws)
        if old is not None and not old.closed:
            log.debug("session replaced player=%d", p.player_id)
            task = self._loop.create_task(old.close(CloseCode.REPLACED, "session replaced"))
            self.manager.tasks.add(task)
            task.add_done_callback(self.manager.tasks.discard)
        self._joined(p)

    def _joined(self, p: Player) -> None:
        room = p.room
        self.player = p
        if self._on_identified is not None:
            self._on_identified()
        self._rate = TokenBucket(self.config.input_burst_factor * room.tick_rate,
                                 self.config.input_rate_factor * room.tick_rate,
                                 self._loop.time())
        welcome = M.Welcome(
            v=PROTOCOL_VERSION, player=p.player_id, entity=p.entity, room=room.id,
            game=room.game, tick=room.tick, tick_rate=room.tick_rate,
            send_rate=room.send_rate, schema=room.wire_schema, inputs=room.input_schema,
            resume=p.resume_token, resume_grace=self.config.resume_grace,
            ext=(((INTEREST_EXT, INTEREST2_EXT) if p.vsame else (INTEREST_EXT,))
                 if p.interest and room.view_stream is not None else ()),
            spectator=p.spectator,
            view=room.view_stream.grid.info() if room.view_stream is not None else None,
        )
        data = M.encode(welcome)
        self.ws.send_nowait(data)
        self.metrics.bytes_out.inc(len(data))
        self.metrics.messages_out.inc()

    # -------------------------------------------------------------------------- inputs

    def _camera(self, msg: Any) -> None:
        p = self.player
        assert p is not None
        if not p.spectator:
            self._bad_message(ErrorCode.NOT_SPECTATING, "CAMERA is for spectators")
            return
        p.room.set_camera(p, msg.x, msg.y, msg.w, msg.h, msg.follow)

    def _input(self, msg: Any) -> None:
        p = self.player
        assert p is not None
        if p.spectator:
            self._bad_message(ErrorCode.SPECTATOR_INPUT, "a spectator sends no game inputs")
            return
        if p.gone or p.room.closed:
            return  # the room is shutting down or crashed: this socket is being closed
        seq = int(msg.seq)
        if seq <= p.last_seq:
            self.metrics.inputs_dropped.inc()
            return  # SPEC: the server ignores an s not greater than the last accepted
        try:
            queued = p.room.queue_input(p, seq, msg.data, msg.rt)
        except InputError as exc:
            self.metrics.inputs_dropped.inc()
            self._bad_message(ErrorCode.INVALID_INPUT, str(exc))
            return
        except GameError:  # the room is dead; its crash path closes this socket
            return
        if not queued:  # the room's input queue is full (we filter stale seqs above)
            self.metrics.inputs_dropped.inc()
            self._error(ErrorCode.RATE_LIMITED, "input queue full: input dropped")
            self._strike_flood("input queue full")
            return
        p.last_seq = seq

    def _leave(self) -> None:
        p = self.player
        if p is not None:
            self.left = True
            p.room.remove(p, "leave")
