"""Matchmaking across the cluster: ``GET /matchmake?game=NAME`` and the Redis seat book.

:meth:`RedisSeats.reserve` (any node can answer /matchmake):

1. reads the directory (:meth:`Directory.view`, 2 round trips): live nodes and the rooms of
   ``game`` with their players and live reservations;
2. tries the fullest room that still has a free seat (``players + reserved < capacity``):
   the RESERVE script re-checks that inside Redis and adds the reservation atomically, so two
   matchmakers racing for the last seat cannot both get it (1 round trip; a lost race tries
   the next room, at most ``MAX_TRIES``);
3. else allocates a new room id ``<game>-<node>-m<6 hex>`` on the least loaded live node that
   serves ``game`` (fewest players, then rooms) and reserves its first seat the same way;
   the script writes a *pending* room entry (TTL ``PENDING_TTL_MS``) so the next players fill
   the same room; the node creates the room when the first reserved player arrives.

:meth:`RedisSeats.take` (the node receiving HELLO with ``reservation``): the TAKE script
reads the reservation; for another node it answers that node (-> 4013, not consumed);
for this node it deletes it, removes it from the room's set of live reservations and adds
the player to the room entry's count, all atomically (1 round trip).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from gameserver.cluster import keys as K
from gameserver.cluster.errors import BadReply, ClusterUnavailable, Redirect, SeatError
from gameserver.cluster.link import RedisLink
from gameserver.cluster.node import NodeIdentity
from gameserver.cluster.seats import Seat, SeatBook, invalid, new_token
from gameserver.http import HttpReply
from protocol.codes import ErrorCode

if TYPE_CHECKING:
    from gameserver.cluster.directory import Directory

__all__ = ["MAX_TRIES", "RedisSeats", "matchmake_reply", "rooms_reply"]

log = logging.getLogger("gameserver.cluster")

#: Rooms tried per /matchmake before giving up on existing rooms (races lost).
MAX_TRIES = 4

# KEYS: room hash, room's reservation zset, reservation key, game set.
# ARGV: token, reservation JSON, ttl ms, capacity ('' = the room entry must exist),
#       room id, game, node, worker, pending ttl ms.
# Returns 1 if the seat is held, 0 if the room is full (or gone).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[4] == '' then return 0 end
  redis.call('HSET', KEYS[1], 'id', ARGV[5], 'game', ARGV[6], 'node', ARGV[7],
             'worker', ARGV[8], 'players', 0, 'capacity', ARGV[4], 'updated', now / 1000,
             'pending', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
  redis.call('SADD', KEYS[4], ARGV[5])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local players = tonumber(redis.call('HGET', KEYS[1], 'players')) or 0
local cap = tonumber(redis.call('HGET', KEYS[1], 'capacity')) or 0
if players + redis.call('ZCARD', KEYS[2]) >= cap then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[3]))
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: reservation key. ARGV: this node, token, key prefix.
# Returns nil (unknown / expired / used), {0, v} unreadable (deleted), {2, v} another node's
# (kept), {1, v} consumed here.
_TAKE = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
local ok, r = pcall(cjson.decode, v)
if not ok or type(r) ~= 'table' or type(r['room']) ~= 'string' or type(r['node']) ~= 'string'
then
  redis.call('DEL', KEYS[1])
  return {0, v}
end
if r['node'] ~= ARGV[1] then return {2, v} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[3] .. 'resv:room:' .. r['room'], ARGV[2])
local room = ARGV[3] .. 'room:' .. r['room']
if redis.call('EXISTS', room) == 1 then redis.call('HINCRBY', room, 'players', 1) end
return {1, v}
"""


