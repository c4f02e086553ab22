"""Matchmaking across the cluster: ``GET /matchmake?game=NAME`` and the Redis seat book.

:meth:`RedisSeats.reserve` (any node can answer /matchmake) is ONE round trip: the MATCH
script runs inside Redis, atomically (two matchmakers racing for the last seat cannot both
get it, and no retry loop is needed):

1. among the rooms of ``game`` (``gs:game:<game>``) whose node is present, the fullest one
   with a free seat (``players + live reservations < capacity``) gets the reservation;
   expired reservations are dropped first, ids of expired room entries are pruned;
2. else a new room id ``<game>-<node>-m<6 hex>`` is allocated on the least loaded present
   node that serves ``game`` (fewest players, then rooms, then id) and is below its
   ``max_rooms`` counting the rooms already allocated there (so a flood of /matchmake
   calls cannot allocate more rooms than the nodes can hold), with a *pending* room
   entry (TTL ``PENDING_TTL_MS``) so the next players fill the same room; the node creates
   the room when its first reserved player arrives;
3. the reservation is written: ``gs:resv:<token>`` (JSON room, game, node, url; TTL the
   reservation's) and the token in the room's zset of live reservations.

The script's work is proportional to the rooms of that game plus the nodes (both bounded
by what the cluster runs); Redis runs it without interleaving other commands.

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

__all__ = ["RedisSeats", "matchmake_reply", "rooms_reply"]

log = logging.getLogger("gameserver.cluster")

# ARGV: key prefix, game, token, reservation ttl ms, new room suffix, pending ttl ms.
# Returns {1, room, node, url, created (0/1)}, {0} no seat anywhere, {-1} no node serves game.
_MATCH = """
local P, game, token = ARGV[1], ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gkey = P .. 'game:' .. game
local urls = {}
local function url_of(node)
  local u = urls[node]
  if u == nil then
    u = redis.pcall('HGET', P .. 'node:' .. node, 'url')
    if type(u) ~= 'string' then u = false end
    urls[node] = u
  end
  return u
end
local best, fill_best, bnode, burl = nil, -1, nil, nil
local pending = {}  -- node -> rooms allocated there, not created yet
for _, rid in ipairs(redis.call('SMEMBERS', gkey)) do
  local h = redis.pcall('HMGET', P .. 'room:' .. rid, 'node', 'players', 'capacity', 'game',
                        'pending')
  if type(h) == 'table' and h.err == nil and h[1] then
    local url = url_of(h[1])
    local players, cap = tonumber(h[2]), tonumber(h[3])
    if h[5] == '1' then pending[h[1]] = (pending[h[1]] or 0) + 1 end
    if url and players and cap and h[4] == game then
      local rz = P .. 'resv:room:' .. rid
      redis.call('ZREMRANGEBYSCORE', rz, '-inf', now)
      local fill = players + redis.call('ZCARD', rz)
      if fill < cap and fill > fill_best then
        best, fill_best, bnode, burl = rid, fill, h[1], url
      end
    end
  elseif type(h) == 'table' and h.err == nil then
    redis.call('SREM', gkey, rid)  -- the entry expired: prune its id
  end
end
local created = 0
if best == nil then
  local load, served = nil, false
  for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
    local h = redis.pcall('HMGET', P .. 'node:' .. node, 'url', 'games', 'players', 'rooms',
                          'max_rooms')
    if type(h) == 'table' and h.err == nil and h[1] and h[2] then
      local ok, games = pcall(cjson.decode, h[2])
      local cap = ok and type(games) == 'table' and tonumber(games[game])
      local players, rooms = tonumber(h[3]) or 0, tonumber(h[4]) or 0
      -- a node at its room bound (counting rooms allocated there) gets no new room
      local room_ok = rooms + (pending[node] or 0) < (tonumber(h[5]) or 1000)
      if cap and cap >= 1 then served = true end
      if cap and cap >= 1 and room_ok and (load == nil or players < load[1]
          or (players == load[1] and (rooms < load[2]
              or (rooms == load[2] and node < bnode)))) then
        load, bnode, burl = {players, rooms, cap}, node, h[1]
      end
    end
  end
  if load == nil then
    if served then return {0} end  -- every node serving it is at its room bound
    return {-1}
  end
  best = game .. '-' .. bnode .. '-m' .. ARGV[5]
  local rkey = P .. 'room:' .. best
  if redis.call('EXISTS', rkey) == 1 then return {0} end
  redis.call('HSET', rkey, 'id', best, 'game', game, 'node', bnode, 'url', burl,
             'worker', 0, 'players', 0, 'capacity', load[3], 'updated', now / 1000,
             'pending', 1)
  redis.call('PEXPIRE', rkey, ARGV[6])
  redis.call('SADD', gkey, best)
  redis.call('PEXPIRE', gkey, 60000)
  created = 1
end
local rz = P .. 'resv:room:' .. best
redis.call('ZADD', rz, now + ttl, token)
redis.call('PEXPIRE', rz, 2 * ttl)
redis.call('SET', P .. 'resv:' .. token,
           cjson.encode({room = best, game = game, node = bnode, url = burl}), 'PX', ttl)
return {1, best, bnode, burl, created}
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
        token = new_token()
        try:
            reply = await self.link.call("reserve", lambda r: r.eval(
                _MATCH, 0, K.PREFIX, game, token, self.ttl_ms, secrets.token_hex(3),
                K.PENDING_TTL_MS))
        except BadReply:
            raise SeatError(ErrorCode.ROOM_FULL, "no seat could be reserved, try again",
                            503) from None
        status = K.as_int(reply[0], -1, 1) if isinstance(reply, list) and reply else None
        if status == -1:
            raise SeatError(ErrorCode.UNKNOWN_ROOM, f"no live node serves game {game!r}", 404)
        fields = [K.as_str(x) for x in reply[1:4]] if status == 1 else []
        if status != 1 or len(fields) != 3 or None in fields:
            if status is None or (status == 1 and None in fields):
                self.link.garbage("matchmake reply")
            raise SeatError(ErrorCode.ROOM_FULL, "no seat could be reserved, try again", 503)
        rid, node, url = (str(x) for x in fields)
        if node == self.node.node_id:  # our own room: hold the seat locally right away
            room = self.directory.manager.rooms.get(rid)
            if room is not None:
                room.held += 1
        return Seat(token, rid, game, node, url, self.ttl_ms / 1000,
                    new_room=K.as_int(reply[4]) == 1 if len(reply) > 4 else False)

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
            if url == self.node.url:  # a sibling process behind our own url (--workers)
                raise SeatError(ErrorCode.RESERVATION_INVALID,
                                "the reservation is held by another process at this address")
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
