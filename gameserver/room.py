"""Rooms: one game simulation each, ticked and streamed on the shared event loop.

A :class:`Room` owns one :class:`gameserver.simulation.Simulation` and the players in it
(:class:`Player`, which outlive their connection during the resume grace). It ticks with
``loop.call_at`` on the deadlines of a :class:`gameserver.ticker.TickClock` (drift-free, never
``asyncio.sleep`` accumulation), so many rooms share one event loop without threads.

Streaming contract (each send tick, see :meth:`Room._send`):

* the world is snapshotted ONCE and kept in a bounded ring of recent snapshots (at most
  ``ServerConfig.snapshot_ring`` entries, and only those still some skipped client's
  baseline: in the steady state just the latest one);
* connected players are grouped by the tick of the last delta written to their socket
  (their *baseline*); per distinct baseline the delta is encoded and framed ONCE and the same
  bytes are written to every socket of that group (steady state: one encode per room);
  a player with no baseline, or whose baseline fell out of the ring, gets a full snapshot;
* a socket whose transport buffer holds more than ``high_water`` bytes is skipped (nothing is
  written, so memory stays bounded); when it drains it receives ONE delta from its own last
  tick (or a full snapshot); skipped continuously for more than ``slow_timeout`` seconds it is
  closed with 4009;
* INPUT_ACKs (last applied input seq, per player) are small per-client frames written before
  the delta; one is dropped for a skipped socket (the next one supersedes it);
* game events are written after the delta, and are reliable and ordered (``Game.send``): a
  player whose socket is skipped, or who dropped and may still RESUME, keeps them in a
  bounded backlog (``event_backlog`` events, ``event_backlog_bytes``) delivered in order, after
  its catch-up delta or full snapshot, once it can take them. A player whose backlog would
  outgrow that bound is removed from the room (close 4009 if still connected; a RESUME then
  gets 4005): an event is never silently lost from a live session.

Game code errors: an exception out of the simulation (the game developer's bug) is logged
with its traceback at ERROR, the room's players get ERROR 4010 and close 4010, and the room is
disposed; other rooms are unaffected.

:class:`gameserver.manager.RoomManager` holds every room, the game registry and the
resume-token index, and does matchmaking.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gameserver.metrics import ServerMetrics
from gameserver.replay.recorder import PendingState, Recorder, replay_path
from gameserver.rules import Reject
from gameserver.simulation import GameError, RoomFull, Simulation
from gameserver.ticker import TickClock
from gameserver.viewstream import ViewStream
from protocol import messages as M
from protocol.aio import WebSocket
from protocol.codes import CloseCode, ErrorCode
from protocol.delta import encode_delta
from protocol.frames import prepare_message
from protocol.wireschema import WireSchema

if TYPE_CHECKING:
    from gameserver.manager import RoomManager

__all__ = ["JoinError", "Player", "Room", "send_small"]

log = logging.getLogger(__name__)

#: Events kept per room between send ticks (oldest dropped beyond it).
MAX_PENDING_EVENTS = 1024


class JoinError(Exception):
    """A join / resume refused; ``code`` is both the ERROR code and the close code (4001-4006)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(eq=False)
class Player:
    """A player seated in a room; survives connection drops for the resume grace.

    ``last_sent``: tick of the last delta written to the current socket (``None``: the next
    one must be a full snapshot). ``skipped_since``: loop time when the socket started being
    skipped for backpressure (``None`` when not skipped).
    """

    player_id: int
    name: str
    room: Room
    resume_token: str
    entity: int | None = None
    ws: WebSocket | None = None
    last_sent: int | None = None
    skipped_since: float | None = None
    acked_seq: int = 0
    last_seq: int = 0
    grace: asyncio.TimerHandle | None = field(default=None, repr=False)
    gone: bool = False
    #: event frames held while the socket is skipped or gone (bounded; see the module doc)
    backlog: deque[bytes] = field(default_factory=deque, repr=False)
    backlog_bytes: int = 0
    evicting: bool = False  # its backlog overflowed: it leaves at the next loop turn
    # interest management and spectators (gameserver.viewstream)
    sim: Any = field(default=None, repr=False)   # the game's rules.Player (None: spectator)
    spectator: bool = False
    interest: bool = False          # negotiated the "interest" extension (VIEW messages)
    vsame: bool = False             # and "interest/2" (SAME pieces; SPEC.md section 11)
    camera: tuple[float, float, float, float] | None = None  # spectator: x, y, w, h
    follow: int | None = None       # spectator: player id whose entity the camera follows
    vrect: int = field(default=-1, repr=False)   # visible cells (Grid.code), -1: none
    vchans: tuple[int, ...] | None = field(default=None, repr=False)
    vfresh: tuple[int, ...] = field(default=(), repr=False)  # sent as full pieces last VIEW
    legacy_sent: Any = field(default=None, repr=False)
    legacy_tick: int | None = None
    legacy_chans: tuple[int, ...] | None = field(default=None, repr=False)
    extra_sent: Any = field(default=None, repr=False)

    @property
    def team(self) -> int:
        return int(getattr(self.sim, "team", 0) or 0)