class RedisSeats(SeatBook):
    """The cluster's seat book (see the module docstring); reservations live in Redis."""

    def __init__(self, link: RedisLink, node: NodeIdentity, directory: Directory,
                 ttl_ms: int = K.RESERVATION_TTL_MS) -> None:
        self.link = link
        self.node = node
        self.directory = directory
        self.ttl_ms = ttl_ms

    async def reserve(self, game: str) -> Seat:
        view = await self.directory.view(game)
        serving = {n: x for n, x in view.nodes.items() if game in x.games}
        if not serving:
            raise SeatError(ErrorCode.UNKNOWN_ROOM, f"no live node serves game {game!r}", 404)
        rooms = sorted((r for r in view.rooms if r.free > 0 and r.node in serving),
                       key=lambda r: (-(r.players + r.reserved), r.room))
        for entry in rooms[:MAX_TRIES]:
            seat = await self._try(entry.room, game, entry.node, entry.url, create=None)
            if seat is not None:
                return seat
        # No room with a free seat: a new one on the least loaded node serving the game.
        target = min(serving.values(), key=lambda n: (n.players, n.rooms, n.node_id))
        rid = f"{game}-{target.node_id}-m{secrets.token_hex(3)}"
        seat = await self._try(rid, game, target.node_id, target.url,
                               create=(target.games[game], target.worker))
        if seat is None:
            raise SeatError(ErrorCode.ROOM_FULL, "no seat could be reserved, try again", 503)
        return seat

    async def _try(self, rid: str, game: str, node: str, url: str,
                   create: tuple[int, int] | None) -> Seat | None:
        token = new_token()
        value = json.dumps({"room": rid, "game": game, "node": node, "url": url},
                           separators=(",", ":"))
        cap, worker = ("", 0) if create is None else (str(create[0]), create[1])
        ok = await self.link.call("reserve", lambda r: r.eval(
            _RESERVE, 4, K.room_key(rid), K.resv_room_key(rid), K.resv_key(token),
            K.game_key(game), token, value, self.ttl_ms, cap, rid, game, node, worker,
            K.PENDING_TTL_MS))
        if K.as_int(ok) != 1:
            return None
        if node == self.node.node_id:  # our own room: hold the seat locally right away
            room = self.directory.manager.rooms.get(rid)
            if room is not None:
                room.held += 1
        return Seat(token, rid, game, node, url, self.ttl_ms / 1000, new_room=create is not None)

    async def take(self, token: str) -> Seat:
        try:
            reply = await self.link.call("take", lambda r: r.eval(
                _TAKE, 1, K.resv_key(token), self.node.node_id, token, K.PREFIX))
        except BadReply:
            raise invalid() from None
        if reply is None:
            raise invalid()
        if not isinstance(reply, list) or len(reply) != 2:
            self.link.garbage("reservation reply")
            raise invalid()
        status, v = K.as_int(reply[0]), K.load_json(reply[1])
        if status == 0 or not isinstance(v, dict):
            self.link.garbage("reservation value")
            raise invalid()
        rid, game, node, url = (v.get(k) for k in ("room", "game", "node", "url"))
        if not all(isinstance(x, str) and x for x in (rid, game, node, url)):
            raise invalid()
        assert isinstance(rid, str) and isinstance(game, str)
        assert isinstance(node, str) and isinstance(url, str)
        if status == 2:
            raise Redirect(url)
        return Seat(token, rid, game, node, url)

    def held(self, room_id: str) -> int:
        return 0  # the next directory sync (<= 1 s) reads the room's live reservations


async def matchmake_reply(book: SeatBook, target: str) -> HttpReply:
    """Answer ``GET /matchmake?game=NAME``: 200 JSON ``{url, room, game, node, reservation,
    expires_in}``; 400 without ``game``, 404 unknown game, 503 no seat / Redis unavailable."""
    try:
        query = parse_qs(target.partition("?")[2], max_num_fields=8)
    except ValueError:  # too many fields
        return _json(400, {"error": "bad query"})
    game = (query.get("game") or [""])[0]
    if not game or len(game) > 256:
        return _json(400, {"error": "missing ?game=NAME"})
    try:
        seat = await book.reserve(game)
    except SeatError as exc:
        return _json(exc.status, {"error": exc.message, "code": exc.code})
    except ClusterUnavailable as exc:
        return _json(503, {"error": f"cluster directory unavailable: {exc}",
                           "code": int(ErrorCode.CLUSTER_UNAVAILABLE)})
    return _json(200, seat.reply())


async def rooms_reply(rooms: Callable[[], Awaitable[list[dict[str, object]]]]) -> HttpReply:
    """Answer ``GET /rooms?scope=cluster``: 200 JSON list, 503 while Redis is unavailable."""
    try:
        return _json(200, await rooms())
    except ClusterUnavailable as exc:
        return _json(503, {"error": f"cluster directory unavailable: {exc}",
                           "code": int(ErrorCode.CLUSTER_UNAVAILABLE)})


def _json(status: int, obj: Any) -> HttpReply:
    return HttpReply(status, json.dumps(obj, separators=(",", ":")).encode(),
                     "application/json", (("Cache-Control", "no-store"),))
