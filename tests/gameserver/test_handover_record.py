"""A room handed over between two ``--record`` nodes keeps recording: the sender's file ends
at the handover tick, the receiver's new file starts from the full restored state at that
tick (a ``"restore"`` record), links the sender's room and file, and both replay
deterministically (every per-tick state hash and keyframe re-simulated)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gameserver.config import ServerConfig
from gameserver.replay.format import (
    CONTINUED_FORMAT,
    FORMAT_VERSION,
    Keyframe,
    ReplayCorrupt,
    ReplayReader,
    TickRun,
)
from gameserver.replay.player import Mismatch, Playback, verify
from gameserver.server import GameServer
from protocol import messages as M
from protocol.aio import connect


@contextlib.asynccontextmanager
async def node(kit: Any, redis_url: str, record: Path) -> AsyncIterator[GameServer]:
    cfg = ServerConfig(host="127.0.0.1", port=0, seed=7, redis_url=redis_url, handover=True,
                       empty_room_ttl=5.0, games=kit.GAMES, record_dir=record,
                       record_keyframe=0.5)
    server = GameServer(cfg)
    await server.start()
    try:
        yield server
    finally:
        server.config = dataclasses.replace(server.config, handover=False)
        await server.stop(timeout=2)


async def client(kit: Any, url: str) -> Any:
    c = kit.Client(await connect(url))
    c.start()
    return c


async def play(c: Any, n: int, first_seq: int) -> int:
    """``n`` inputs, one per ~tick; returns the next seq."""
    seq = first_seq
    for i in range(n):
        await c.send(M.Input(seq, {"dx": 0.5 if i % 3 else -0.25, "dy": 0.3}))
        seq += 1
        await asyncio.sleep(1 / 30)
    return seq


def only(d: Path) -> Path:
    files = sorted(d.glob("*.gsreplay"))
    assert len(files) == 1, files
    return files[0]


def records(path: Path) -> tuple[ReplayReader, list[Any]]:
    with ReplayReader(path) as r:
        return r, list(r.records())


def test_the_receiver_records_the_restored_room_and_both_files_replay(
        kit: Any, redis_url: str, tmp_path: Path) -> None:
    da, db = tmp_path / "a", tmp_path / "b"
    da.mkdir()
    db.mkdir()

    async def main() -> tuple[str, int]:
        async with node(kit, redis_url, da) as a, node(kit, redis_url, db) as b:
            c1, c2 = await client(kit, a.ws_url), await client(kit, a.ws_url)
            w1 = await c1.hello(game="walker", name="ann")
            w2 = await c2.hello(game="walker", name="bob")
            assert w1.room == w2.room
            s1, s2 = await asyncio.gather(play(c1, 25, 1), play(c2, 20, 1))
            await a.stop(timeout=2)  # SIGTERM path: hand over
            assert [x.outcome for x in a.handover.results] == ["moved"]
            assert await c1.closed() == 4014 and await c2.closed() == 4014
            tick_b = b.rooms.rooms[w1.room].tick
            r1, r2 = await client(kit, b.ws_url), await client(kit, b.ws_url)
            await r1.send(M.Resume(w1.resume))
            await r2.send(M.Resume(w2.resume))
            await r1.wait_welcome()
            await r2.wait_welcome()
            await asyncio.gather(play(r1, 25, s1), play(r2, 15, s2))
            await r1.until(lambda: any(x.seq == s1 + 24 for x in r1.acks))
            for c in (c1, c2, r1, r2):
                await c.close()
            return w1.room, tick_b

    room, _ = kit.run(main())
    fa, fb = only(da), only(db)
    ra, reca = records(fa)
    rb, recb = records(fb)
    end_a = reca[-1]
    assert isinstance(end_a, dict) and end_a["reason"] == "handover"
    handover_tick = end_a["tick"]
    # A: a plain version-1 recording from tick 0 that ends at the handover tick
    assert ra.header.raw["format"] == FORMAT_VERSION and ra.restore is None
    # B: a continuation from exactly that tick, linking A's room and file
    assert rb.header.raw["format"] == CONTINUED_FORMAT
    assert rb.restore is not None and rb.start == handover_tick
    assert rb.header.raw["continues"] == {"room": room, "from_tick": handover_tick,
                                          "file": fa.name}
    runs_b = [x for x in recb if isinstance(x, TickRun)]
    assert runs_b[0].first == handover_tick + 1
    # inputs were recorded on B (resumed players played on)
    assert sum(1 for x in runs_b for c in x.calls if c.kind == "i") >= 30
    # the state B restored is the state A's last tick left: A's last hash
    runs_a = [x for x in reca if isinstance(x, TickRun)]
    assert runs_a[-1].last == handover_tick
    assert int(runs_a[-1].hashes[-1]) == rb.restore.hash
    # both replay deterministically: every tick's hash and every keyframe
    va, vb = verify(fa), verify(fb)
    assert va.ticks == handover_tick and va.start == 0
    assert vb.start == handover_tick and vb.ticks == recb[-1]["tick"] - handover_tick
    assert vb.players == 2 and vb.keyframes >= 1
    assert f"continuing room {room} from tick {handover_tick}" in vb.summary()
    # the playback of B starts at the restored tick; a seek back to it and forward again
    # reproduces the recorded keyframe positions
    keys = [x for x in recb if isinstance(x, Keyframe)]
    pb = Playback(fb)
    try:
        assert pb.tick == handover_tick and pb.status()["start"] == handover_tick
        pb.seek(keys[-1].tick)
        while pb.target is not None:
            pb.advance()
        world = pb.sim.world
        slots = world.alive_slots()
        assert world.id_of(slots).tolist() == keys[-1].ids.tolist()
        assert world.columns()["x"][slots].tolist() == keys[-1].columns["x"].tolist()
        pb.seek(0)  # clamped to the start
        while pb.target is not None:
            pb.advance()
        assert pb.tick == handover_tick
    finally:
        pb.close()


def test_a_damaged_restore_record_is_a_clear_error(kit: Any, tmp_path: Path) -> None:
    """The restore record is checked: its state must load and hash to the recorded value."""
    import msgpack

    from gameserver.handover.codec import pack_blob
    from gameserver.handover.simstate import simulation_state
    from gameserver.replay.format import MAGIC, frame
    from gameserver.replay.recorder import Recorder
    from gameserver.simulation import Simulation

    sim = Simulation(kit.Walker, seed=3)
    sim.join(1, "ann")
    for _ in range(5):
        sim.step()
    path = tmp_path / "c.gsreplay"
    rec = Recorder(sim, kit.Walker, path, send_rate=30, threaded=False,
                   restored=pack_blob(simulation_state(sim)), extra={"continues": {}})
    for _ in range(3):
        sim.step()
        rec.after_tick()
    rec.close()
    assert verify(path).ticks == 3
    # rewrite the restore record with a wrong hash, then with garbage state
    raw = path.read_bytes()
    off = len(MAGIC)
    hlen = int.from_bytes(raw[off:off + 4], "big")
    rstart = off + 8 + hlen
    rlen = int.from_bytes(raw[rstart:rstart + 4], "big")
    body = msgpack.unpackb(raw[rstart + 8:rstart + 8 + rlen], raw=False)
    for edit, err in (({"hash": body["hash"] ^ 1}, "restored state hash differs"),
                      ({"state": b"\xc1junk"}, "does not load")):
        bad = tmp_path / "bad.gsreplay"
        bad.write_bytes(raw[:rstart] + frame({**body, **edit}) + raw[rstart + 8 + rlen:])
        with pytest.raises(Mismatch, match=err):
            verify(bad)
    # a continuation file cut right after its header
    cut = tmp_path / "cut.gsreplay"
    cut.write_bytes(raw[:rstart])
    with pytest.raises(ReplayCorrupt, match="before the restore record"):
        verify(cut)
