"""The incremental interest path (ViewStream memberships, PieceEncoder step, the two-axis
Grid rectangles) writes exactly the bytes of the reference path (``incremental=False``:
everything from scratch each tick, the pre-optimization algorithm), over a world with
moving, jumping, spawning and despawning entities, team and global channels changing."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from gameserver.config import ServerConfig
from gameserver.interest import Grid, Interest
from gameserver.manager import RoomManager
from gameserver.metrics import ServerMetrics
from gameserver.rules import F, Game, InputBatch, Player

SIDE = 1000.0


class Churn(Game):
    """400 entities on a 1,000-unit field of 100-unit cells: 20% walk, a few jump, some
    despawn and spawn, change team (1..3) or become global; players' avatars walk too."""

    name = "churn"
    fields = {"x": F.float32(quant=0.1, lo=0, hi=SIDE), "y": F.float32(quant=0.1, lo=0, hi=SIDE),
              "team": F.uint8(), "glob": F.uint8(), "hp": F.uint16()}
    max_players = 64
    tick_rate = 30
    send_rate = 30
    interest = Interest(cell=100.0, bounds=(0, 0, SIDE, SIDE), view=(200.0, 200.0),
                        max_view=(400.0, 400.0), team="team", everyone="glob")

    def on_create(self, config: dict[str, Any]) -> None:
        self._spawn(400)

    def _spawn(self, n: int) -> None:
        r = self.rng
        self.world.spawn(n, x=r.uniform(0, SIDE, n), y=r.uniform(0, SIDE, n),
                         team=r.integers(0, 4, n), hp=r.integers(0, 1000, n))

    def on_join(self, player: Player, hello: dict[str, Any]) -> None:
        x, y = self.rng.uniform(0, SIDE, 2)
        player.entity = int(self.world.spawn(1, x=x, y=y)[0])
        player.team = player.id % 4
        if self.config.get("views") and player.id % 5 == 0:
            player.view = (150.0, 300.0)
        if self.config.get("ghost") and player.id == 3:
            player.entity = None  # a player without an avatar

    def on_tick(self, tick: int, dt: float, inputs: InputBatch) -> None:
        w, r = self.world, self.rng
        sl = w.alive_slots()
        n = sl.shape[0]
        if tick % 4 == 0:  # a quiet tick: nothing moves, only hp changes
            k = sl[r.random(n) < 0.05]
            w["hp"][k] = w["hp"][k] + 1
            return
        walk = sl[r.random(n) < 0.2]
        for f in ("x", "y"):
            w[f][walk] = np.clip(w[f][walk] + r.uniform(-15, 15, walk.shape[0]), 0, SIDE)
        if tick % 9 == 0:  # many jump anywhere
            jump = sl[r.random(n) < 0.3]
            for f in ("x", "y"):
                w[f][jump] = r.uniform(0, SIDE, jump.shape[0])
        if tick % 7 == 0:
            ids = w.id_of(sl[r.random(n) < 0.03])
            avatars = {p.entity for p in self.players.values()}
            w.despawn(np.array([i for i in ids.tolist() if i not in avatars], np.uint32))
            self._spawn(8)
        if tick % 5 == 0:
            k = sl[r.random(n) < 0.05]
            w["team"][k] = r.integers(0, 4, k.shape[0])
        if tick % 11 == 0:
            k = sl[r.integers(0, n, 2)]
            w["glob"][k] = 1 - w["glob"][k]


class FakeSocket:
    open = True
    closed = False
    buffered_bytes = 0

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write_prepared(self, frame: bytes) -> bool:
        self.frames.append(frame)
        return True

    def send_nowait(self, data: bytes) -> None:
        pass


def _run(incremental: bool, ticks: int, rc: dict[str, Any]) -> tuple[list[list[bytes]], int]:
    async def main() -> tuple[list[list[bytes]], int]:
        cfg = ServerConfig(games={"churn": Churn}, seed=3, room_config=rc).check()
        room = RoomManager(cfg, ServerMetrics()).create_room("churn")
        assert room._timer is not None
        room._timer.cancel()
        vs = room.view_stream
        assert vs is not None
        vs.incremental = incremental
        socks = [FakeSocket() for _ in range(12)]
        for i, ws in enumerate(socks[:8]):
            room.join(ws, {}, f"p{i}", interest=True)  # type: ignore[arg-type]
        reused = 0
        prev_rows = None
        for t in range(ticks):
            if t == 20:  # late joiners (reset VIEWs; one without the extension)
                for i, ws in enumerate(socks[8:]):
                    room.join(ws, {}, f"q{i}", interest=i != 0)  # type: ignore[arg-type]
            room.sim.step()
            room._send()
            st = vs.encoder._prev
            assert st is not None
            if st.rows is prev_rows:
                reused += 1
            prev_rows = st.rows
        return [ws.frames for ws in socks], reused
    return asyncio.run(main())


