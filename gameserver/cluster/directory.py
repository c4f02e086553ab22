"""The room directory and the resume-token index in Redis: published by a background sync.

:class:`Directory` is the :class:`gameserver.manager.RoomListener` of a cluster node. Nothing
in it is awaited by a room or a tick: the listener calls only mark work as pending (sets,
bounded) and wake the background task, which writes Redis in one pipeline per pass.

What the node publishes (keys and TTLs: :mod:`gameserver.cluster.keys`):

* every ``SYNC_PERIOD`` (1 s), ONE pipeline (one round trip, whatever the number of rooms):
  its presence hash; for EVERY room in ``RoomManager.rooms`` (however it got there: created,
  or restored by a handover) the room hash with a fresh TTL, its id in the game's set, and
  a ``ZCOUNT`` of that room's live seat reservations (which become ``Room.held``);
* at once (the next loop pass, coalesced): a removed room's entry (deleted only while it
  still names this node: a room handed over to another node keeps that node's entry; a room
  that left ``RoomManager.rooms`` without ``remove_room`` goes at the next full pass), a
  seated player's token -> node entry, a departed player's token entry (only if still ours);
* every ``TOKEN_REFRESH`` (60 s), and after Redis comes back from an outage, every token of
  the node again (their TTL is 5 minutes; while Redis was away writes were lost).

Reads (:meth:`locate_room`, :meth:`locate_token`, :meth:`view`) keep only entries whose node
is present (its presence hash exists): a dead node's rooms are never offered, even before
their own TTL runs out. Stale ids in ``gs:nodes`` / ``gs:game:*`` found by a read are pruned
by the next sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gameserver.cluster import keys as K
from gameserver.cluster.errors import BadReply, ClusterUnavailable
from gameserver.cluster.link import RedisLink
from gameserver.cluster.node import LiveNode, NodeIdentity, parse_node

if TYPE_CHECKING:
    from gameserver.manager import RoomManager
    from gameserver.room import Player, Room

__all__ = ["Directory", "RoomEntry", "View", "room_capacity"]

log = logging.getLogger("gameserver.cluster")

#: Bound on pending token writes / deletes and prunes kept between passes (beyond it the
#: periodic full token refresh repairs the index: entries expire, deletes are harmless late).
MAX_PENDING = 100_000

# Compare-and-delete: remove KEYS[1] (and ARGV[2] from set KEYS[2]) only if it still names
# node ARGV[1] (field "node" of a hash when ARGV[3] == "hash", else the string value).
_DEL_IF_OWNER = """
local n
if ARGV[3] == 'hash' then n = redis.call('HGET', KEYS[1], 'node')
else n = redis.call('GET', KEYS[1]) end
if n == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] ~= '' then redis.call('SREM', KEYS[2], ARGV[2]) end
  return 1
