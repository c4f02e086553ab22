"""Two nodes on one Redis: cluster-unique room ids, 4013 redirects for a room or a resume token
held by the other node, 4003 / 4005 for what no node holds, the directory's view, and a node
that dies (no cleanup) vanishing from it within a few seconds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cluster_kit import cluster, http, raw_redis, refused, synced

from protocol import messages as M


def test_redirect_room_and_resume_to_the_owning_node(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url) as (a, b):
            na, nb = a.server.cluster, b.server.cluster
            assert na.node_id != nb.node_id and nb.url == b.server.ws_url
            # A room created on B carries B's node id: unique across the cluster.
            ann = await b.join(name="ann")
            room = ann.welcome.room
            assert room.startswith(f"walker-{nb.node_id}-")
            await synced(b.server)
            # HELLO naming B's room, sent to A: ERROR 4013 with B's url, close 4013 + url.
            err, code, reason = await refused(a, M.Hello(game="walker", room=room, name="bob"))
            assert err is not None and err.code == 4013 and err.url == nb.url
            assert (code, reason) == (4013, nb.url)
            # Following it by hand (same HELLO, B's url) joins the same room.
            bob = await b.join(room=room, name="bob")
            assert bob.welcome.room == room
            # RESUME on the wrong node: 4013 to B; on B it works (same player).
            token = ann.welcome.resume
            ann.ws._transport.abort()
            await ann.closed()
            await synced(b.server)
            err, code, reason = await refused(a, M.Resume(token))
            assert err is not None and (err.code, err.url, code, reason) == (
                4013, nb.url, 4013, nb.url)
            again = await b.connect()
            await again.send(M.Resume(token))
            assert (await again.wait_welcome()).player == ann.welcome.player
            # Unknown everywhere: today's codes, no redirect.
            err, code, _ = await refused(a, M.Hello(game="walker", room="walker-nope-1"))
            assert err is not None and (err.code, err.url, code) == (4003, None, 4003)
            err, code, _ = await refused(a, M.Resume("not-a-token-anywhere"))
            assert err is not None and (err.code, code) == (4005, 4005)
            # A room on A itself is joined locally (no redirect to oneself).
            carl = await a.join(name="carl")
            assert carl.welcome.room.startswith(f"walker-{na.node_id}-")
            # The cluster view lists both nodes' rooms with their node and url.
            await synced(a.server)
            status, rooms = await http(a.server.port, "/rooms?scope=cluster")
            assert status == 200
            by_id = {r["id"]: r for r in rooms}
            assert by_id[room]["node"] == nb.node_id and by_id[room]["url"] == nb.url
            assert by_id[room]["players"] == 2 and by_id[room]["capacity"] == 4
            assert by_id[carl.welcome.room]["node"] == na.node_id
            # The plain /rooms stays the local list.
            status, local = await http(a.server.port, "/rooms")
            assert [r["id"] for r in local] == [carl.welcome.room]
    kit.run(main())


def test_public_url_is_what_redirects_carry(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url, n=1) as (a,), \
                cluster(kit, redis_url, n=1, public_url="wss://game-b.example:443/ws") as (b,):
            ann = await b.join(name="ann")
            await synced(b.server)
            err, code, reason = await refused(a, M.Hello(room=ann.welcome.room))
            assert err is not None and err.url == "wss://game-b.example:443/ws"
            assert (code, reason) == (4013, "wss://game-b.example:443/ws")
    kit.run(main())


def test_room_ids_unchanged_without_redis(kit: Any) -> None:
    async def main() -> None:
        async with kit.running() as h:
            c = await h.join(name="ann")
            assert c.welcome.room == "walker-1"
            assert h.server.cluster is None
    kit.run(main())


def test_dead_node_vanishes_from_the_directory(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url) as (a, b):
            ann = await b.join(name="ann")
            room, token = ann.welcome.room, ann.welcome.resume
            await synced(b.server)
            err, _, _ = await refused(a, M.Hello(room=room))
            assert err is not None and err.code == 4013
            # B stops refreshing its presence without any cleanup (as if SIGKILLed).
            b.server.cluster.kill()
            t0 = time.monotonic()

            async def gone() -> bool:
                status, rooms = await http(a.server.port, "/rooms?scope=cluster")
                return status == 200 and all(r["id"] != room for r in rooms)

            while not await gone():
                assert time.monotonic() - t0 < 10, "dead node's room still listed"
                await asyncio.sleep(0.2)
            elapsed = time.monotonic() - t0
            assert elapsed < 8.0  # presence TTL 5 s + one sync period + margin
            # Its room and its players' tokens are not offered any more.
            err, code, _ = await refused(a, M.Hello(room=room))
            assert err is not None and (err.code, code) == (4003, 4003)
            err, code, _ = await refused(a, M.Resume(token))
            assert err is not None and (err.code, code) == (4005, 4005)
            r = raw_redis(redis_url)
            try:
                assert not await r.exists(f"gs:node:{b.server.cluster.node_id}")
            finally:
                await r.aclose()
    kit.run(main())


def test_clean_stop_withdraws_at_once(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url, n=1) as (a,):
            async with cluster(kit, redis_url, n=1) as (b,):
                ann = await b.join(name="ann")
                room, nid = ann.welcome.room, b.server.cluster.node_id
                await synced(b.server)
            # B stopped cleanly: its presence, room and tokens are gone right away.
            r = raw_redis(redis_url)
            try:
                assert not await r.exists(f"gs:node:{nid}", f"gs:room:{room}")
                assert not await r.keys("gs:tok:*")
            finally:
                await r.aclose()
            err, code, _ = await refused(a, M.Hello(room=room))
            assert err is not None and code == 4003
    kit.run(main())


def test_sigkilled_node_process_is_dropped(kit: Any, redis_url: str) -> None:
    """A real `gameserver --redis` process, SIGKILLed: its room leaves the directory."""
    import signal

    from test_server_process import start

    from protocol.aio import connect

    proc, _, ws_url = start("serve", "conftest:Walker", "--redis", redis_url)
    try:
        async def main() -> None:
            async with cluster(kit, redis_url, n=1) as (a,):
                ws = await connect(ws_url)
                await ws.send(M.encode(M.Hello(game="walker", name="ann")))
                welcome = M.decode_server(await ws.recv())  # type: ignore[arg-type]
                assert isinstance(welcome, M.Welcome)
                room = welcome.room

                async def redirected() -> bool:
                    err, _, _ = await refused(a, M.Hello(room=room))
                    return err is not None and err.code == 4013 and err.url == ws_url

                for _ in range(50):
                    if await redirected():
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the process's room was never published")
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                t0 = time.monotonic()
                while True:
                    err, code, _ = await refused(a, M.Hello(room=room))
                    assert err is not None
                    if code == 4003:
                        break
                    assert code == 4013 and time.monotonic() - t0 < 10
                    await asyncio.sleep(0.2)
                assert time.monotonic() - t0 < 8.0
                await ws.close()
        kit.run(main())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def test_a_player_reseated_elsewhere_keeps_its_new_node(kit: Any, redis_url: str) -> None:
    """What a handover does through remember(): the token index follows the player, and the
    old node's cleanup (compare-and-delete) does not erase the new owner's entries."""
    from gameserver.room import Player

    async def main() -> None:
        async with cluster(kit, redis_url) as (a, b):
            ann = await a.join(name="ann")
            token, room_id = ann.welcome.resume, ann.welcome.room
            bob = await b.join(name="bob")
            b_room = b.server.rooms.rooms[bob.welcome.room]
            await synced(a.server)
            # B re-seats ann's token (as a restored room would), then A's copy goes away.
            b.server.rooms.remember(Player(9999, "ann", b_room, token))
            r = raw_redis(redis_url)
            try:
                nb = b.server.cluster.node_id

                async def owner() -> str | None:
                    return await r.get(f"gs:tok:{token}")  # type: ignore[no-any-return]

                for _ in range(100):
                    if await owner() == nb:
                        break
                    await asyncio.sleep(0.05)
                assert await owner() == nb
                # A's periodic pass is held so it cannot rewrite its room entry meanwhile;
                # B takes over A's room id (a handed-over room), then A drops its copies.
                a.server.cluster.directory.kill()
                await r.hset(f"gs:room:{room_id}", mapping={"node": nb})
                await ann.send(M.Leave())
                assert await ann.closed() == 1000
                a.server.rooms.rooms[room_id].shutdown()
                await a.server.cluster.directory.sync(full=False)  # A's deletes go out
                assert not a.server.cluster.directory._removed  # they were sent
                assert await owner() == nb
                assert await r.hget(f"gs:room:{room_id}", "node") == nb
            finally:
                await r.aclose()
            err, code, reason = await refused(a, M.Resume(token))
            assert err is not None and (code, reason) == (4013, b.server.ws_url)
    kit.run(main())


def test_room_dropped_without_remove_room_leaves_the_directory(kit: Any,
                                                               redis_url: str) -> None:
    async def main() -> None:
        async with cluster(kit, redis_url, n=1) as (a,):
            ann = await a.join(name="ann")
            rid = ann.welcome.room
            await synced(a.server)
            r = raw_redis(redis_url)
            try:
                assert await r.exists(f"gs:room:{rid}")
                room = a.server.rooms.rooms.pop(rid)  # gone another way (no remove_room)
                await synced(a.server, 2)
                assert not await r.exists(f"gs:room:{rid}")
                assert not await r.sismember("gs:game:walker", rid)
            finally:
                await r.aclose()
            room.shutdown()
    kit.run(main())


def test_no_redirect_to_our_own_url(kit: Any, redis_url: str) -> None:
    """Two processes behind one public url (as workers of one machine would be): a room or a
    reservation of the other is refused (4003 / 4017), never redirected to ourselves."""
    shared = "ws://127.0.0.1:9/ws"

    async def main() -> None:
        async with cluster(kit, redis_url, public_url=shared) as (a, b):
            bob = await b.join(name="bob")
            await synced(b.server)
            err, code, _ = await refused(a, M.Hello(room=bob.welcome.room))
            assert err is not None and (err.code, err.url, code) == (4003, None, 4003)
            status, seat = await http(b.server.port, "/matchmake?game=walker")
            assert status == 200 and seat["url"] == shared
            wrong = a if seat["node"] == b.server.cluster.node_id else b
            err, code, _ = await refused(wrong, M.Hello(reservation=seat["reservation"]))
            assert err is not None and (err.code, code) == (4017, 4017)
    kit.run(main())
