"""The players' rectangle pass reuses its last result only when every input is the same
(centres, old rectangles, live avatars): against the generic pass (``incremental=False``)
after nothing changed, an avatar moved, a rectangle changed and an avatar died."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from examples.world import World
from gameserver.config import ServerConfig
from gameserver.manager import RoomManager
from gameserver.metrics import ServerMetrics
from protocol.wireschema import Snapshot


class FakeSocket:
    open = True
    closed = False
    buffered_bytes = 0

    def write_prepared(self, frame: bytes) -> bool:
        return True

    def send_nowait(self, data: bytes) -> None:
        pass


def test_player_rects_cache_matches_generic() -> None:
    async def main() -> None:
        cfg = ServerConfig(games={"w": World}, seed=5,
                           room_config={"entities": 500, "moving": 0.2}).check()
        room = RoomManager(cfg, ServerMetrics()).create_room("w")
        assert room._timer is not None
        room._timer.cancel()
        vs = room.view_stream
        assert vs is not None
        for i in range(40):
            room.join(FakeSocket(), {}, f"p{i}", interest=True)  # type: ignore[arg-type]
        for _ in range(3):
            room.sim.step()
            room._send()
        viewers = list(room.players.values())

        def both(snap: Snapshot) -> tuple[list[int], list[int]]:
            vs.incremental = False
            ref = vs._rects(snap, viewers)
            vs.incremental = True
            return vs._rects(snap, viewers), ref

        snap = room.sim.world.snapshot()
        first, ref = both(snap)
        assert first == ref
        again, ref = both(snap)
        assert again is first and again == ref  # the same inputs: the cached list
        # an avatar moves across the field
        ent = viewers[0].sim.entity
        cols: dict[str, Any] = {k: v.copy() for k, v in snap.columns.items()}
        row = int(np.searchsorted(snap.ids, ent))
        cols["x"][row] = (cols["x"][row] + 30000) % 100000
        moved = Snapshot(snap.ids, cols)
        got, ref = both(moved)
        assert got == ref and got != first
        # a viewer's old rectangle changes (hysteresis then keeps other cells)
        viewers[1].vrect = -1
        got, ref = both(moved)
        assert got == ref
        # an avatar dies: its rectangle becomes -1
        keep = snap.ids != viewers[2].sim.entity
        dead = Snapshot(snap.ids[keep], {k: v[keep] for k, v in snap.columns.items()})
        got, ref = both(dead)
        assert got == ref and got[2] == -1
    asyncio.run(main())
