"""GameClient: the asyncio Python client of the game protocol (``protocol/SPEC.md``).

Lifecycle::

    async with GameClient("ws://127.0.0.1:8000/ws", game="arena") as client:
        async for update in client.updates():       # one per applied delta
            x = client.world["x"]                   # numpy, dequantized, schema field names
            client.send_input(dx=1.0, dy=0.0)       # seq 1, 2, 3... (kept until acked)

Contracts:

* :meth:`GameClient.connect` opens the WebSocket (``ws://`` or ``wss://``; ``ssl`` context or
  ``cafile`` for a custom CA), sends HELLO (``game`` / ``room`` / ``token`` / ``name``) and
  returns once WELCOME **and** the first full snapshot were applied, within
  ``connect_timeout`` seconds per attempt. A refusal raises the matching
  :class:`~clients.errors.JoinRejected` subclass (from the ERROR message or the close code).
* Every received delta is applied atomically to :attr:`GameClient.world` (a
  :class:`~clients.world.WorldView` over :class:`protocol.replica.Replica`); then ``on_tick``
  callbacks run and :meth:`updates` iterators get a :class:`TickUpdate`. Game events go to
  ``on_event`` and :meth:`events`. Iterator queues are bounded (``queue_size``): a consumer
  that falls behind loses the oldest items (counted in :attr:`dropped_updates`), never memory.
* A dropped connection (TCP reset, close 1006/1011/4009, stall) is resumed automatically with
  the WELCOME resume token (RESUME message), after exponential backoff with full jitter,
  at most ``max_attempts`` attempts in a row. The player id stays the same; the world restarts
  from the new full snapshot. Input seqs continue.
* Close 4015 WORKER_RESTARTED (``--workers N``; SPEC.md section 7), or a RESUME answered
  4015 (the worker died mid-frame: we saw 1006): the room and token died with the worker, so
  the client joins again by HELLO (same game and options, no room id or reservation), same
  backoff and bound, then :class:`~clients.errors.WorkerRestarted`. Unacknowledged inputs
  are dropped; the player id changes and :meth:`on_rejoined` hooks run (client, old, new).
* Cluster (SPEC.md section 7): ERROR + close 4013 REDIRECT sends the same HELLO / RESUME to
  the ERROR's ``url``; 4014 MOVED (the room was handed over on a rolling deploy) RESUMEs at
  ``url`` at once with the current token (same player id, entity and room) and re-sends the
  inputs not yet acknowledged. :attr:`url` follows. More than 3 hops in a row without a
  WELCOME raise :class:`~clients.errors.RedirectLoop`.
* Nothing ever waits forever: connect and WELCOME have ``connect_timeout``; an open connection
  that delivers nothing for ``stall_timeout`` seconds (we PING every ``ping_interval``, so a
  live server always answers) is treated as a drop. A server that sends garbage (not our
  protocol, RFC 6455 violations, a delta that does not apply twice in a row) ends the client
  with :class:`~clients.errors.ServerProtocolError`; an intentional close with a code that must
  not be retried ends it with :class:`~clients.errors.Disconnected`. The terminal error is
  raised by :meth:`wait_closed`, by the iterators and stored in :attr:`error`.
* Measurements: :attr:`rtt` (last PING/PONG round trip, s), :attr:`srtt` (smoothed),
  :attr:`bytes_in_per_s` / :attr:`bytes_out_per_s` (game message payload bytes, refreshed
  about once per ``ping_interval``), totals in :attr:`stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any, TypeVar

from protocol import messages as M
from protocol.aio import WebSocket
from protocol.codes import CloseCode as _C
from protocol.errors import ConnectionClosed, WebSocketError

from .backoff import Backoff, Drop
from .errors import (
    ClientClosed,
    ClientError,
    ConnectionLost,
    ServerStalled,
    WorkerRestarted,
)
from .interpolation import InterpolationBuffer
from .join import Joiner, ssl_context
from .prediction import AckTracker, Predictor
from .receive import Subscriber
from .stats import ClientStats, GameEvent, TickUpdate
from .world import WorldView

__all__ = ["Backoff", "ClientStats", "GameClient", "GameEvent", "TickUpdate"]

log = logging.getLogger(__name__)

S = TypeVar("S")

PROTOCOL_VERSION = M.PROTOCOL_VERSION
#: The old private name of :class:`clients.backoff.Drop` (tests use it).
_Drop = Drop


class GameClient(Joiner):
    """One player's connection to a game server. See the module docstring for the contract.

    Parameters (times in seconds): ``url`` ``ws://host:port/ws`` or ``wss://``; ``game`` /
    ``room`` what to join (a room id wins; neither: the server's default game); ``token``
    for the server's auth hook; ``name`` display name; ``interest`` offer the ``"interest"``
    extension and its ``"interest/2"`` step (VIEW messages with SAME pieces: only what the
    player sees; :attr:`world` is then their union,
    with ``world.entered`` / ``left_view`` / ``despawned``); ``spectate`` join as a spectator
    (no entity, no inputs; :meth:`camera`), ``follow`` its first followed player id;
    ``ssl`` / ``cafile`` TLS trust for
    ``wss://``; ``connect_timeout`` per attempt (TCP + TLS + upgrade + WELCOME + snapshot);
    ``stall_timeout`` silence that counts as a dead connection; ``ping_interval`` PING period
    (also the bandwidth-rate refresh); ``reconnect`` and ``backoff`` (max attempts, delays);
    ``retry_connect`` whether the first :meth:`connect` also retries transport failures;
    ``on_tick(client, update)`` / ``on_event(client, event)`` callbacks (sync, must be quick);
    ``queue_size`` bound of each iterator queue; ``clock`` monotonic seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        game: str | None = None,
        room: str | None = None,
        token: str | None = None,
        name: str | None = None,
        interest: bool = True,
        spectate: bool = False,
        follow: int | None = None,
        reservation: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        cafile: str | None = None,
        connect_timeout: float = 10.0,
        stall_timeout: float = 10.0,
        ping_interval: float = 1.0,
        close_timeout: float = 2.0,
        reconnect: bool = True,
        retry_connect: bool = False,
        backoff: Backoff | None = None,
        on_tick: Callable[[GameClient, TickUpdate], None] | None = None,
        on_event: Callable[[GameClient, GameEvent], None] | None = None,
        queue_size: int = 256,
        max_pending_inputs: int = 1024,
        max_message_size: int = 16 * 2**20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if stall_timeout <= 0 or connect_timeout <= 0 or ping_interval <= 0:
            raise ValueError("timeouts and ping_interval must be > 0 seconds")
        self.url = url
        self.game = game
        self.room_id = room
        self.token = token
        self.name = name
        self.interest = interest
        self.spectate = spectate
        self.follow = follow
        #: seat reservation from ``GET /matchmake`` (:func:`clients.matchmake`); single use:
        #: cleared by the WELCOME it earns, so a later rejoin by HELLO does not resend it
        self.reservation = reservation
        self._ssl = ssl_context(ssl, cafile)
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self.ping_interval = min(ping_interval, stall_timeout / 2)
        self.close_timeout = close_timeout
        self.reconnect = reconnect
        self.retry_connect = retry_connect
        self.backoff = backoff or Backoff()
        self._on_tick: list[Callable[[GameClient, TickUpdate], None]] = []
        self._on_event: list[Callable[[GameClient, GameEvent], None]] = []
        if on_tick is not None:
            self._on_tick.append(on_tick)
        if on_event is not None:
            self._on_event.append(on_event)
        self.queue_size = queue_size
        self.max_message_size = max_message_size
        self.clock = clock

        # session state (from WELCOME)
        self.welcome: Any = None
        self.player: int | None = None
        self.entity: int | None = None
        self.room: str | None = None
        self.tick_rate = 0.0
        self.send_rate = 0.0
        self.resume_token: str | None = None
        self.world: WorldView | None = None
        self.server_tick = 0
        """Latest server tick known (from deltas and PONGs)."""

        # inputs
        self._seq = 0
        self.pending_inputs: deque[tuple[int, dict[str, Any], float]] = deque(
            maxlen=max_pending_inputs)
        """Inputs sent and not yet acknowledged: ``(seq, fields, sent_at)``, oldest first."""
        self.acks = AckTracker()
        self.acked_seq = 0
        self.send_render_tick = True
        """Send INPUT ``rt`` (:attr:`render_tick`, lag compensation) with every input."""
        self._interps: list[InterpolationBuffer] = []

        # measurements: stats, rtt, srtt, min_rtt, bytes_in_per_s, bytes_out_per_s
        self._init_meter()
        self.last_received_at = 0.0
        """Client clock (s) of the last message received; drives the stall detector."""

        self._ws: WebSocket | None = None
        self._runner: asyncio.Task[None] | None = None
        self._subs_updates: list[Subscriber] = []
        self._subs_events: list[Subscriber] = []
        self._closing = False
        self.error: BaseException | None = None
        """The terminal error once the client stopped (None after a clean close)."""
        self._resync_streak = 0  # deltas in a row that did not apply (resync, then fail)
        self._attempts_in_row = 0  # resume attempts since the last healthy delta
        self._stall_drop: _Drop | None = None  # set by the monitor before it cancels us
        self._last_error_text = ""  # the last ERROR message's text (names a refusal)
        self._last_error_url: str | None = None  # its url (4013 / 4014: where to go)
        self._hops: list[str] = []  # 4013 / 4014 followed since the last WELCOME
        self._sent_rt: dict[int, int] = {}  # seq -> INPUT rt of unacknowledged inputs (bounded)
        self._done = False  # the client stopped (closed or failed)
        self._closers: set[asyncio.Task[None]] = set()
        self._predictors: list[Predictor[Any]] = []
        self._on_rejoined: list[Callable[[GameClient, int | None, int | None], None]] = []
        self.rejoins = 0
        """Times the client joined again by HELLO after a 4015 (not in ``stats.reconnects``)."""

    # ---------------------------------------------------------------- public API

    @property
    def connected(self) -> bool:
        """True while a joined session is open."""
        ws = self._ws
        return ws is not None and ws.open and self.world is not None

    @property
    def dropped_updates(self) -> int:
        """Updates / events lost by iterator consumers that fell behind."""
        return sum(s.dropped for s in self._subs_updates + self._subs_events)

    def on_tick(self, fn: Callable[[GameClient, TickUpdate], None]) -> Callable[..., None]:
        """Register a tick callback (usable as a decorator). Runs after the delta is applied."""
        self._on_tick.append(fn)
        return fn

    def on_event(self, fn: Callable[[GameClient, GameEvent], None]) -> Callable[..., None]:
        """Register an event callback (usable as a decorator)."""
        self._on_event.append(fn)
        return fn

    def on_rejoined(
        self, fn: Callable[[GameClient, int | None, int | None], None]
    ) -> Callable[..., None]:
        """Register ``fn(client, old_player_id, new_player_id)``, run after a 4015 rejoin
        applied the new room's WELCOME and full snapshot (usable as a decorator)."""
        self._on_rejoined.append(fn)
        return fn

    def interpolation(
        self, *, delay: float = 0.1, capacity: int = 32, angles: Collection[str] = ()
    ) -> InterpolationBuffer:
        """A snapshot-interpolation buffer fed with every applied delta from now on.

        Each tick pushes the world's real (dequantized) values at server time
        ``tick / tick_rate``; only the float fields are interpolated (ints take the older
        value). Call ``buf.sample()`` once per rendered frame. The buffer uses this
        client's clock. A full snapshot after a resume does not reset it (same server clock).
        """
        buf = InterpolationBuffer(delay=delay, clock=self.clock, capacity=capacity,
                                  angles=angles)

        def feed(client: GameClient, update: TickUpdate) -> None:
            world = client.world
            if world is None or client.tick_rate <= 0:
                return
            if buf.fields is None:
                buf.fields = world.float_fields
            buf.push(update.tick / client.tick_rate, world.ids, world.values(),
                     now=update.received_at)

        self._on_tick.append(feed)
        self._interps.append(buf)
        if self.world is not None and self.world.ready and self.tick_rate > 0:
            buf.fields = self.world.float_fields
            buf.push(self.world.tick / self.tick_rate, self.world.ids, self.world.values())
        return buf

    def prediction(
        self,
        step: Callable[[S, Mapping[str, Any]], S],
        extract: Callable[[WorldView, int | None], S],
        *,
        max_age: float = 5.0,
        error: Callable[[S, S], float] | None = None,
    ) -> Predictor[S]:
        """Client-side prediction for the local player, wired to this client.

        ``extract(world, own_entity)`` returns the authoritative state (e.g. our avatar's
        ``(x, y)``) from the replicated world; ``step(state, inputs)`` is the game's rule for
        one input. From now on every :meth:`send_input` is predicted, and every applied delta
        reconciles: ``predictor.state`` = the delta's state + replay of the inputs the server
        had not applied by that tick (paired through INPUT_ACK ``s`` / ``t``).
        Call after :meth:`connect` (needs the world).
        """
        if self.world is None:
            raise ClientClosed("GameClient.prediction() needs a joined client (connect first)")
        pred: Predictor[S] = Predictor(step, extract(self.world, self.entity), clock=self.clock,
                                       max_age=max_age, error=error)

        def reconcile(client: GameClient, update: TickUpdate) -> None:
            world = client.world
            if world is None:
                return
            # (after a resume the seqs continue, so pending inputs stay valid)
            pred.reconcile(extract(world, client.entity), client.acks.acked_at(update.tick))

        self._on_tick.append(reconcile)
        self._predictors.append(pred)
        return pred

    async def __aenter__(self) -> GameClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> GameClient:
        """Join (HELLO -> WELCOME -> full snapshot) and start the background receiver.

        Raises :class:`JoinRejected` subclasses, :class:`ConnectTimeout`,
        :class:`ServerProtocolError`, :class:`ConnectionLost` (transport failure; retried
        first when ``retry_connect``), :class:`ClientClosed` if already closed.
        """
        if self._closing:
            raise ClientClosed("GameClient.connect() after close()")
        if self._runner is not None:
            raise ClientClosed("GameClient.connect() called twice")
        attempt = 0
        delays = iter(self.backoff) if self.retry_connect else iter(())
        while True:
            try:
                ws = await self._open_following(resume=False)
                break
            except Drop as drop:
                if not drop.retry:
                    raise drop.error from None
                delay = next(delays, None)
                if delay is None:
                    if attempt == 0:
                        raise drop.error from None
                    raise ConnectionLost(
                        f"could not connect after {attempt + 1} attempts: {drop.error}",
                        code=drop.error.code) from None
                attempt += 1
                await asyncio.sleep(delay)
        self._runner = asyncio.get_running_loop().create_task(self._run(ws))
        return self

    @property
    def render_tick(self) -> int | None:
        """The server tick on screen now (INPUT ``rt``, SPEC.md section 2); None before join.

        With an :meth:`interpolation` buffer that was sampled: the tick nearest to the render
        time of its last ``sample()`` (what was drawn), never above the latest tick received.
        Otherwise (no interpolation in use): the latest tick received.
        """
        world = self.world
        if world is None:
            return None
        latest = int(world.tick)
        if self.tick_rate > 0:
            for buf in self._interps:
                t = buf.last_render_time
                if t is not None:
                    return max(0, min(latest, round(t * self.tick_rate)))
        return latest
    def camera(self, x: float, y: float, w: float | None = None, h: float | None = None,
               *, follow: int | None = None) -> bool:
        """Spectators: move the free camera to centre (x, y), size (w, h) in world units
        (the server clamps it to the game's maximum view), or ``follow`` a player id.
        Returns False when it could not be sent (not connected)."""
        ws = self._ws
        if ws is None or not ws.open:
            return False
        data = M.encode(M.Camera(x=x, y=y, w=w, h=h, follow=follow))
        try:
            ws.send_nowait(data)
        except (ConnectionClosed, WebSocketError):
            return False
        self.stats.messages_out += 1
        self.stats.bytes_out += len(data)
        return True

    def send_input(self, **fields: Any) -> int:
        """Send one INPUT with the next seq (1, 2, 3...) and return that seq.

        The INPUT carries ``rt`` = :attr:`render_tick` (the tick being shown, for the server's
        lag compensation) unless :attr:`send_render_tick` is False.

        The input is kept in :attr:`pending_inputs` until an INPUT_ACK covers it. While
        reconnecting the input cannot be sent: it is dropped (counted in
        ``stats.inputs_dropped``; its seq is skipped, which the server allows).
        Raises :class:`ClientClosed` after :meth:`close`.
        """
        if self._closing or self._done:
            raise ClientClosed("send_input() on a closed GameClient") from self.error
        self._seq += 1
        seq = self._seq
        ws = self._ws
        if ws is None or not ws.open or self.world is None:
            self.stats.inputs_dropped += 1
            return seq
        rt = self.render_tick if self.send_render_tick else None
        data = M.encode(M.Input(seq, fields, rt=rt))
        try:
            ws.send_nowait(data)
        except (ConnectionClosed, WebSocketError):
            self.stats.inputs_dropped += 1
            return seq
        st = self.stats
        st.inputs += 1
        st.messages_out += 1
        st.bytes_out += len(data)
        self.pending_inputs.append((seq, fields, self.clock()))
        if rt is not None:  # re-sent with the same rt after a 4014 move
            sent_rt = self._sent_rt
            sent_rt[seq] = rt
            if len(sent_rt) > (self.pending_inputs.maxlen or 1024):
                del sent_rt[next(iter(sent_rt))]
        for pred in self._predictors:
            pred.record(seq, fields)
        return seq

    @property
    def next_seq(self) -> int:
        """The seq the next :meth:`send_input` will use."""
        return self._seq + 1

    async def updates(self) -> AsyncIterator[TickUpdate]:
        """Yield a :class:`TickUpdate` per applied delta until the client stops.

        Ends quietly after :meth:`close`; raises the terminal error if the client failed.
        """
        async for item in self._iterate(self._subs_updates):
            yield item

    async def events(self) -> AsyncIterator[GameEvent]:
        """Yield each :class:`GameEvent` until the client stops (same ending as updates)."""
        async for item in self._iterate(self._subs_events):
            yield item

    async def wait_closed(self) -> None:
        """Wait until the client stopped; raise its terminal error if it failed."""
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._runner)
        if self.error is not None:
            raise self.error

    async def close(self, *, leave: bool = True) -> None:
        """Leave the room (LEAVE, then the close handshake) and stop. Idempotent, bounded."""
        if self._closing:
            if self._runner is not None:
                with contextlib.suppress(BaseException):
                    await self._runner
            return
        self._closing = True
        ws = self._ws
        if ws is not None and ws.open and leave:
            with contextlib.suppress(Exception):
                self._send(ws, M.encode(M.Leave()))
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(BaseException):
                await self._runner
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000, "client closed"), self.close_timeout + 1)
        if self._closers:
            await asyncio.gather(*self._closers, return_exceptions=True)
        self._finish(None)

    # ---------------------------------------------------------------- running

    async def _run(self, ws: WebSocket) -> None:
        """Supervise: receive on the current connection, reconnect on drops, stop on errors."""
        try:
            while True:
                try:
                    await self._serve_connection(ws)
                    return  # only on close()
                except Drop as drop:
                    if self._closing:
                        return
                    self._ws = None
                    self._close_later(ws, 1001, "dropped")
                    if drop.redirect is not None and self.resume_token:
                        ws = await self._move(drop)
                        continue
                    if drop.error.code == _C.WORKER_RESTARTED and drop.retry and self.reconnect:
                        ws = await self._rejoin(drop.error)
                        continue
                    if not (drop.retry and self.reconnect and self.resume_token):
                        raise drop.error from None
                    log.info("game client dropped (%s); resuming", drop.error)
                    ws = await self._resume(drop.error)
        except asyncio.CancelledError:
            if not self._closing:
                self._finish(ConnectionLost("GameClient task cancelled"))
            raise
        except ClientError as exc:
            self._finish(exc)
        except Exception as exc:  # a bug (ours or a callback's): surface it, never hang
            log.exception("GameClient failed")
            self._finish(exc)

    async def _move(self, drop: _Drop) -> WebSocket:
        """4014 MOVED (or a 4013 on a joined session): RESUME at ``drop.redirect`` at once
        (no backoff: the room is already there), then re-send every input not yet
        acknowledged (the new node ignores seqs it already applied, SPEC.md section 2, so
        each input is applied exactly once). Transport trouble there falls back to the
        usual RESUME-with-backoff loop at the new URL."""
        log.info("game client: %s; following", drop.error)
        try:
            self._follow(drop)
            ws = await self._open_following(resume=True)
            self.stats.reconnects += 1
        except Drop as again:
            if not (again.retry and self.reconnect):
                raise again.error from None
            ws = await self._resume(again.error)
        self._resend_pending(ws)
        return ws

    def _resend_pending(self, ws: WebSocket) -> None:
        """Re-send the inputs in :attr:`pending_inputs` (sent, not acknowledged), oldest first."""
        acked = self.acked_seq
        sent_rt = self._sent_rt
        for old in [s for s in sent_rt if s <= acked]:
            del sent_rt[old]
        for seq, fields, _sent in list(self.pending_inputs):
            if seq <= acked:
                continue
            try:
                self._send(ws, M.encode(M.Input(seq, fields, rt=sent_rt.get(seq))))
            except (ConnectionClosed, WebSocketError):
                return
            self.stats.inputs_resent += 1

    async def _resume(self, cause: ClientError) -> WebSocket:
        """RESUME with backoff. The attempt budget spans consecutive drops: it is refilled
        only once a resumed session delivers an incremental delta, so a server that accepts
        the RESUME and drops us again right away cannot keep the client looping forever."""
        ws, last = await self._retry(cause, resume=True)
        if ws is None and last.code == _C.WORKER_RESTARTED:  # callers checked .reconnect
            # a RESUME answered 4015: our worker died mid-frame (we saw 1006, not its 4015)
            return await self._rejoin(last)
        if ws is not None:
            self.stats.reconnects += 1
            log.info("game client resumed as player %s (attempt %d)", self.player,
                     self._attempts_in_row)
            return ws
        raise ConnectionLost(
            f"connection lost and not resumed after {self.backoff.max_attempts} attempts "
            f"(last: {last})", code=last.code)

    async def _retry(self, cause: ClientError, *, resume: bool
                     ) -> tuple[WebSocket | None, ClientError]:
        """Open a connection (RESUME or HELLO) with backoff until the attempt budget is spent:
        the socket, or None and the last retryable error (at once for a RESUME answered
        4015: a restarted worker's token never works again); a final error is raised."""
        last, backoff = cause, self.backoff
        while self._attempts_in_row < backoff.max_attempts:
            delay = backoff.delay(self._attempts_in_row)
            self._attempts_in_row += 1
            await asyncio.sleep(delay)
            try:
                return await self._open_following(resume=resume), last
            except Drop as drop:
                if not drop.retry:
                    raise drop.error from None
                last = drop.error
                if resume and last.code == _C.WORKER_RESTARTED:
                    break
        return None, last

    async def _rejoin(self, cause: ClientError) -> WebSocket:
        """4015: HELLO again (the room id named the dead room, the reservation was single
        use), with backoff, sharing :meth:`_resume`'s attempt budget; exhausted:
        :class:`WorkerRestarted`. Unacknowledged inputs are dropped (their world is gone)."""
        old = self.player
        self.room_id = self.reservation = self.resume_token = None
        self.stats.inputs_dropped += len(self.pending_inputs)
        self.pending_inputs.clear()
        self._sent_rt.clear()
        self.acks.reset()
        for pred in self._predictors:
            pred.reset(pred.authoritative)  # the next delta reconciles to the new world
        ws, last = await self._retry(cause, resume=False)
        if ws is not None:
            self.rejoins += 1
            log.info("game client rejoined after worker restart old_player=%s player=%s "
                     "attempt=%d", old, self.player, self._attempts_in_row)
            for fn in self._on_rejoined:
                fn(self, old, self.player)
            return ws
        raise WorkerRestarted(
            f"server worker restarted (close 4015) and rejoining by HELLO failed "
            f"{self.backoff.max_attempts} attempts (last: {last})", code=last.code)

    async def _serve_connection(self, ws: WebSocket) -> None:
        """Receive and dispatch until the connection ends; raises :class:`_Drop` (or returns
        when we are closing). The monitor cancels this task when the server stalls.

        Steady state uses the WebSocket's callback receive mode
        (:meth:`protocol.aio.WebSocket.set_message_handler`): each message is accounted and
        handled synchronously from the transport's ``data_received`` (no future and no task
        switch per message). This task only waits for the outcome: the first exception of
        the receive path (a :class:`_Drop`, or a bug in a callback), or the close.
        """
        me = asyncio.current_task()
        assert me is not None
        self._stall_drop = None
        loop = asyncio.get_running_loop()
        monitor = loop.create_task(self._monitor(ws, me))
        outcome: asyncio.Future[BaseException] = loop.create_future()
        account = self._account
        receive = self._receive
        clock = self.clock

        def on_message(data: str | bytes) -> None:
            now = clock()
            try:
                receive(account(data, now), now)
            except Exception as exc:
                # stop here, as the recv() loop did: later messages stay unread
                ws.set_message_handler(None)
                if not outcome.done():
                    outcome.set_result(exc)

        def on_close(exc: ConnectionClosed) -> None:
            if not outcome.done():
                outcome.set_result(exc)

        try:
            ws.set_message_handler(on_message, on_close=on_close)
            try:
                exc = await outcome
            except asyncio.CancelledError:
                drop = self._stall_drop
                if drop is None or self._closing:
                    raise
                me.uncancel()
                raise drop from None
            if isinstance(exc, ConnectionClosed):
                if self._closing:
                    return
                raise self._close_drop(exc.code, exc.reason) from None
            raise exc
        finally:
            ws.set_message_handler(None)
            monitor.cancel()

    async def _monitor(self, ws: WebSocket, receiver: asyncio.Task[Any]) -> None:
        """PING every ``ping_interval``; refresh rates; detect a stall (nothing received for
        ``stall_timeout``): then cancel ``receiver`` with the reason in ``_stall_drop``."""
        interval = self.ping_interval
        while ws.open:
            await asyncio.sleep(interval)
            now = self.clock()
            self._refresh_rates(now)
            if now - self.last_received_at > self.stall_timeout:
                self._stall_drop = Drop(ServerStalled(
                    f"no message from the server for {now - self.last_received_at:.1f}s "
                    f"(stall timeout {self.stall_timeout}s)"), retry=True)
                receiver.cancel()
                return
            with contextlib.suppress(ConnectionClosed, WebSocketError):
                self._send(ws, M.encode(M.Ping(now)))

    def _finish(self, error: BaseException | None) -> None:
        """The client stopped (``error`` None: closed by us). Wakes every iterator."""
        if not self._done:
            self._done = True
            if error is not None and not self._closing:
                self.error = error
                log.info("game client stopped: %s", error)
        for sub in self._subs_updates + self._subs_events:
            sub.wake()

    async def _iterate(self, subs: list[Subscriber]) -> AsyncIterator[Any]:
        sub = Subscriber(self.queue_size)
        subs.append(sub)
        loop = asyncio.get_running_loop()
        try:
            while True:
                if sub.items:
                    yield sub.items.popleft()
                    continue
                if self._done or self._closing:
                    if self.error is not None:
                        raise self.error
                    return
                sub.waiter = loop.create_future()
                try:
                    await sub.waiter
                finally:
                    sub.waiter = None
        finally:
            subs.remove(sub)
