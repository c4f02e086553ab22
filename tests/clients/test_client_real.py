"""GameClient and bots against the real game server (in-process, port 0, the arena game)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from clients import errors as E
from clients.bots import Bot, BotView, SwarmConfig, run_bots
from clients.bots.report import build_report, merge_snapshots
from clients.client import Backoff, GameClient
from clients.prediction import Predictor

gs_server = pytest.importorskip("gameserver.server")
gs_config = pytest.importorskip("gameserver.config")
arena = pytest.importorskip("examples.arena")


def run(coro_fn: Callable[[], Awaitable[None]], limit: float = 30.0) -> None:
    async def main() -> None:
        async with asyncio.timeout(limit):
            await coro_fn()

    asyncio.run(main())


@asynccontextmanager
async def real_server(**kw: Any) -> AsyncIterator[Any]:
    cfg = gs_config.ServerConfig(games={"arena": arena.Arena}, host="127.0.0.1", port=0,
                                 seed=1, **kw)
    server = gs_server.GameServer(cfg)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def fast_backoff(n: int = 4) -> Backoff:
    return Backoff(base=0.01, cap=0.1, max_attempts=n, rng=random.Random(2))


def test_join_arena_replica_and_own_entity_moves() -> None:
    async def main() -> None:
        async with real_server() as srv, GameClient(srv.ws_url, game="arena", name="ann") as c:
            world = c.world
            assert world is not None and len(world) > 10
            assert {"x", "y", "kind", "owner"} <= set(world.names)
            assert c.entity is not None and c.player is not None
            me = world.entity(c.entity)
            assert me is not None and me["owner"] == c.player and me["kind"] == 0
            x0 = me["x"]
            n = 0
            async for _ in c.updates():
                c.send_input(dx=1.0, dy=0.0, boost=False)
                n += 1
                if n >= 10 and c.acked_seq >= 5:
                    break
            me = world.entity(c.entity)
            assert me is not None and me["x"] > x0  # our inputs moved our avatar
            assert c.stats.errors == 0 and c.stats.tick_gaps == 0
            assert c.tick > 0 and np.all(np.diff(world.ids.astype(np.int64)) > 0)

    run(main)


def test_prediction_reconciles_with_real_acks() -> None:
    async def main() -> None:
        async with real_server() as srv, GameClient(srv.ws_url, game="arena") as c:
            assert c.world is not None and c.entity is not None
            speed_dt = arena.PLAYER_SPEED / c.tick_rate

            def own_x() -> float:
                me = c.world.entity(c.entity) if c.world and c.entity else None
                assert me is not None
                return float(me["x"])

            pred = Predictor(lambda s, i: s + float(i["dx"]) * speed_dt, own_x())
            sent = 0
            async for up in c.updates():
                if sent < 20:
                    pred.record(c.send_input(dx=0.5, dy=0.0, boost=False), {"dx": 0.5})
                    sent += 1
                pred.reconcile(own_x(), c.acks.acked_at(up.tick))
                if sent == 20 and not pred.pending:
                    break
            # everything acknowledged: the prediction is the authoritative state
            assert pred.state == pytest.approx(own_x())
            assert pred.acked_seq == 20

    run(main)


def test_resume_after_forced_disconnect_same_player() -> None:
    async def main() -> None:
        async with real_server() as srv:
            c = GameClient(srv.ws_url, game="arena", backoff=fast_backoff())
            await c.connect()
            try:
                player, entity = c.player, c.entity
                ws = c._ws
                assert ws is not None
                ws._transport.abort()  # a TCP drop, no close frame
                async for up in c.updates():
                    if up.full:
                        break
                assert c.player == player and c.entity == entity
                assert c.stats.reconnects == 1 and c.connected
            finally:
                await c.close()

    run(main)


def test_real_server_rejections() -> None:
    async def main() -> None:
        async with real_server(max_players=1) as srv:
            with pytest.raises(E.UnknownRoom):
                await GameClient(srv.ws_url, game="no-such-game").connect()
            async with GameClient(srv.ws_url, game="arena") as first:
                assert first.room is not None
                with pytest.raises(E.RoomFull):
                    await GameClient(srv.ws_url, room=first.room).connect()
            c = GameClient(srv.ws_url, game="arena", backoff=fast_backoff(1))
            await c.connect()
            c.resume_token = "forged"
            assert c._ws is not None
            c._ws._transport.abort()
            with pytest.raises(E.ResumeRejected):
                await c.wait_closed()

    run(main)


class Boom(Bot):
    """Buggy for even bot indexes only."""

    def decide(self, view: BotView) -> dict[str, Any] | None:
        if view.index % 2 == 0:
            raise RuntimeError("behaviour bug")
        return {"dx": 0.5}


def test_bots_against_real_server_and_one_failing_bot() -> None:
    async def main() -> None:
        async with real_server() as srv:
            cfg = SwarmConfig(url=srv.ws_url, count=6, behavior="chase", duration=1.5,
                              game="arena", ramp=50.0, input_every=2)
            snaps: list[dict[str, Any]] = []
            stop = asyncio.Event()
            final = await run_bots(cfg, 0, 6, stop=stop, report=snaps.append,
                                   report_interval=0.5)
            assert snaps  # progress snapshots were produced while running
            merged = merge_snapshots([final])
            report = build_report(merged, duration=1.5, config={"url": srv.ws_url})
            assert report["connects"] == 6 and report["failures"] == 0
            assert report["ticks_received"] > 6 * 10
            assert report["inputs"] > 0 and report["tick_share"] > 0.9
            assert report["tick_age_ms"]["count"] == report["ticks_received"]
            json.dumps(report)
            # a buggy behaviour stops its own bot only
            bad = SwarmConfig(url=srv.ws_url, count=4, behavior=f"{__name__}:Boom",
                              duration=1.0, game="arena", input_every=1)
            snap = await run_bots(bad, 10, 4, stop=asyncio.Event())
            bots = snap["bots"]
            assert [b["bot"] for b in bots] == [10, 11, 12, 13]
            for b in bots:
                if b["bot"] % 2 == 0:  # failed alone, with the reason
                    assert "BehaviorError" in b["failure"] and "behaviour bug" in b["failure"]
                else:  # the others went on: streamed and sent inputs to the end
                    assert b["failure"] is None and b["deltas"] > 5 and b["inputs"] > 2

    run(main)