def _close_soon(tasks: set[asyncio.Task[None]], ws: WebSocket, code: int, reason: str) -> None:
    """Close ``ws`` in the background (keeps a reference so the task is not collected)."""
    if ws.closed:
        return
    task = asyncio.get_running_loop().create_task(ws.close(code, reason))
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def send_small(ws: WebSocket, data: bytes, metrics: ServerMetrics, high_water: int) -> bool:
    """Write one small message unless the socket is closed or backed up (then drop it)."""
    if not ws.open or ws.buffered_bytes > high_water:
        return False
    ws.send_nowait(data)
    metrics.bytes_out.inc(len(data) + 2)
    metrics.messages_out.inc()
    return True


class Room:
    """One game instance; see the module docstring for the tick and streaming contract."""

    #: Seats promised to matchmaker reservations not yet claimed (cluster/matchmake.py keeps
    #: it): a join without a reservation sees the room full at ``players + held``.
    held: int = 0

    def __init__(self, manager: RoomManager, room_id: str, game: str, game_cls: type[Any],
                 *, seed: int, create: bool = True) -> None:
        cfg = manager.config
        self.manager = manager
        self.id = room_id
        self.game = game
        self.metrics = manager.metrics
        self.config = cfg
        rate = cfg.tick_rate or getattr(game_cls, "tick_rate", None) or 30
        self.tick_rate = int(rate)
        send = cfg.send_rate or getattr(game_cls, "send_rate", None) or self.tick_rate
        self.send_rate = int(send)
        self.capacity = int(cfg.max_players or getattr(game_cls, "max_players", None) or 16)
        if self.capacity != getattr(game_cls, "max_players", None):
            # The operator's --max-players overrides the class's (the simulation enforces it).
            game_cls = type(game_cls.__name__, (game_cls,), {"max_players": self.capacity,
                                                              "__module__": game_cls.__module__})
        self.seed = seed
        self.sim = Simulation(game_cls, seed=seed, config=dict(cfg.room_config),
                              tick_rate=self.tick_rate, history=cfg.history, create=create)
        #: player id -> (last applied input seq, tick it was applied in)
        self.acks: dict[int, tuple[int, int]] = {}
        self.send_rate = min(self.send_rate, self.tick_rate)
        self.clock = TickClock(self.tick_rate, send_rate=self.send_rate)
        self.players: dict[int, Player] = {}
        self.ring: OrderedDict[int, Any] = OrderedDict()
        self.events: list[tuple[bytes, Any]] = []
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._dispose: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._tasks = manager.tasks
        self.wire_schema: WireSchema = self.sim.world.schema.wire
        self.input_schema: Any = game_cls.inputs.to_wire()
        #: the replay recording of this room (``--record DIR``), else None
        self.recorder: Recorder | None = None
        #: interest management (None: every client gets the whole world, the default path)
        self.view_stream: ViewStream | None = None
        if getattr(game_cls, "interest", None) is not None:
            self.view_stream = ViewStream(self, game_cls.interest, self.wire_schema)
        ms = cfg.max_spectators
        self.max_spectators = int(ms if ms is not None
                                  else getattr(game_cls, "max_spectators", 0) or 0)
        self.spectators = 0
        if cfg.record_dir is not None and create:  # (a room restored from a handover starts
            self.recorder = _start_recording(self, game_cls)  # its file in start_room)

    # ----------------------------------------------------------------------------- info

    @property
    def tick(self) -> int:
        return int(self.sim.tick)

    @property
    def full(self) -> bool:
        return len(self.players) - self.spectators >= self.capacity

    def info(self) -> dict[str, object]:
        """The ``/rooms`` entry: id, game, players, capacity, tick (and spectators, if any)."""
        out: dict[str, object] = {"id": self.id, "game": self.game,
                                  "players": len(self.players) - self.spectators,
                                  "capacity": self.capacity, "tick": self.tick}
        if self.spectators:
            out["spectators"] = self.spectators
        return out

    # ------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.clock.start(self._loop.time())
        self._timer = self._loop.call_at(self.clock.next_deadline, self._on_timer)
        self._schedule_dispose()

    def _schedule_dispose(self) -> None:
        if self._dispose is not None:
            self._dispose.cancel()
            self._dispose = None
        if not self.players and not self.closed:
            self._dispose = self._loop.call_later(self.config.empty_room_ttl, self._dispose_empty)

    def _dispose_empty(self) -> None:
        self._dispose = None
        if not self.players and not self.closed:
            log.info("room disposed (empty) room=%s game=%s", self.id, self.game)
            self._stop()

    def _stop(self, reason: str = "closed") -> None:
        self.closed = True
        if self.recorder is not None:
            self.recorder.close(reason)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._dispose is not None:
            self._dispose.cancel()
            self._dispose = None
        for p in self.players.values():
            if p.grace is not None:
                p.grace.cancel()
                p.grace = None
            self.manager.forget(p)
        self.ring.clear()
        self.manager.remove_room(self)

    def shutdown(self, code: int = CloseCode.GOING_AWAY, reason: str = "server shutting down",
                 ) -> None:
        """Close every client with ``code``, run on_leave for each player, stop the room."""
        if self.closed:
            return
        for p in list(self.players.values()):
            p.gone = True
            if p.ws is not None:
                _close_soon(self._tasks, p.ws, code, reason)
            if not p.spectator:
                self._leave_sim(p, "shutdown")
        self._stop("shutdown")
        self.players.clear()
        self.metrics.players.set(self.manager.player_count())

    def crash(self, exc: BaseException) -> None:
        """Game code raised: log it (ERROR: the game's bug), close its players with 4010."""
        log.error("room crashed: game code raised, closing room=%s game=%s tick=%d",
                  self.id, self.game, self.tick, exc_info=exc)
        self.metrics.room_crashes.inc()
        err = M.encode(M.Error(int(CloseCode.GAME_CRASHED),
                               f"room {self.id} closed: the game code crashed"))
        for p in list(self.players.values()):
            p.gone = True
            if p.ws is not None and p.ws.open:
                send_small(p.ws, err, self.metrics, 1 << 62)
                _close_soon(self._tasks, p.ws, CloseCode.GAME_CRASHED, "game crashed")
        self._stop("crash")
        self.players.clear()
        self.metrics.players.set(self.manager.player_count())

    # ------------------------------------------------------------------------ players

    def join(self, ws: WebSocket, hello: Any, name: str, *, interest: bool = False) -> Player:
        """Seat a new player (on_join runs); raise :class:`JoinError` 4002/4006."""
        if self.closed:
            raise JoinError(ErrorCode.UNKNOWN_ROOM, f"room {self.id} is closed")
        if self.full:
            raise JoinError(ErrorCode.ROOM_FULL, f"room {self.id} is full ({self.capacity})")
        pid = self.manager.new_player_id(self.players)
        try:
            sp = self.sim.join(pid, name, hello)
        except RoomFull:
            raise JoinError(ErrorCode.ROOM_FULL, f"room {self.id} is full") from None
        except Reject as exc:
            raise JoinError(ErrorCode.REJECTED, exc.reason or "rejected by the game") from None
        except GameError as exc:
            self.crash(exc)
            raise JoinError(ErrorCode.REJECTED, "the game crashed while joining") from None
        entity = getattr(sp, "entity", None)
        p = Player(pid, name, self, self.manager.new_token(),
                   entity=int(entity) if entity else None, ws=ws)
        p.sim = sp
        p.interest = bool(interest)
        self.players[pid] = p
        self.manager.remember(p)
        self._schedule_dispose()
        self.metrics.players.set(self.manager.player_count())
        log.debug("player joined room=%s player=%d", self.id, pid)
        return p

    def join_spectator(self, ws: WebSocket, name: str, *, interest: bool = False,
                       follow: int | None = None) -> Player:
        """Seat a spectator: no entity, no game hooks, not counted in ``max_players``;
        :class:`JoinError` 4025 when the room has ``max_spectators`` already (or none)."""
        if self.closed:
            raise JoinError(ErrorCode.UNKNOWN_ROOM, f"room {self.id} is closed")
        if self.spectators >= self.max_spectators:
            raise JoinError(ErrorCode.SPECTATORS_FULL,
                            f"room {self.id} admits no more spectators ({self.max_spectators})")
        pid = self.manager.new_player_id()
        p = Player(pid, name, self, self.manager.new_token(), ws=ws)
        p.spectator = True
        p.interest = bool(interest)
        p.follow = follow
        if self.view_stream is not None and follow is None:
            g = self.view_stream.grid  # start at the centre of the world
            p.camera = ((g.x0 + g.x1) / 2, (g.y0 + g.y1) / 2, g.view[0], g.view[1])
        self.players[pid] = p
        self.spectators += 1
        self.manager.remember(p)
        self._schedule_dispose()
        log.debug("spectator joined room=%s player=%d", self.id, pid)
        return p

    def set_camera(self, p: Player, x: float, y: float, w: float | None, h: float | None,
                   follow: int | None) -> None:
        """A spectator's CAMERA: free camera at (x, y) of size (w, h), or follow a player.
        Sizes and positions are clamped to the game's maximum view when streamed."""
        p.follow = follow if follow else None
        cw = w if w is not None else (p.camera[2] if p.camera else float("nan"))
        ch = h if h is not None else (p.camera[3] if p.camera else float("nan"))
        p.camera = (float(x), float(y), float(cw), float(ch))

    def attach(self, p: Player, ws: WebSocket) -> WebSocket | None:
        """Bind ``p`` to a new socket (RESUME); returns the replaced socket, if any."""
        old = p.ws
        if p.grace is not None:
            p.grace.cancel()
            p.grace = None
        p.ws = ws
        p.last_sent = None  # a full snapshot: the new socket has no state
        p.vchans = None     # and a reset VIEW
        p.skipped_since = None
        p.acked_seq = 0
        return old if old is not None and old is not ws else None

    def detach(self, p: Player, ws: WebSocket) -> None:
        """``ws`` dropped: keep the player for the resume grace, then on_leave."""
        if p.ws is not ws or p.gone or self.closed:
            return
        p.ws = None
        p.last_sent = None
        grace = self.config.resume_grace
        p.grace = self._loop.call_later(grace, self._grace_expired, p)
        log.debug("player dropped, grace started room=%s player=%d grace=%.1fs",
                  self.id, p.player_id, grace)

    def _grace_expired(self, p: Player) -> None:
        p.grace = None
        if p.ws is None and not p.gone:
            self.remove(p, "timeout")

    def remove(self, p: Player, reason: str) -> None:
        """The player leaves for good (LEAVE, grace expired): on_leave runs now."""
        if p.gone:
            return
        p.gone = True
        if p.grace is not None:
            p.grace.cancel()
            p.grace = None
        self.players.pop(p.player_id, None)
        self.acks.pop(p.player_id, None)
        self.manager.forget(p)
        if p.spectator:
            self.spectators -= 1
        elif not self.closed:
            self._leave_sim(p, reason)
        self.metrics.players.set(self.manager.player_count())
        self._schedule_dispose()

    def _leave_sim(self, p: Player, reason: str) -> None:
        try:
            self.sim.leave(p.player_id, reason)
        except Exception as exc:
            if not self.closed:
                self.crash(exc)

    def queue_input(self, p: Player, seq: int, data: Any, rt: int | None = None) -> bool:
        """Queue one input for the next tick: True if queued, False if dropped (stale or the
        queue is full); raises :class:`gameserver.inputs.InputError` for an invalid one.
        ``rt`` is the INPUT's render tick: clamped into the history window by the
        simulation, each clamp counted in ``gameserver_render_tick_clamped_total``."""
        sim = self.sim
        clamped = sim.clamped_render_ticks
        queued = sim.queue_input(p.player_id, seq, data, rt)
        if sim.clamped_render_ticks != clamped:
            self.metrics.render_tick_clamped.inc()
        return queued

    # -------------------------------------------------------------------------- ticking

    def _on_timer(self) -> None:
        self._timer = None
        if self.closed:
            return
        loop = self._loop
        clock = self.clock
        skipped_before = clock.stats.skipped
        n = clock.due(loop.time())
        m = self.metrics
        send = False
        period = clock.period
        for i in range(n):
            t0 = time.perf_counter()
            c0 = time.thread_time()
            try:
                res = self.sim.step()
                if self.recorder is not None:
                    self.recorder.after_tick()  # never raises
                if res.acks:
                    acks = self.acks
                    rt = res.tick
                    for pid, seq in res.acks.items():
                        acks[pid] = (seq, rt)
                if res.events:
                    self._collect_events()
            except Exception as exc:
                self.crash(exc)
                return
            work = time.perf_counter() - t0
            m.ticks.inc()
            if clock.is_send_tick(self.tick):
                send = True
            if send and i == n - 1:
                t1 = time.perf_counter()
                try:
                    self._send()
                except Exception as exc:  # our bug, but contain it to this room
                    self.crash(exc)
                    return
                sw = time.perf_counter() - t1
                m.send_work.observe(sw)
                m.send_recent.observe(sw)
                work += sw
            clock.stats.record_work(work)
            m.tick_work.observe(work)
            m.tick_recent.observe(work)
            m.tick_cpu_recent.observe(time.thread_time() - c0)
            if work > period:
                m.overruns.inc()
        skipped = clock.stats.skipped - skipped_before
        if skipped:
            m.overruns.inc(skipped)
        self._timer = loop.call_at(clock.next_deadline, self._on_timer)

    def _collect_events(self) -> None:
        drained = self.sim.drain_events()
        if not drained:
            return
        for ev in drained:
            self.events.append((M.encode(M.Event(ev.kind, ev.data)), ev.to))
        if len(self.events) > MAX_PENDING_EVENTS:
            del self.events[: len(self.events) - MAX_PENDING_EVENTS]

    def _send(self) -> None:
        """One send tick: snapshot once, one encode per distinct baseline, shared bytes."""
        tick = self.tick
        m = self.metrics
        snap = self.sim.world.snapshot()
        ring = self.ring
        ring[tick] = snap
        m.send_ticks.inc()
        now = self._loop.time()
        hw = self.config.high_water
        groups: dict[int | None, list[Player]] = {}
        oldest = tick  # oldest baseline a skipped client will need when it catches up
        acks = self.acks
        flush: list[Player] = []  # can take events again and hold some
        sent_small = 0
        small_bytes = 0
        for p in self.players.values():
            ws = p.ws
            if ws is None:
                continue
            if ws.buffered_bytes > hw:
                self._skip(p, ws, now)
                if p.last_sent is not None and p.last_sent < oldest:
                    oldest = p.last_sent
                continue
            if not ws.open:
                continue
            p.skipped_since = None
            if p.backlog:
                flush.append(p)
            ack = acks.get(p.player_id)
            if ack is not None and ack[0] > p.acked_seq:
                seq = ack[0]
                data = M.encode(M.InputAck(seq, ack[1]))
                ws.send_nowait(data)
                p.acked_seq = seq
                sent_small += 1
                small_bytes += len(data) + 2
            base = p.last_sent
            if base is not None and base not in ring:
                base = None
            g = groups.get(base)
            if g is None:
                groups[base] = [p]
            else:
                g.append(p)
        out_bytes = small_bytes
        out_msgs = sent_small
        if self.view_stream is not None:
            viewers = [p for members in groups.values() for p in members]
            vb, vm = self.view_stream.send(tick, snap, viewers)
            out_bytes += vb
            out_msgs += vm
            groups = {}
        for base_tick, members in groups.items():
            base = ring[base_tick] if base_tick is not None else None
            payload = encode_delta(base, snap, tick=tick,
                                   base_tick=base_tick if base_tick is not None else 0)
            frame = prepare_message(payload)
            m.encodes.inc()
            flen = len(frame)
            for p in members:
                ws = p.ws
                if ws is not None and ws.write_prepared(frame):
                    p.last_sent = tick
                    out_bytes += flen
                    out_msgs += 1
        # events after the delta: first what players who can take them again were holding,
        # then this tick's (held, in order, for a skipped or dropped player)
        for p in flush:
            ws = p.ws
            if ws is None:
                continue
            held = p.backlog
            while held:
                frame = held[0]
                if not ws.write_prepared(frame):
                    break  # closing: keep the rest for a RESUME
                held.popleft()
                p.backlog_bytes -= len(frame)
                out_bytes += len(frame)
                out_msgs += 1
        if self.events:
            events, self.events = self.events, []
            for data, to in events:
                targets = self._targets(to)
                frame = prepare_message(data)
                for p in targets:
                    ws = p.ws
                    if (ws is not None and p.skipped_since is None and not p.backlog
                            and ws.write_prepared(frame)):
                        out_bytes += len(frame)
                        out_msgs += 1
                    elif not p.gone and not p.evicting:
                        self._hold(p, frame)
        m.bytes_out.inc(out_bytes)
        m.messages_out.inc(out_msgs)
        # Keep only the snapshots some client may still need as its baseline (steady state:
        # just this tick's), and never more than snapshot_ring of them (bounded memory).
        limit = self.config.snapshot_ring
        while ring and (len(ring) > limit or next(iter(ring)) < oldest):
            ring.popitem(last=False)

    def _hold(self, p: Player, frame: bytes) -> None:
        """Keep an event frame for ``p`` until it can take it; past the bound it leaves."""
        cfg = self.config
        if (len(p.backlog) < cfg.event_backlog
                and p.backlog_bytes + len(frame) <= cfg.event_backlog_bytes):
            p.backlog.append(frame)
            p.backlog_bytes += len(frame)
            return
        # It cannot take its events: rather than lose one silently, the session ends.
        log.info("event backlog full, removing player room=%s player=%d held=%d bytes=%d",
                 self.id, p.player_id, len(p.backlog), p.backlog_bytes)
        self.metrics.event_backlog_overflows.inc()
        p.evicting = True
        p.backlog.clear()
        p.backlog_bytes = 0
        if p.ws is not None:
            _close_soon(self._tasks, p.ws, CloseCode.TOO_SLOW, "too slow: event backlog full")
        self._loop.call_soon(self.remove, p, "event backlog full")

    def _targets(self, to: Any) -> Iterable[Player]:
        if to is None:
            return list(self.players.values())
        players = self.players
        return [players[pid] for pid in to if pid in players]

    def _skip(self, p: Player, ws: WebSocket, now: float) -> None:
        self.metrics.slow_skips.inc()
        if p.skipped_since is None:
            p.skipped_since = now
        elif now - p.skipped_since > self.config.slow_timeout:
            log.info("client too slow, closing 4009 room=%s player=%d buffered=%d",
                     self.id, p.player_id, ws.buffered_bytes)
            self.metrics.slow_evictions.inc()
            p.skipped_since = None
            _close_soon(self._tasks, ws, CloseCode.TOO_SLOW, "too slow")


def _start_recording(room: Room, game_cls: type[Any], *,
                     restored: bytes | PendingState | None = None,
                     extra: dict[str, Any] | None = None) -> Recorder | None:
    """Open the room's replay file (``--record``); on failure log once and record nothing.
    ``restored``/``extra``: a room restored from a handover (``Recorder``'s ``restored``,
    more header fields; gameserver.handover.state)."""
    cfg = room.config
    assert cfg.record_dir is not None
    try:
        for attempt in range(100):  # another process (--workers) may take the same name
            path = replay_path(Path(cfg.record_dir), room.id)
            try:
                rec = Recorder(room.sim, game_cls, path, send_rate=room.send_rate,
                               keyframe_seconds=cfg.record_keyframe,
                               extra={"room": room.id,
                                      # lag compensation's window (replay must clamp alike)
                                      "history": getattr(cfg, "history", None),
                                      **(extra or {})}, restored=restored)
                break
            except FileExistsError:
                if attempt == 99:
                    raise
    except Exception as exc:  # a full disk must not keep the room from running
        log.error("cannot record room=%s dir=%s error=%r", room.id, cfg.record_dir, exc)
        return None
    log.info("recording room=%s path=%s", room.id, path)
    return rec
