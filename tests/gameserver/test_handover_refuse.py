"""A receiver that cannot restore a room re-offers it (bounded, atomically in Lua): with a
healthy receiver the room is restored exactly once there; with none it is reported lost and
its players get 1001 at once. A node that does not serve the game refuses; so does one
whose ``Game.load`` raises."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis.asyncio as aioredis
from cluster_kit import handover_node

from gameserver.handover.transfer import (
    _REFUSE,
    ABANDONED,
    CLAIMED,
    DONE,
    MAX_REFUSALS,
    PENDING,
    REFUSALS,
    REFUSED,
)
from protocol.aio import connect

node = handover_node


class BadLoad:
    """Mixin: a Walker whose ``load`` raises (a node running a broken build of the game)."""

    def load(self, state: Any) -> None:
        raise RuntimeError("cannot load (deliberate test failure)")


def bad_games(kit: Any, how: str) -> dict[str, Any]:
    if how == "no game":
        return {k: v for k, v in kit.GAMES.items() if k != "walker"}
    return {**kit.GAMES, "walker": type("Walker", (BadLoad, kit.Walker), {})}


def refusing(agent: Any) -> list[str]:
    """Wrap ``agent._take``: record its calls; after the first, the receiver stops claiming
    (so the re-offer is for the other receivers)."""
    calls: list[str] = []
    take = agent._take

    async def once(room_id: str, claimed: str) -> None:
        calls.append(room_id)
        await take(room_id, claimed)
        agent._stopping = True

    agent._take = once
    return calls


@pytest.mark.parametrize("how", ["no game", "load raises"])
def test_a_failed_restore_is_offered_again_and_restored_once(kit: Any, redis_url: str,
                                                            how: str) -> None:
    async def main() -> None:
        r = aioredis.Redis.from_url(redis_url)
        async with node(kit, redis_url) as a, \
                node(kit, redis_url, games=bad_games(kit, how)) as b:
            a.handover.restore_timeout = 20.0
            calls = refusing(b.handover)
            c = kit.Client(await connect(a.ws_url))
            c.start()
            w = await c.hello(game="walker", name="ann")
            stopping = asyncio.ensure_future(a.stop(timeout=2))
            # b claims it, cannot restore it, re-offers it; then a healthy node starts
            for _ in range(200):
                if await r.sismember(REFUSED + w.room, b.handover.node_id):
                    break
                await asyncio.sleep(0.05)
            assert calls == [w.room] and not b.rooms.rooms
            assert await r.lrange(PENDING, 0, -1) == [w.room.encode()]  # offered again
            async with node(kit, redis_url) as healthy:
                await asyncio.wait_for(stopping, 30)
                assert [x.outcome for x in a.handover.results] == ["moved"]
                assert await c.closed() == 4014
                assert next(e.url for e in c.errors if e.code == 4014) == healthy.ws_url
                assert list(healthy.rooms.rooms) == [w.room] and not b.rooms.rooms
                assert healthy.handover.restored == 1 and b.handover.restored == 0
                assert await r.llen(PENDING) == 0
            await c.close()
        await r.aclose()

    kit.run(main())


def test_with_no_healthy_receiver_the_room_is_reported_lost(
        kit: Any, redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        r = aioredis.Redis.from_url(redis_url)
        async with node(kit, redis_url) as a, \
                node(kit, redis_url, games=bad_games(kit, "no game")) as b:
            a.handover.restore_timeout = 20.0  # the bound answers first, not the timeout
            c = kit.Client(await connect(a.ws_url))
            c.start()
            w = await c.hello(game="walker", name="ann")
            kit.Walker.left.clear()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await a.stop(timeout=2)
            assert loop.time() - t0 < 10
            assert [x.outcome for x in a.handover.results] == ["failed"]
            assert await c.closed() == 1001  # at once, the plain shutdown's code
            assert kit.Walker.left and kit.Walker.left[0][1] == "shutdown"
            assert not b.rooms.rooms and b.handover.restored == 0
            # b took it back once per bounce, bounded: never more than MAX_REFUSALS
            assert int(await r.get(REFUSALS + w.room)) == MAX_REFUSALS
            assert await r.llen(PENDING) == 0
            await c.close()
        await r.aclose()

    with caplog.at_level(logging.WARNING):
        kit.run(main())
    lost = [m for m in caplog.messages if m.startswith("room lost to shutdown")]
    assert lost and "no receiver could restore it (refused by " in lost[0]


def test_the_refuse_script_keeps_the_invariant(redis_url: str, kit: Any) -> None:
    """Lua alone: a refusal after the sender's abandon answers nothing and offers nothing;
    two distinct refusers end it with one ``""`` answer, never a second offer."""
    async def main() -> None:
        r = aioredis.Redis.from_url(redis_url)
        rid = "walker-77"

        async def refuse(node_id: str) -> int:
            await r.rpush(CLAIMED + node_id, rid)
            return int(await r.eval(_REFUSE, 6, DONE + rid, ABANDONED + rid,
                                    CLAIMED + node_id, PENDING, REFUSED + rid,
                                    REFUSALS + rid, rid, node_id, 60, 2, 4))

        assert await refuse("n1") == 1
        assert await r.lrange(PENDING, 0, -1) == [rid.encode()]
        await r.delete(PENDING)
        assert await refuse("n2") == 2
        assert await r.llen(PENDING) == 0 and await r.lrange(DONE + rid, 0, -1) == [b""]
        assert await r.llen(CLAIMED + "n1") == 0 and await r.llen(CLAIMED + "n2") == 0
        await r.delete(DONE + rid, REFUSED + rid, REFUSALS + rid)
        await r.set(ABANDONED + rid, "1")
        assert await refuse("n3") == 0
        assert await r.llen(PENDING) == 0 and await r.llen(DONE + rid) == 0
        await r.aclose()

    kit.run(main())
