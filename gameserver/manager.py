"""The process's rooms: :class:`RoomManager` (game registry, matchmaking, resume tokens).

:class:`RoomManager` holds every :class:`gameserver.room.Room` of the process, the game
registry (name -> class) and the resume-token index, does matchmaking (first room of the game
with a free seat, else a new room; a spectator prefers a room with players) and removes rooms
that the rooms dispose (an empty room after ``empty_room_ttl`` seconds). In cluster mode a
:class:`RoomListener` (the Redis directory) is told about every room and seat.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from gameserver.config import ServerConfig
from gameserver.metrics import ServerMetrics
from gameserver.room import JoinError, Player, Room
from protocol.codes import ErrorCode

if TYPE_CHECKING:
    from gameserver.cluster.seats import SeatBook
    from gameserver.cluster.service import Cluster

__all__ = ["RoomListener", "RoomManager"]

log = logging.getLogger("gameserver.room")  # the room lifecycle's log lines, as before


class RoomListener(Protocol):
    """Told by :class:`RoomManager` about rooms and seats (the cluster directory implements
    it). Called synchronously on the loop: implementations must not block or await."""

    def room_added(self, room: Room) -> None: ...

    def room_removed(self, room: Room) -> None: ...

    def player_seated(self, p: Player) -> None: ...

    def player_left(self, p: Player) -> None: ...


class RoomManager:
    """Every room of the process, the game registry and the resume-token index.

    ``room_class`` is the class :meth:`create_room` instantiates, unless the game class names
    its own ``room_class`` (the replay server's playback game does:
    :mod:`gameserver.replay.serve`).
    """

    room_class: type[Room] = Room

    def __init__(self, config: ServerConfig, metrics: ServerMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.games: Mapping[str, type[Any]] = dict(config.games)
        self.default_game = next(iter(self.games))
        self.rooms: dict[str, Room] = {}
        self.tokens: dict[str, Player] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        #: Cluster mode (gameserver/cluster): told about rooms and seated players; room ids get
        #: ``room_prefix`` (the node id + "-") so they are unique across the cluster.
        self.listener: RoomListener | None = None
        self.room_prefix = ""
        self.cluster: Cluster | None = None  # with --redis (set by the server)
        self.seats: SeatBook | None = None  # /matchmake reservations (set by the server)
        self._pids = itertools.count(1)
        self._room_seq = itertools.count(1)
        base = config.seed if config.seed is not None else secrets.randbits(32)
        self._seeds = itertools.count(base)
        # --workers N: room ids and resume tokens name their worker (gameserver.machine).
        wid = config.worker_id
        self._worker_tag = "" if wid is None else f"w{wid}-"
        # w<i>.<pid>.: the supervisor answers a RESUME naming a dead process of worker i
        # with 4015 (SPEC.md section 7; gameserver.machine.token_process)
        self._token_tag = "" if wid is None else f"w{wid}.{os.getpid()}."
        if wid is not None:  # distinct rooms' RNG streams across workers with the same --seed
            self._seeds = itertools.count(base + (wid << 20))

    def new_token(self) -> str:
        """A fresh resume token (24 URL-safe characters; under --workers prefixed with
        ``w<worker>.<pid>.``: the worker and the process that issued it)."""
        return self._token_tag + secrets.token_urlsafe(18)

    def new_player_id(self, taken: Mapping[int, Any] | None = None) -> int:
        """A player id (uint32, never 0), unique in the process and not a key of ``taken``
        (the room's players: a room handed over from another node keeps its players' ids)."""
        while True:
            pid = next(self._pids) & 0xFFFFFFFF
            if pid and (taken is None or pid not in taken):
                return pid

    def reserve_player_ids(self, ids: Iterable[int]) -> None:
        """Hand out only ids above ``ids`` from now on (a room restored from a handover)."""
        top = max(ids, default=0)
        nxt = next(self._pids)
        self._pids = itertools.count(max(nxt, top + 1))

    def player_count(self) -> int:
        return sum(len(r.players) for r in self.rooms.values())

    def list_rooms(self) -> list[dict[str, object]]:
        return [r.info() for r in self.rooms.values()]

    def create_room(self, game: str, room_id: str | None = None) -> Room:
        """A new started room of ``game`` (JoinError 4003 if unknown or at the room bound).

        ``room_id``: a given id (a matchmaker-allocated room, created when its first reserved
        player arrives); by default ``<game>-<room_prefix><n>``."""
        cls = self.games.get(game)
        if cls is None:
            raise JoinError(ErrorCode.UNKNOWN_ROOM, f"unknown game {game!r}")
        if len(self.rooms) >= self.config.max_rooms:
            raise JoinError(ErrorCode.ROOM_FULL, "server is at its room limit")
        if room_id is None:
            room_id = f"{game}-{self.room_prefix}{self._worker_tag}{next(self._room_seq)}"
            while room_id in self.rooms:  # a room handed over from another node took that id
                room_id = f"{game}-{self.room_prefix}{self._worker_tag}{next(self._room_seq)}"
        elif room_id in self.rooms:
            raise JoinError(ErrorCode.ROOM_FULL, f"room {room_id!r} exists already")
        try:
            factory = getattr(cls, "room_class", None) or self.room_class
            room = factory(self, room_id, game, cls, seed=next(self._seeds) & 0xFFFFFFFF)
        except Exception as exc:
            log.error("room creation failed: game code raised game=%s", game, exc_info=exc)
            self.metrics.room_crashes.inc()
            raise JoinError(ErrorCode.REJECTED, f"game {game!r} failed to start") from None
        self.rooms[room_id] = room
        if self.listener is not None:
            self.listener.room_added(room)
        room.start()
        self.metrics.rooms.set(len(self.rooms))
        log.info("room created room=%s game=%s tick_rate=%d send_rate=%d capacity=%d",
                 room_id, game, room.tick_rate, room.send_rate, room.capacity)
        return room

    def find_room(self, room_id: str | None, game: str | None, *, spectate: bool = False
                  ) -> Room:
        """Matchmaking: the named room, else the first open room of the game, else a new one.
        A spectator (``spectate``) may enter a full room, and prefers one with players."""
        if room_id is not None:
            room = self.rooms.get(room_id)
            if room is None or room.closed:
                raise JoinError(ErrorCode.UNKNOWN_ROOM, f"unknown room {room_id!r}")
            if game is not None and room.game != game:
                raise JoinError(ErrorCode.UNKNOWN_ROOM,
                                f"room {room_id!r} plays {room.game!r}, not {game!r}")
            if not spectate and (room.full or len(room.players) + room.held >= room.capacity):
                raise JoinError(ErrorCode.ROOM_FULL, f"room {room_id!r} is full")
            return room
        game = game or self.default_game
        if game not in self.games:
            raise JoinError(ErrorCode.UNKNOWN_ROOM, f"unknown game {game!r}")
        if spectate:
            for room in self.rooms.values():
                if room.game == game and not room.closed and room.players:
                    return room
        for room in self.rooms.values():
            if (room.game == game and not room.full and not room.closed
                    and len(room.players) + room.held < room.capacity):
                return room
        return self.create_room(game)

    def remember(self, p: Player) -> None:
        self.tokens[p.resume_token] = p
        if self.listener is not None:
            self.listener.player_seated(p)

    def forget(self, p: Player) -> None:
        if self.tokens.pop(p.resume_token, None) is not None and self.listener is not None:
            self.listener.player_left(p)

    def resume(self, token: str) -> Player:
        """The player holding ``token`` (JoinError 4005 if unknown or expired)."""
        p = self.tokens.get(token)
        if p is None or p.gone or p.room.closed:
            raise JoinError(ErrorCode.RESUME_FAILED, "resume token invalid or expired")
        return p

    def remove_room(self, room: Room) -> None:
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            if self.listener is not None:
                self.listener.room_removed(room)
        self.metrics.rooms.set(len(self.rooms))

    def shutdown(self) -> None:
        """Close every room (clients get 1001, on_leave runs for every player)."""
        for room in list(self.rooms.values()):
            room.shutdown()
