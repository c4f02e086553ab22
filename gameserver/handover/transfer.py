"""The handover protocol through Redis: offer, claim, answer, take back; exactly once.

Keys (``<id>`` a room id, ``<node>`` a receiver's node id; TTLs bound what a dead node leaves):

==================================  =========================================================
``gs:handover:room:<id>``           the room's blob (:func:`~gameserver.handover.state.
                                    serialize_room`), ``SET ... EX 60``
``gs:handover:pending``             list of offered room ids (``RPUSH`` by the sender)
``gs:handover:claimed:<node>``      ids a receiver took (``BLMOVE pending -> claimed``)
``gs:handover:done:<id>``           the answer, one element: the receiver's public URL, or
                                    ``""`` if it could not restore the room (``BLPOP`` by
                                    the sender)
``gs:handover:abandoned:<id>``      set by a sender that gave up waiting (``EX 60``)
``gs:handover:refused:<id>``        set of receivers that could not restore it (``EX 60``)
``gs:handover:refusals:<id>``       how many times it was refused in all (``EX 60``)
==================================  =========================================================

Sender (a node with ``--handover`` on SIGTERM, :meth:`HandoverAgent.hand_over_all`): for each
room, freeze it (no more ticks, inputs ignored), serialize, ``SET`` blob + ``RPUSH`` id in one
``MULTI``; ``BLPOP done`` while the offer is pending and the receivers make progress (its
``LPOS`` in ``pending`` drops), at most ``claim_timeout`` s without progress. Still pending:
``LREM pending 1 id``; 1 means
nobody claimed it and now nobody can (the offer is taken back atomically): its players get
1001 and the room is logged lost to the shutdown. 0 means a receiver claimed it: ``BLPOP done``
again for ``restore_timeout`` s, then run :data:`_ABANDON` (atomically: take the answer if
there is one, else mark the room abandoned). With a URL the players get ERROR 4014 + close
4014 carrying it; otherwise 1001 and the room is logged lost.

Receiver (every node with ``--redis``, a background task, never on the tick path): ``BLMOVE``
an id from ``pending`` to its own claimed list (atomic: one receiver per offer), ``GET`` the
blob, rebuild the room without starting it, then run :data:`_COMMIT` (atomically: unless the
sender abandoned it, push the URL to ``done`` and drop the claim); only if that succeeded is
the room started. A receiver whose restore fails (the game is not served here, ``Game.load``
raises, a bad blob) runs :data:`_REFUSE` (atomically: unless abandoned, record the refusal
and push the id back to ``pending`` for another receiver, or, once :data:`MAX_REFUSERS`
distinct receivers or :data:`MAX_REFUSALS` refusals in all were reached, answer ``""``); a
receiver that re-claims a room it refused before refuses it at once and pauses one
``block``. A node that stops stops its receiver first (so it never claims its own
rooms); an offer it claimed just then goes back to ``pending`` (``LREM`` claim + ``LPUSH``
in one ``MULTI``) for another node, never served by a node whose listener is closing.

Exactly once: the sender stops ticking before it serializes, so at most one copy ticks at a
time; ``BLMOVE`` hands an offer to at most one receiver, ``LREM`` returning 1 proves nobody
got it; a claimed room starts only after :data:`_COMMIT` and the sender gives up only through
:data:`_ABANDON`, two scripts Redis runs atomically, so exactly one of "the receiver serves it"
and "the sender reports it lost" happens. A re-offer is made by the same script that drops the
claim and checks ``abandoned``, and the sender's abandon also takes a pending re-offer back
(``LREM pending``), so after an abandon nobody can claim it; a refusal never installs
anything. A receiver dying mid-restore leaves a claim without an answer: the sender's second
wait runs out and the room is reported lost, never served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gameserver.handover.state import (
    RestoreError,
    install_room,
    prepare_room,
    serialize_room,
    start_room,
    uninstall_room,
)
from gameserver.manager import RoomManager
from gameserver.metrics import Counter
from gameserver.room import Room, send_small
from protocol import messages as M
from protocol.codes import CloseCode, ErrorCode

if TYPE_CHECKING:
    from gameserver.server import GameServer

__all__ = ["PENDING", "HandoverAgent", "HandoverResult"]

log = logging.getLogger(__name__)

PENDING: Final = "gs:handover:pending"
ROOM: Final = "gs:handover:room:"
CLAIMED: Final = "gs:handover:claimed:"
DONE: Final = "gs:handover:done:"
ABANDONED: Final = "gs:handover:abandoned:"
#: set of receiver node ids that could not restore the room; ``REFUSALS + id`` counts
#: every refusal (a node that refused once refuses again at once if it re-claims the offer)
REFUSED: Final = "gs:handover:refused:"
REFUSALS: Final = "gs:handover:refusals:"
#: A room whose restore failed is offered again until this many distinct receivers refused
#: it (2: re-offered once more) or it was refused this many times in all (a refuser that
#: takes it back bounces it, bounded); then the sender is answered ``""`` (reported lost).
MAX_REFUSERS: Final = 2
MAX_REFUSALS: Final = 4
#: set of receiver node ids; each live one refreshes ``ALIVE + node`` (EX 3) every second
RECEIVERS: Final = "gs:handover:receivers"
ALIVE: Final = "gs:handover:alive:"
#: Seconds every handover key lives (a dead node's leftovers vanish).
KEY_TTL: Final = 60

#: Receiver: KEYS done, abandoned, claimed; ARGV url, id, ttl. 1 = committed, 0 = abandoned.
_COMMIT: Final = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('LREM', KEYS[3], 1, ARGV[2])
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('LREM', KEYS[3], 1, ARGV[2])
return 1
"""
#: Sender giving up: KEYS done, abandoned, pending; ARGV ttl, id. The answer if one came,
#: else false (and a re-offer still pending is taken back: nobody may claim it any more).
_ABANDON: Final = """
local v = redis.call('LPOP', KEYS[1])
if v then return v end
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[1]))
redis.call('LREM', KEYS[3], 0, ARGV[2])
return false
"""
#: Receiver that cannot restore a room it claimed: KEYS done, abandoned, claimed, pending,
#: refused, refusals; ARGV id, node, ttl, max refusers, max refusals. Drops the claim, then:
#: 0 the sender gave up (nothing to answer); 1 re-offered (``RPUSH pending``: the next
#: receiver takes it, the sender keeps waiting for ``done``); 2 the bound is reached:
#: ``""`` pushed to ``done``, the sender reports the room lost. One script, so the claim is
#: never both re-offered and answered, and never re-offered after an abandon.
_REFUSE: Final = """
redis.call('LREM', KEYS[3], 1, ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('SADD', KEYS[5], ARGV[2])
redis.call('EXPIRE', KEYS[5], ttl)
local n = redis.call('INCR', KEYS[6])
redis.call('EXPIRE', KEYS[6], ttl)
if redis.call('SCARD', KEYS[5]) < tonumber(ARGV[4]) and n < tonumber(ARGV[5]) then
  redis.call('RPUSH', KEYS[4], ARGV[1])
  return 1
end
redis.call('RPUSH', KEYS[1], '')
redis.call('EXPIRE', KEYS[1], ttl)
return 2
"""