end
return 0
"""

# Which node holds KEYS[1] (a room hash's "node" field, or a token's string value), and that
# node's url if its presence still exists: {node, url or ""}; nil when the key is absent.
_LOCATE = """
local n
if ARGV[1] == 'hash' then n = redis.call('HGET', KEYS[1], 'node')
else n = redis.call('GET', KEYS[1]) end
if not n then return false end
local url = redis.call('HGET', ARGV[2] .. 'node:' .. n, 'url')
if not url then url = '' end
return {n, url}
"""


def room_capacity(config: Any, game_cls: type[Any]) -> int:
    """Seats per room of ``game_cls`` (the formula of :class:`gameserver.room.Room`)."""
    return int(config.max_players or getattr(game_cls, "max_players", None) or 16)


@dataclass(frozen=True)
class RoomEntry:
    """One room of the directory, as read back (its node is live)."""

    room: str
    game: str
    node: str
    url: str
    worker: int
    players: int
    capacity: int
    reserved: int
    updated: float
    pending: bool

    @property
    def free(self) -> int:
        return self.capacity - self.players - self.reserved

    def info(self) -> dict[str, object]:
        return {"id": self.room, "game": self.game, "node": self.node, "url": self.url,
                "worker": self.worker, "players": self.players, "capacity": self.capacity,
                "reserved": self.reserved, "updated": self.updated, "pending": self.pending}


@dataclass(frozen=True)
class View:
    """A consistent-enough read of the cluster: live nodes and their rooms."""

    nodes: dict[str, LiveNode]
    rooms: list[RoomEntry]


class Directory:
    """Publishes this node's rooms and tokens; answers where a room or token lives."""

    def __init__(self, link: RedisLink, node: NodeIdentity, manager: RoomManager) -> None:
        self.link = link
        self.node = node
        self.manager = manager
        self._published: dict[str, str] = {}      # room id -> game, as of the last sync
        self._removed: dict[str, str] = {}        # room id -> game: delete if still ours
        self._tok_add: set[str] = set()
        self._tok_del: set[str] = set()
        self._prune_nodes: set[str] = set()
        self._prune_rooms: set[tuple[str, str]] = set()  # (game, room id)
        self._wake = asyncio.Event()
        self._next_sync = 0.0
        self._next_tokens = 0.0
        self._seen_recovery = link.recovered
        self._task: asyncio.Task[None] | None = None
        self._stopping = False  # the sync loop's exit flag (a cancel alone may be swallowed)
        self.syncs = 0  # successful passes (tests wait on it)

    # ---------------------------------------------------------------- RoomListener hooks

    def room_added(self, room: Room) -> None:
        self._removed.pop(room.id, None)
        self._next_sync = 0.0  # publish it now, not in up to a second
        self._wake.set()

    def room_removed(self, room: Room) -> None:
        if len(self._removed) < MAX_PENDING:
            self._removed[room.id] = room.game
        self._wake.set()

    def player_seated(self, p: Player) -> None:
        t = p.resume_token
        self._tok_del.discard(t)
        if len(self._tok_add) < MAX_PENDING:
            self._tok_add.add(t)
        self._wake.set()

    def player_left(self, p: Player) -> None:
        t = p.resume_token
        self._tok_add.discard(t)
        if len(self._tok_del) < MAX_PENDING:
            self._tok_del.add(t)
        self._wake.set()

    # ------------------------------------------------------------------- the sync task

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cluster-sync")

    def kill(self) -> None:
        """Stop publishing at once, without cleaning up (tests: a node that dies)."""
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        """End the sync task, bounded: the loop also checks a flag, because on Python 3.11
        ``asyncio.wait_for`` may swallow a cancel that lands as its inner wait completes
        (CPython gh-86296), and an unbounded ``await task`` then hung the server's stop."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        if not done:
            log.warning("cluster sync task did not stop within 2 s; leaving it")
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            timeout = self._next_sync - loop.time()
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):  # (never swallows a cancel)
                        await self._wake.wait()
            if self._stopping:
                return
            self._wake.clear()
            now = loop.time()
            full = now >= self._next_sync
            if not full and not self.link.available():
                continue  # only a periodic pass probes a Redis that is down
            try:
                await self.sync(full=full)
            except ClusterUnavailable:
                pass  # logged once by the link; the next full pass retries (backoff)
            except Exception:  # our bug: never let the sync task die silently
                log.exception("cluster sync failed")
            if full:  # periods counted from the pass's start: a slow pass does not stretch them
                self._next_sync = max(now + K.SYNC_PERIOD, loop.time() + 0.05)

    async def sync(self, *, full: bool = True) -> None:
        """One pass: pending writes, and (``full``) presence + every room; one round trip."""
        rooms = [r for r in self.manager.rooms.values() if not r.closed]
        if self.link.recovered != self._seen_recovery:
            self._next_tokens = 0.0  # Redis was away: everything we wrote since is lost
        tokens_due = full and time.monotonic() >= self._next_tokens
        tok_add = set(self._tok_add)
        if tokens_due:
            tok_add |= set(self.manager.tokens)
        tok_del, removed = set(self._tok_del), dict(self._removed)
        if full:  # rooms that left RoomManager.rooms without remove_room (e.g. a handover)
            live = {x.id for x in rooms}
            for rid, game in self._published.items():
                if rid not in live:
                    removed.setdefault(rid, game)
        prune_nodes, prune_rooms = set(self._prune_nodes), set(self._prune_rooms)
        me = self.node.node_id
        nid = self.node
        now_ms = int(time.time() * 1000)

        async def run(r: Any) -> Any:
            pipe = r.pipeline(transaction=False)
            for rid, game in removed.items():
                pipe.eval(_DEL_IF_OWNER, 2, K.room_key(rid), K.game_key(game), me, rid, "hash")
            for t in tok_del:
                pipe.eval(_DEL_IF_OWNER, 2, K.tok_key(t), K.tok_key(t), me, "", "str")
            for t in tok_add:
                pipe.set(K.tok_key(t), me, px=K.TOKEN_TTL_MS)
            if prune_nodes:
                pipe.srem(K.NODES, *prune_nodes)
            for game, rid in prune_rooms:
                pipe.srem(K.game_key(game), rid)
            if full:
                games = {g: room_capacity(self.manager.config, c)
                         for g, c in self.manager.games.items()}
                players = sum(len(x.players) for x in rooms)
                pipe.hset(K.node_key(me), mapping=nid.presence(
                    games=games, rooms=len(rooms), players=players,
                    max_rooms=self.manager.config.max_rooms))
                pipe.pexpire(K.node_key(me), K.NODE_TTL_MS)
                pipe.sadd(K.NODES, me)
                updated = f"{time.time():.3f}"
                for g in {x.game for x in rooms}:
                    pipe.pexpire(K.game_key(g), K.GAME_TTL_MS)
                for x in rooms:
                    key = K.room_key(x.id)
                    pipe.hset(key, mapping={
                        "id": x.id, "game": x.game, "node": me, "url": nid.url,
                        "worker": str(nid.worker), "players": str(len(x.players)),
                        "capacity": str(x.capacity), "updated": updated, "pending": "0"})
                    pipe.pexpire(key, K.ROOM_TTL_MS)
                    pipe.sadd(K.game_key(x.game), x.id)
                    pipe.zcount(K.resv_room_key(x.id), now_ms, "+inf")
            return await pipe.execute(raise_on_error=False)

        if not removed and not tok_del and not tok_add and not full and not prune_nodes \
                and not prune_rooms:
            return
        replies = await self.link.call("sync" if full else "write", run)
        bad = [x for x in replies if isinstance(x, Exception)]
        if bad:  # e.g. WRONGTYPE: a key of ours holds someone else's value
            self.link.garbage(f"sync: {len(bad)} commands refused ({bad[0]})")
        # Success: what was pending is written (new work that came meanwhile stays pending).
        for rid in removed:
            if self._removed.get(rid) == removed[rid]:
                del self._removed[rid]
        self._tok_del -= tok_del
        self._tok_add -= tok_add
        self._prune_nodes -= prune_nodes
        self._prune_rooms -= prune_rooms
        if tokens_due:
            self._next_tokens = time.monotonic() + K.TOKEN_REFRESH
            self._seen_recovery = self.link.recovered
        if full:
            self._published = {x.id: x.game for x in rooms}
            tail = replies[len(replies) - 4 * len(rooms):]
            for x, n in zip(rooms, tail[3::4]):
                held = K.as_int(n, 0, 1 << 20)
                x.held = held if held is not None else 0
            self.syncs += 1

    async def withdraw(self) -> None:
        """Clean stop: delete our presence, our rooms and our tokens (best effort, bounded)."""
        await self.stop()
        me = self.node.node_id
        rooms = {r.id: r.game for r in self.manager.rooms.values()}
        rooms.update(self._published)
        tokens = set(self.manager.tokens) | self._tok_add | self._tok_del

        async def run(r: Any) -> Any:
            pipe = r.pipeline(transaction=False)
            pipe.delete(K.node_key(me))
            pipe.srem(K.NODES, me)
            for rid, game in rooms.items():
                pipe.eval(_DEL_IF_OWNER, 2, K.room_key(rid), K.game_key(game), me, rid, "hash")
            for t in tokens:
                pipe.eval(_DEL_IF_OWNER, 2, K.tok_key(t), K.tok_key(t), me, "", "str")
            return await pipe.execute(raise_on_error=False)

        with contextlib.suppress(ClusterUnavailable):
            await self.link.call("withdraw", run)

    # -------------------------------------------------------------------------- reads

    async def _locate(self, key: str, kind: str) -> str | None:
        try:
            reply = await self.link.call(
                "locate", lambda r: r.eval(_LOCATE, 1, key, kind, K.PREFIX))
        except BadReply:
            return None  # the key holds something else: as good as absent
        if reply is None:
            return None
        if not isinstance(reply, list) or len(reply) != 2:
            self.link.garbage(f"locate {key}")
            return None
        node, url = K.as_str(reply[0], 64), K.as_str(reply[1])
        if node is None or node == self.node.node_id:
            return None  # ours (local state is the truth) or unreadable
        if url is None or not url.startswith(("ws://", "wss://")):
            return None  # its node is gone: the entry is stale
        if url == self.node.url:
            return None  # a sibling sharing our url (--workers): a redirect would loop
        return url

    async def locate_room(self, room_id: str) -> str | None:
        """The url of the live node (not this one) holding ``room_id``, else None (1 trip)."""
        return await self._locate(K.room_key(room_id), "hash")

    async def locate_token(self, token: str) -> str | None:
        """The url of the live node (not this one) holding resume ``token``, else None."""
        return await self._locate(K.tok_key(token), "str")

    async def view(self, game: str | None = None) -> View:
        """Live nodes and their rooms (of ``game``, or all): 2 round trips for one game,
        3 for all games; entries of dead nodes and unreadable entries are left out."""
        if game is not None:
            first = await self.link.call("view", lambda r: _pipe(
                r, ("smembers", K.NODES), ("smembers", K.game_key(game))))
            node_set, room_sets = _ids(first[0]), {game: _ids(first[1])}
        else:
            node_set = _ids(await self.link.call("view", lambda r: r.smembers(K.NODES)))
            room_sets = {}
        node_ids = sorted(node_set)[:10_000]
        if game is None:
            raw = await self.link.call("view", lambda r: _pipe(
                r, *(("hgetall", K.node_key(n)) for n in node_ids)))
            nodes = self._nodes(node_ids, raw)
            games = sorted({g for n in nodes.values() for g in n.games})[:1000]
            sets = await self.link.call("view", lambda r: _pipe(
                r, *(("smembers", K.game_key(g)) for g in games)))
            room_sets = {g: _ids(s) for g, s in zip(games, sets)}
            pairs = [(g, rid) for g, ids in room_sets.items() for rid in sorted(ids)][:100_000]
            now_ms = int(time.time() * 1000)
            raw_rooms = await self.link.call("view", lambda r: _pipe(r, *(
                c for _, rid in pairs for c in (("hgetall", K.room_key(rid)),
                                                 ("zcount", K.resv_room_key(rid), now_ms,
                                                  "+inf"))))) if pairs else []
        else:
            pairs = [(game, rid) for rid in sorted(room_sets[game])][:100_000]
            now_ms = int(time.time() * 1000)
            raw = await self.link.call("view", lambda r: _pipe(r, *(
                [("hgetall", K.node_key(n)) for n in node_ids]
                + [c for _, rid in pairs for c in (("hgetall", K.room_key(rid)),
                                                   ("zcount", K.resv_room_key(rid), now_ms,
                                                    "+inf"))])))
            nodes = self._nodes(node_ids, raw[:len(node_ids)])
            raw_rooms = raw[len(node_ids):]
        rooms: list[RoomEntry] = []
        for i, (g, rid) in enumerate(pairs):
            entry = _room_entry(raw_rooms[2 * i], raw_rooms[2 * i + 1], nodes)
            if entry is None or entry.game != g:
                if K.decode_hash(raw_rooms[2 * i]) is None and len(self._prune_rooms) < \
                        MAX_PENDING:
                    self._prune_rooms.add((g, rid))  # expired: drop the id from the set
                continue
            rooms.append(entry)
        return View(nodes, rooms)

    def _nodes(self, node_ids: list[str], raw: list[Any]) -> dict[str, LiveNode]:
        nodes: dict[str, LiveNode] = {}
        for nid, h in zip(node_ids, raw):
            n = parse_node(h)
            if n is None:
                if K.decode_hash(h) is None and len(self._prune_nodes) < MAX_PENDING:
                    self._prune_nodes.add(nid)  # presence expired: a dead node
                elif K.decode_hash(h) is not None:
                    self.link.garbage(f"presence of node {nid}")
                continue
            if n.node_id == nid:
                nodes[nid] = n
        return nodes


async def _pipe(r: Any, *cmds: tuple[Any, ...]) -> list[Any]:
    """Run ``cmds`` (method name, args...) as one pipeline: one round trip."""
    pipe = r.pipeline(transaction=False)
    for name, *args in cmds:
        getattr(pipe, name)(*args)
    result: list[Any] = await pipe.execute(raise_on_error=False)
    return [None if isinstance(x, Exception) else x for x in result]


def _ids(v: Any) -> set[str]:
    if not isinstance(v, set | list):
        return set()
    out = set()
    for x in v:
        s = K.as_str(x, 256)
        if s is not None:
            out.add(s)
    return out


def _room_entry(raw: Any, reserved: Any, nodes: dict[str, LiveNode]) -> RoomEntry | None:
    h = K.decode_hash(raw)
    if h is None:
        return None
    node = nodes.get(h.get("node", ""))
    room, game = h.get("id"), h.get("game")
    players, capacity = K.as_int(h.get("players"), 0, 1 << 20), K.as_int(h.get("capacity"),
                                                                          1, 1 << 20)
    if node is None or not room or not game or players is None or capacity is None:
        return None  # its node is gone, or the entry is not ours / corrupt
    try:
        updated = float(h.get("updated", "0"))
    except ValueError:
        updated = 0.0
    return RoomEntry(room=room, game=game, node=node.node_id, url=node.url,
                     worker=K.as_int(h.get("worker"), 0, 1 << 16) or 0, players=players,
                     capacity=capacity, reserved=K.as_int(reserved, 0, 1 << 20) or 0,
                     updated=updated, pending=h.get("pending") == "1")
