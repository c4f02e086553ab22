"""Redis stalled (SIGSTOP), stopped and restarted on its port, or holding garbage: rooms keep
ticking and streaming, cross-node joins get a clear 4018, one log line per outage, the node
comes back by itself and republishes what it holds; nothing crashes."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

import pytest
from cluster_kit import cluster, http, raw_redis, refused, restart_on_same_port, synced, until
from redis_server import RedisServer

from gameserver.metrics import parse_text
from protocol import messages as M


async def metric(server: Any, name: str) -> float:
    status, body = await http(server.port, "/metrics")
    assert status == 200
    return parse_text(body.decode()).get(name, 0.0)


def max_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def test_stalled_redis_never_stalls_ticks(kit: Any, redis_server: RedisServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gameserver.cluster")

    async def main() -> None:
        async with cluster(kit, redis_server.url) as (a, b):
            far = await b.join(name="far")          # a room on B, for a cross-node join
            ann = await a.join(name="ann")          # a player streaming from A
            await synced(a.server)
            await synced(b.server)
            arrivals: list[float] = []
            ann.reading.clear()  # take over the reader: timestamp every delta
            ann.reader.cancel()

            async def read() -> None:
                while True:
                    m = M.decode_server(await ann.ws.recv())
                    if isinstance(m, M.Delta):
                        arrivals.append(time.monotonic())

            reader = asyncio.get_running_loop().create_task(read())
            try:
                await asyncio.sleep(0.5)
                redis_server.pause()                 # Redis stops answering, sockets open
                t_pause = time.monotonic()
                # A cross-node join needs the directory: refused 4018, in bounded time.
                t0 = time.monotonic()
                err, code, _ = await refused(a, M.Hello(room=far.welcome.room))
                assert err is not None and (err.code, code) == (4018, 4018)
                assert time.monotonic() - t0 < 3.0
                # A local join by game name still works while Redis is away.
                bob = await a.join(name="bob")
                assert bob.welcome.room == ann.welcome.room
                # /matchmake and the cluster view say so clearly (503), promptly.
                status, body = await http(a.server.port, "/matchmake?game=walker")
                assert status == 503 and body["code"] == 4018
                assert (await http(a.server.port, "/rooms?scope=cluster"))[0] == 503
                await until(lambda: a.server.cluster.link.up is False, 5)
                assert await metric(a.server, "gameserver_redis_degraded") == 1
                await asyncio.sleep(max(0.0, 4.0 - (time.monotonic() - t_pause)))
                during = [t for t in arrivals if t >= t_pause]
                # 4 s at 30 Hz is ~120 deltas; a tick path that waited on Redis gets ~0.
                assert len(during) >= 40, len(during)
                assert max_gap(during) < 2.0
                redis_server.resume()
                t_resume = time.monotonic()
                await until(lambda: a.server.cluster.link.up, 15)
                await synced(a.server)
                assert await metric(a.server, "gameserver_redis_degraded") == 0
                assert time.monotonic() - t_resume < 15
                # Cross-node routing is back.
                err, code, _ = await refused(a, M.Hello(room=far.welcome.room))
                assert err is not None and (err.code, code) == (4013, 4013)
                assert max_gap([t for t in arrivals if t >= t_pause]) < 2.0
            finally:
                redis_server.resume()
                reader.cancel()
        downs = [r for r in caplog.records if "redis unavailable" in r.getMessage()]
        ups = [r for r in caplog.records if "redis reachable again" in r.getMessage()]
        # One line per node per outage, not one per failed call (there were many).
        assert 1 <= len(downs) <= 2 and all(r.levelno == logging.WARNING for r in downs)
        assert 1 <= len(ups) <= 2
    kit.run(main())


def test_redis_restarted_on_its_port_gets_everything_back(kit: Any,
                                                         redis_server: RedisServer) -> None:
    async def main() -> None:
        async with cluster(kit, redis_server.url) as (a, b):
            ann = await a.join(name="ann")
            room, token, nid = ann.welcome.room, ann.welcome.resume, a.server.cluster.node_id
            await synced(a.server)
            redis_server.stop()                      # connections refused
            await until(lambda: not a.server.cluster.link.up, 10)
            err, code, _ = await refused(b, M.Resume(token))
            assert err is not None and code == 4018
            await asyncio.to_thread(restart_on_same_port, redis_server)  # empty database
            await until(lambda: a.server.cluster.link.up and b.server.cluster.link.up, 20)
            await synced(a.server, 2)
            r = raw_redis(redis_server.url)
            try:
                assert await r.hget(f"gs:node:{nid}", "url") == a.server.ws_url
                assert await r.hget(f"gs:room:{room}", "node") == nid
                assert await r.get(f"gs:tok:{token}") == nid   # the token index too
            finally:
                await r.aclose()
            err, code, reason = await refused(b, M.Resume(token))
            assert err is not None and (code, reason) == (4013, a.server.ws_url)
            assert ann.ws.open  # the player was never disturbed
    kit.run(main())


def test_garbage_in_redis_is_ignored(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url, n=1) as (a,):
            ann = await a.join(name="ann")
            await synced(a.server)
            r = raw_redis(redis_url)
            try:
                await r.set("gs:room:walker-junk-1", "not a hash")
                await r.hset("gs:room:walker-junk-2", mapping={"node": "deadbeef", "id": "x"})
                await r.hset("gs:room:walker-junk-3", mapping={"node": a.server.cluster.node_id,
                                                               "players": "many"})
                await r.hset("gs:node:ffff0000", mapping={"id": "ffff0000", "url": "http://x",
                                                          "games": "{not json"})
                await r.sadd("gs:nodes", "ffff0000", "\udcff".encode("utf-8", "surrogatepass"))
                await r.sadd("gs:game:walker", "walker-junk-1", "walker-junk-2",
                             "walker-junk-3")
                await r.set("gs:resv:junk-1", "not json")
                await r.set("gs:resv:junk-2", '{"room": 5, "node": []}')
                await r.set("gs:resv:junk-3", '"just a string"')
                await r.set("gs:tok:junk-1", "no-such-node")
                await r.hset("gs:tok:junk-2", mapping={"a": "b"})
            finally:
                await r.aclose()
            for room in ("walker-junk-1", "walker-junk-2", "walker-junk-3"):
                err, code, _ = await refused(a, M.Hello(room=room))
                assert err is not None and (err.code, code) == (4003, 4003), room
            for tok in ("junk-1", "junk-2", "junk-3"):
                err, code, _ = await refused(a, M.Hello(reservation=tok))
                assert err is not None and (err.code, code) == (4017, 4017), tok
            for tok in ("junk-1", "junk-2"):
                err, code, _ = await refused(a, M.Resume(tok))
                assert err is not None and (err.code, code) == (4005, 4005), tok
            # Matchmaking ignores the junk and still seats players in real rooms.
            status, seat = await http(a.server.port, "/matchmake?game=walker")
            assert status == 200 and seat["room"] == ann.welcome.room
            status, rooms = await http(a.server.port, "/rooms?scope=cluster")
            assert status == 200 and [x["id"] for x in rooms] == [ann.welcome.room]
            await synced(a.server)
            assert a.server.cluster.link.up
            assert await metric(a.server, "gameserver_redis_degraded") == 0
            assert await metric(a.server, 'gameserver_redis_errors_total{kind="garbage"}') >= 1
            assert ann.ws.open
    kit.run(main())


def test_node_starts_while_redis_is_down(kit: Any, redis_server: RedisServer) -> None:
    async def main() -> None:
        redis_server.stop()
        async with kit.running(redis_url=redis_server.url) as h:
            ann = await h.join(name="ann")            # local joins need no Redis
            assert ann.welcome.room.startswith(f"walker-{h.server.cluster.node_id}-")
            err, code, _ = await refused(h, M.Hello(room="walker-elsewhere-1"))
            assert err is not None and (err.code, code) == (4018, 4018)
            err, code, _ = await refused(h, M.Resume("some-token"))
            assert err is not None and (err.code, code) == (4018, 4018)
            await asyncio.to_thread(restart_on_same_port, redis_server)
            await until(lambda: h.server.cluster.link.up, 20)
            await synced(h.server, 2)
            r = raw_redis(redis_server.url)
            try:
                nid = h.server.cluster.node_id
                assert await r.hget(f"gs:room:{ann.welcome.room}", "node") == nid
                assert await r.get(f"gs:tok:{ann.welcome.resume}") == nid
            finally:
                await r.aclose()
    kit.run(main())


def test_stop_is_bounded_while_redis_is_stalled(kit: Any, redis_server: RedisServer) -> None:
    async def main() -> None:
        async with kit.running(redis_url=redis_server.url) as h:
            ann = await h.join(name="ann")
            await synced(h.server)
            redis_server.pause()
            try:
                t0 = time.monotonic()
                await h.server.stop(timeout=2)
                assert time.monotonic() - t0 < 6.0  # withdraw gives up after its timeout
                assert await ann.closed() == 1001
            finally:
                redis_server.resume()
    kit.run(main())
