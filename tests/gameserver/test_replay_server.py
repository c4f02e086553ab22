"""Recording inside a running GameServer: a room disposed when empty and a room whose game
crashed both leave a complete file (end record with the reason) that verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gameserver.inputs import InputBatch
from gameserver.replay.format import ReplayReader
from gameserver.replay.player import verify


def _end(path: Path) -> dict[str, Any]:
    with ReplayReader(path) as r:
        return next(x for x in r.records() if isinstance(x, dict))


def test_disposed_room_file_is_complete(kit: Any, tmp_path: Path) -> None:
    async def main() -> None:
        async with kit.running(record_dir=tmp_path, empty_room_ttl=0.3) as h:
            a = await h.join(name="ann")
            b = await h.join(name="bob")
            for _ in range(10):
                await a.input(dx=1.0, dy=0.0)
                await b.input(dx=0.0, dy=-0.5)
                await asyncio.sleep(0.02)
            await a.until(lambda: len(a.acks) >= 3)
            await a.send(kit.M.Leave())
            await b.send(kit.M.Leave())
            for _ in range(100):  # the room is disposed 0.3 s after its last player left
                if not h.server.rooms.rooms:
                    break
                await asyncio.sleep(0.05)
            assert not h.server.rooms.rooms

    kit.run(main())
    files = list(tmp_path.glob("walker-1-*.gsreplay"))
    assert len(files) == 1
    end = _end(files[0])
    assert end["reason"] == "closed" and end["calls"] == []
    result = verify(files[0], kit.Walker)
    assert result.players == 2 and result.ticks == end["tick"] > 5


def test_crashed_room_file_is_complete(kit: Any, tmp_path: Path) -> None:
    class Doomed(kit.Walker):  # type: ignore[name-defined,misc]
        name = "doomed"

        def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
            super().on_tick(tick, dt, inputs)
            if len(inputs) and inputs["dx"].max() > 0.9:
                raise RuntimeError("the game's bug")

    async def main() -> None:
        async with kit.running(record_dir=tmp_path, games={"doomed": Doomed}) as h:
            a = await h.join(game="doomed", name="ann")
            await a.input(dx=0.1, dy=0.0)
            await asyncio.sleep(0.2)
            await a.input(dx=1.0, dy=0.0)  # crashes the room in the next tick
            assert await a.closed() == 4010

    kit.run(main())
    files = list(tmp_path.glob("doomed-1-*.gsreplay"))
    assert len(files) == 1
    assert _end(files[0])["reason"] == "crash"
    result = verify(files[0], Doomed)
    assert result.reason == "crash" and "crash reproduced" in result.summary()
