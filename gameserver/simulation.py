"""One room's simulation, I/O-free: players join and leave, inputs queue, ``step()`` ticks.

The server owns the sockets, the clock and the asyncio loop; it calls into a
:class:`Simulation` from one task, in this order per tick::

    sim = Simulation(Arena, seed=1234, config={"critters": 500})
    player = sim.join(7, "ann", hello)         # may raise Reject / RoomFull
    sim.queue_input(7, seq, data)              # may raise InputError (client's fault)
    result = sim.step()                         # one tick; acks in result.acks
    for event in sim.drain_events(): ...        # the game's EVENT messages and their targets
    snapshot = sim.world.snapshot()             # for the delta encoder

Nothing here reads a clock except to *measure* work time (``clock``, default
``time.perf_counter``); nothing sleeps, nothing does I/O. Given the same seed, config, tick
rate and the same sequence of join / leave / queue_input / step calls, a room evolves
bit-identically, which is what :attr:`Simulation.input_log` and :func:`replay` use.

Input queue bounds and drop policy. At most ``max_queued`` inputs wait for the next tick in a
room, and at most ``max_queued_per_player`` from one player. An input arriving when either
bound is reached is dropped (tail drop: the queue keeps the older inputs, which the client
already counts on being applied in order): :meth:`Simulation.queue_input` returns ``False`` and
``dropped_inputs`` counts it; the server may answer ERROR 4 (input rate limited). An input
whose ``seq`` is not greater than the player's last accepted one (a duplicate, or a resend after
RESUME) is ignored the same way and counted in ``stale_inputs``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from gameserver.history import WorldHistory, history_length
from gameserver.inputs import InputBatch, InputError
from gameserver.rules import Game, GameEvent, Player, Reject, check_game_class
from gameserver.schema import WorldSchema
from gameserver.world import World

__all__ = [
    "GameError",
    "LogEntry",
    "RoomFull",
    "Simulation",
    "TickResult",
    "replay",
]

MAX_SEQ: Final[int] = 2**32 - 1


class GameError(Exception):
    """The game's code raised inside a hook (a bug in the game, not the client's fault).

    ``hook`` names the hook (``"on_tick"``...), ``tick`` the simulation tick, ``original`` the
    exception (also ``__cause__``). The server closes the room with 4010.
    """

    def __init__(self, hook: str, tick: int, original: BaseException) -> None:
        super().__init__(f"game code raised in {hook} at tick {tick}: {original!r}")
        self.hook = hook
        self.tick = tick
        self.original = original


class RoomFull(Reject):
    """``join`` refused because the room already holds ``max_players`` (close 4002)."""


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one :meth:`Simulation.step` did.

    ``tick`` the tick number just completed (1, 2, ...); ``work`` seconds spent in the step;
    ``inputs`` how many inputs the game received; ``dropped`` inputs dropped (queue bounds) since
    the previous step; ``acks`` the players whose last applied input advanced in this tick:
    ``{player_id: seq}`` (send each one INPUT_ACK ``{"s": seq, "t": tick}``);
    ``events`` how many game events are pending (see :meth:`Simulation.drain_events`).
    """

    tick: int
    work: float
    inputs: int
    dropped: int
    acks: dict[int, int]
    events: int


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One recorded call, for deterministic replay.

    ``tick`` is the tick the call precedes (it happened after tick ``tick - 1`` completed);
    ``kind`` is ``"join"`` (``data`` = ``(name, hello)``, hello without its ``"token"``),
    ``"leave"`` (``data`` = reason) or ``"input"`` (``seq`` and ``data`` = the validated
    input dict, ``render_tick`` = the render tick the game saw for it: the client's INPUT
    ``rt`` after clamping, or the default; always set for inputs, ``None`` otherwise).
    """

    tick: int
    kind: str
    player: int
    seq: int = 0
    data: Any = None
    render_tick: int | None = None


class Simulation:
    """One room: a :class:`~gameserver.rules.Game` instance, its World, players and inputs.

    Public state: ``tick`` (last completed tick), ``acks`` (player -> last applied input seq),
    ``ack_ticks`` (player -> tick that input was applied in), ``players``, ``world``, ``game``,
    counters ``dropped_inputs`` / ``stale_inputs`` / ``invalid_inputs``.

    Parameters: ``game_cls`` the game; ``seed`` (int >= 0) seeds ``game.rng``; ``config`` is
    passed to ``on_create`` (a copy; default ``{}``); ``tick_rate`` overrides the game's
    default (1..240 Hz; ``dt = 1 / tick_rate``); ``max_players`` overrides the game's room
    capacity; ``max_queued`` / ``max_queued_per_player``
    bound the input queue (module docstring); ``record`` keeps the last ``record`` calls in
    :attr:`input_log` (0: off; replay needs the log from the start, see ``log_complete``);
    ``clock`` measures work time only; ``history`` overrides the game's ``Game.history``
    (seconds of past world states kept for lag compensation, 0..10; 0: off).

    Render ticks (lag compensation): :meth:`queue_input` takes the client's INPUT ``rt``
    (the tick it was rendering) and clamps it into the history window ``world.history.oldest
    .. tick`` (a client cannot claim the far past or the future); clamps are counted in
    ``clamped_render_ticks``. Without ``rt``, or without history, the render tick is
    ``tick`` (the latest committed state: no compensation).

    Misuse by the caller (unknown player, duplicate join, bad ids) raises ``KeyError`` /
    ``ValueError``; a client's bad input raises :class:`~gameserver.inputs.InputError`; the
    game refusing a join raises :class:`~gameserver.rules.Reject` (:class:`RoomFull` when
    full); the game's code failing raises :class:`GameError`, after which the room is dead
    (every further call raises it again).
    """

    def __init__(
        self,
        game_cls: type[Game],
        *,
        seed: int,
        config: Mapping[str, Any] | None = None,
        tick_rate: int | None = None,
        max_players: int | None = None,
        max_queued: int = 4096,
        max_queued_per_player: int = 32,
        record: int = 0,
        clock: Callable[[], float] = time.perf_counter,
        history: float | None = None,
    ) -> None:
        check_game_class(game_cls)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        rate = game_cls.tick_rate if tick_rate is None else tick_rate
        if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= 240:
            raise ValueError(f"tick_rate must be an int in 1..240, got {rate!r}")
        cap = game_cls.max_players if max_players is None else max_players
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ValueError(f"max_players must be an int >= 1, got {cap!r}")
        if max_queued < 1 or max_queued_per_player < 1:
            raise ValueError("input queue bounds must be >= 1")
        if record < 0:
            raise ValueError("record must be >= 0")
        hist_len = history_length(game_cls.history if history is None else history, rate)
        self.game_cls = game_cls
        self.seed = seed
        self.config: dict[str, Any] = dict(config or {})
        self.tick_rate = rate
        self.max_players = cap
        self.dt = 1.0 / rate
        self.tick = 0
        self.acks: dict[int, int] = {}
        self.ack_ticks: dict[int, int] = {}
        self.dropped_inputs = 0
        self.stale_inputs = 0
        self.invalid_inputs = 0
        self.clamped_render_ticks = 0
        self._clock = clock
        self._dead: GameError | None = None
        self._dropped_since = 0

        # Input queue: preallocated columns filled one row per queue_input.
        self._schema = game_cls.inputs
        self._names = tuple(self._schema)
        self._cap = max_queued
        self._per_player = max_queued_per_player
        self._q_player = np.zeros(max_queued, np.uint32)
        self._q_seq = np.zeros(max_queued, np.uint32)
        self._q_rt = np.zeros(max_queued, np.int64)
        self._q_cols = [np.zeros(max_queued, spec.dtype) for spec in self._schema.fields.values()]
        self._n = 0
        self._queued_by: dict[int, int] = {}
        self._last_seq: dict[int, int] = {}

        self._record: int | bool = record  # truthy: calls are logged (deque and/or sink)
        self._keep = record  # how many entries input_log keeps
        self._sink: Callable[[LogEntry], None] | None = None
        self.input_log: deque[LogEntry] = deque(maxlen=record or 1)
        self._logged = 0

        self.world = World(WorldSchema(game_cls.fields), capacity=game_cls.capacity)
        #: The world's history ring (None when history is off); ``world.history`` is the same.
        self.history: WorldHistory | None = (
            WorldHistory(self.world, hist_len) if hist_len else None
        )
        self.world.history = self.history
        game = game_cls()
        game.world = self.world
        game.rng = np.random.default_rng(seed)
        game.config = self.config
        game.dt = self.dt
        game.tick = 0
        self.game = game
        self.players: dict[int, Player] = game.players
        self._call("on_create", game.on_create, dict(self.config))
        self.world.commit()
        if self.history is not None:
            self.history.record(0)

    # -- helpers ---------------------------------------------------------------------------

    def _call(self, hook: str, fn: Callable[..., None], *args: Any) -> None:
        """Run a game hook; anything it raises (but ``Reject`` from on_join) is a GameError."""
        try:
            fn(*args)
        except Reject:
            if hook == "on_join":
                raise
            exc = RuntimeError("Reject raised outside on_join (only on_join may refuse)")
            self._dead = GameError(hook, self.tick, exc)
            raise self._dead from exc
        except Exception as exc:
            self._dead = GameError(hook, self.tick, exc)
            raise self._dead from exc

    def _check_alive(self) -> None:
        if self._dead is not None:
            raise self._dead

    def _log(self, entry: LogEntry) -> None:
        sink = self._sink
        if sink is not None:
            sink(entry)
        if self._keep:
            self.input_log.append(entry)
            self._logged += 1

    def set_log_sink(self, sink: Callable[[LogEntry], None] | None) -> None:
        """Hand every further logged call (join, leave, accepted input) to ``sink`` too.

        The sink is called synchronously, in call order, before the call takes effect (a
        join's entry comes before ``on_join``); it must not raise and must not call back
        into the simulation. This is how a recording streams a complete log to disk with
        bounded memory (:mod:`gameserver.replay.recorder`), independent of ``record``.
        ``None`` removes it.
        """
        self._sink = sink
        self._record = bool(self._keep) or sink is not None

    @property
    def log_complete(self) -> bool:
        """True if recording is on and :attr:`input_log` still holds every call since creation."""
        return bool(self._keep) and self._logged == len(self.input_log)

    @property
    def queued(self) -> int:
        """Inputs waiting for the next tick."""
        return self._n

    @property
    def full(self) -> bool:
        return len(self.players) >= self.max_players

    # -- players ---------------------------------------------------------------------------

    def join(self, player_id: int, name: str, hello: Mapping[str, Any] | None = None) -> Player:
        """Add a player and run ``on_join``; return the :class:`Player` (``entity`` set by game).

        Raises :class:`RoomFull` at ``max_players``, :class:`Reject` if the game refuses (the
        player is not added and events sent during ``on_join`` are discarded), ``ValueError``
        for an id outside 1..2**32-1 or already in the room.
        """
        self._check_alive()
        if isinstance(player_id, bool) or not isinstance(player_id, int):
            raise ValueError(f"player id must be an int, got {player_id!r}")
        if not 1 <= player_id <= MAX_SEQ:
            raise ValueError(f"player id {player_id} outside 1..2**32-1")
        if player_id in self.players:
            raise ValueError(f"player {player_id} already in the room")
        if self.full:
            raise RoomFull(f"room full ({self.max_players} players)")
        hello_d = dict(hello or {})
        # An auth token is a secret: it is not recorded (a game must not depend on it).
        logged = {k: v for k, v in hello_d.items() if k != "token"}
        self._log(LogEntry(self.tick + 1, "join", player_id, 0, (name, logged)))
        player = Player(player_id, str(name), joined_tick=self.tick)
        game = self.game
        game.players[player_id] = player
        mark = len(game._outbox)
        try:
            self._call("on_join", game.on_join, player, hello_d)
        except Reject:
            del game.players[player_id]
            del game._outbox[mark:]
            raise
        return player

    def leave(self, player_id: int, reason: str = "leave") -> Player | None:
        """Remove a player (its queued inputs are discarded) and run ``on_leave``.

        Returns the player, or ``None`` if it was not in the room (leaving twice is harmless).
        """
        self._check_alive()
        player = self.game.players.pop(player_id, None)
        if player is None:
            return None
        self._log(LogEntry(self.tick + 1, "leave", player_id, 0, reason))
        if self._queued_by.pop(player_id, 0):
            keep = np.flatnonzero(self._q_player[: self._n] != player_id)
            k = len(keep)
            self._q_player[:k] = self._q_player[keep]
            self._q_seq[:k] = self._q_seq[keep]
            self._q_rt[:k] = self._q_rt[keep]
            for col in self._q_cols:
                col[:k] = col[keep]
            self._n = k
        self._last_seq.pop(player_id, None)
        self.acks.pop(player_id, None)
        self.ack_ticks.pop(player_id, None)
        self._call("on_leave", self.game.on_leave, player, reason)
        return player

    # -- inputs ----------------------------------------------------------------------------

    def queue_input(
        self, player_id: int, seq: int, data: object, render_tick: int | None = None
    ) -> bool:
        """Validate one INPUT and queue it for the next tick; ``True`` if queued.

        ``render_tick`` is the INPUT's ``rt`` (the tick the client was rendering) or ``None``;
        it is clamped into the history window (class docstring) and reaches the game as
        ``inputs.render_tick``. A clamp is not an error (the input is queued): it is counted
        in ``clamped_render_ticks``.

        Raises :class:`~gameserver.inputs.InputError` (the client's fault: ERROR 3) if ``seq``
        is not a uint32 >= 1 or ``data`` does not fit the game's input schema; such an input
        never reaches the game. Returns ``False`` if the input is stale (``seq`` not above the
        last accepted one) or dropped by the queue bounds. ``KeyError`` if the player is not
        in the room (the caller's mistake).
        """
        self._check_alive()
        if player_id not in self.game.players:
            raise KeyError(f"player {player_id} is not in the room")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
            self.invalid_inputs += 1
            raise InputError(f"input seq must be an integer in 1..2**32-1, got {seq!r}", "s")
        if seq <= self._last_seq.get(player_id, 0):
            self.stale_inputs += 1
            return False
        try:
            values = self._schema.validate(data)
        except InputError:
            self.invalid_inputs += 1
            raise
        queued = self._queued_by.get(player_id, 0)
        n = self._n
        if n >= self._cap or queued >= self._per_player:
            self.dropped_inputs += 1
            self._dropped_since += 1
            return False
        rt = self.tick
        if render_tick is not None and self.history is not None:
            # The window the next on_tick can rewind to: oldest recorded .. latest committed.
            rt = min(max(int(render_tick), self.history.oldest), self.tick)
            if rt != render_tick:
                self.clamped_render_ticks += 1
        self._q_player[n] = player_id
        self._q_seq[n] = seq
        self._q_rt[n] = rt
        for col, v in zip(self._q_cols, values):
            col[n] = v
        self._n = n + 1
        self._queued_by[player_id] = queued + 1
        self._last_seq[player_id] = seq
        if self._record:
            self._log(LogEntry(self.tick + 1, "input", player_id, seq,
                               dict(zip(self._names, values)), rt))
        return True

    def _take_batch(self) -> InputBatch:
        n = self._n
        batch = InputBatch(
            self._q_player[:n].copy(),
            self._q_seq[:n].copy(),
            {name: col[:n].copy() for name, col in zip(self._names, self._q_cols)},
            self._q_rt[:n].copy(),
        )
        self._n = 0
        self._queued_by.clear()
        return batch

    # -- ticking ---------------------------------------------------------------------------

    def step(self) -> TickResult:
        """Run one tick: hand the queued inputs to ``on_tick``, commit the world, record acks."""
        self._check_alive()
        t0 = self._clock()
        batch = self._take_batch()
        tick = self.tick + 1
        game = self.game
        self.tick = tick
        game.tick = tick
        self._call("on_tick", game.on_tick, tick, self.dt, batch)
        self.world.commit()
        if self.history is not None:
            self.history.record(tick)
        acks: dict[int, int] = {}
        if len(batch):
            rows = batch.last_rows()
            players = game.players
            for pid, seq in zip(batch.player[rows].tolist(), batch.seq[rows].tolist()):
                if pid in players:
                    acks[pid] = seq
            self.acks.update(acks)
            self.ack_ticks.update(dict.fromkeys(acks, tick))
        dropped, self._dropped_since = self._dropped_since, 0
        work = self._clock() - t0
        return TickResult(tick, work, len(batch), dropped, acks, len(game._outbox))

    def drain_events(self) -> list[GameEvent]:
        """Take the events the game sent since the last drain, in the order sent."""
        out = self.game._outbox
        if not out:
            return []
        self.game._outbox = []
        return out

    def counters(self) -> dict[str, int]:
        """Room counters for logs and metrics (all monotonic except players/entities/queued)."""
        return {
            "tick": self.tick,
            "players": len(self.players),
            "entities": self.world.count,
            "queued_inputs": self._n,
            "dropped_inputs": self.dropped_inputs,
            "stale_inputs": self.stale_inputs,
            "invalid_inputs": self.invalid_inputs,
            "clamped_render_ticks": self.clamped_render_ticks,
        }

    def wire_schema(self) -> Any:
        """The entity schema's wire form holder (``protocol.wireschema.WireSchema``)."""
        return self.world.schema.wire

    def input_schema(self) -> list[dict[str, Any]]:
        """The WELCOME ``"inputs"`` value (see :meth:`gameserver.inputs.InputSchema.to_wire`)."""
        return self._schema.to_wire()

    def player_entity(self, player_id: int) -> int | None:
        """The player's avatar entity id (for WELCOME), or ``None``."""
        p = self.game.players.get(player_id)
        return None if p is None else p.entity


def replay(
    game_cls: type[Game],
    log: Iterable[LogEntry],
    *,
    seed: int,
    config: Mapping[str, Any] | None = None,
    tick_rate: int | None = None,
    until: int | None = None,
    history: float | None = None,
) -> Iterator[tuple[Simulation, TickResult]]:
    """Re-run a recorded room in a fresh :class:`Simulation`, yielding after every tick.

    ``log`` is a complete :attr:`Simulation.input_log` (``log_complete``); calls are re-issued
    before the tick they preceded. Runs through the last logged tick, or up to ``until``.
    Rejected joins are re-rejected (the same way) and skipped. ``history`` must be the
    recorded room's (``Simulation(history=...)`` / ``ServerConfig.history``; ``None``: the
    game's default): the logged render ticks are re-clamped into that window.
    """
    sim = Simulation(game_cls, seed=seed, config=config, tick_rate=tick_rate, history=history)
    last = 0
    for entry in log:
        while sim.tick < entry.tick - 1:
            yield sim, sim.step()
        if entry.kind == "join":
            name, hello = entry.data
            try:
                sim.join(entry.player, name, hello)
            except Reject:
                pass
        elif entry.kind == "leave":
            sim.leave(entry.player, entry.data)
        elif entry.kind == "input":
            sim.queue_input(entry.player, entry.seq, entry.data, entry.render_tick)
        else:
            raise ValueError(f"unknown log entry kind {entry.kind!r}")
        last = entry.tick
    end = last if until is None else until
    while sim.tick < end:
        yield sim, sim.step()