@dataclass(frozen=True, slots=True)
class HandoverResult:
    """What became of one room: ``outcome`` is ``"moved"`` (``url`` set), ``"unclaimed"``,
    ``"lost"`` (claimed, not restored in time), ``"failed"`` (the receiver could not restore
    it) or ``"redis"`` (Redis failed mid-way); ``nbytes`` the blob size, ``seconds`` from
    freeze to answer."""

    room: str
    outcome: str
    url: str | None
    nbytes: int
    seconds: float


def _freeze(room: Room) -> None:
    """No more ticks; sessions ignore inputs (``Session._input`` checks ``room.closed``), so
    every input the blob does not carry stays unacknowledged and the client re-sends it."""
    if room._timer is not None:
        room._timer.cancel()
        room._timer = None
    if room._dispose is not None:
        room._dispose.cancel()
        room._dispose = None
    room.closed = True


def _moved(room: Room, url: str, tasks: list[asyncio.Task[None]]) -> None:
    """ERROR 4014 with ``url`` then close 4014 (reason = url when it fits 123 bytes) to every
    connected player; the room is dropped here without ``on_leave`` (it lives on elsewhere)."""
    err = M.encode(M.Error(int(ErrorCode.MOVED), f"room {room.id} moved to another node",
                           url=url))
    reason = url if len(url.encode()) <= 123 else "moved"
    loop = asyncio.get_running_loop()
    for p in list(room.players.values()):
        p.gone = True
        ws = p.ws
        if ws is not None and ws.open:
            send_small(ws, err, room.metrics, 1 << 62)  # never dropped for backpressure
            tasks.append(loop.create_task(ws.close(int(CloseCode.MOVED), reason)))
    # The tokens now belong to the receiver (it ran ``remember`` before answering): drop them
    # from this node's own index only, never through ``RoomManager.forget``, which a cluster
    # token index may hook (that would unregister the receiver's fresh entries).
    tokens = room.manager.tokens
    for p in room.players.values():
        if tokens.get(p.resume_token) is p:
            del tokens[p.resume_token]
        if p.grace is not None:
            p.grace.cancel()
            p.grace = None
    room.players.clear()
    room.closed = False
    room._stop("handover")  # the end record of its replay file (--record) says why
    room.metrics.players.set(room.manager.player_count())