@pytest.mark.parametrize("rc", [{"views": True}, {"ghost": True}, {}])
def test_incremental_frames_equal_reference(rc: dict[str, Any]) -> None:
    """Per-player view sizes take the general rectangle path; without them the players-only
    one (also with a player that has no avatar)."""
    ref, ref_reused = _run(False, 90, rc)
    inc, reused = _run(True, 90, rc)
    assert ref_reused == 0 and reused > 30  # the incremental memberships were used
    assert [len(f) for f in inc] == [len(f) for f in ref]
    assert all(len(f) >= 60 for f in inc)
    for a, b in zip(inc, ref, strict=True):
        assert a == b


# ---------------------------------------------------------------- Grid, against the old code
def _clamp_ref(g: Grid, cx: Any, cy: Any, w: Any, h: Any, limit: Any) -> tuple[Any, ...]:
    w = np.where(np.isfinite(w) & (w > 0), w, g.view[0])
    h = np.where(np.isfinite(h) & (h > 0), h, g.view[1])
    w = np.minimum(w, limit[0])
    h = np.minimum(h, limit[1])
    cx = np.clip(np.nan_to_num(cx, nan=g.x0), g.x0, g.x1)
    cy = np.clip(np.nan_to_num(cy, nan=g.y0), g.y0, g.y1)
    return cx, cy, w, h


def _rects_ref(g: Grid, cx: Any, cy: Any, w: Any, h: Any, old: Any) -> Any:
    c, m = g.cell, g.margin
    none = old < 0
    parts = []
    for axis, (ctr, size, origin, n) in enumerate(((cx, w, g.x0, g.nx), (cy, h, g.y0, g.ny))):
        lo_edge = ctr - size / 2 - origin
        hi_edge = ctr + size / 2 - origin
        e0 = np.clip(np.floor(lo_edge / c), 0, n - 1).astype(np.int64)
        e1 = np.clip(np.ceil(hi_edge / c) - 1, 0, n - 1).astype(np.int64)
        e1 = np.maximum(e1, e0)
        s0 = np.clip(np.floor((lo_edge - m) / c), 0, n - 1).astype(np.int64)
        s1 = np.clip(np.ceil((hi_edge + m) / c) - 1, 0, n - 1).astype(np.int64)
        o0 = (old >> (32 * axis)) & 0xFFFF
        o1 = (old >> (32 * axis + 16)) & 0xFFFF
        fresh = none | (o1 < e0) | (o0 > e1)
        parts.append(np.where(fresh, e0, np.minimum(e0, np.maximum(o0, s0))))
        parts.append(np.where(fresh, e1, np.maximum(e1, np.minimum(o1, s1))))
    return g.code(*parts)


@pytest.mark.parametrize("seed", range(4))
def test_grid_two_axis_rects_equal_per_axis_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = Grid(Interest(cell=float(rng.choice([7.0, 100.0, 333.3])), bounds=(-50, 10, 950, 1410),
                      view=(200.0, 120.0), margin=float(rng.uniform(0, 80))))
    n = 300
    old = np.full(n, -1, np.int64)
    for _ in range(30):
        cx = rng.uniform(-300, 1300, n)
        cy = rng.uniform(-300, 1800, n)
        cx[rng.random(n) < 0.05] = np.nan
        cy[rng.random(n) < 0.02] = np.inf
        cx[rng.random(n) < 0.02] = -np.inf
        w = rng.uniform(-10, 900, n)
        h = rng.uniform(1, 900, n)
        w[rng.random(n) < 0.1] = np.nan
        got = g.clamp_view(cx, cy, w, h, g.max_view)
        want = _clamp_ref(g, cx, cy, w, h, g.max_view)
        for a, b in zip(got, want, strict=True):
            assert a.tobytes() == b.tobytes()
        new = g.rects(*got, old)
        assert new.tobytes() == _rects_ref(g, *want, old).tobytes()
        # small steps next time (hysteresis), some viewers new again
        old = np.where(rng.random(n) < 0.1, -1, new)
