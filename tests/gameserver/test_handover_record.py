"""A room handed over between two ``--record`` nodes keeps recording: the sender's file ends
at the handover tick, the receiver's new file starts from the full restored state at that
tick (a ``"restore"`` record), links the sender's room and file, and both replay
deterministically (every per-tick state hash and keyframe re-simulated). The players are
Python SDK clients (bots) that follow the 4014 move on their own while sending inputs."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from cluster_kit import handover_node

from clients.client import Backoff, GameClient
from gameserver.replay.format import (
    CONTINUED_FORMAT,
    FORMAT_VERSION,
    Keyframe,
    ReplayCorrupt,
    ReplayReader,
    TickRun,
)
from gameserver.replay.player import Mismatch, Playback, main, verify


def node(kit: Any, redis_url: str, record: Path) -> Any:
    return handover_node(kit, redis_url, record_dir=record, record_keyframe=0.5)


class Bot:
    """A Python SDK GameClient sending an input every ~tick (it follows the 4014 move and
    re-sends what was not acknowledged on its own); ``sent``: seqs written to a socket."""

    def __init__(self, url: str, name: str, room: str | None = None) -> None:
        self.client = GameClient(url, game="walker", room=room, name=name,
                                 backoff=Backoff(base=0.05, cap=0.3, max_attempts=6))
        self.sent: list[int] = []
        self.rng = random.Random(name)

    def send(self) -> None:
        c = self.client
        if c.connected:
            seq = c.send_input(dx=self.rng.uniform(-1, 1), dy=self.rng.uniform(-1, 1))
            if c.pending_inputs and c.pending_inputs[-1][0] == seq:
                self.sent.append(seq)


async def drive(bots: list[Bot], seconds: float) -> None:
    end = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < end:
        for b in bots:
            b.send()
        await asyncio.sleep(1 / 30)


async def until(cond: Any, timeout: float, what: str) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < end, what
        await asyncio.sleep(0.05)


def only(d: Path) -> Path:
    files = sorted(d.glob("*.gsreplay"))
    assert len(files) == 1, files
    return files[0]


def records(path: Path) -> tuple[ReplayReader, list[Any]]:
    with ReplayReader(path) as r:
        return r, list(r.records())


def inputs(recs: list[Any]) -> list[tuple[int, int]]:
    """(player, seq) of every recorded input call (runs, and the end record's trailing)."""
    out = [(c.player, c.seq) for x in recs if isinstance(x, TickRun) for c in x.calls
           if c.kind == "i"]
    end = recs[-1]
    return out + [(c.player, c.seq) for c in end["calls"] if c.kind == "i"]


def test_the_receiver_records_the_restored_room_and_both_files_replay(
        kit: Any, redis_url: str, tmp_path: Path) -> None:
    da, db = tmp_path / "a", tmp_path / "b"
    da.mkdir()
    db.mkdir()

    async def main() -> tuple[str, dict[int, list[int]]]:
        async with node(kit, redis_url, da) as a, node(kit, redis_url, db) as b:
            bots = [Bot(a.ws_url, "ann")]
            await bots[0].client.connect()
            room = bots[0].client.room
            assert room is not None
            bots.append(Bot(a.ws_url, "bob", room=room))
            await bots[1].client.connect()
            try:
                await drive(bots, 1.0)
                stopping = asyncio.ensure_future(a.stop(timeout=2))  # SIGTERM: hand over
                await drive(bots, 1.5)  # inputs keep coming while the room moves
                await asyncio.wait_for(stopping, 30)
                assert [x.outcome for x in a.handover.results] == ["moved"]
                await until(lambda: all(x.client.connected and x.client.url == b.ws_url
                                        for x in bots), 20, "both bots on node b")
                await drive(bots, 1.0)
                await until(lambda: all(x.client.acked_seq >= x.sent[-1] for x in bots), 10,
                            "acks of the last inputs")
                assert all(x.client.stats.redirects == 1 for x in bots)
                sent = {x.client.player: x.sent for x in bots if x.client.player is not None}
            finally:
                for x in bots:
                    await x.client.close()
            return room, sent

    room, sent = kit.run(main())
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
    # the two files together hold every input the bots sent, each exactly once (those
    # queued at the freeze: in A's end record and B's restored queue; re-sent ones that
    # were already accepted are not recorded again)
    got = inputs(reca) + inputs(recb)
    assert len(got) == len(set(got))
    assert sorted(got) == sorted((p, q) for p, seqs in sent.items() for q in seqs)
    assert len(inputs(recb)) > 30  # B recorded the inputs of the resumed bots
    # the state B restored is the state A's last tick left: A's last hash
    runs_a = [x for x in reca if isinstance(x, TickRun)]
    assert runs_a[-1].last == handover_tick
    assert int(runs_a[-1].hashes[-1]) == rb.restore.hash
    # both replay deterministically: every tick's hash and every keyframe
    va, vb = verify(fa, kit.Walker), verify(fb, kit.Walker)
    assert va.ticks == handover_tick and va.start == 0
    assert vb.start == handover_tick and vb.ticks == recb[-1]["tick"] - handover_tick
    assert vb.players == 2 and vb.keyframes >= 1
    assert f"continuing room {room} from tick {handover_tick}" in vb.summary()
    # the playback of B starts at the restored tick; a seek to the last keyframe
    # reproduces its recorded positions, a seek back returns to the start
    keys = [x for x in recb if isinstance(x, Keyframe)]
    pb = Playback(fb, kit.Walker)
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


def test_a_damaged_restore_record_is_a_clear_error(kit: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The restore record is checked: its state must load and hash to the recorded value."""
    # The recorded class is "conftest:Walker", and "conftest" names whichever conftest.py
    # was imported first in a whole-suite run: the CLI gets the class under its own name.
    monkeypatch.setitem(sys.modules, "handover_record_kit", kit)
    game = "handover_record_kit:Walker"
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
                   restored=pack_blob(simulation_state(sim)),
                   extra={"continues": {"room": "walker-1", "from_tick": 5, "file": None}})
    for _ in range(3):
        sim.step()
        rec.after_tick()
    rec.close()
    assert verify(path, kit.Walker).ticks == 3
    assert main([str(path), "--verify", "--game", game]) == 0  # the CLI: one summary line, exit 0
    assert "replay ok continuing room" in capsys.readouterr().out
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
            verify(bad, kit.Walker)
        assert main([str(bad), "--verify", "--game", game]) == 1  # one line on stderr, no traceback
        assert "replay MISMATCH at tick 5: " in capsys.readouterr().err
    # a continuation file cut right after its header
    cut = tmp_path / "cut.gsreplay"
    cut.write_bytes(raw[:rstart])
    with pytest.raises(ReplayCorrupt, match="before the restore record"):
        verify(cut, kit.Walker)