def _lost(room: Room, why: str) -> None:
    """Today's graceful shutdown for this room: 1001 to its players, ``on_leave`` runs."""
    log.warning("room lost to shutdown room=%s game=%s players=%d reason=%s",
                room.id, room.game, len(room.players), why)
    room.closed = False
    room.shutdown()


class HandoverAgent:
    """A server's Redis side of handover: the receiver loop and, on SIGTERM, the sender.

    ``node_id`` names this process's claim list; ``url`` is what players of rooms restored
    here are told to dial (``--public-url``, else the server's own ws URL). ``claim_timeout``:
    seconds an offer waits for a receiver; ``restore_timeout``: seconds a claimed room may
    take to be restored; ``block``: seconds one ``BLMOVE`` waits (bounds how long stopping
    the receiver takes).
    """

    def __init__(self, manager: RoomManager, redis_url: str, url: str, *,
                 node_id: str | None = None, claim_timeout: float = 5.0,
                 restore_timeout: float = 10.0, block: float = 0.5) -> None:
        self.manager = manager
        self.url = url
        self.node_id = node_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.claim_timeout = claim_timeout
        self.restore_timeout = restore_timeout
        self.block = block
        # no socket timeout: every call is bounded by asyncio.timeout instead (blocking
        # commands wait longer than any sane socket timeout)
        self.redis: Any = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2.0,
                                                  socket_timeout=None)
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self.restored = 0
        self.results: list[HandoverResult] = []
        # registered only on --redis nodes (a single node's /metrics is unchanged)
        self.m_sent = Counter("gameserver_handover_rooms_total",
                              "Rooms this node handed over on shutdown, by outcome (moved, "
                              "unclaimed, lost, failed, redis).", ("outcome",))
        self.m_restored = Counter("gameserver_handover_restored_total",
                                  "Rooms this node restored from another node's handover.")
        self.m_bytes = Counter("gameserver_handover_bytes_total",
                               "Bytes of room state this node wrote to Redis for handovers.")
        reg = manager.metrics.registry
        for m in (self.m_sent, self.m_restored, self.m_bytes):
            reg.register(m)

    @classmethod
    def for_server(cls, server: GameServer) -> HandoverAgent:
        cfg = server.config
        assert cfg.redis_url is not None and server.rooms is not None
        return cls(server.rooms, cfg.redis_url, cfg.public_url or server.ws_url)

    # ---------------------------------------------------------------------- receiver

    def start(self) -> None:
        """Start the receiver loop (a background task; Redis being down is not an error)."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._receive_loop())
            self._beat = loop.create_task(self._heartbeat())

    async def stop_receiver(self) -> None:
        """Stop claiming offers; waits for the claim in flight (at most ``block`` s + 2 s),
        so an offer Redis already moved to our claim list is still restored, never lost."""
        self._stopping = True
        beat = self._beat
        if beat is not None and not beat.done():
            beat.cancel()
            with contextlib.suppress(BaseException):
                await beat
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await self.redis.delete(ALIVE + self.node_id)
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.block + self.restore_timeout)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _heartbeat(self) -> None:
        """Tell senders a receiver is alive (even while it is busy restoring a big room)."""
        while not self._stopping:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(2.0):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        pipe.sadd(RECEIVERS, self.node_id)
                        pipe.set(ALIVE + self.node_id, b"1", ex=3)
                        await pipe.execute()
            await asyncio.sleep(1.0)

    async def _receivers_alive(self) -> bool:
        """True if some receiver refreshed its heartbeat in the last 3 s (dead ones are
        dropped from the set)."""
        r = self.redis
        async with asyncio.timeout(5.0):
            nodes = [n.decode(errors="replace") if isinstance(n, bytes) else str(n)
                     for n in await r.smembers(RECEIVERS)]
            if not nodes:
                return False
            alive = await r.exists(*(ALIVE + n for n in nodes))
            if alive < len(nodes):
                flags = [await r.exists(ALIVE + n) for n in nodes]
                dead = [n for n, f in zip(nodes, flags) if not f]
                if dead:
                    await r.srem(RECEIVERS, *dead)
        return bool(alive)

    async def _receive_loop(self) -> None:
        r = self.redis
        claimed = CLAIMED + self.node_id
        down_since: float | None = None
        delay = 0.2
        while not self._stopping:
            try:
                async with asyncio.timeout(self.block + 5.0):
                    rid = await r.blmove(PENDING, claimed, self.block, "LEFT", "RIGHT")
            except (RedisError, OSError, TimeoutError) as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("handover receiver: Redis unavailable, retrying with backoff: "
                                "%s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if down_since is not None:
                log.info("handover receiver: Redis reachable again after %.1fs",
                         time.monotonic() - down_since)
                down_since = None
                delay = 0.2
            if rid is None:
                continue
            room_id = rid.decode(errors="replace") if isinstance(rid, bytes) else str(rid)
            try:
                await self._take(room_id, claimed)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("handover receiver: Redis failed while taking room=%s: %s "
                            "(the sender reports it lost)", room_id, exc)

    async def _give_back(self, room_id: str, claimed: str) -> None:
        """We are stopping after all: return the claim to ``pending`` (one MULTI) so another
        node can take the room; its sender is still waiting for an answer."""
        async with asyncio.timeout(5.0):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lrem(claimed, 1, room_id)
                pipe.lpush(PENDING, room_id)
                await pipe.execute()
        log.info("handover receiver: stopping, gave room=%s back to the other nodes", room_id)

    async def _refuse(self, room_id: str, claimed: str, why: str) -> None:
        """This node cannot restore ``room_id``: :data:`_REFUSE` (re-offer it, or at the
        bound answer the sender ``""``); one ERROR line says which."""
        async with asyncio.timeout(5.0):
            v = await self.redis.eval(_REFUSE, 6, DONE + room_id, ABANDONED + room_id,
                                      claimed, PENDING, REFUSED + room_id, REFUSALS + room_id,
                                      room_id, self.node_id, KEY_TTL, MAX_REFUSERS,
                                      MAX_REFUSALS)
        then = {0: "its sender gave up already", 1: "offered to another receiver",
                2: "refused too often, reported lost"}.get(int(v), str(v))
        log.error("handover receiver: cannot restore room=%s: %s (%s)", room_id, why, then)

    async def _take(self, room_id: str, claimed: str) -> None:
        r = self.redis
        if self._stopping:  # claimed just as this node began to stop: not ours to serve
            await self._give_back(room_id, claimed)
            return
        async with asyncio.timeout(5.0):
            await r.expire(claimed, 10 * KEY_TTL)
            blob = await r.get(ROOM + room_id)
        if blob is None:
            log.warning("handover receiver: blob of room=%s expired before the claim", room_id)
            async with asyncio.timeout(5.0):
                await r.lrem(claimed, 1, room_id)
            return
        async with asyncio.timeout(5.0):
            again = await r.sismember(REFUSED + room_id, self.node_id)
        if again:
            # we failed on it before: do not try again, let another receiver have it
            await self._refuse(room_id, claimed, "already failed here")
            await asyncio.sleep(self.block)  # so the next BLMOVE is another receiver's
            return
        try:
            room = prepare_room(self.manager, bytes(blob))
        except Exception as exc:  # RestoreError, or a bug of ours / the game's: not here
            if not isinstance(exc, RestoreError):
                log.error("handover receiver: restore of room=%s raised", room_id,
                          exc_info=exc)
            await self._refuse(room_id, claimed, str(exc))
            return
        if self._stopping:
            await self._give_back(room_id, claimed)
            return
        # Registered (its tokens resumable) before the commit, started only after it: no
        # client dials us before the sender has our URL, and the room never ticks unless
        # the commit won over the sender's abandon.
        install_room(self.manager, room, start=False)
        try:
            async with asyncio.timeout(5.0):
                ok = await r.eval(_COMMIT, 3, DONE + room_id, ABANDONED + room_id, claimed,
                                  self.url, room_id, KEY_TTL)
        except BaseException:
            uninstall_room(self.manager, room)
            raise
        if not ok:
            uninstall_room(self.manager, room)
            log.warning("handover receiver: room=%s was abandoned by its sender; discarded",
                        room_id)
            return
        start_room(room)
        self.restored += 1
        self.m_restored.inc()
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(5.0):
                await r.delete(ROOM + room_id)

    # ------------------------------------------------------------------------ sender

    async def available(self) -> bool:
        """True if Redis answers a PING within 2 s."""
        try:
            async with asyncio.timeout(2.0):
                return bool(await self.redis.ping())
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("handover: Redis unavailable at shutdown (%s): falling back to the "
                        "graceful shutdown (1001 to every player)", exc)
            return False

    async def hand_over_all(self) -> list[HandoverResult]:
        """Hand every room over (concurrently); rooms that cannot be are shut down as today
        (1001). Call after the server stopped accepting and :meth:`stop_receiver`. Returns
        one result per room; the 4014 closes are awaited (bounded by the close timeout)."""
        rooms = [r for r in self.manager.rooms.values() if not r.closed]
        if not rooms or not await self.available():
            return []
        closes: list[asyncio.Task[None]] = []
        results = await asyncio.gather(*(self._hand_over(room, closes) for room in rooms))
        for x in results:
            self.m_sent.labels(x.outcome).inc()
            self.m_bytes.inc(x.nbytes)
        if closes:
            await asyncio.wait(closes, timeout=5.0)
        self.results.extend(results)
        moved = sum(1 for x in results if x.outcome == "moved")
        log.info("handover finished rooms=%d moved=%d lost=%d bytes=%d", len(results), moved,
                 len(results) - moved, sum(x.nbytes for x in results))
        return results

    async def _hand_over(self, room: Room, closes: list[asyncio.Task[None]]) -> HandoverResult:
        r = self.redis
        rid = room.id
        t0 = time.perf_counter()
        _freeze(room)
        players = len(room.players)
        try:
            blob = serialize_room(room)
        except Exception as exc:  # the game's save() (or our bug): this room cannot move
            log.error("handover: cannot serialize room=%s", rid, exc_info=exc)
            _lost(room, "serialize failed")
            return HandoverResult(rid, "failed", None, 0, time.perf_counter() - t0)
        n = len(blob)
        offered = False
        try:
            async with asyncio.timeout(10.0):
                async with r.pipeline(transaction=True) as pipe:
                    pipe.delete(DONE + rid, ABANDONED + rid, REFUSED + rid, REFUSALS + rid)
                    pipe.set(ROOM + rid, blob, ex=KEY_TTL)
                    pipe.rpush(PENDING, rid)
                    await pipe.execute()
            offered = True
            outcome, url = await self._wait_answer(rid)
        except (RedisError, OSError, TimeoutError) as exc:
            if offered:
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(2.0):
                        await r.eval(_ABANDON, 3, DONE + rid, ABANDONED + rid, PENDING,
                                     KEY_TTL, rid)
            log.warning("handover: Redis failed for room=%s: %s", rid, exc)
            _lost(room, "redis error")
            return HandoverResult(rid, "redis", None, n, time.perf_counter() - t0)
        if url is None:
            why = {"unclaimed": "nobody claimed it", "lost": "claimed, not restored",
                   "failed": "no receiver could restore it"}[outcome]
            if outcome == "failed":
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(2.0):
                        nodes = await r.smembers(REFUSED + rid)
                    why += " (refused by " + ",".join(sorted(
                        n.decode(errors="replace") if isinstance(n, bytes) else str(n)
                        for n in nodes)) + ")"
            _lost(room, why)
            return HandoverResult(rid, outcome, None, n, time.perf_counter() - t0)
        _moved(room, url, closes)
        dt = time.perf_counter() - t0
        log.info("room handed over room=%s to=%s players=%d bytes=%d seconds=%.3f",
                 rid, url, players, n, dt)
        return HandoverResult(rid, "moved", url, n, dt)

    async def _wait_answer(self, rid: str) -> tuple[str, str | None]:
        """``("moved", url)``, or ``("unclaimed" | "lost" | "failed", None)``.

        While the offer is pending, every second its position in ``pending`` (``LPOS``) and
        the receivers' heartbeats are read: the wait for a claim is ``claim_timeout`` s
        *without progress and without a live receiver* (a receiver busy with the offers
        ahead of ours keeps it going: many rooms, one receiver), at most ``KEY_TTL - 10`` s
        in all (the blob must outlive the claim); then ``LREM``.
        """
        r = self.redis
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + self.claim_timeout
        last_pos: int | None = None
        got: Any = None
        claimed = False
        while got is None:
            now = loop.time()
            wait = max(0.05, min(1.0, deadline - now))
            async with asyncio.timeout(wait + 5.0):
                got = await r.blpop([DONE + rid], timeout=wait)
            if got is not None:
                break
            async with asyncio.timeout(5.0):
                pos = await r.lpos(PENDING, rid)
            now = loop.time()
            if pos is None:  # a receiver has it: wait for its answer
                claimed = True
                break
            if (last_pos is not None and pos < last_pos) or await self._receivers_alive():
                # progress, or a live receiver busy with other offers: keep waiting
                deadline = min(now + self.claim_timeout, start + KEY_TTL - 10)
            last_pos = pos
            if now >= deadline:
                async with asyncio.timeout(5.0):
                    removed = await r.lrem(PENDING, 1, rid)
                if removed == 1:  # taken back: nobody has it, nobody can get it now
                    with contextlib.suppress(RedisError, OSError, TimeoutError):
                        async with asyncio.timeout(2.0):
                            await r.delete(ROOM + rid)
                    return "unclaimed", None
                claimed = True  # claimed between LPOS and LREM
                break
        if got is None and claimed:
            async with asyncio.timeout(self.restore_timeout + 5.0):
                got = await r.blpop([DONE + rid], timeout=self.restore_timeout)
            if got is None:
                async with asyncio.timeout(5.0):
                    v = await r.eval(_ABANDON, 3, DONE + rid, ABANDONED + rid, PENDING,
                                     KEY_TTL, rid)
                if not v:
                    return "lost", None
                got = (None, v)
        val = got[1]
        url = val.decode(errors="replace") if isinstance(val, bytes) else str(val)
        return ("moved", url) if url else ("failed", None)

    async def close(self) -> None:
        """Stop the receiver and close the Redis connections."""
        await self.stop_receiver()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
