"""The rules API: what a game developer writes.

A game is a subclass of :class:`Game` that declares its entity fields, its inputs and a few
limits as class attributes, and overrides the hooks it needs. The server creates one
instance per room (through :class:`gameserver.simulation.Simulation`) and calls the hooks; the
hooks work on ``self.world`` (numpy columns, one row per entity) with whole-array operations.
See docs/RULES.md for a worked example; in short::

    import numpy as np
    from gameserver.rules import F, Game, I, InputBatch, InputSchema, Player, Reject

    class Tag(Game):
        name = "tag"
        fields = {"x": F.float32(quant=0.01), "y": F.float32(quant=0.01), "it": F.uint8()}
        inputs = InputSchema({"dx": I.float32(-1, 1), "dy": I.float32(-1, 1)})
        max_players = 8

        def on_join(self, player: Player, hello: dict[str, Any]) -> None:
            if player.name == "":
                raise Reject("a name is required")
            player.entity = int(self.world.spawn(1, x=self.rng.uniform(0, 100), y=50.0)[0])

        def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
            last = inputs.latest()                      # one row per player, arrays
            ents = np.array([self.players[p].entity for p in last.player.tolist()])
            slots = self.world.slots_of(ents)
            self.world["x"][slots] += last["dx"] * 5.0 * dt

Hook order and guarantees (all called from one thread, never concurrently):

* ``on_create(config)`` once, before any player joins; ``config`` is the room's config dict.
* ``on_join(player, hello)`` when a player joins; ``player`` is already in ``self.players``.
  Raise :class:`Reject` (before changing any state) to refuse: the player is removed again,
  events sent during the call are discarded, and the client gets close code 4006 with the
  reason. The default accepts.
* ``on_leave(player, reason)`` after the player left (it is no longer in ``self.players``);
  ``reason`` is a short string (``"leave"``, ``"disconnect"``, ``"timeout"``, ``"kicked"``...).
  The default despawns ``player.entity`` if the game set one.
* ``on_tick(tick, dt, inputs)`` once per simulation tick: ``tick`` is 1, 2, 3...; ``dt`` the
  fixed tick length in seconds (1 / tick_rate); ``inputs`` an :class:`InputBatch` of every input
  validated since the previous tick, in arrival order. After it returns the world is committed
  (spawns and despawns take effect) and the changes go out in the next delta.

Any other exception escaping a hook is a bug in the game: the simulation wraps it in
``GameError`` and the server closes the room (clients get close code 4010).

Determinism: use only ``self.rng`` for randomness and no wall-clock time; then a room replays
bit-identically from its seed and its input log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import numpy as np

from gameserver.inputs import I, InputBatch, InputError, InputField, InputSchema
from gameserver.schema import F  # re-exported: one import line for game code

__all__ = [
    "MAX_EVENT_KIND",
    "F",
    "Game",
    "GameEvent",
    "I",
    "InputBatch",
    "InputError",
    "InputField",
    "InputSchema",
    "Player",
    "Reject",
    "check_game_class",
]

MAX_EVENT_KIND: Final[int] = 64  # bytes of UTF-8 in an event kind
MAX_PLAYER_ID: Final[int] = 2**32 - 1


class Reject(Exception):
    """Raised by ``on_join`` to refuse a player; ``reason`` is shown to the client (close 4006)."""

    def __init__(self, reason: str = "rejected by the game") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Player:
    """One player in a room.

    ``id`` is the server-assigned player id (uint32, never 0); ``name`` the display name from
    HELLO; ``entity`` the avatar's entity id, set by the game (``None`` if it has none: then
    WELCOME carries no ``entity``); ``data`` is free per-player storage for the game.
    ``joined_tick`` is the simulation tick at which the player joined.
    Interest management (``Game.interest``): ``team`` (0: none) makes every entity whose team
    field equals it visible to the player; ``view`` ``(width, height)`` in world units
    overrides ``Interest.view`` (clamped to ``Interest.max_view``).
    """

    id: int
    name: str
    entity: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    joined_tick: int = 0
    team: int = 0
    view: tuple[float, float] | None = None

    def __repr__(self) -> str:
        return f"Player(id={self.id}, name={self.name!r}, entity={self.entity})"


@dataclass(frozen=True, slots=True)
class GameEvent:
    """A one-off reliable message from the game: EVENT ``{"k": kind, "d": data}``.

    ``to`` is ``None`` for everyone in the room, else the tuple of target player ids (the
    server skips ids that are no longer connected).
    """

    kind: str
    data: Any
    to: tuple[int, ...] | None



class Game:
    """Base class of a game's rules; one instance per room (see the module docstring).

    Class attributes a game sets:

    * ``name``: the game name clients ask for in HELLO (matchmaking key).
    * ``version``: the rules' version string (default ``"0"``), written into replay files;
      bump it whenever a change makes old recordings replay differently, and a replay of
      another version refuses to load (docs/REPLAY.md).
    * ``fields``: entity schema, ``{"x": F.float32(quant=0.01), ...}`` (gameserver.schema).
    * ``inputs``: the :class:`InputSchema` of one INPUT message.
    * ``max_players``: room capacity (joins beyond it are refused with close 4002).
    * ``tick_rate`` / ``send_rate``: default simulation and delta rates in Hz (the server may
      override them); ``1 <= send_rate <= tick_rate <= 240``.
    * ``capacity``: initial entity capacity of the world (it grows as needed).
    * ``history``: seconds of past world states kept for lag compensation (default 1.0;
      0 turns it off; at most 10): ``self.world.at(tick)`` and ``self.world.history.hits()``
      (gameserver.history), with ``inputs.render_tick`` telling which tick a player saw.
    * ``interest``: ``None`` (everyone sees the whole world) or a
      :class:`gameserver.interest.Interest` (each client gets only what it can see).
    * ``max_spectators``: spectators (HELLO ``"spectate": true``, no entity, no inputs) a
      room admits besides its ``max_players``; 0 refuses them (close 4025).

    Attributes set by the simulation before ``on_create`` (read them, do not rebind them):
    ``world`` (the room's World), ``rng`` (``numpy.random.Generator`` seeded per room),
    ``players`` (``dict[int, Player]`` in join order), ``tick`` (the last completed tick, 0
    before the first), ``config`` (the room config dict), ``dt`` (seconds per tick).

    Do not override ``__init__``: set up state in ``on_create``.
    """

    name: ClassVar[str] = "game"
    version: ClassVar[str] = "0"
    fields: ClassVar[Mapping[str, Any]] = {}
    inputs: ClassVar[InputSchema] = InputSchema({})
    max_players: ClassVar[int] = 16
    tick_rate: ClassVar[int] = 20
    send_rate: ClassVar[int] = 20
    capacity: ClassVar[int] = 64
    history: ClassVar[float] = 1.0
    interest: ClassVar[Any] = None  # gameserver.interest.Interest | None
    max_spectators: ClassVar[int] = 16

    world: Any  # gameserver.world.World (typed Any to keep this module import-light)
    rng: np.random.Generator
    players: dict[int, Player]
    tick: int
    config: dict[str, Any]
    dt: float

    def __init__(self) -> None:
        self.players = {}
        self.tick = 0
        self.config = {}
        self.dt = 1.0 / self.tick_rate
        self._outbox: list[GameEvent] = []
        self._max_events = 10_000

    # -- hooks -----------------------------------------------------------------------------

    def on_create(self, config: dict[str, Any]) -> None:
        """Called once when the room is created, before any player joins."""

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        """A player joins; raise :class:`Reject` to refuse. ``hello`` is the HELLO body."""

    def on_leave(self, player: Player, reason: str) -> None:
        """A player left (already removed from ``players``). Default: despawn its entity."""
        if player.entity is not None:
            self.world.despawn(np.array([player.entity], dtype=np.uint32))

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        """Advance the game by one fixed tick of ``dt`` seconds, applying ``inputs``."""

    def interest_extra(self, player: Player) -> Any:
        """Interest hook: entity ids (or a bool mask in ``world.snapshot()`` order) that
        ``player`` sees besides its grid, team and global channels; ``None`` for none.

        Called once per send tick per player, only if the game overrides it and declares
        ``interest``; its entities are encoded per player (use it for the rare cases).
        """
        return None

    # -- events ----------------------------------------------------------------------------

    def send(
        self, kind: str, data: Any = None, to: Player | int | Iterable[Player | int] | None = None
    ) -> None:
        """Queue a reliable one-off EVENT for one player, several, or (``to=None``) everyone.

        ``kind`` is a short string (<= 64 bytes), ``data`` any msgpack-able value (dict, list,
        str, int, float, bool, None, bytes; depth <= 32). Events go out in the order sent,
        after the delta of the tick that sent them. An empty target list sends nothing.
        Raises ``TypeError``/``ValueError`` for a bad kind or target, ``OverflowError`` if
        more than ``10_000`` events are pending (the server is not draining them).
        """
        if not isinstance(kind, str) or not kind or len(kind.encode()) > MAX_EVENT_KIND:
            raise ValueError(f"event kind must be a non-empty str of <= {MAX_EVENT_KIND} bytes")
        targets: tuple[int, ...] | None
        if to is None:
            targets = None
        elif isinstance(to, bool):
            raise TypeError("event target must be a Player or player id, not a bool")
        elif isinstance(to, Player):
            targets = (to.id,)
        elif isinstance(to, int | np.integer):
            targets = (int(to),)
        else:
            ids: list[int] = []
            for t in to:
                if isinstance(t, Player):
                    ids.append(t.id)
                elif isinstance(t, int | np.integer) and not isinstance(t, bool):
                    ids.append(int(t))
                else:
                    raise TypeError(f"event target must be a Player or player id, got {t!r}")
            if not ids:
                return
            targets = tuple(ids)
        if len(self._outbox) >= self._max_events:
            raise OverflowError(f"more than {self._max_events} game events pending")
        self._outbox.append(GameEvent(kind, data, targets))


def check_game_class(game_cls: type[Game]) -> None:
    """Validate a game's class attributes; raise ``TypeError``/``ValueError`` naming the problem.

    Called by the simulation when a room is created (the developer's mistake, not a client's).
    """
    if not (isinstance(game_cls, type) and issubclass(game_cls, Game)):
        raise TypeError(f"{game_cls!r} is not a subclass of gameserver.rules.Game")
    where = game_cls.__qualname__
    if not isinstance(game_cls.name, str) or not game_cls.name or len(game_cls.name) > 64:
        raise ValueError(f"{where}.name must be a non-empty str (<= 64 chars)")
    ver = getattr(game_cls, "version", "0")
    if not isinstance(ver, str) or not 0 < len(ver) <= 64:
        raise ValueError(f"{where}.version must be a non-empty str (<= 64 chars), got {ver!r}")
    if not isinstance(game_cls.fields, Mapping):
        raise TypeError(f"{where}.fields must be a dict of field name -> F.<type>(...)")
    if not isinstance(game_cls.inputs, InputSchema):
        raise TypeError(f"{where}.inputs must be an InputSchema")
    for attr, lo, hi in (("max_players", 1, 65535), ("tick_rate", 1, 240), ("capacity", 1, 2**24)):
        v = getattr(game_cls, attr)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"{where}.{attr} must be an int in {lo}..{hi}, got {v!r}")
    hist = game_cls.history
    if isinstance(hist, bool) or not isinstance(hist, int | float) or not 0 <= hist <= 10:
        raise ValueError(f"{where}.history must be a number of seconds in 0..10, got {hist!r}")
    sr = game_cls.send_rate
    if isinstance(sr, bool) or not isinstance(sr, int) or not 1 <= sr <= game_cls.tick_rate:
        raise ValueError(f"{where}.send_rate must be an int in 1..tick_rate, got {sr!r}")
    ms = game_cls.max_spectators
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= 65535:
        raise ValueError(f"{where}.max_spectators must be an int in 0..65535, got {ms!r}")
    if game_cls.interest is not None:
        from gameserver.interest import Interest
        if not isinstance(game_cls.interest, Interest):
            raise TypeError(f"{where}.interest must be a gameserver.interest.Interest")
        game_cls.interest.check(game_cls.fields)
    if "__init__" in vars(game_cls):
        raise TypeError(f"{where} overrides __init__: set up state in on_create instead")
