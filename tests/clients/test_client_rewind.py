"""Lag compensation end to end: a real server, the Python client, 150 ms of lag.

The client renders 100 ms in the past (its interpolation delay) and its inputs reach the
server 50 ms after they were produced (an asyncio sleep simulates the latency on loopback).
It aims at a moving target exactly where its interpolated frame draws it and fires; the
INPUT carries ``rt`` (GameClient.render_tick) automatically. The compensating game hits;
the same game judging against the present misses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import numpy as np
import pytest

from clients.client import GameClient
from gameserver.config import ServerConfig
from gameserver.rules import F, Game, I, InputBatch, InputSchema, Player
from gameserver.server import GameServer

SPEED = 6.0  # target speed, units/s: 0.9 units in 150 ms, the hit radius is 0.5
RADIUS = 0.5


class Gallery(Game):
    """A target crossing the field; shooters fire at aim points (``fire``, ``ax``, ``ay``)."""

    name = "gallery"
    fields = {"x": F.float32(quant=0.01, lo=-100, hi=100),
              "y": F.float32(quant=0.01, lo=-100, hi=100)}
    inputs = InputSchema({"fire": I.bool_(default=False),
                          "ax": I.float32(-100, 100, default=0.0),
                          "ay": I.float32(-100, 100, default=0.0)})
    tick_rate = 30
    send_rate = 30
    history = 2.0  # generous: a loaded test machine may lag more than 150 ms
    compensate: ClassVar[bool] = True

    def on_create(self, config: dict[str, Any]) -> None:
        self.target = int(self.world.spawn(1, x=-30.0, y=0.0)[0])

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        player.entity = int(self.world.spawn(1, x=0.0, y=-20.0)[0])
        self.send("target", self.target, to=player)

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        w = self.world
        s = w.slots_of([self.target])
        w["x"][s] += SPEED * dt
        shots = inputs.take(inputs["fire"])
        if not len(shots):
            return
        aim = np.stack([shots["ax"], shots["ay"]], axis=1)
        ticks = shots.render_tick if self.compensate else np.full(len(shots), tick - 1)
        own = [self.players[p].entity or 0 for p in shots.player.tolist()]
        victims = w.history.hits(aim, ticks, RADIUS, exclude=own).nearest(len(shots))
        for pid, rt, v in zip(shots.player.tolist(), shots.render_tick.tolist(),
                              victims.tolist()):  # a loop over shots (a test)
            self.send("shot", {"hit": v, "rt": rt, "tick": tick}, to=pid)


class Present(Gallery):
    name = "present"
    compensate = False


@asynccontextmanager
async def server() -> AsyncIterator[GameServer]:
    srv = GameServer(ServerConfig(games={"gallery": Gallery, "present": Present},
                                  host="127.0.0.1", port=0, seed=1))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def _shoot(game: str, shots: int = 3) -> list[dict[str, Any]]:
    async with server() as srv, GameClient(srv.ws_url, game=game, name="sniper") as c:
        buf = c.interpolation(delay=0.100)
        target: int | None = None
        results: list[dict[str, Any]] = []

        @c.on_event
        def _(client: GameClient, ev: Any) -> None:
            nonlocal target
            if ev.kind == "target":
                target = ev.data
            elif ev.kind == "shot":
                results.append(ev.data)

        fired = 0
        updates = 0
        async for _ in c.updates():
            updates += 1
            if updates < 15 or target is None:  # fill the interpolation buffer first
                continue
            if fired == shots:
                if len(results) == shots:
                    break
                continue
            frame = buf.sample()
            assert frame is not None
            if frame.newer_time is None:  # not interpolating right now (starved): next
                continue
            row = int(np.searchsorted(frame.ids, target))
            assert frame.ids[row] == target
            ax, ay = float(frame.columns["x"][row]), float(frame.columns["y"][row])
            shown = c.render_tick
            assert shown is not None and shown == round(frame.render_time * c.tick_rate)
            await asyncio.sleep(0.050)  # the network: the input arrives 50 ms later
            c.send_input(fire=True, ax=ax, ay=ay)
            fired += 1
            for _ in range(10):  # wait for this shot's verdict before the next one
                if len(results) == fired:
                    break
                await asyncio.sleep(0.05)
            assert results[-1]["rt"] == shown  # the server saw the tick that was on screen
        return results


def _run(game: str) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        async with asyncio.timeout(40):
            return await _shoot(game)

    return asyncio.run(main())


@pytest.mark.parametrize("game", ["gallery", "present"])
def test_shooter_with_150ms_of_lag_hits_only_with_compensation(game: str) -> None:
    results = _run(game)
    assert len(results) == 3
    for r in results:
        # the input was produced looking at a tick >= 150 ms (4.5 ticks) before it applied
        assert r["tick"] - r["rt"] >= 4, r
        if game == "gallery":
            assert r["hit"] != 0, r
        else:
            assert r["hit"] == 0, r


def test_render_tick_without_interpolation_and_switched_off() -> None:
    async def main() -> None:
        async with server() as srv, GameClient(srv.ws_url, game="gallery", name="p") as c:
            verdicts: list[dict[str, Any]] = []
            c.on_event(lambda cl, ev: verdicts.append(ev.data) if ev.kind == "shot" else None)
            assert c.world is not None
            n = 0
            async for _ in c.updates():
                n += 1
                if n == 5:
                    # no interpolation buffer: the latest tick received is what is shown
                    assert c.render_tick == c.world.tick
                    shown = c.world.tick
                    c.send_input(fire=True, ax=50.0, ay=50.0)
                if n == 10:
                    c.send_render_tick = False  # no rt: the server uses the present
                    c.send_input(fire=True, ax=50.0, ay=50.0)
                if len(verdicts) == 2 or n > 200:
                    break
            assert len(verdicts) == 2
            assert verdicts[0]["rt"] == shown
            assert verdicts[1]["rt"] == verdicts[1]["tick"] - 1

    asyncio.run(asyncio.wait_for(main(), 30))
