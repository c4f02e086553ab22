"""Seat reservations: a token that holds one seat of one room on one node for a short time.

``GET /matchmake?game=NAME`` (:mod:`gameserver.cluster.matchmake`) reserves a seat and
answers where to connect; the player then sends HELLO with ``"reservation": token`` to that
url within ``RESERVATION_TTL`` (15 s). The token is ``secrets.token_urlsafe(18)`` (144
random bits: unguessable), single use, and bound to its room and node:

* valid, on its node -> consumed (atomically: two HELLOs with one token seat one player),
  the player is seated in the reserved room (created now if the matchmaker allocated it);
* valid, for another node -> ERROR 4013 + close 4013 with that node's url (not consumed);
* unknown (forged), expired or already used -> ERROR 4017 + close 4017
  ``RESERVATION_INVALID``: never someone else's seat;
* Redis unreachable -> ERROR 4018 + close 4018 ``CLUSTER_UNAVAILABLE`` (try again).

Two books implement :class:`SeatBook`: :class:`LocalSeats` (no ``--redis``: in memory,
bounded, exact) and :class:`gameserver.cluster.matchmake.RedisSeats` (the cluster's).
A reserved seat counts against the room: ``Room.held`` seats are not offered to joins
without a reservation (in cluster mode ``held`` is refreshed by each directory sync, so a
join without a reservation on the target node within that second may still take one; the
reserved player then gets 4002 ROOM_FULL. Joins through /matchmake never overbook).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gameserver.cluster.errors import Redirect, SeatError
from protocol.codes import ErrorCode

if TYPE_CHECKING:
    from gameserver.manager import RoomManager

__all__ = ["MAX_RESERVATIONS", "RESERVATION_TTL", "LocalSeats", "Redirect", "Seat",
           "SeatBook", "SeatError", "invalid", "new_token"]

#: Seconds a reservation holds its seat.
RESERVATION_TTL = 15.0
#: Most outstanding reservations a local book keeps (then /matchmake answers 503).
MAX_RESERVATIONS = 10_000


def new_token() -> str:
    """An unguessable reservation token (24 URL-safe characters, 144 random bits)."""
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Seat:
    """A reserved seat: ``room`` of ``game`` on ``node`` (clients dial ``url``)."""

    token: str
    room: str
    game: str
    node: str
    url: str
    expires_in: float = RESERVATION_TTL
    new_room: bool = False

    def reply(self) -> dict[str, object]:
        """The ``/matchmake`` JSON body."""
        return {"url": self.url, "room": self.room, "game": self.game, "node": self.node,
                "reservation": self.token, "expires_in": self.expires_in}


class SeatBook(Protocol):
    """Where reservations live (memory or Redis)."""

    async def reserve(self, game: str) -> Seat:
        """Hold a seat of ``game`` (SeatError 404 unknown game, 503 none possible)."""
        ...

    async def take(self, token: str) -> Seat:
        """Consume ``token`` on this node (SeatError 4017; Redirect; ClusterUnavailable)."""
        ...

    def held(self, room_id: str) -> int:
        """Reservations of ``room_id`` known to be outstanding (for a room just created)."""
        ...


def invalid() -> SeatError:
    return SeatError(ErrorCode.RESERVATION_INVALID,
                     "seat reservation invalid, expired or already used")


class LocalSeats:
    """The single-node book: reservations in memory, exact seat accounting.

    A room with a free seat (``players + held < capacity``) gets the reservation, else a
    new room id is allocated (the room is created when its first reserved player arrives).
    """

    def __init__(self, manager: RoomManager, url: str, node: str = "") -> None:
        self.manager = manager
        self.url = url
        self.node = node
        self._ttl = RESERVATION_TTL
        # token -> (expiry, room id, game); insertion order == expiry order (one TTL)
        self._book: OrderedDict[str, tuple[float, str, str]] = OrderedDict()
        self._held: dict[str, int] = {}          # room id -> live reservations
        self._pending: dict[str, str] = {}        # allocated, not yet created: room -> game
        self._timer: asyncio.TimerHandle | None = None
        # --workers: tokens and allocated room ids name their worker (gameserver.machine)
        wid = manager.config.worker_id
        self._tok_tag = "" if wid is None else f"w{wid}."
        self._room_tag = "" if wid is None else f"w{wid}-"

    def _purge(self) -> None:
        now = time.monotonic()
        while self._book:
            token, (expiry, _, _) = next(iter(self._book.items()))
            if expiry > now:
                break
            self._drop(token)
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._book:
            expiry = next(iter(self._book.values()))[0]
            delay = max(0.0, expiry - time.monotonic()) + 0.01
            self._timer = asyncio.get_running_loop().call_later(delay, self._purge)

    def _drop(self, token: str) -> tuple[float, str, str] | None:
        entry = self._book.pop(token, None)
        if entry is None:
            return None
        rid = entry[1]
        n = self._held.get(rid, 0) - 1
        if n > 0:
            self._held[rid] = n
        else:
            self._held.pop(rid, None)
            if rid not in self.manager.rooms:
                self._pending.pop(rid, None)
        room = self.manager.rooms.get(rid)
        if room is not None:
            room.held = max(0, n)
        return entry

    async def reserve(self, game: str) -> Seat:
        from gameserver.cluster.directory import room_capacity

        m = self.manager
        cls = m.games.get(game)
        if cls is None:
            raise SeatError(ErrorCode.UNKNOWN_ROOM, f"unknown game {game!r}", 404)
        self._purge()
        if len(self._book) >= MAX_RESERVATIONS:
            raise SeatError(ErrorCode.ROOM_FULL, "too many outstanding reservations", 503)
        rid: str | None = None
        for room in m.rooms.values():
            if (room.game == game and not room.closed
                    and len(room.players) + self._held.get(room.id, 0) < room.capacity):
                rid = room.id
                break
        for pid in [p for p in self._pending if p in m.rooms]:
            del self._pending[pid]  # created since: counted as a room above
        if rid is None:
            cap = room_capacity(m.config, cls)
            for pid, g in self._pending.items():
                if g == game and self._held.get(pid, 0) < cap:
                    rid = pid
                    break
        if rid is None:
            if len(m.rooms) + len(self._pending) >= m.config.max_rooms:
                raise SeatError(ErrorCode.ROOM_FULL, "server is at its room limit", 503)
            rid = f"{game}-{m.room_prefix}{self._room_tag}m{secrets.token_hex(3)}"
            self._pending[rid] = game
        token = self._tok_tag + new_token()
        self._book[token] = (time.monotonic() + self._ttl, rid, game)
        n = self._held[rid] = self._held.get(rid, 0) + 1
        target = m.rooms.get(rid)
        if target is not None:
            target.held = n
        self._schedule()
        return Seat(token, rid, game, self.node, self.url, self._ttl,
                    new_room=rid in self._pending)

    async def take(self, token: str) -> Seat:
        self._purge()
        entry = self._drop(token)
        if entry is None:
            raise invalid()
        _, rid, game = entry
        return Seat(token, rid, game, self.node, self.url)

    def held(self, room_id: str) -> int:
        """Live reservations for ``room_id`` still to arrive (a room created on arrival)."""
        return self._held.get(room_id, 0)

    def reserved_seats(self) -> dict[str, tuple[str, int]]:
        """Room id -> (game, live reservations) for every room holding reservations (rooms
        allocated and not created yet included): a --workers worker reports them."""
        out: dict[str, tuple[str, int]] = {}
        for rid, n in self._held.items():
            room = self.manager.rooms.get(rid)
            game = room.game if room is not None else self._pending.get(rid)
            if game is not None:
                out[rid] = (game, n)
        return out
