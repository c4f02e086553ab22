"""The handover protocol through a real Redis, two servers in one loop, raw protocol clients:
moved (4014 with the url, RESUME on the other node), unclaimed, claimed-but-never-restored
(reported lost, never served), Redis unavailable and a save() that raises (today's 1001
shutdown), a receiver that is stopping (gives its claim back)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from cluster_kit import handover_node

from gameserver.handover.transfer import _COMMIT, ABANDONED, CLAIMED, DONE, PENDING
from gameserver.rules import Game
from protocol import messages as M
from protocol.aio import connect

node = handover_node


async def client(kit: Any, url: str) -> Any:
    c = kit.Client(await connect(url))
    c.start()
    return c


def test_room_moves_with_players_ids_entities_and_ticks(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with node(kit, redis_url) as a, node(kit, redis_url) as b:
            c1 = await client(kit, a.ws_url)
            c2 = await client(kit, a.ws_url)
            w1 = await c1.hello(game="chatty", name="ann")
            w2 = await c2.hello(game="chatty", name="bob")
            assert w1.room == w2.room
            await c1.until(lambda: len(c1.delta_ticks) > 5)
            for _ in range(3):
                await c1.input(dx=0.5)
            await c1.until(lambda: bool(c1.acks) and c1.acks[-1].seq == 3)
            forgotten: list[Any] = []
            a.rooms.forget = forgotten.append  # type: ignore[method-assign]
            await a.stop(timeout=2)  # the SIGTERM path of a --handover node
            # the old node dropped the moved tokens locally, without the forget hook (a
            # cluster token index behind it would unregister the receiver's entries)
            assert forgotten == [] and not a.rooms.tokens
            for c in (c1, c2):
                assert await c.closed() == 4014
                moved = [e for e in c.errors if e.code == 4014]
                assert moved and moved[0].url == b.ws_url
                assert c.ws.close_reason == b.ws_url
            assert w1.room in b.rooms.rooms and not a.rooms.rooms
            last = max(c1.delta_ticks)
            events_before = [e.data for e in c1.events if e.kind == "t"]
            # RESUME on the new node: same player, entity, room; ticks go on (never reused)
            r1 = await client(kit, b.ws_url)
            await r1.send(M.Resume(w1.resume))
            rw = await r1.wait_welcome()
            assert (rw.player, rw.entity, rw.room) == (w1.player, w1.entity, w1.room)
            assert rw.tick >= last
            await r1.until(lambda: len(r1.delta_ticks) > 3)
            assert r1.base_ticks[0] is None and min(r1.delta_ticks) > last
            # events: the ones held for the player while it moved come after the snapshot,
            # and together with the old node's they are every tick's, once each
            await r1.until(lambda: len(r1.events) > 3)
            after = [e.data for e in r1.events if e.kind == "t"]
            seen = events_before + after
            assert seen == list(range(seen[0], seen[0] + len(seen)))
            # an input re-sent with an already applied seq is ignored; a new one is applied
            await r1.send(M.Input(3, {"dx": 0.5}))
            await r1.send(M.Input(4, {"dx": 0.5}))
            await r1.until(lambda: any(x.seq == 4 for x in r1.acks))
            assert b.handover.restored == 1
            assert 'gameserver_handover_restored_total 1' in b.metrics.render()
            assert 'gameserver_handover_rooms_total{outcome="moved"} 1' in a.metrics.render()
            await r1.close()
            await c1.close()
            await c2.close()

    kit.run(main())


def test_unclaimed_room_falls_back_to_1001(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with node(kit, redis_url) as a:
            a.handover.claim_timeout = 0.5
            c = await client(kit, a.ws_url)
            await c.hello(game="walker", name="ann")
            kit.Walker.left.clear()
            await a.stop(timeout=2)
            assert await c.closed() == 1001
            assert [x.outcome for x in a.handover.results] == ["unclaimed"]
            assert kit.Walker.left and kit.Walker.left[0][1] == "shutdown"
            r = aioredis.Redis.from_url(redis_url)
            assert await r.llen(PENDING) == 0  # the offer was taken back
            await r.aclose()
            await c.close()

    kit.run(main())


def test_claimed_but_never_restored_is_lost_not_served(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        r = aioredis.Redis.from_url(redis_url)
        async with node(kit, redis_url) as a:
            a.handover.claim_timeout = 3.0
            a.handover.restore_timeout = 0.5
            c = await client(kit, a.ws_url)
            w = await c.hello(game="walker", name="ann")
            # a receiver that claims and then dies (never answers)
            claim = asyncio.ensure_future(
                r.blmove(PENDING, CLAIMED + "dead", 10, "LEFT", "RIGHT"))
            stopping = asyncio.ensure_future(a.stop(timeout=2))
            assert (await asyncio.wait_for(claim, 10)).decode() == w.room
            await asyncio.wait_for(stopping, 20)
            assert await c.closed() == 1001
            assert [x.outcome for x in a.handover.results] == ["lost"]
            # the late receiver's commit is refused: the room is never served twice
            ok = await r.eval(_COMMIT, 3, DONE + w.room, ABANDONED + w.room, CLAIMED + "dead",
                              "ws://late/ws", w.room, 60)
            assert ok == 0 and await r.llen(DONE + w.room) == 0
            await c.close()
        await r.aclose()

    kit.run(main())


def test_redis_unavailable_at_sigterm_is_the_graceful_shutdown(kit: Any) -> None:
    async def main() -> None:
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nothing listens there
        async with node(kit, f"redis://127.0.0.1:{port}/0") as a:
            c = await client(kit, a.ws_url)
            await c.hello(game="walker", name="ann")
            await a.stop(timeout=2)
            assert await c.closed() == 1001
            assert a.handover.results == []
            await c.close()

    kit.run(main())


def test_a_stopping_receiver_gives_its_claim_back(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        r = aioredis.Redis.from_url(redis_url)
        async with node(kit, redis_url) as b:
            agent = b.handover
            await agent.stop_receiver()  # as at the start of b's own shutdown
            await r.set("gs:handover:room:walker-9", b"blob", ex=60)
            await r.rpush(CLAIMED + agent.node_id, "walker-9")  # claimed just before
            await agent._take("walker-9", CLAIMED + agent.node_id)
            assert await r.lrange(PENDING, 0, -1) == [b"walker-9"]  # for another node
            assert await r.llen(CLAIMED + agent.node_id) == 0
            assert "walker-9" not in b.rooms.rooms
        await r.aclose()

    kit.run(main())


class BadSave(Game):
    """A game whose save() raises: its room cannot move."""

    name = "badsave"
    tick_rate = 30

    def save(self) -> Any:
        raise RuntimeError("cannot save (deliberate test failure)")


def test_a_room_whose_save_raises_is_shut_down_as_before(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        games = {"badsave": BadSave}
        async with node(kit, redis_url, games=games) as a, \
                node(kit, redis_url, games=games) as b:
            c = await client(kit, a.ws_url)
            await c.hello(game="badsave", name="ann")
            await a.stop(timeout=2)
            assert await c.closed() == 1001
            assert [x.outcome for x in a.handover.results] == ["failed"]
            assert not b.rooms.rooms  # nothing was offered
            await c.close()

    kit.run(main())


def test_several_rooms_move_concurrently_each_once(kit: Any, redis_url: str) -> None:
    async def main() -> None:
        async with node(kit, redis_url) as a, node(kit, redis_url) as b, \
                node(kit, redis_url) as c:
            clients, welcomes = [], []
            for game in ("walker", "chatty", "swarm", "walker"):
                cl = await client(kit, a.ws_url)
                welcomes.append(await cl.hello(game=game, name="p"))
                clients.append(cl)
            rooms = {w.room for w in welcomes}
            assert len(rooms) == 3
            await a.stop(timeout=2)
            assert sorted(x.outcome for x in a.handover.results) == ["moved"] * 3
            for cl in clients:
                assert await cl.closed() == 4014
            # every room is on exactly one of the two receivers, and where its players
            # were sent
            on_b, on_c = set(b.rooms.rooms), set(c.rooms.rooms)
            assert on_b | on_c == rooms and not on_b & on_c
            for cl, w in zip(clients, welcomes):
                url = next(e.url for e in cl.errors if e.code == 4014)
                assert url == (b.ws_url if w.room in on_b else c.ws_url)
            assert b.handover.restored + c.handover.restored == 3
            for cl in clients:
                await cl.close()

    kit.run(main())


def test_a_garbage_blob_is_answered_failed_and_the_receiver_goes_on(
        kit: Any, redis_url: str) -> None:
    async def main() -> None:
        r = aioredis.Redis.from_url(redis_url)
        async with node(kit, redis_url) as b:
            await r.set("gs:handover:room:junk-1", b"\xc1 not a blob", ex=60)
            await r.rpush(PENDING, "junk-1")
            got = await r.blpop([DONE + "junk-1"], timeout=10)
            assert got is not None and got[1] == b""  # the sender reads "failed"
            assert "junk-1" not in b.rooms.rooms
            # still receiving: a real room offered afterwards is taken
            async with node(kit, redis_url) as a:
                c = await client(kit, a.ws_url)
                await c.hello(game="walker", name="ann")
                await a.stop(timeout=2)
                assert await c.closed() == 4014
                assert len(b.rooms.rooms) == 1
                await c.close()
        await r.aclose()

    kit.run(main())


def test_a_slow_receiver_with_many_offers_loses_none(kit: Any, redis_url: str) -> None:
    """One receiver taking 0.7 s per room, four rooms, a 1 s claim timeout: the wait for a
    claim runs while the receivers make progress, so no room is given up."""
    async def main() -> None:
        async with node(kit, redis_url) as a, node(kit, redis_url) as b:
            a.handover.claim_timeout = 1.0
            take = b.handover._take

            async def slow_take(room_id: str, claimed: str) -> None:
                await asyncio.sleep(0.7)
                await take(room_id, claimed)

            b.handover._take = slow_take  # type: ignore[method-assign]
            clients = []
            for game in ("walker", "chatty", "swarm", "boom"):
                cl = await client(kit, a.ws_url)
                await cl.hello(game=game, name="p")
                clients.append(cl)
            await a.stop(timeout=2)
            assert sorted(x.outcome for x in a.handover.results) == ["moved"] * 4
            assert len(b.rooms.rooms) == 4
            for cl in clients:
                assert await cl.closed() == 4014
                await cl.close()

    kit.run(main())
