"""SAME pieces through the real room and view stream (in-process, fake sockets): viewers of
both kinds ("interest" and "interest/2") in one room, cameras that move (cells entered and
left), sockets skipped for backpressure, a RESUME onto a new socket; every frame decoded by
a ViewReplica, which refuses any SAME piece it cannot apply, and every view compared with
the server's visible set each tick."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import numpy as np

from examples.world import World
from gameserver.config import ServerConfig
from gameserver.manager import RoomManager
from gameserver.metrics import ServerMetrics
from protocol.view import ViewReplica


def _payload(frame: bytes) -> bytes:
    """The payload of one unmasked server frame (RFC 6455 section 5.2)."""
    n = frame[1] & 0x7F
    if n < 126:
        return frame[2:]
    return frame[4:] if n == 126 else frame[10:]


class FakeSocket:
    """A socket whose writes are decoded at once into ``view``; ``full`` makes the room
    skip it (backpressure: its buffer is over the high water mark)."""

    open = True
    closed = False

    def __init__(self, schema: Any) -> None:
        self.view = ViewReplica(schema)
        self.full = False
        self.forms: dict[str, int] = {}
        self.resets = 0

    @property
    def buffered_bytes(self) -> int:
        return 1 << 30 if self.full else 0

    def write_prepared(self, frame: bytes) -> bool:
        data = _payload(frame)
        for piece in msgpack.unpackb(data, raw=False)[4:]:
            k = ("same" if isinstance(piece[1], bytes) else "delta" if isinstance(piece[1], list)
                 else "same_mask" if len(piece) == 3 else "moves")
            self.forms[k] = self.forms.get(k, 0) + 1
        self.resets += self.view.apply(data)  # DeltaError: the test fails
        return True

    def send_nowait(self, data: bytes) -> None:
        pass

    def close_soon(self, *_: Any) -> None:
        pass


def test_mixed_room_random_cameras_skips_and_resume() -> None:
    async def run() -> None:
        rc = {"entities": 3000, "moving": 0.3, "speed": 600.0}  # ~20 units a tick: crossings
        cfg = ServerConfig(games={"w": World}, seed=3, room_config=rc, max_players=64,
                           slow_timeout=1e9).check()
        room = RoomManager(cfg, ServerMetrics()).create_room("w")
        assert room._timer is not None
        room._timer.cancel()
        schema = room.wire_schema
        rng = np.random.default_rng(7)
        socks: dict[int, FakeSocket] = {}
        players = []
        for i in range(12):
            ws = FakeSocket(schema)
            if i % 2:
                p = room.join_spectator(ws, f"s{i}", interest=True)  # type: ignore[arg-type]
            else:
                p = room.join(ws, {}, f"p{i}", interest=True)  # type: ignore[arg-type]
            p.vsame = i % 3 != 0  # a third of them did not offer "interest/2"
            socks[p.player_id] = ws
            players.append(p)
        vs = room.view_stream
        assert vs is not None
        resumed = 0
        for t in range(150):
            for p in players:
                ws = socks[p.player_id]
                ws.full = rng.random() < 0.04
                if p.spectator and rng.random() < 0.1:  # the camera jumps or drifts
                    x, y = rng.uniform(0, 10_000, 2)
                    room.set_camera(p, float(x), float(y), 2000.0, 2000.0, None)
            if t % 50 == 25:  # a RESUME: a new socket, a fresh client
                p = players[resumed % len(players)]
                resumed += 1
                ws = FakeSocket(schema)
                room.attach(p, ws)  # type: ignore[arg-type]
                socks[p.player_id] = ws
            room.sim.step()
            room._send()
            last = vs.last
            assert last is not None
            for p in players:
                ws = socks[p.player_id]
                if ws.full or p.last_sent != room.tick or p.vchans is None:
                    continue
                assert ws.view.tick == last.tick
                want = np.unique(np.concatenate(
                    [last.rows(c)[0] for c in p.vchans] + [np.zeros(0, np.uint32)]))
                assert np.array_equal(ws.view.ids, want), (t, p.player_id)
                snap = room.sim.world.snapshot()
                pos = np.searchsorted(snap.ids, want)
                for f in ("x", "y"):
                    assert np.array_equal(ws.view.columns[f], snap.columns[f][pos])
        for p in players:
            forms = socks[p.player_id].forms
            if p.vsame:
                assert forms.get("same", 0) > 20, (p.player_id, forms)
            else:
                assert "same" not in forms and "same_mask" not in forms, forms
                assert forms.get("moves", 0) > 20
        assert resumed == 3
        assert all(socks[p.player_id].resets >= 1 for p in players)
    asyncio.run(run())
